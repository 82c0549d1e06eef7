#!/usr/bin/env bash
# Revocation through the admin API (issue 11, section 3), on the real binary with pskgw-sim,
# pskgw-devsim and a real redis-server: the /admin/ routes need the bearer token of
# admin.token_file (401 without it, or with another one, and nothing done); POST
# /admin/invalidate drops the identity from the cache and from Redis, so that the device's next
# handshake calls GetPSK again; POST /admin/reload reloads like SIGHUP; --check-config refuses a
# non-loopback admin address without a token file.
. "$(dirname "$0")/lib.sh"

start_redis
reserve_ports tcp
ADMIN_PORT=${PORTS[0]} # fixed: pskgw ctl --config finds the endpoint in the configuration
start_sim
head -c 32 /dev/urandom >"$WORK/kek"
printf 'it-admin-token\n' >"$WORK/admin.token"
write_config a "" ""
sed -i "s#^cache = .*#cache = { entries = 1000; ttl_s = 600; redis = \"redis://127.0.0.1:$REDIS_PORT/0\"; kek_file = \"kek\"; };#" "$WORK/a.conf"
sed -i 's#^admin = .*#admin = { address = "127.0.0.1"; port = '"$ADMIN_PORT"'; token_file = "admin.token"; };#' "$WORK/a.conf"
start_gateway a

device() { # one device, one message -> exit status
  "$BIN/pskgw-devsim" --target "127.0.0.1:$GW_UDP" --seed it --devices 1 --messages 1 --rate 10 \
    --duration 60 --verify-file "$WORK/a.jsonl" --quiet >"$WORK/device.txt" 2>&1
}
calls() { curl -s "$SIM_URL/_sim/stats" | jq '.calls.get_psk'; }
keys() { redis-cli -p "$REDIS_PORT" --scan --pattern '*' | wc -l; }
status() { # method path [curl args...] -> HTTP status (body in $WORK/body)
  curl -s -o "$WORK/body" -w '%{http_code}' -X "$1" "${GW_ADMIN%/metrics}$2" "${@:3}"
}
AUTH=(-H 'Authorization: Bearer it-admin-token')
ctl() { # pskgw ctl with the gateway's configuration -> its exit status; stdout in $WORK/ctl.out
  "$BIN/pskgw" ctl --config "$WORK/a.conf" "$@" >"$WORK/ctl.out" 2>"$WORK/ctl.err"
}

check "the device delivered" device
check "one GetPSK call" [ "$(calls)" -eq 1 ]
K0=$(keys)
check "its key is in Redis ($K0 keys)" [ "$K0" -ge 1 ]
ID=$(jq -r .psk_identity "$WORK/a.jsonl" | head -n 1)
check "the envelope names the identity ($ID)" [ "${ID:-null}" != null ]

check "no token: 401" [ "$(status POST "/admin/invalidate?domain=a&identity=$ID")" = 401 ]
check "another token: 401" [ "$(status POST "/admin/invalidate?domain=a&identity=$ID" \
  -H 'Authorization: Bearer it-admin-tokem')" = 401 ]
check "a longer token: 401" [ "$(status POST "/admin/invalidate?domain=a&identity=$ID" \
  -H 'Authorization: Bearer it-admin-token2')" = 401 ]
check "not a bearer token: 401" [ "$(status POST "/admin/invalidate?domain=a&identity=$ID" \
  -H 'Authorization: Basic it-admin-token')" = 401 ]
check "refused calls did nothing: the key is still in Redis" [ "$(keys)" -eq "$K0" ]
check "the device connects again from the cache" device
check "still one GetPSK call" [ "$(calls)" -eq 1 ]
check "metrics need no token" [ "$(status GET /metrics)" = 200 ]

check "GET on invalidate: 405" [ "$(status GET "/admin/invalidate?domain=a&identity=$ID" "${AUTH[@]}")" = 405 ]
check "unknown domain: 404" [ "$(status POST "/admin/invalidate?domain=zz&identity=$ID" "${AUTH[@]}")" = 404 ]
check "identity not hex: 400" [ "$(status POST "/admin/invalidate?domain=a&identity=xyz" "${AUTH[@]}")" = 400 ]
check "unknown route: 404" [ "$(status GET /admin/nothing "${AUTH[@]}")" = 404 ]

check "invalidate: 200" [ "$(status POST "/admin/invalidate?domain=a&identity=$ID" "${AUTH[@]}")" = 200 ]
check "invalidate answers JSON" jq -e ".invalidated == true and .identity == \"$ID\" and .domain == \"a\"" "$WORK/body"
key_gone() { [ "$(keys)" -eq $((K0 - 1)) ]; }
check "the key left Redis" wait_until key_gone
check "the action is logged with the caller" \
  grep -Eq "admin: 127\.0\.0\.1:[0-9]+ invalidated identity \"$ID\" of domain \"a\"" "$WORK/a.log"
check "the device connects again" device
check "its handshake asked the service again" [ "$(calls)" -eq 2 ]

# Sessions, close and spools: a device that holds its session open.
"$BIN/pskgw-devsim" --target "127.0.0.1:$GW_UDP" --seed it --devices 1 --messages 1 --rate 10 \
  --hold 30 --duration 90 >"$WORK/holder.txt" 2>&1 &
HOLDER=$!
track "devsim holding a session" "$HOLDER" "$WORK/holder.txt"
listed() { # -> 0 when /admin/sessions of domain a lists the device's identity
  [ "$(status GET "/admin/sessions?domain=a&identity=$ID" "${AUTH[@]}")" = 200 ] &&
    jq -e ".sessions | length == 1 and .[0].identity == \"$ID\"" "$WORK/body" >/dev/null
}
check "sessions: the held session is listed" wait_until listed
check "  with peer, age, idle time and bytes" jq -e '.sessions[0] | (.peer | test("^127\\.")) and
  .age_s >= 0 and .idle_s >= 0 and .bytes_in == 64 and .bytes_out == 0 and .listener == "dtls"' "$WORK/body"
check "sessions without a token: 401" [ "$(status GET "/admin/sessions?domain=a")" = 401 ]
check "sessions of all domains lists it too" [ "$(status GET /admin/sessions "${AUTH[@]}")" = 200 ]
check "  (one session)" jq -e '.sessions | length == 1' "$WORK/body"
check "sessions of another identity: none" \
  [ "$(status GET "/admin/sessions?domain=a&identity=0011" "${AUTH[@]}")" = 200 ]
check "  (empty list)" jq -e '.sessions == []' "$WORK/body"
check "ctl sessions: a table with the session" ctl sessions --domain a
check "  (header and the identity)" grep -q "^DOMAIN .*IDENTITY .*BYTES_OUT" "$WORK/ctl.out"
check "  (the row)" grep -Eq "^a +dtls +127\.[0-9.]+:[0-9]+ +$ID +[0-9]+ +[0-9]+ +64 +0$" "$WORK/ctl.out"
check "ctl sessions --json" ctl sessions --identity "$ID" --json
check "  (the route's JSON)" jq -e ".sessions | length == 1 and .[0].identity == \"$ID\"" "$WORK/ctl.out"
printf 'not-the-token\n' >"$WORK/wrong.token"
check "ctl with another token: exit 1" bash -c "'$BIN/pskgw' ctl --admin '${GW_ADMIN%/metrics}' \
  --token-file '$WORK/wrong.token' sessions 2>'$WORK/ctl401.err'; [ \$? -eq 1 ]"
check "  and says 401" grep -q 'HTTP 401' "$WORK/ctl401.err"
check "ctl close without --identity: usage error (exit 2)" bash -c "'$BIN/pskgw' ctl --config '$WORK/a.conf' close --domain a 2>/dev/null; [ \$? -eq 2 ]"
check "close: 200" [ "$(status POST "/admin/close?domain=a&identity=$ID" "${AUTH[@]}")" = 200 ]
check "  one session closed" jq -e '.closed == 1' "$WORK/body"
check "the close is logged with the caller" \
  grep -Eq "admin: 127\.0\.0\.1:[0-9]+ closed 1 session of identity \"$ID\" of domain \"a\"" "$WORK/a.log"
check "  and no session is listed any more" \
  [ "$(status GET "/admin/sessions?domain=a&identity=$ID" "${AUTH[@]}")" = 200 ]
check "  (empty list)" jq -e '.sessions == []' "$WORK/body"
wait_exit "$HOLDER" >/dev/null || true
check "the device saw the gateway close its session" grep -q 'peer closes 1' "$WORK/holder.txt"
check "ctl close again: nothing left to close" ctl close --domain a --identity "$ID"
check "  (0 closed)" grep -q "^closed 0 session(s) of $ID in domain a$" "$WORK/ctl.out"
check "spools: 200" [ "$(status GET /admin/spools "${AUTH[@]}")" = 200 ]
check "  each sink with its spool bytes and queue depth" \
  jq -e '.spools | length == 1 and .[0].domain == "a" and .[0].spool_bytes == 0 and .[0].queue_depth >= 0' "$WORK/body"
check "ctl spools: a table" ctl spools
check "  (the file sink)" grep -Eq "^a +[^ ]+ +0 +[0-9]+ +0 +0 +0$" "$WORK/ctl.out"
check "ctl invalidate (--admin, --token-file)" "$BIN/pskgw" ctl --admin "${GW_ADMIN%/metrics}/" \
  --token-file "$WORK/admin.token" invalidate --domain a --identity "$ID"
check "the device connects again after ctl invalidate" device
check "  and asked the service again" [ "$(calls)" -eq 3 ]
check "POST on spools: 405" [ "$(status POST /admin/spools "${AUTH[@]}")" = 405 ]

check "reload: 202" [ "$(status POST /admin/reload "${AUTH[@]}")" = 202 ]
check "the reload was applied" wait_metric 'pskgw_config_reloads_total{result="applied"}' -ge 1
check "the reload is logged with the caller" grep -Eq 'admin: 127\.0\.0\.1:[0-9]+ requested a reload' "$WORK/a.log"
check "ctl reload" ctl reload
check "  applied" wait_metric 'pskgw_config_reloads_total{result="applied"}' -ge 2

# The token is replaced by a reload (no restart): the old one is refused from then on.
printf 'it-admin-token-2\n' >"$WORK/admin.token"
check "reload with the old token (the file holds a new one)" \
  [ "$(status POST /admin/reload "${AUTH[@]}")" = 202 ]
check "  applied" wait_metric 'pskgw_config_reloads_total{result="applied"}' -ge 3
check "  logged" wait_line "$WORK/a.log" 'admin endpoint: token replaced' "$GW_PID"
check "the old token: 401" [ "$(status GET /admin/spools "${AUTH[@]}")" = 401 ]
AUTH=(-H 'Authorization: Bearer it-admin-token-2')
check "the new token: 200" [ "$(status GET /admin/spools "${AUTH[@]}")" = 200 ]
check "ctl --config reads the new token" ctl spools

# deny_file: refused before any lookup, re-read on reload (here through ctl reload = SIGHUP).
DENIED='pskgw_domain_identities_refused_total{domain="a",reason="denied"}'
RUID=$(jq -r .rot_public_uid "$WORK/a.jsonl" | head -n 1)
printf '# revoked devices\n\n  %s   # device 0\n' "${ID,,}" >"$WORK/deny.list"
echo 'deny_file = "deny.list";' >>"$WORK/a.conf"
c0=$(calls)
check "ctl reload with a deny_file" ctl reload
check "  applied" wait_metric 'pskgw_config_reloads_total{result="applied"}' -ge 4
refused() { # the device's handshake fails (bounded run)
  ! "$BIN/pskgw-devsim" --target "127.0.0.1:$GW_UDP" --seed it --devices 1 --messages 1 --rate 10 \
    --duration 10 --quiet >"$WORK/refused.txt" 2>&1
}
check "a denied identity (listed in lower case, with a comment) fails its handshake" refused
check "  without a GetPSK call" [ "$(calls)" -eq "$c0" ]
check "  counted with reason denied" wait_metric "$DENIED" -ge 1
check "  and logged" grep -q "identity \"$ID\" refused without a lookup: denied" "$WORK/a.log"
printf '%s\n' "$RUID" >"$WORK/deny.list"
check "deny its ROTPublicUID instead ($RUID): reload" ctl reload
check "  applied" wait_metric 'pskgw_config_reloads_total{result="applied"}' -ge 5
d0=$(metric "$DENIED")
check "the device of a denied ROTPublicUID fails its handshake" refused
check "  counted with reason denied" wait_metric "$DENIED" -gt "$d0"
printf '# nobody\n' >"$WORK/deny.list"
check "empty deny list: reload" ctl reload
check "  applied" wait_metric 'pskgw_config_reloads_total{result="applied"}' -ge 6
check "the device connects again" device
printf 'not-hex\n' >"$WORK/deny.list"
check "a deny_file line that is not hex: --check-config fails" \
  bash -c "! '$BIN/pskgw' --check-config '$WORK/a.conf' 2>'$WORK/check0.err'"
check "  and names the file and line" grep -q 'deny.list:1: not an identity or ROTPublicUID' "$WORK/check0.err"
: >"$WORK/deny.list"
stop_gateway

# --check-config: a non-loopback admin address needs a token file; loopback without one warns.
sed -i 's#^admin = .*#admin = { address = "0.0.0.0"; port = 0; };#' "$WORK/a.conf"
check "non-loopback admin without token_file: --check-config fails" \
  bash -c "! '$BIN/pskgw' --check-config '$WORK/a.conf' 2>'$WORK/check1.err'"
check "  and says why" grep -q 'admin.token_file.*required when the admin address is not loopback' "$WORK/check1.err"
sed -i 's#^admin = .*#admin = { address = "0.0.0.0"; port = 0; token_file = "admin.token"; };#' "$WORK/a.conf"
check "non-loopback admin with token_file: --check-config passes" \
  "$BIN/pskgw" --check-config "$WORK/a.conf" 2>"$WORK/check2.err"
sed -i 's#^admin = .*#admin = { address = "127.0.0.1"; port = 0; };#' "$WORK/a.conf"
check "loopback admin without token_file: --check-config passes" \
  "$BIN/pskgw" --check-config "$WORK/a.conf" 2>"$WORK/check3.err"
start_gateway a
check "  and the start-up warns that the routes are open" \
  wait_line "$WORK/a.log" 'warning.*no admin.token_file: any local process can call' "$GW_PID"
check "  which answer without a token" \
  [ "$(status POST "/admin/invalidate?domain=a&identity=$ID")" = 200 ]
stop_gateway
finish

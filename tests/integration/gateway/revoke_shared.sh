#!/usr/bin/env bash
# Revocation across gateways sharing one Redis (issue 11): two pskgw processes serve domain "a"
# with the same cache.redis and kek_file, on one real redis-server. A device holds a session on
# B; `pskgw ctl revoke` on A reaches B through Redis pub/sub: B closes the session and refuses
# the device's next handshake (the refusal A stored in Redis) without a GetPSK call. Redis is
# then restarted: B's subscriber comes back (metric and log, readiness part "invalidation"),
# and an invalidate on A again reaches B (its next handshake asks the service). Last, a
# deny_file added to A's configuration: the reload revokes the new entry on B too.
. "$(dirname "$0")/lib.sh"

start_redis
head -c 32 /dev/urandom >"$WORK/kek"
printf 'it-admin-token\n' >"$WORK/admin.token"
start_sim
cache="cache = { entries = 1000; ttl_s = 600; negative_ttl_s = 60; redis = \"redis://127.0.0.1:$REDIS_PORT/0\"; kek_file = \"kek\"; };"
write_config a "" ""
write_config b "" ""
sed -i "s#^cache = .*#$cache#" "$WORK/a.conf" "$WORK/b.conf"
sed -i 's#^admin = .*#admin = { address = "127.0.0.1"; port = 0; token_file = "admin.token"; };#' \
  "$WORK/a.conf" "$WORK/b.conf"
sed -i 's/^domain = "b";/domain = "a";/' "$WORK/b.conf" # the same domain: one channel
start_gateway a
A_PID=$GW_PID A_ADMIN=$GW_ADMIN
start_gateway b
B_PID=$GW_PID B_UDP=$GW_UDP B_ADMIN=$GW_ADMIN
SUB='pskgw_keycache_broadcast_subscribed{domain="a",cache="psk"}'
RECEIVED='pskgw_keycache_broadcasts_received_total{domain="a",cache="psk"}'
RESYNCS='pskgw_keycache_broadcast_resyncs_total{domain="a",cache="psk"}'
PART='pskgw_ready_part{domain="a",part="invalidation"}'

calls() { curl -s "$SIM_URL/_sim/stats" | jq '.calls.get_psk'; }
device() { # one device, one message through B -> exit status
  "$BIN/pskgw-devsim" --target "127.0.0.1:$B_UDP" --seed it --devices 1 --messages 1 --rate 10 \
    --duration 60 --verify-file "$WORK/b.jsonl" --quiet >"$WORK/device.txt" 2>&1
}
refused() { # the device's handshake on B fails (bounded run)
  ! "$BIN/pskgw-devsim" --target "127.0.0.1:$B_UDP" --seed it --devices 1 --messages 1 \
    --rate 10 --duration 10 --quiet >"$WORK/refused.txt" 2>&1
}
ctl_a() { # pskgw ctl against A -> exit status; stdout in $WORK/ctl.out
  "$BIN/pskgw" ctl --admin "${A_ADMIN%/metrics}" --token-file "$WORK/admin.token" "$@" \
    >"$WORK/ctl.out" 2>"$WORK/ctl.err"
}

check "A subscribed to the domain's invalidations" wait_metric "$SUB" = 1 "$A_ADMIN"
check "B subscribed to the domain's invalidations" wait_metric "$SUB" = 1 "$B_ADMIN"
check "  B's subscription is logged" wait_line "$WORK/b.log" 'subscribed to invalidations' "$B_PID"
check "  and a ready part of B" wait_metric "$PART" = 1 "$B_ADMIN"
check "the device delivered through B" device
c0=$(calls)
ID=$(jq -r .psk_identity "$WORK/b.jsonl" | head -n 1)
check "the envelope names the identity ($ID)" [ "${ID:-null}" != null ]

"$BIN/pskgw-devsim" --target "127.0.0.1:$B_UDP" --seed it --devices 1 --messages 1 --rate 10 \
  --hold 60 --duration 120 >"$WORK/holder.txt" 2>&1 &
HOLDER=$!
track "devsim holding a session on B" "$HOLDER" "$WORK/holder.txt"
held() {
  curl -s -H 'Authorization: Bearer it-admin-token' "${B_ADMIN%/metrics}/admin/sessions?domain=a" |
    jq -e ".sessions | length == 1 and .[0].identity == \"$ID\"" >/dev/null
}
check "B holds the device's session" wait_until held
check "the held session came from B's cache (no GetPSK call)" [ "$(calls)" -eq "$c0" ]

check "ctl revoke on A" ctl_a revoke --domain a --identity "$ID"
check "  published, no session on A" grep -q "^revoked $ID in domain a (cache and redis; published" "$WORK/ctl.out"
check "B received it" wait_metric "$RECEIVED" -ge 1 "$B_ADMIN"
check "  B logged it and closed the session" \
  wait_line "$WORK/b.log" "identity \"$ID\" revoked by another gateway: its sessions closed" "$B_PID"
wait_exit "$HOLDER" >/dev/null || true
check "the device saw B close its session" grep -q 'peer closes 1' "$WORK/holder.txt"
check "B refuses the device's next handshake" refused
check "  without asking the service" [ "$(calls)" -eq "$c0" ]

stop_proc "$REDIS_PID" || true
check "Redis stopped: B's subscription is down" wait_metric "$SUB" = 0 "$B_ADMIN"
check "  B is not ready, naming the invalidation part" wait_metric "$PART" = 0 "$B_ADMIN"
r0=$(metric "$RESYNCS" "$B_ADMIN")
start_redis
check "Redis back: B subscribed again" wait_metric "$SUB" = 1 "$B_ADMIN"
check "  counted as a resync (its LRU emptied)" wait_metric "$RESYNCS" -gt "$r0" "$B_ADMIN"
check "  the invalidation part ready again" wait_metric "$PART" = 1 "$B_ADMIN"
check "A subscribed again" wait_metric "$SUB" = 1 "$A_ADMIN"
check "the device connects through B again (Redis lost the refusal)" device
c1=$(calls)
check "  which asked the service ($c0 -> $c1)" [ "$c1" -gt "$c0" ]
check "  and again, from B's cache" device
check "  (no new call)" [ "$(calls)" -eq "$c1" ]
n0=$(metric "$RECEIVED" "$B_ADMIN")
check "ctl invalidate on A" ctl_a invalidate --domain a --identity "$ID"
check "B received it" wait_metric "$RECEIVED" -gt "$n0" "$B_ADMIN"
check "  and logged it" wait_line "$WORK/b.log" "identity \"$ID\" invalidated by another gateway" "$B_PID"
check "B's next handshake of the device asks the service again" device
check "  (one more call)" [ "$(calls)" -gt "$c1" ]
check "A counted what it sent" metric_is 'pskgw_keycache_broadcasts_sent_total{domain="a",cache="psk"}' -ge 2 "$A_ADMIN"

# deny_file on A: the reload revokes the newly listed identity on every gateway
"$BIN/pskgw-devsim" --target "127.0.0.1:$B_UDP" --seed it --devices 1 --messages 1 --rate 10 \
  --hold 60 --duration 120 >"$WORK/holder2.txt" 2>&1 &
HOLDER=$!
track "devsim holding a session on B (2)" "$HOLDER" "$WORK/holder2.txt"
check "B holds the device's session again" wait_until held
n1=$(metric "$RECEIVED" "$B_ADMIN")
printf '# revoked\n%s\n' "${ID,,}" >"$WORK/deny.list"
echo 'deny_file = "deny.list";' >>"$WORK/a.conf"
kill -HUP "$A_PID"
check "A reloaded with a deny_file" \
  wait_metric 'pskgw_config_reloads_total{result="applied"}' -ge 1 "$A_ADMIN"
check "  and revoked its new entry, published" \
  wait_line "$WORK/a.log" 'domain "a": 1 entry new in deny_file revoked \(1 published' "$A_PID"
check "B received it" wait_metric "$RECEIVED" -gt "$n1" "$B_ADMIN"
check "  and closed the session" \
  wait_until count_is "$WORK/b.log" "identity \"$ID\" revoked by another gateway: its sessions closed" -ge 2
wait_exit "$HOLDER" >/dev/null || true
check "the device saw B close its session" grep -q 'peer closes 1' "$WORK/holder2.txt"
check "B refuses the device's next handshake" refused
printf '# nobody\n' >"$WORK/deny.list"
kill -HUP "$A_PID"
check "A reloaded with the entry removed" \
  wait_metric 'pskgw_config_reloads_total{result="applied"}' -ge 2 "$A_ADMIN"
check "  and invalidated it, published" \
  wait_line "$WORK/a.log" 'domain "a": 1 entry removed from deny_file invalidated \(1 published' "$A_PID"
check "B drops the stored refusal" \
  wait_until count_is "$WORK/b.log" "identity \"$ID\" invalidated by another gateway" -ge 2
check "the device connects through B again at once" device
GW_PID=$B_PID stop_gateway
GW_PID=$A_PID stop_gateway
finish

#!/usr/bin/env bash
# Session-ID resumption (RFC 5246 7.3; issue 12, section 3) for clients that take no ticket,
# with clients nobody here wrote: openssl s_client -no_ticket (-sess_out, then -sess_in) and
# mbedTLS's ssl_client2 tickets=0 reconnect=1, over DTLS 1.2 on loopback.
# - the session ID gateway A issued resumes on A (s_client: "Reused"), with no GetPSK (the
#   simulator's count for the identity does not move) and an envelope carrying identity and
#   ROTPublicUID from A's session-ID cache;
# - it does not resume on C (domain c, same ticket_key_file): a full handshake there, counted
#   unknown;
# - A keeps session_cache = 2 sessions: two more full handshakes evict the first, whose ID then
#   leads to a full handshake (counted evicted, then unknown);
# - pskgw-devsim --resume --no-tickets resumes by session ID on each reconnect;
# - a reload (SIGHUP) resizes A's cache: session_cache 2 -> 1 drops the least recently used ID
#   (it then leads to a full handshake, the other still resumes), 0 empties it and stores no
#   more, 2 again stores and resumes. Before, a kept listener kept its cache and size.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_peers.sh"

start_sim_tracked --devices 1000
printf '%s\n' "$(printf 'd%.0s' {1..64})" >"$WORK/tickets.key"
RES="resumption = { ticket_key_file = \"$WORK/tickets.key\"; ticket_lifetime_s = 3600; session_cache = 2; };"
write_config a "$RES" 'ack = "accepted";'
write_config c "$RES" 'ack = "accepted";'
start_gateway_args a
A_PID=$GW_PID A_UDP=$GW_UDP A_ADMIN=$GW_ADMIN
start_gateway_args c
C_UDP=$GW_UDP C_ADMIN=$GW_ADMIN

dev() { "$BIN/pskgw-sim" --seed it --show-device "$1" >"$WORK/dev$1.json"; }
field() { jq -r ".$2" "$WORK/dev$1.json"; }
for d in 5 6 7 8; do dev "$d"; done
ID=$(field 5 identity)
UID_=$(field 5 ROTPublicUID)
getpsk() { curl -s "$SIM_URL/_sim/stats" | jq --arg id "$1" '.by_identity[$id] // 0'; }
SC='pskgw_resumption_session_cache_total'
HS='pskgw_resumption_handshakes_total'

sc() { # NAME DEVICE PORT S_CLIENT-ARGS...: one DTLS session without tickets sending one line
  local name=$1 d=$2 port=$3
  shift 3
  printf 'hello %s' "$name" | timeout 60 openssl s_client -dtls1_2 -connect "127.0.0.1:$port" \
    -psk_identity "$(field "$d" identity)" -psk "$(field "$d" psk_128)" -cipher PSK-AES128-CCM8 \
    -no_ticket "$@" >"$WORK/$name.out" 2>&1 || true
}
delivered() { # SINK-FILE NAME
  wait_until bash -c "jq -r '.payload|@base64d' '$1' 2>/dev/null | grep -q 'hello $2'"
}

sc first 5 "$A_UDP" -sess_out "$WORK/s5.sess"
check "first session on A is a full handshake" grep -q '^New, ' "$WORK/first.out"
check "A forwarded its message" delivered "$WORK/a.jsonl" first
check "one GetPSK for the identity" [ "$(getpsk "$ID")" = 1 ]
GW_ADMIN=$A_ADMIN
check "A stored the session in its session-ID cache" \
  [ "$(wait_metric "$SC{domain=\"a\",outcome=\"stored\"" -eq 1)" = 1 ]
check "A sealed no ticket (the client asked for none)" \
  [ "$(metric 'pskgw_resumption_tickets_total{domain="a",outcome="sealed"')" = 0 ]

sc again 5 "$A_UDP" -sess_in "$WORK/s5.sess"
check "the session ID resumes on A (s_client: Reused)" grep -q '^Reused, ' "$WORK/again.out"
check "A forwarded the resumed session's message" delivered "$WORK/a.jsonl" again
check "no GetPSK for the resumed session" [ "$(getpsk "$ID")" = 1 ]
check "the resumed session's envelope carries identity and ROTPublicUID" \
  bash -c "jq -e --arg id '$ID' --arg uid '$UID_' 'select((.payload|@base64d) == \"hello again\") | .psk_identity == \$id and .rot_public_uid == \$uid' '$WORK/a.jsonl' >/dev/null"
check "A counts one session-ID resumption" \
  [ "$(wait_metric "$HS{domain=\"a\",kind=\"session_id\"" -eq 1)" = 1 ]
check "A counts it found" [ "$(metric "$SC{domain=\"a\",outcome=\"found\"")" = 1 ]

sc other 5 "$C_UDP" -sess_in "$WORK/s5.sess"
check "A's session ID does not resume on C, domain c (New)" grep -q '^New, ' "$WORK/other.out"
GW_ADMIN=$C_ADMIN
check "C counts it unknown" [ "$(wait_metric "$SC{domain=\"c\",outcome=\"unknown\"" -eq 1)" = 1 ]
check "C resumed nothing" [ "$(metric "$HS{domain=\"c\",kind=\"session_id\"")" = 0 ]
check "C forwarded the message of its own full handshake" delivered "$WORK/c.jsonl" other
check "C asked for the key itself" [ "$(getpsk "$ID")" = 2 ]

# Eviction: A holds 2 sessions; 5's was used last before 6's and 7's full handshakes.
GW_ADMIN=$A_ADMIN
sc six 6 "$A_UDP"
sc seven 7 "$A_UDP"
check "two more full handshakes on A" bash -c "grep -q '^New, ' '$WORK/six.out' && grep -q '^New, ' '$WORK/seven.out'"
check "A evicted one session (session_cache = 2)" \
  [ "$(wait_metric "$SC{domain=\"a\",outcome=\"evicted\"" -eq 1)" = 1 ]
sc evicted 5 "$A_UDP" -sess_in "$WORK/s5.sess"
check "the evicted session ID leads to a full handshake (New)" grep -q '^New, ' "$WORK/evicted.out"
check "A counts it unknown" [ "$(wait_metric "$SC{domain=\"a\",outcome=\"unknown\"" -eq 1)" = 1 ]
check "A counts it a full handshake (first, six, seven, evicted)" \
  [ "$(wait_metric "$HS{domain=\"a\",kind=\"full\"" -eq 4)" = 4 ]
check "A forwarded its message" delivered "$WORK/a.jsonl" evicted

# ---- mbedTLS ssl_client2 (scripts/build-mbedtls): tickets=0 reconnect=1 -----------------------
MBED=$SRC/.deps/mbedtls/bin/ssl_client2
MBED_FULL=0 # full handshakes ssl_client2 made on A
if [ -x "$MBED" ]; then
  MBED_FULL=1
  ID8=$(field 8 identity)
  timeout 120 "$MBED" server_addr=127.0.0.1 "server_port=$A_UDP" dtls=1 \
    "psk=$(field 8 psk_128)" "psk_identity=$ID8" \
    force_ciphersuite=TLS-PSK-WITH-AES-128-CCM-8 tickets=0 reconnect=1 exchanges=1 \
    hs_timeout=1000-60000 read_timeout=60000 >"$WORK/mbed.out" 2>&1 && rc=0 || rc=$?
  check "mbedtls: ssl_client2 tickets=0 reconnect=1 ends well (exit $rc)" [ "$rc" -eq 0 ]
  check "mbedtls: the reconnection resumed by session ID" \
    [ "$(wait_metric "$HS{domain=\"a\",kind=\"session_id\"" -eq 2)" = 2 ]
  check "mbedtls: one GetPSK for its identity" [ "$(getpsk "$ID8")" = 1 ]
  check "mbedtls: both of its sessions' envelopes carry its identity" \
    [ "$(jq -r --arg id "$ID8" 'select(.psk_identity == $id) | .rot_public_uid' "$WORK/a.jsonl" | grep -c "^$(field 8 ROTPublicUID)\$")" -ge 2 ]
else
  echo "skip: mbedTLS ssl_client2 not built (scripts/build-mbedtls)"
fi

# ---- devsim --resume --no-tickets: OpenSSL clients resume by session ID on every reconnect -----
# One device: A's cache holds 2 sessions, and each reconnect offers the ID of the handshake
# just before it.
GW_ADMIN=$A_ADMIN
before=$(metric "$HS{domain=\"a\",kind=\"session_id\"")
"$BIN/pskgw-devsim" --target "127.0.0.1:$A_UDP" --seed it --devices 1 --messages 4 \
  --reconnect-every 1 --resume --no-tickets --rate 20 --duration 60 --json "$WORK/devsim.json" \
  >"$WORK/devsim.txt" 2>&1 && rc=0 || rc=$?
check "devsim --resume --no-tickets: run ok (exit $rc)" [ "$rc" -eq 0 ]
check "devsim --resume --no-tickets: 3 of 4 handshakes abbreviated (the first is full)" \
  grep -q 'resumption .* 3 of 4 handshakes abbreviated' "$WORK/devsim.txt"
check "devsim: A counts them as session-ID resumptions" \
  [ "$(wait_metric "$HS{domain=\"a\",kind=\"session_id\"" -eq $((before + 3)))" = $((before + 3)) ]
check "devsim: no ticket sealed" [ "$(metric 'pskgw_resumption_tickets_total{domain="a",outcome="sealed"')" = 0 ]

# ---- a reload resizes A's session-ID cache ------------------------------------------------------
GW_ADMIN=$A_ADMIN
session_cache() { # from to: A's session_cache changed by a reload
  sed -i "s/session_cache = $1;/session_cache = $2;/" "$WORK/a.conf"
  reload_gateway "$A_PID" "$WORK/a.log"
}
# The metrics are a snapshot renewed once a second: counts are read from one that shows the
# handshakes before (first, six, seven, evicted, devsim's first, ssl_client2's, then these).
full_seen() { # n: A's metrics show n full handshakes (ssl_client2's added)
  quiet wait_metric "$HS{domain=\"a\",kind=\"full\"" -eq $(($1 + MBED_FULL))
}
sc k5 5 "$A_UDP" -sess_out "$WORK/k5.sess"
sc k6 6 "$A_UDP" -sess_out "$WORK/k6.sess"
check "reload: two full handshakes on A fill its cache (2)" \
  bash -c "grep -q '^New, ' '$WORK/k5.out' && grep -q '^New, ' '$WORK/k6.out'"
check "reload: A forwarded the second one's message" delivered "$WORK/a.jsonl" k6
check "reload: the metrics show both handshakes" full_seen 7
ev=$(metric "$SC{domain=\"a\",outcome=\"evicted\"")
session_cache 2 1
check "reload to session_cache = 1: one session ID dropped (logged)" \
  grep -q 'listener "dtls": session_cache 1: 1 session ID(s) dropped' "$WORK/a.log"
check "reload to session_cache = 1: counted evicted" \
  quiet wait_metric "$SC{domain=\"a\",outcome=\"evicted\"" -eq $((ev + 1))
sc k6again 6 "$A_UDP" -sess_in "$WORK/k6.sess"
check "reload to 1: the most recent session ID still resumes (Reused)" grep -q '^Reused, ' "$WORK/k6again.out"
sc k5again 5 "$A_UDP" -sess_in "$WORK/k5.sess" -sess_out "$WORK/k5b.sess"
check "reload to 1: the least recent one was dropped: a full handshake (New)" \
  grep -q '^New, ' "$WORK/k5again.out"
check "reload to 1: A forwarded its message" delivered "$WORK/a.jsonl" k5again
check "reload to 1: the metrics show its full handshake" full_seen 8
stored=$(metric "$SC{domain=\"a\",outcome=\"stored\"")
session_cache 1 0
check "reload to session_cache = 0: the cache emptied (logged)" \
  grep -q 'listener "dtls": session_cache 0: 1 session ID(s) dropped' "$WORK/a.log"
sc k5off 5 "$A_UDP" -sess_in "$WORK/k5b.sess" -sess_out "$WORK/k5c.sess"
check "reload to 0: no session ID resumes (New)" grep -q '^New, ' "$WORK/k5off.out"
check "reload to 0: A forwarded its message" delivered "$WORK/a.jsonl" k5off
check "reload to 0: the metrics show its full handshake" full_seen 9
check "reload to 0: nothing stored" [ "$(metric "$SC{domain=\"a\",outcome=\"stored\"")" = "$stored" ]
session_cache 0 2
sc k7 7 "$A_UDP" -sess_out "$WORK/k7.sess"
check "reload to 2 again: a full handshake is stored" \
  quiet wait_metric "$SC{domain=\"a\",outcome=\"stored\"" -eq $((stored + 1))
sc k7again 7 "$A_UDP" -sess_in "$WORK/k7.sess"
check "reload to 2 again: its session ID resumes (Reused)" grep -q '^Reused, ' "$WORK/k7again.out"
check "reload: no reload refused" bash -c "! grep -q 'reload refused' '$WORK/a.log'"

check "no key or secret in the logs" \
  bash -c "! grep -Eq '$(field 5 psk_128)|$(printf 'd%.0s' {1..64})' '$WORK/a.log' '$WORK/c.log'"
stop_gateway_checked c
stop_gateway_checked a
finish_peers

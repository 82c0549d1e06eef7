#!/usr/bin/env bash
# Session resumption on any node (issue 12, section 3) with a client nobody here wrote:
# openssl s_client keeps its session (-sess_out) and resumes (-sess_in).
# - DTLS 1.2 and TLS 1.2: a ticket issued by gateway A resumes on gateway B (two gateways of one
#   domain, both read the same ticket_key_file; another domain's: resume_domains.sh): s_client prints "Reused", the envelope carries identity and ROTPublicUID,
#   and the simulator's GetPSK count for that identity does not move.
# - Rotation on B: the new secret first and the old one kept, SIGHUP: the old ticket still
#   resumes; the old secret removed, SIGHUP: it does not (a full handshake, counted).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_peers.sh"

start_sim_tracked --devices 1000
OLD=$(printf 'a%.0s' {1..64})
NEW=$(printf 'b%.0s' {1..64})
echo "$OLD" >"$WORK/tickets.key"
RES="resumption = { ticket_key_file = \"$WORK/tickets.key\"; ticket_lifetime_s = 3600; };"
write_config a "$RES" 'ack = "accepted";'
write_config b "$RES" 'ack = "accepted";'
sed -i 's/^domain = "b";/domain = "a";/' "$WORK/b.conf" # B: another gateway of domain a
start_gateway_args a
A_UDP=$GW_UDP A_TCP=$GW_TCP A_ADMIN=$GW_ADMIN
start_gateway_args b
B_UDP=$GW_UDP B_TCP=$GW_TCP B_ADMIN=$GW_ADMIN B_PID=$GW_PID

"$BIN/pskgw-sim" --seed it --show-device 7 >"$WORK/dev7.json"
ID=$(jq -r .identity "$WORK/dev7.json")
PSK=$(jq -r .psk_128 "$WORK/dev7.json")
UID_=$(jq -r .ROTPublicUID "$WORK/dev7.json")
getpsk() { curl -s "$SIM_URL/_sim/stats" | jq --arg id "$ID" '.by_identity[$id] // 0'; }
mA() { metric "$1" "$A_ADMIN"; }
mB() { metric "$1" "$B_ADMIN"; }

# sc NAME PROTO PORT SESS-ARGS...: one s_client session sending one line (DTLS) or nothing (TLS)
sc() {
  local name=$1 proto=$2 port=$3 msg=
  shift 3
  [ "$proto" = dtls1_2 ] && msg="hello $name"
  printf '%s' "$msg" | timeout 60 openssl s_client "-$proto" -connect "127.0.0.1:$port" \
    -psk_identity "$ID" -psk "$PSK" -cipher PSK-AES128-CCM8 "$@" >"$WORK/$name.out" 2>&1 || true
}

# ---- DTLS: ticket from A resumes on B ----------------------------------------------------------
sc d1 dtls1_2 "$A_UDP" -sess_out "$WORK/d.sess"
check "dtls: first session on A is a full handshake" grep -q '^New, ' "$WORK/d1.out"
check "dtls: A forwarded its message" \
  wait_until bash -c "jq -r '.payload|@base64d' '$WORK/a.jsonl' 2>/dev/null | grep -q 'hello d1'"
check "dtls: one GetPSK for the identity" [ "$(getpsk)" = 1 ]
check "dtls: A sealed a ticket" \
  [ "$(GW_ADMIN=$A_ADMIN wait_metric 'pskgw_resumption_tickets_total{domain="a",outcome="sealed"}' -ge 1)" -ge 1 ]
sc d2 dtls1_2 "$B_UDP" -sess_in "$WORK/d.sess"
check "dtls: the ticket from A resumes on B (s_client: Reused)" grep -q '^Reused, ' "$WORK/d2.out"
check "dtls: B forwarded the resumed session's message" \
  wait_until bash -c "jq -r '.payload|@base64d' '$WORK/b.jsonl' 2>/dev/null | grep -q 'hello d2'"
check "dtls: the envelope carries identity and ROTPublicUID from the ticket" \
  quiet jq -e --arg id "$ID" --arg uid "$UID_" 'select(.transport == "dtls") | .psk_identity == $id and .rot_public_uid == $uid' "$WORK/b.jsonl"
check "dtls: no GetPSK for the resumed session" [ "$(getpsk)" = 1 ]
check "dtls: B counts one ticket resumption" \
  [ "$(wait_metric 'pskgw_resumption_handshakes_total{domain="a",kind="ticket"}' -eq 1)" = 1 ]
check "dtls: B made no full handshake" [ "$(mB 'pskgw_resumption_handshakes_total{domain="a",kind="full"}')" = 0 ]

# ---- TLS: the same over a TCP listener ---------------------------------------------------------
sc t1 tls1_2 "$A_TCP" -sess_out "$WORK/t.sess"
check "tls: first session on A is a full handshake" grep -q '^New, ' "$WORK/t1.out"
sc t2 tls1_2 "$B_TCP" -sess_in "$WORK/t.sess"
check "tls: the ticket from A resumes on B (s_client: Reused)" grep -q '^Reused, ' "$WORK/t2.out"
check "tls: still one GetPSK for the identity" [ "$(getpsk)" = 1 ]

# ---- devsim --resume: OpenSSL clients keep their session and resume on every reconnect -------
"$BIN/pskgw-devsim" --target "127.0.0.1:$A_UDP" --seed it --devices 5 --messages 4 \
  --reconnect-every 1 --resume --rate 20 --duration 60 --json "$WORK/devsim.json" \
  >"$WORK/devsim.txt" 2>&1 && rc=0 || rc=$?
check "devsim --resume: run ok (exit $rc)" [ "$rc" -eq 0 ]
check "devsim --resume: 15 of 20 handshakes abbreviated (the first per device is full)" \
  grep -q 'resumption .* 15 of 20 handshakes abbreviated' "$WORK/devsim.txt"
GW_ADMIN=$A_ADMIN # wait_metric reads GW_ADMIN's
check "devsim --resume: A counts them as ticket resumptions" \
  [ "$(wait_metric 'pskgw_resumption_handshakes_total{domain="a",kind="ticket"}' -eq 15)" = 15 ]
GW_ADMIN=$B_ADMIN

# ---- mbedTLS ssl_client2 (scripts/build-mbedtls): tickets=1 reconnect=1 -----------------------
MBED=$SRC/.deps/mbedtls/bin/ssl_client2
if [ -x "$MBED" ]; then
  "$BIN/pskgw-sim" --seed it --show-device 8 >"$WORK/dev8.json"
  timeout 120 "$MBED" server_addr=127.0.0.1 "server_port=$A_UDP" dtls=1 \
    "psk=$(jq -r .psk_128 "$WORK/dev8.json")" "psk_identity=$(jq -r .identity "$WORK/dev8.json")" \
    force_ciphersuite=TLS-PSK-WITH-AES-128-CCM-8 tickets=1 reconnect=1 exchanges=1 \
    hs_timeout=1000-60000 read_timeout=60000 >"$WORK/mbed.out" 2>&1 && rc=0 || rc=$?
  check "mbedtls: ssl_client2 tickets=1 reconnect=1 ends well (exit $rc)" [ "$rc" -eq 0 ]
  check "mbedtls: the reconnection resumed from the ticket" \
    [ "$(GW_ADMIN=$A_ADMIN wait_metric 'pskgw_resumption_handshakes_total{domain="a",kind="ticket"}' -eq 16)" = 16 ]
else
  echo "skip: mbedTLS ssl_client2 not built (scripts/build-mbedtls)"
fi

# ---- rotation on B -----------------------------------------------------------------------------
GW_PID=$B_PID
printf '%s\n%s\n' "$NEW" "$OLD" >"$WORK/tickets.key"
reload_gateway "$B_PID" "$WORK/b.log"
check "rotation: reload applied" grep -q 'resumption: session tickets under 2 secrets' "$WORK/b.log"
sc r1 dtls1_2 "$B_UDP" -sess_in "$WORK/d.sess"
check "rotation: the old ticket still resumes with the previous secret kept" grep -q '^Reused, ' "$WORK/r1.out"
printf '%s\n' "$NEW" >"$WORK/tickets.key"
reload_gateway "$B_PID" "$WORK/b.log"
sc r2 dtls1_2 "$B_UDP" -sess_in "$WORK/d.sess"
check "rotation: after the old secret is removed the old ticket does not resume" grep -q '^New, ' "$WORK/r2.out"
check "rotation: refused as unknown_key" \
  [ "$(wait_metric 'pskgw_resumption_tickets_total{domain="a",outcome="unknown_key"}' -eq 1)" = 1 ]
check "rotation: counted as a full handshake" \
  [ "$(wait_metric 'pskgw_resumption_handshakes_total{domain="a",kind="full"}' -eq 1)" = 1 ]
check "rotation: the counters went on across the reloads (3 resumptions on B)" \
  [ "$(mB 'pskgw_resumption_handshakes_total{domain="a",kind="ticket"}')" = 3 ]
check "no key or secret in the logs" bash -c "! grep -Eq '$PSK|$OLD|$NEW' '$WORK/a.log' '$WORK/b.log'"
stop_gateway_checked b
stop_gateway_checked a
finish_peers

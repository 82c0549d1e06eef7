#!/usr/bin/env bash
# Forwarding DTLS listeners (issue 14) with clients and servers nobody here wrote:
# - CoAP: libcoap's coap-client with DTLS PSK -> pskgw -> libcoap's coap-server on plain UDP ->
#   the response reaches the client. Confirmable retransmission: the server starts only after
#   the client's first CON request was forwarded and lost (nobody listened: ICMP unreachable);
#   the client's retransmission of the same request is forwarded on the same flow and answered.
# - PROXY v2 per datagram: openssl s_client -dtls1_2 -> pskgw -> a UDP echo server that reads
#   the header on each datagram (pp2peer.py): it sees the device's address, the identity and
#   ROTPublicUID TLVs; its answer comes back to the device; one backend flow per device session.
# - The session's idle timeout ends the backend flow.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_peers.sh"
. "$SRC/tests/support/skip.sh"
missing=0
for t in coap-client-openssl coap-server-notls; do
  command -v "$t" >/dev/null || { pskgw_missing "$t" libcoap3-bin || exit 1; missing=1; }
done
[ "$missing" = 0 ] || exit 77

start_sim_tracked --devices 1000
start_proc echo python3 "$HERE/pp2peer.py" udpecho "$WORK/echo.jsonl"
ECHO=$(wait_for "$WORK/echo.out" '^port [0-9]+' | cut -d' ' -f2)
COAP=$(free_port) # coap-server starts there later

printf 'it-secret' >"$WORK/it.secret"
cat >"$WORK/fu.conf" <<CONF
domain = "fu";
api = { url = "$SIM_URL"; key_id = "it-key"; secret_file = "it.secret"; timeout_ms = 2000; };
listeners = (
  { name = "coap"; proto = "udp"; address = "127.0.0.1"; port = 0; forward = "udp://127.0.0.1:$COAP"; },
  { name = "echo"; proto = "udp"; address = "127.0.0.1"; port = 0; forward = "udp://127.0.0.1:$ECHO";
    proxy_protocol = true; } );
limits = { idle_timeout_s = 5; };
sinks = ( { type = "file"; path = "$WORK/fu.jsonl"; } );
admin = { address = "127.0.0.1"; port = 0; };
CONF
"$BIN/pskgw" --config "$WORK/fu.conf" >"$WORK/fu.stdout" 2>"$WORK/fu.log" &
GW_PID=$!
track "pskgw fu" "$GW_PID" "$WORK/fu.stdout" "$WORK/fu.log"
PEER_PID[fu]=$GW_PID
PEER_ORDER+=(fu)
port_of() { WAIT_PID=$GW_PID wait_for "$WORK/fu.log" "listener \"$1\" on udp 127\.0\.0\.1:[0-9]+" | grep -Eo '[0-9]+$'; }
P_COAP=$(port_of coap)
P_ECHO=$(port_of echo)
GW_ADMIN=$(WAIT_PID=$GW_PID wait_for "$WORK/fu.log" 'http://127\.0\.0\.1:[0-9]+/metrics')
M() { metric "$1{domain=\"fu\",listener=\"$2\"${3:-}}"; }

# libcoap 4.3.1 takes the key as raw bytes on the command line: a device whose key has no NUL
# (impossible in an argument) and no newline (which $(...) would drop).
for n in $(seq 1 64); do
  "$BIN/pskgw-sim" --seed it --show-device "$n" >"$WORK/dev.json"
  PSK=$(jq -r .psk_128 "$WORK/dev.json")
  if ! grep -Eq '^(..)*(00|0A)' <<<"$PSK"; then break; fi
done
ID=$(jq -r .identity "$WORK/dev.json")
UID_=$(jq -r .ROTPublicUID "$WORK/dev.json")
KEY=$(printf "$(sed 's/../\\x&/g' <<<"$PSK")")

# ---- CoAP, with a lost first request -------------------------------------------------------------
start_proc client coap-client-openssl -m get -B 60 -u "$ID" -k "$KEY" "coaps://127.0.0.1:$P_COAP/"
check "coap: the first CON request was forwarded" \
  [ "$(wait_metric 'pskgw_forward_datagrams_to_backend_total{domain="fu",listener="coap"}' -ge 1)" -ge 1 ]
check "coap: and lost (nobody listened: ICMP port unreachable, counted as refused)" \
  [ "$(wait_metric 'pskgw_forward_connect_failures_total{domain="fu",listener="coap",reason="refused"' -ge 1)" -ge 1 ]
start_proc server coap-server-notls -A 127.0.0.1 -p "$COAP" -v 7
peer_wait "${PEER_PID[client]}" 90 && rc=0 || rc=$?
unset "PEER_PID[client]"
check "coap: coap-client got its response (exit $rc)" [ "$rc" -eq 0 ]
check "coap: the response is coap-server's (the libcoap banner)" grep -q 'libcoap' "$WORK/client.out"
check "coap: the retransmitted request was forwarded too" \
  [ "$(wait_metric 'pskgw_forward_datagrams_to_backend_total{domain="fu",listener="coap"}' -ge 2)" -ge 2 ]
check "coap: over the same flow (one backend flow opened)" [ "$(M pskgw_forward_sessions_total coap)" = 1 ]
check "coap: the response was sent to the device" \
  [ "$(wait_metric 'pskgw_forward_datagrams_from_backend_total{domain="fu",listener="coap"}' -ge 1)" -ge 1 ]
check "coap: the flow ended with the session" \
  [ "$(wait_metric 'pskgw_forward_sessions_active{domain="fu",listener="coap"}' -eq 0)" = 0 ]

# ---- PROXY v2 per datagram, idle timeout ---------------------------------------------------------
mkfifo "$WORK/ossl.in"
exec 3<>"$WORK/ossl.in"
PROC_STDIN=$WORK/ossl.in start_proc ossl openssl s_client -dtls1_2 -connect "127.0.0.1:$P_ECHO" \
  -psk_identity "$ID" -psk "$PSK" -cipher PSK-AES128-CCM8 -nocommands
wait_for "$WORK/ossl.out" 'Cipher is PSK-AES128-CCM8' 20 >/dev/null
printf 'ping one\n' >&3
check "echo: the answer came back to the device" wait_for "$WORK/ossl.out" 'PING ONE' 20
printf 'ping two\n' >&3
check "echo: a second datagram too" wait_for "$WORK/ossl.out" 'PING TWO' 20
check "echo: each datagram carried a PROXY v2 header (dgram, the device's address, TLVs)" bash -c "
  [ \$(jq -c --arg id '$ID' --arg uid '$UID_' --argjson p $P_ECHO \
    'select(.transport == \"dgram\" and .src == \"127.0.0.1\" and .dst_port == \$p and .identity == \$id and .rot_uid == \$uid)' \
    '$WORK/echo.jsonl' | wc -l) -eq 2 ]"
check "echo: one flow: both datagrams came from one backend port" \
  [ "$(jq -r .from_port "$WORK/echo.jsonl" | sort -u | wc -l)" = 1 ]
check "echo: one backend flow open" [ "$(wait_metric 'pskgw_forward_sessions_active{domain="fu",listener="echo"}' -eq 1)" = 1 ]
check "idle: the session's idle timeout ends the backend flow" \
  [ "$(wait_metric 'pskgw_forward_sessions_active{domain="fu",listener="echo"}' -eq 0)" = 0 ]
check "idle: counted as an idle close" \
  [ "$(M pskgw_listener_idle_closes_total echo)" -ge 1 ]
exec 3>&-
stop_proc "${PEER_PID[ossl]}" "0,1,143" || true
unset "PEER_PID[ossl]"
check "no key in the log" bash -c "! grep -q '$PSK' '$WORK/fu.log'"
stop_gateway_checked fu
finish_peers

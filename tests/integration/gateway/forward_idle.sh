#!/usr/bin/env bash
# The idle timeout of a forwarding TLS session counts activity both ways (issue 14): a backend
# that streams to a silent device (an MQTT broker's PUBLISHes, its keep-alive answers) keeps the
# session up. The backend writes a line every 200 ms for 3 s, three times idle_timeout_s = 1, to a
# device that sends nothing after its handshake: the device receives all 15 lines and the end is
# the backend's FIN (close_notify), not the idle timeout. Before the fix the session ended after
# about 1 s with some 5 lines. A silent backend still lets the idle timeout end the session.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_peers.sh"

start_sim_tracked --devices 1000
start_proc ticker python3 "$HERE/pp2peer.py" ticker "$WORK/ticker.jsonl" 15
TICK=$(wait_for "$WORK/ticker.out" '^port [0-9]+' | cut -d' ' -f2)
start_proc stall python3 "$HERE/pp2peer.py" stall "$WORK/stall.jsonl"
STALL=$(wait_for "$WORK/stall.out" '^port [0-9]+' | cut -d' ' -f2)

printf 'it-secret' >"$WORK/it.secret"
cat >"$WORK/fi.conf" <<CONF
domain = "fi";
api = { url = "$SIM_URL"; key_id = "it-key"; secret_file = "it.secret"; timeout_ms = 2000; };
listeners = (
  { name = "tick"; proto = "tcp"; address = "127.0.0.1"; port = 0; forward = "tcp://127.0.0.1:$TICK"; },
  { name = "silent"; proto = "tcp"; address = "127.0.0.1"; port = 0; forward = "tcp://127.0.0.1:$STALL";
    proxy_protocol = true; } );
limits = { idle_timeout_s = 1; };
sinks = ( { type = "file"; path = "$WORK/fi.jsonl"; } );
admin = { address = "127.0.0.1"; port = 0; };
CONF
"$BIN/pskgw" --config "$WORK/fi.conf" >"$WORK/fi.stdout" 2>"$WORK/fi.log" &
GW_PID=$!
track "pskgw fi" "$GW_PID" "$WORK/fi.stdout" "$WORK/fi.log"
PEER_PID[fi]=$GW_PID
PEER_ORDER+=(fi)
port_of() { WAIT_PID=$GW_PID wait_for "$WORK/fi.log" "listener \"$1\" on tcp 127\.0\.0\.1:[0-9]+" | grep -Eo '[0-9]+$'; }
P_TICK=$(port_of tick)
P_SILENT=$(port_of silent)
GW_ADMIN=$(WAIT_PID=$GW_PID wait_for "$WORK/fi.log" 'http://127\.0\.0\.1:[0-9]+/metrics')
M() { metric "$1{domain=\"fi\",listener=\"$2\"${3:-}}"; }

"$BIN/pskgw-sim" --seed it --show-device 7 >"$WORK/dev7.json"
ID=$(jq -r .identity "$WORK/dev7.json")
PSK=$(jq -r .psk_128 "$WORK/dev7.json")

# -quiet implies -ign_eof: the device sends nothing after the handshake and stays until the
# gateway ends the session; timeout 60 only guards against a hang
timeout 60 openssl s_client -connect "127.0.0.1:$P_TICK" -tls1_2 -psk_identity "$ID" -psk "$PSK" \
  -cipher PSK-AES128-GCM-SHA256 -quiet </dev/null >"$WORK/tick.out" 2>"$WORK/tick.err" && rc=0 || rc=$?
check "streaming backend: the device session ended cleanly (exit $rc)" [ "$rc" -eq 0 ]
check "streaming backend: the silent device received all 15 lines (got $(grep -c '^tick' "$WORK/tick.out"))" \
  grep -qx 'tick 15' "$WORK/tick.out"
check "streaming backend: the backend wrote them all" wait_for "$WORK/ticker.jsonl" '"ticked": 15'
check "streaming backend: the end was the backend's FIN" \
  [ "$(wait_metric 'pskgw_forward_backend_closes_total{domain="fi",listener="tick"}' -eq 1)" = 1 ]
check "streaming backend: no idle close" [ "$(M pskgw_listener_idle_closes_total tick)" = 0 ]

timeout 60 openssl s_client -connect "127.0.0.1:$P_SILENT" -tls1_2 -psk_identity "$ID" -psk "$PSK" \
  -cipher PSK-AES128-GCM-SHA256 -quiet </dev/null >"$WORK/silent.out" 2>"$WORK/silent.err" && rc=0 || rc=$?
check "silent backend: the device session ended (exit $rc, not the guard's 124)" [ "$rc" -ne 124 ]
check "silent backend: by the idle timeout" \
  [ "$(wait_metric 'pskgw_listener_idle_closes_total{domain="fi",listener="silent"}' -eq 1)" = 1 ]
check "silent backend: the flow is closed" \
  [ "$(wait_metric 'pskgw_forward_sessions_active{domain="fi",listener="silent"}' -eq 0)" = 0 ]
stop_gateway_checked fi
finish_peers

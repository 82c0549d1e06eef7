#!/usr/bin/env bash
# Forwarding TLS listeners (issue 14) with clients and servers nobody here wrote:
# - MQTT: mosquitto_pub --psk (a real MQTT client speaking TLS-PSK, as a module's MQTT client does)
#   -> pskgw -> a plain mosquitto broker -> mosquitto_sub gets the message; QoS 1: mosquitto_pub
#   exits 0 only once the PUBACK came back through pskgw.
# - HTTP: openssl s_client -psk sends a request (as AT+UHTTPC does) -> pskgw -> an HTTP server
#   that reads the PROXY v2 header (pp2peer.py) -> the response comes back intact; the server saw
#   the device's address, the identity and ROTPublicUID TLVs; its FIN became close_notify.
# - A backend nobody listens on: the device session ends, counted as connect failure "refused".
# - Backpressure: a backend that stops reading: pskgw stops reading the device (device_pauses),
#   the bytes it holds stay bounded (buffered_bytes), the device's writes block.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_peers.sh"
. "$SRC/tests/support/skip.sh"
missing=0
for t in mosquitto_pub mosquitto_sub; do
  command -v "$t" >/dev/null || { pskgw_missing "$t" mosquitto-clients || exit 1; missing=1; }
done
[ "$missing" = 0 ] || exit 77

start_sim_tracked --devices 1000
start_mosquitto broker
start_proc httpd python3 "$HERE/pp2peer.py" http "$WORK/httpd.jsonl"
HTTPD=$(wait_for "$WORK/httpd.out" '^port [0-9]+' | cut -d' ' -f2)
start_proc stall python3 "$HERE/pp2peer.py" stall "$WORK/stall.jsonl"
STALL=$(wait_for "$WORK/stall.out" '^port [0-9]+' | cut -d' ' -f2)
start_proc tcpecho python3 "$HERE/pp2peer.py" tcpplain "$WORK/tcpecho.jsonl"
ECHO=$(wait_for "$WORK/tcpecho.out" '^port [0-9]+' | cut -d' ' -f2)
start_proc flood python3 "$HERE/pp2peer.py" flood "$WORK/flood.jsonl"
FLOOD=$(wait_for "$WORK/flood.out" '^port [0-9]+' | cut -d' ' -f2)
reserve_ports tcp # bound for the whole script, never listening: connections are refused
DEAD=${PORTS[0]}
start_proc full python3 "$HERE/pp2peer.py" full "$WORK/full.jsonl"
FULL=$(wait_for "$WORK/full.out" '^port [0-9]+' | cut -d' ' -f2)

printf 'it-secret' >"$WORK/it.secret"
cat >"$WORK/fw.conf" <<CONF
domain = "fw";
api = { url = "$SIM_URL"; key_id = "it-key"; secret_file = "it.secret"; timeout_ms = 2000; };
listeners = (
  { name = "mqtt"; proto = "tcp"; address = "127.0.0.1"; port = 0; forward = "tcp://127.0.0.1:$MQTT_PORT"; },
  { name = "http"; proto = "tcp"; address = "127.0.0.1"; port = 0; forward = "tcp://127.0.0.1:$HTTPD";
    proxy_protocol = true; },
  { name = "echo"; proto = "tcp"; address = "127.0.0.1"; port = 0; forward = "tcp://127.0.0.1:$ECHO"; },
  { name = "dead"; proto = "tcp"; address = "127.0.0.1"; port = 0; forward = "tcp://127.0.0.1:$DEAD"; },
  { name = "slow"; proto = "tcp"; address = "127.0.0.1"; port = 0; forward = "tcp://127.0.0.1:$FULL";
    forward_connect_timeout_ms = 300; },
  { name = "stall"; proto = "tcp"; address = "127.0.0.1"; port = 0; forward = "tcp://127.0.0.1:$STALL";
    proxy_protocol = true; forward_buffer_bytes = 16384; },
  { name = "flood"; proto = "tcp"; address = "127.0.0.1"; port = 0; forward = "tcp://127.0.0.1:$FLOOD";
    proxy_protocol = true; forward_buffer_bytes = 16384; } );
sinks = ( { type = "file"; path = "$WORK/fw.jsonl"; } );
admin = { address = "127.0.0.1"; port = 0; };
CONF
"$BIN/pskgw" --config "$WORK/fw.conf" --check-config >"$WORK/check.out" 2>&1 && rc=0 || rc=$?
check "--check-config accepts the forwarding listeners (exit $rc)" [ "$rc" -eq 0 ]
"$BIN/pskgw" --config "$WORK/fw.conf" >"$WORK/fw.stdout" 2>"$WORK/fw.log" &
GW_PID=$!
track "pskgw fw" "$GW_PID" "$WORK/fw.stdout" "$WORK/fw.log"
PEER_PID[fw]=$GW_PID
PEER_ORDER+=(fw)
port_of() { WAIT_PID=$GW_PID wait_for "$WORK/fw.log" "listener \"$1\" on tcp 127\.0\.0\.1:[0-9]+" | grep -Eo '[0-9]+$'; }
P_MQTT=$(port_of mqtt)
P_HTTP=$(port_of http)
P_DEAD=$(port_of dead)
P_ECHO=$(port_of echo)
P_SLOW=$(port_of slow)
P_STALL=$(port_of stall)
P_FLOOD=$(port_of flood)
GW_ADMIN=$(WAIT_PID=$GW_PID wait_for "$WORK/fw.log" 'http://127\.0\.0\.1:[0-9]+/metrics')
M() { metric "$1{domain=\"fw\",listener=\"$2\"${3:-}}"; }

"$BIN/pskgw-sim" --seed it --show-device 7 >"$WORK/dev7.json"
ID=$(jq -r .identity "$WORK/dev7.json")
PSK=$(jq -r .psk_128 "$WORK/dev7.json")
UID_=$(jq -r .ROTPublicUID "$WORK/dev7.json")

# ---- MQTT ---------------------------------------------------------------------------------------
timeout 60 mosquitto_pub -h 127.0.0.1 -p "$P_MQTT" --psk "$PSK" --psk-identity "$ID" -i dev7 \
  -t fw/dev7 -m "hello from dev7" -q 1 -r >"$WORK/pub.out" 2>&1 && rc=0 || rc=$?
check "mqtt: mosquitto_pub QoS 1 through pskgw exits 0: PUBACK came back (exit $rc)" [ "$rc" -eq 0 ]
timeout 60 mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -t fw/dev7 -C 1 -W 30 >"$WORK/sub.out" 2>&1 && rc=0 || rc=$?
check "mqtt: mosquitto_sub got the message from the broker (exit $rc)" grep -qx 'hello from dev7' "$WORK/sub.out"
check "mqtt: the broker saw client dev7 connect" grep -q 'as dev7' "$WORK/broker.err"
check "mqtt: one backend flow opened" [ "$(wait_metric 'pskgw_forward_sessions_total{domain="fw",listener="mqtt"}' -eq 1)" = 1 ]
check "mqtt: first-byte latency observed (CONNACK)" \
  [ "$(wait_metric 'pskgw_forward_first_byte_seconds_count{domain="fw",listener="mqtt"}' -ge 1)" -ge 1 ]
check "mqtt: bytes counted both ways" bash -c "[ $(M pskgw_forward_bytes_to_backend_total mqtt) -gt 0 ] && [ $(M pskgw_forward_bytes_from_backend_total mqtt) -gt 0 ]"
check "mqtt: the flow is closed after the client left" [ "$(wait_metric 'pskgw_forward_sessions_active{domain="fw",listener="mqtt"}' -eq 0)" = 0 ]

# ---- HTTP with PROXY v2 -------------------------------------------------------------------------
printf 'GET /status HTTP/1.1\r\nHost: api.example\r\n\r\n' |
  timeout 60 openssl s_client -connect "127.0.0.1:$P_HTTP" -tls1_2 -psk_identity "$ID" -psk "$PSK" \
    -cipher PSK-AES128-GCM-SHA256 -quiet >"$WORK/http.out" 2>"$WORK/http.err" && rc=0 || rc=$?
check "http: s_client ended when the server closed (exit $rc)" [ "$rc" -eq 0 ]
check "http: the response came back intact" bash -c "
  grep -q '^HTTP/1.1 200 OK' '$WORK/http.out' &&
  grep -qx 'identity=$ID rot_uid=$UID_ request=GET /status HTTP/1.1' <(tr -d '\r' <'$WORK/http.out')"
check "http: the server read a PROXY v2 header (stream, from 127.0.0.1 to the listener's port)" \
  jq -e --argjson p "$P_HTTP" 'select(.transport == "stream" and .command == "proxy" and .src == "127.0.0.1" and .dst_port == $p)' "$WORK/httpd.jsonl"
check "http: its TLVs carry the identity and ROTPublicUID" \
  jq -e --arg id "$ID" --arg uid "$UID_" 'select(.identity == $id and .rot_uid == $uid)' "$WORK/httpd.jsonl"
check "http: the backend's FIN passed as close_notify" \
  [ "$(wait_metric 'pskgw_forward_backend_closes_total{domain="fw",listener="http"}' -eq 1)" = 1 ]

# ---- the device's close_notify becomes the backend's FIN ----------------------------------------
# without -ign_eof, s_client sends close_notify at the end of its input; the echo sees a FIN
# after the 11 bytes (and no reset)
printf 'hello echo\n' | timeout 60 openssl s_client -connect "127.0.0.1:$P_ECHO" -tls1_2 \
  -psk_identity "$ID" -psk "$PSK" -cipher PSK-AES128-GCM-SHA256 -no_ign_eof >"$WORK/echo.out" 2>&1 && rc=0 || rc=$?
check "close_notify: s_client ended (exit $rc)" [ "$rc" -eq 0 ]
check "close_notify: the backend got a FIN after the device's 11 bytes" \
  wait_for "$WORK/tcpecho.jsonl" '"eof": true, "bytes": 11'
check "close_notify: the flow is closed" \
  [ "$(wait_metric 'pskgw_forward_sessions_active{domain="fw",listener="echo"}' -eq 0)" = 0 ]

# ---- connect failure ----------------------------------------------------------------------------
printf 'x' | timeout 60 openssl s_client -connect "127.0.0.1:$P_DEAD" -tls1_2 -psk_identity "$ID" \
  -psk "$PSK" -cipher PSK-AES128-GCM-SHA256 -quiet >"$WORK/dead.out" 2>&1 && rc=0 || rc=$?
check "dead backend: the device session ended (s_client returned, exit $rc)" [ "$rc" -ne 124 ]
check "dead backend: counted as a connect failure, reason refused" \
  [ "$(wait_metric 'pskgw_forward_connect_failures_total{domain="fw",listener="dead",reason="refused"' -eq 1)" = 1 ]
check "dead backend: logged with its reason" grep -q 'backend connect failed (refused' "$WORK/fw.log"

printf 'x' | timeout 60 openssl s_client -connect "127.0.0.1:$P_SLOW" -tls1_2 -psk_identity "$ID" \
  -psk "$PSK" -cipher PSK-AES128-GCM-SHA256 -quiet >"$WORK/slow.out" 2>&1 && rc=0 || rc=$?
check "unanswered connect: the device session ended (s_client returned, exit $rc)" [ "$rc" -ne 124 ]
check "unanswered connect: counted as a connect failure, reason timeout" \
  [ "$(wait_metric 'pskgw_forward_connect_failures_total{domain="fw",listener="slow",reason="timeout"' -eq 1)" = 1 ]
check "unanswered connect: the flow is closed" \
  [ "$(wait_metric 'pskgw_forward_sessions_active{domain="fw",listener="slow"}' -eq 0)" = 0 ]

# ---- backpressure -------------------------------------------------------------------------------
# s_client is given 64 MiB to write (more than the loopback socket buffers of both ends hold);
# the backend reads nothing after the PROXY header. Memory is judged by pskgw's RSS growth while
# the 64 MiB push on it (the process's own size differs between builds: ASan's shadow memory).
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$GW_PID/status"; }
rss0=$(rss_kb)
mkfifo "$WORK/bp.in"
exec 3<>"$WORK/bp.in"
PROC_STDIN=$WORK/bp.in start_proc bp openssl s_client -connect "127.0.0.1:$P_STALL" -tls1_2 \
  -psk_identity "$ID" -psk "$PSK" -cipher PSK-AES128-GCM-SHA256 -quiet
wait_for "$WORK/stall.jsonl" 'stalled' >/dev/null
head -c 67108864 /dev/zero >&3 &
WRITER=$!
check "backpressure: pskgw stopped reading the device" \
  [ "$(wait_metric 'pskgw_forward_device_pauses_total{domain="fw",listener="stall"}' -ge 1)" -ge 1 ]
held=$(M pskgw_forward_buffered_bytes stall)
# bound: forward_buffer_bytes plus one read of the device (16 KiB) plus the PROXY header
check "backpressure: bytes held for the backend stay bounded ($held <= 32768 + 256)" [ "$held" -le 33024 ]
check "backpressure: the device's writer is blocked (its 64 MiB did not all leave)" running "$WRITER"
grow=$(($(rss_kb) - rss0))
check "backpressure: pskgw's RSS grew by less than half the 64 MiB written ($grow kB)" [ "$grow" -lt 32768 ]
kill "$WRITER" 2>/dev/null || true
wait "$WRITER" 2>/dev/null || true
exec 3>&-
# openssl s_client ends on SIGTERM with 143 (it has no other way out while it writes)
stop_proc "${PEER_PID[bp]}" "0,143" || true
unset "PEER_PID[bp]"
stop_peer stall
check "backpressure: the flow is closed once both ends are gone" \
  [ "$(wait_metric 'pskgw_forward_sessions_active{domain="fw",listener="stall"}' -eq 0)" = 0 ]
# the other way: the backend writes 64 MiB, the device reads nothing (s_client's output is a
# fifo nobody reads, so it stops reading its socket)
rss0=$(rss_kb)
mkfifo "$WORK/fl.in" "$WORK/fl.outfifo"
exec 4<>"$WORK/fl.in" 5<>"$WORK/fl.outfifo"
openssl s_client -connect "127.0.0.1:$P_FLOOD" -tls1_2 -psk_identity "$ID" -psk "$PSK" \
  -cipher PSK-AES128-GCM-SHA256 -quiet <"$WORK/fl.in" >"$WORK/fl.outfifo" 2>"$WORK/fl.err" &
FL=$!
track fl "$FL" "$WORK/fl.err"
wait_for "$WORK/flood.jsonl" 'flooding' >/dev/null
check "backpressure (backend to device): pskgw stopped reading the backend" \
  [ "$(wait_metric 'pskgw_forward_backend_pauses_total{domain="fw",listener="flood"}' -ge 1)" -ge 1 ]
check "backpressure (backend to device): the backend's 64 MiB did not all leave" \
  bash -c "! grep -q flooded '$WORK/flood.jsonl'"
grow=$(($(rss_kb) - rss0))
check "backpressure (backend to device): pskgw's RSS grew by less than half the 64 MiB ($grow kB)" \
  [ "$grow" -lt 32768 ]
stop_proc "$FL" "0,143" || true
exec 4>&- 5>&-
stop_peer flood
check "no key in the log" bash -c "! grep -q '$PSK' '$WORK/fw.log'"

# ---- a stop with a flow open: the device gets close_notify, the backend a FIN, nothing leaks ----
mkfifo "$WORK/open.in"
exec 6<>"$WORK/open.in"
PROC_STDIN=$WORK/open.in start_proc open openssl s_client -connect "127.0.0.1:$P_ECHO" -tls1_2 \
  -psk_identity "$ID" -psk "$PSK" -cipher PSK-AES128-GCM-SHA256 -quiet
printf 'still here\n' >&6
wait_for "$WORK/open.out" 'still here' >/dev/null
check "stop: one flow open" [ "$(wait_metric 'pskgw_forward_sessions_active{domain="fw",listener="echo"}' -eq 1)" = 1 ]
stop_gateway_checked fw
check "stop: the backend got a FIN after this session's 11 bytes (the second FIN at the echo)" \
  wait_until bash -c "[ \$(grep -c '\"eof\": true, \"bytes\": 11' '$WORK/tcpecho.jsonl') = 2 ]"
peer_wait "${PEER_PID[open]}" 30 && rc=0 || rc=$?
unset "PEER_PID[open]"
check "stop: the device's s_client ended on the close_notify (exit $rc)" [ "$rc" -eq 0 ]
exec 6>&-
finish_peers

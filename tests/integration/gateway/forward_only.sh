#!/usr/bin/env bash
# A domain that only forwards (issue 14) has no sinks: --check-config accepts it, it starts,
# forwards, reloads (a listener added, then a reload that would add sinks is refused and the
# old config kept), and /ready judges it by its listeners and backends: no sink part, a
# backend/<listener> part per forwarding listener, and a backend that refuses connections makes
# its part (and /ready) fail naming the reason.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_peers.sh"

start_sim_tracked --devices 1000
start_proc tcpecho python3 "$HERE/pp2peer.py" tcpplain "$WORK/tcpecho.jsonl"
ECHO=$(wait_for "$WORK/tcpecho.out" '^port [0-9]+' | cut -d' ' -f2)
DEAD=$(free_port) # nobody listens there

printf 'it-secret' >"$WORK/it.secret"
cat >"$WORK/fo.conf" <<CONF
domain = "fo";
api = { url = "$SIM_URL"; key_id = "it-key"; secret_file = "it.secret"; timeout_ms = 2000; };
listeners = (
  { name = "echo"; proto = "tcp"; address = "127.0.0.1"; port = 0; forward = "tcp://127.0.0.1:$ECHO"; },
  { name = "dead"; proto = "tcp"; address = "127.0.0.1"; port = 0; forward = "tcp://127.0.0.1:$DEAD"; } );
limits = { idle_timeout_s = 2; };
admin = { address = "127.0.0.1"; port = 0; };
CONF
"$BIN/pskgw" --config "$WORK/fo.conf" --check-config >"$WORK/check.out" 2>&1 && rc=0 || rc=$?
check "--check-config accepts a forward-only domain without sinks (exit $rc)" [ "$rc" -eq 0 ]
sed 's#^  { name = "dead".*#  { name = "plain"; proto = "tcp"; address = "127.0.0.1"; port = 0; } );#' \
  "$WORK/fo.conf" >"$WORK/bad.conf"
"$BIN/pskgw" --config "$WORK/bad.conf" --check-config >"$WORK/bad.out" 2>&1 && rc=0 || rc=$?
check "--check-config refuses a listener that does not forward without sinks (exit $rc)" [ "$rc" -ne 0 ]
check "--check-config names the file, line and listener" \
  grep -Eq 'bad\.conf:5: sinks: missing required key: listeners\[1\] \("plain"\) does not forward' "$WORK/bad.out"

"$BIN/pskgw" --config "$WORK/fo.conf" >"$WORK/fo.stdout" 2>"$WORK/fo.log" &
GW_PID=$!
track "pskgw fo" "$GW_PID" "$WORK/fo.stdout" "$WORK/fo.log"
PEER_PID[fo]=$GW_PID
PEER_ORDER+=(fo)
port_of() { # name [nth line]: the port of the listener's nth "on tcp" line
  WAIT_PID=$GW_PID wait_until bash -c "[ \$(grep -c 'listener \"$1\" on tcp' '$WORK/fo.log') -ge ${2:-1} ]" &&
    grep -Eo "listener \"$1\" on tcp 127\.0\.0\.1:[0-9]+" "$WORK/fo.log" | sed -n "${2:-1}p" | grep -Eo '[0-9]+$'
}
P_ECHO=$(port_of echo)
P_DEAD=$(port_of dead)
GW_ADMIN=$(WAIT_PID=$GW_PID wait_for "$WORK/fo.log" 'http://127\.0\.0\.1:[0-9]+/metrics')
base() { echo "${GW_ADMIN%/metrics}"; }
code_of() { curl -s -o "$WORK/last.body" -w '%{http_code}' "$(base)$1"; }
ready_ok() { [ "$(code_of /ready)" = 200 ] && jq -e '.ready == true and (.failing | length) == 0' "$WORK/last.body" >/dev/null; }
part_is() { # part ready(true|false) detail-regex
  code_of /ready >/dev/null &&
    jq -e --arg p "$1" --argjson ok "$2" --arg r "$3" \
      '.parts | any(.domain == "fo" and .part == $p and .ready == $ok and (.detail | test($r)))' \
      "$WORK/last.body" >/dev/null
}

"$BIN/pskgw-sim" --seed it --show-device 7 >"$WORK/dev7.json"
ID=$(jq -r .identity "$WORK/dev7.json")
PSK=$(jq -r .psk_128 "$WORK/dev7.json")
device() { # port input -> its output: the device stays until the gateway ends its session (the
  # echo never closes: the idle timeout does, 2 s after the echo came back)
  printf '%s' "$2" | timeout 60 openssl s_client -connect "127.0.0.1:$1" -tls1_2 -psk_identity "$ID" \
    -psk "$PSK" -cipher PSK-AES128-GCM-SHA256 -quiet 2>>"$WORK/device.err"
}

check "/ready: ready with no sinks (200, nothing failing)" wait_until ready_ok
check "/ready: no sink part" jq -e '[.parts[] | select(.part | startswith("sink/"))] | length == 0' "$WORK/last.body"
check "/ready: backend/echo listed, not used yet" part_is backend/echo true 'not used yet'
check "/ready: backend/dead listed ready before anyone used it" part_is backend/dead true 'not used yet'

# ---- forwarding -----------------------------------------------------------------------------------
check "forward: the echo answers through the forward-only domain" \
  [ "$(device $P_ECHO 'hello fo')" = 'hello fo' ]
check "forward: /ready says backend/echo connected" wait_until part_is backend/echo true connected

# ---- reload: a listener added; then adding sinks is refused -----------------------------------------
ECHO_LINE=$(grep '{ name = "echo"' "$WORK/fo.conf")
sed -i "s#^  { name = \"dead\"#${ECHO_LINE/echo\"/echo2\"}\n&#" "$WORK/fo.conf"
kill -HUP "$GW_PID"
check "reload: done" wait_for "$WORK/fo.log" 'reload done'
P_ECHO2=$(port_of echo2)
check "reload: the added listener forwards" [ "$(device $P_ECHO2 'hello again')" = 'hello again' ]
check "reload: the kept listener still forwards" [ "$(device $P_ECHO 'still here')" = 'still here' ]
printf 'sinks = ( { type = "file"; path = "%s"; } );\n' "$WORK/fo.jsonl" >>"$WORK/fo.conf"
kill -HUP "$GW_PID"
check "reload adding sinks: refused, the old config kept" \
  wait_for "$WORK/fo.log" 'domain "fo": not reloaded: a reload cannot add sinks'
check "reload adding sinks: the domain still forwards" \
  [ "$(device $P_ECHO2 'after refusal')" = 'after refusal' ]

# ---- a backend that refuses connections ----------------------------------------------------------
# readiness holds a failure for a while (10 s): each poll lets a device try again first, so a
# slow poll cannot miss the window
dead_fails() {
  device "$P_DEAD" 'x' >/dev/null || true
  [ "$(code_of /ready)" = 503 ] &&
    jq -e '.failing | any(.domain == "fo" and .part == "backend/dead" and (.reason | test("refused")))' \
      "$WORK/last.body" >/dev/null &&
    curl -s "$GW_ADMIN" | grep -q '^pskgw_ready_part{domain="fo",part="backend/dead"} 0'
}
check "dead backend: /ready 503 naming backend/dead (connect failed: refused), its part metric 0" \
  wait_until dead_fails
check "dead backend: counted as refused" \
  [ "$(wait_metric 'pskgw_forward_connect_failures_total{domain="fo",listener="dead",reason="refused"}' -ge 1)" -ge 1 ]
check "dead backend: the other backends stay ready" part_is backend/echo true connected
stop_gateway_checked fo
finish_peers

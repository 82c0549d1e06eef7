#!/usr/bin/env bash
# The admin endpoint's address on reload (issue 11): a changed admin.port that cannot be bound
# (the gateway's own TLS listener holds it) leaves the endpoint where it was, logged; a changed
# admin.address (127.0.0.2, port 0) moves it there: the new address answers /metrics, /ready
# and the /admin/ routes with the current state, the old address refuses connections, and the
# sessions and sinks are untouched.
. "$(dirname "$0")/lib.sh"

start_sim --devices 1000
write_config ra '' ''
start_gateway ra
reloads() { grep -c 'reload done\|reload refused' "$WORK/ra.log" || true; }
hup() { # waits for the reload's end in the log (done or refused)
  local n
  n=$(reloads)
  kill -HUP "$GW_PID"
  wait_until bash -c "[ \$(grep -c 'reload done\|reload refused' '$WORK/ra.log') -gt $n ]"
}
old=$GW_ADMIN
check "the admin endpoint answers on its first address" curl -sf -o /dev/null "$old"

# a port that cannot be bound: the endpoint stays
sed -i "s|^admin = { address = \"127.0.0.1\"; port = 0; };|admin = { address = \"127.0.0.1\"; port = $GW_TCP; };|" \
  "$WORK/ra.conf"
hup
check "a failed move is logged with the address kept" grep -q \
  "admin endpoint: not moved to 127.0.0.1:$GW_TCP: address in use (or not bindable); it stays on $old" \
  "$WORK/ra.log"
check "the reload itself was applied" bash -c "! grep -q 'reload refused' '$WORK/ra.log'"
check "no restart warning for the admin address" \
  bash -c "! grep -q 'admin settings changed: not applied' '$WORK/ra.log'"
check "the endpoint still answers on its first address" \
  wait_until metric_is 'pskgw_config_reloads_total{result="applied"}' -eq 1 "$old"

# another address: the endpoint moves
sed -i "s|^admin = { address = \"127.0.0.1\"; port = $GW_TCP; };|admin = { address = \"127.0.0.2\"; port = 0; };|" \
  "$WORK/ra.conf"
hup
new=$(wait_for "$WORK/ra.log" 'http://127\.0\.0\.2:[0-9]+/metrics')
check "the move is logged with both addresses" \
  grep -q "admin endpoint on $new (moved from 127.0.0.1:" "$WORK/ra.log"
check "the new address serves the metrics of the running process" \
  wait_until metric_is 'pskgw_config_reloads_total{result="applied"}' -eq 2 "$new"
ready=${new%/metrics}/ready
check "the new address answers /ready with the current state (not \"starting\")" \
  bash -c "curl -s '$ready' | jq -e '.status != \"starting\"' >/dev/null"
check "the new address serves the /admin/ routes" \
  bash -c "curl -sf '${new%/metrics}/admin/spools' | jq -e .spools >/dev/null"
port_old=${old#http://127.0.0.1:}
port_old=${port_old%/metrics}
check "the old address refuses connections" \
  bash -c "! (: <>/dev/tcp/127.0.0.1/$port_old) 2>/dev/null"
"$BIN/pskgw-devsim" --target "127.0.0.1:$GW_UDP" --seed it --devices 2 --messages 1 --rate 20 \
  --duration 30 --verify-file "$WORK/ra.jsonl" --quiet >"$WORK/devsim.txt" 2>&1 && rc=0 || rc=$?
check "devices still served after the moves" [ "$rc" -eq 0 ]
stop_gateway
finish

#!/usr/bin/env bash
# Hibernation through the real binaries (pskgw-sim <- pskgw <- pskgw-devsim): with
# hibernate_after_s = 1 the fleet's sessions, idle 5 s between messages, all hibernate (the gauge
# shows every one at once), then each device's next message wakes its session: every message is
# delivered exactly once and acknowledged on the woken session (written under the jumped write
# sequence number, accepted by the device), with one handshake per device and no thaw failure.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_peers.sh"

N=20
start_sim_tracked --devices 100
L='{domain="hib",listener="dtls"}'
write_config hib '' 'ack = "accepted";'
sed -i 's/name = "dtls"; proto = "udp"; address = "127.0.0.1"; port = 0;/& cid = "off"; hibernate_after_s = 1;/' \
  "$WORK/hib.conf"
start_gateway_args hib
"$BIN/pskgw-devsim" --target "127.0.0.1:$GW_UDP" --seed it --devices $N --messages 3 --rate 0.2 \
  --expect-ack --ack-timeout 30 --duration 120 --verify-file "$WORK/hib.jsonl" --quiet \
  >"$WORK/devsim.txt" 2>&1 &
DEVSIM=$!
track "devsim" "$DEVSIM" "$WORK/devsim.txt"
seen=$(wait_metric "pskgw_listener_hibernated$L" -ge $N 60) && ok=0 || ok=1
check "all $N sessions hibernated at once between messages (gauge $seen)" [ "$ok" -eq 0 ]
wait "$DEVSIM" && rc=0 || rc=$?
cat "$WORK/devsim.txt"
check "devsim: every message delivered once and acknowledged (exit $rc)" [ "$rc" -eq 0 ]
check "one handshake per device" metric_is "pskgw_listener_handshakes_completed_total$L" -eq $N
wait_metric "pskgw_listener_thaws_total$L" -ge $((2 * N)) >/dev/null
check "every session woke at each of its 2 later messages" \
  metric_is "pskgw_listener_thaws_total$L" -ge $((2 * N))
check "hibernations counted" metric_is "pskgw_listener_hibernations_total$L" -ge $((2 * N))
check "no thaw failure" metric_is "pskgw_listener_thaw_failures_total$L" -eq 0
check "$((3 * N)) messages in the sink" count_is "$WORK/hib.jsonl" '"payload"' -eq $((3 * N))
stop_gateway_checked hib
finish_peers

#!/usr/bin/env bash
# Hibernation through the real binaries (pskgw-sim <- pskgw <- pskgw-devsim): with
# hibernate_after_s = 1 the fleet's sessions, idle 5 s between messages, all hibernate (the gauge
# shows every one at once), then each device's next message wakes its session: every message is
# delivered exactly once and acknowledged on the woken session (written under the jumped write
# sequence number, accepted by the device), with one handshake per device and no thaw failure.
# At the same time, a second gateway with Connection IDs on and a fleet that asks for one and
# wakes up behind a new source port before each later message (devsim --cid --rebind-every):
# each session hibernates with its CID, the record from the new port finds it by CID, thaws it
# and moves its address, and the ack reaches the device there, with no new handshake.
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

NC=10
LC='{domain="hibcid",listener="dtls"}'
write_config hibcid '' 'ack = "accepted";'
sed -i 's/name = "dtls"; proto = "udp"; address = "127.0.0.1"; port = 0;/& hibernate_after_s = 1;/' \
  "$WORK/hibcid.conf"
# The metrics of the second gateway: cidm CMD... runs CMD with GW_ADMIN set to its endpoint.
cidm() { GW_ADMIN=$CID_ADMIN "$@"; }
HIB_ADMIN=$GW_ADMIN
start_gateway_args hibcid
CID_ADMIN=$GW_ADMIN
GW_ADMIN=$HIB_ADMIN
"$BIN/pskgw-devsim" --target "127.0.0.1:$GW_UDP" --seed it --devices $NC \
  --messages 3 --rate 0.2 --cid --rebind-every 4 --expect-ack --ack-timeout 30 --duration 120 \
  --verify-file "$WORK/hibcid.jsonl" --json "$WORK/cid.json" --quiet >"$WORK/devsim-cid.txt" 2>&1 &
DEVSIM_CID=$!
track "devsim --cid" "$DEVSIM_CID" "$WORK/devsim-cid.txt"
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

# ---- with a Connection ID, each later message from a new source port ---------------------------
wait "$DEVSIM_CID" && rc=0 || rc=$?
cat "$WORK/devsim-cid.txt"
check "devsim --cid: every message delivered once and acknowledged at the new port (exit $rc)" \
  [ "$rc" -eq 0 ]
check "devsim --cid: every device negotiated a CID" [ "$(jq .rebind.cid_sessions "$WORK/cid.json")" -eq $NC ]
check "devsim --cid: $((2 * NC)) rebinds, every one followed ($(jq -c .rebind "$WORK/cid.json"))" \
  [ "$(jq '.rebind.socket_rebinds == '$((2 * NC))' and .rebind.followed == '$((2 * NC))' and
           .rebind.sessions_lost == 0' "$WORK/cid.json")" = true ]
check "cid: one handshake per device" cidm metric_is "pskgw_listener_handshakes_completed_total$LC" -eq $NC
cidm wait_metric "pskgw_listener_thaws_total$LC" -ge $((2 * NC)) >/dev/null
check "cid: every session woke at each of its 2 later messages" \
  cidm metric_is "pskgw_listener_thaws_total$LC" -ge $((2 * NC))
check "cid: no thaw failure" cidm metric_is "pskgw_listener_thaw_failures_total$LC" -eq 0
cidm wait_metric "pskgw_listener_cid_address_changes_total$LC" -ge $((2 * NC)) >/dev/null
check "cid: each hibernated session's address moved at each rebind" \
  cidm metric_is "pskgw_listener_cid_address_changes_total$LC" -eq $((2 * NC))
check "cid: no unknown CID" cidm metric_is "pskgw_listener_cid_unknown_records_total$LC" -eq 0
check "cid: $((3 * NC)) messages in the sink" count_is "$WORK/hibcid.jsonl" '"payload"' -eq $((3 * NC))
stop_gateway_checked hibcid
finish_peers

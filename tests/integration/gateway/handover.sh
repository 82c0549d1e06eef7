#!/usr/bin/env bash
# Restart without a handshake through the real binaries (pskgw-sim <- pskgw <- pskgw-devsim): a
# fleet of N (1000) devices handshakes and sends its first message; pskgw gets SIGTERM (its sessions go
# sealed to the state file in state_dir, no close_notify) and starts again on the same port; 30 s
# after its first message each device sends its second one on its old session: every message is
# delivered once and acknowledged, and the new process completes no handshake. Then a damaged
# and a foreign state file are each refused with a clear log line, and the gateway serves new
# handshakes as usual. Last, `pskgw ctl handover` does what SIGTERM does.
# Alongside the first restart, a second gateway with Connection IDs on and a fleet that asks for
# one (devsim --cid) is restarted the same way, and each device sends its second message from a
# new source port (--rebind-every): the new process finds every session by its CID from the new
# address, moves it there, and acknowledges, with no handshake.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_peers.sh"

N=${HANDOVER_DEVICES:-1000}
start_sim_tracked --devices $((N + 20))
L='{domain="ho",listener="dtls"}'
mkdir -p "$WORK/state"
write_config ho "state_dir = \"$WORK/state\";" 'ack = "accepted";'
sed -i 's/name = "dtls"; proto = "udp"; address = "127.0.0.1"; port = 0;/& cid = "off";/' "$WORK/ho.conf"
start_gateway_args ho
port=$GW_UDP
sed -i "s/name = \"dtls\"; proto = \"udp\"; address = \"127.0.0.1\"; port = 0;/name = \"dtls\"; proto = \"udp\"; address = \"127.0.0.1\"; port = $port;/" "$WORK/ho.conf"
"$BIN/pskgw-devsim" --target "127.0.0.1:$port" --seed it --devices $N --messages 2 --rate 0.033 \
  --expect-ack --ack-timeout 30 --duration 150 --verify-file "$WORK/ho.jsonl" --quiet \
  >"$WORK/devsim.txt" 2>&1 &
DEVSIM=$!
track "devsim" "$DEVSIM" "$WORK/devsim.txt"

NC=20
LC='{domain="hocid",listener="dtls"}'
mkdir -p "$WORK/state-cid"
write_config hocid "state_dir = \"$WORK/state-cid\";" 'ack = "accepted";'
# The metrics of the second gateway: cidm CMD... runs CMD with GW_ADMIN set to its endpoint.
cidm() { GW_ADMIN=$CID_ADMIN "$@"; }
HO_ADMIN=$GW_ADMIN
start_gateway_args hocid
cport=$GW_UDP
CID_ADMIN=$GW_ADMIN
GW_ADMIN=$HO_ADMIN
sed -i "s/name = \"dtls\"; proto = \"udp\"; address = \"127.0.0.1\"; port = 0;/name = \"dtls\"; proto = \"udp\"; address = \"127.0.0.1\"; port = $cport;/" "$WORK/hocid.conf"
"$BIN/pskgw-devsim" --target "127.0.0.1:$cport" --seed it --devices $NC \
  --messages 2 --rate 0.033 --cid --rebind-every 20 --expect-ack --ack-timeout 30 --duration 150 \
  --verify-file "$WORK/hocid.jsonl" --json "$WORK/cid.json" --quiet >"$WORK/devsim-cid.txt" 2>&1 &
DEVSIM_CID=$!
track "devsim --cid" "$DEVSIM_CID" "$WORK/devsim-cid.txt"

wait_until count_is "$WORK/ho.jsonl" '"payload"' -ge $N
check "$N first messages delivered before the restart" count_is "$WORK/ho.jsonl" '"payload"' -eq $N
wait_metric "pskgw_listener_handshakes_completed_total$L" -ge $N >/dev/null
check "first process: $N handshakes" metric_is "pskgw_listener_handshakes_completed_total$L" -eq $N
stop_gateway_checked ho
check "the state file was written" [ -f "$WORK/state/sessions.state" ]
check "state file mode 0600" [ "$(stat -c %a "$WORK/state/sessions.state")" = 600 ]
check "state key mode 0600" [ "$(stat -c %a "$WORK/state/state.key")" = 600 ]
check "the stop logged $N sessions handed over" \
  grep -q "sessions.state: $N sessions handed over to the next process" "$WORK/ho.log"
cp "$WORK/state/sessions.state" "$WORK/keep.state" # for the refusals below
mv "$WORK/ho.log" "$WORK/ho-1.log"
start_gateway_args ho
check "the start logged $N sessions taken over" \
  grep -q "$N sessions taken over without a handshake (0 expired, 0 unusable)" "$WORK/ho.log"
check "the state file is consumed" [ ! -e "$WORK/state/sessions.state" ]

wait_until count_is "$WORK/hocid.jsonl" '"payload"' -ge $NC
check "cid: $NC first messages delivered before the restart" count_is "$WORK/hocid.jsonl" '"payload"' -eq $NC
cidm wait_metric "pskgw_listener_cid_sessions$LC" -ge $NC >/dev/null
check "cid: first process, $NC sessions with a CID" cidm metric_is "pskgw_listener_cid_sessions$LC" -eq $NC
stop_gateway_checked hocid
check "cid: the stop logged $NC sessions handed over" \
  grep -q "sessions.state: $NC sessions handed over to the next process" "$WORK/hocid.log"
mv "$WORK/hocid.log" "$WORK/hocid-1.log"
HO_ADMIN=$GW_ADMIN
start_gateway_args hocid
CID_ADMIN=$GW_ADMIN
GW_ADMIN=$HO_ADMIN
check "cid: the start logged $NC sessions taken over" \
  grep -q "$NC sessions taken over without a handshake (0 expired, 0 unusable)" "$WORK/hocid.log"
cidm wait_metric "pskgw_listener_cid_sessions$LC" -ge $NC >/dev/null
check "cid: the imported sessions are indexed by CID at once" \
  cidm metric_is "pskgw_listener_cid_sessions$LC" -eq $NC
wait "$DEVSIM" && rc=0 || rc=$?
cat "$WORK/devsim.txt"
check "devsim: every message delivered once and acknowledged across the restart (exit $rc)" [ "$rc" -eq 0 ]
check "$((2 * N)) messages in the sink" count_is "$WORK/ho.jsonl" '"payload"' -eq $((2 * N))
wait_metric "pskgw_listener_thaws_total$L" -ge $N >/dev/null
check "second process: $N sessions woke" metric_is "pskgw_listener_thaws_total$L" -eq $N
check "second process: no handshake" metric_is "pskgw_listener_handshakes_completed_total$L" -eq 0
check "no thaw failure" metric_is "pskgw_listener_thaw_failures_total$L" -eq 0

wait "$DEVSIM_CID" && rc=0 || rc=$?
cat "$WORK/devsim-cid.txt"
check "devsim --cid: every message delivered once and acknowledged at the new port (exit $rc)" \
  [ "$rc" -eq 0 ]
check "devsim --cid: $NC rebinds after the restart, every one followed ($(jq -c .rebind "$WORK/cid.json"))" \
  [ "$(jq '.rebind.cid_sessions == '$NC' and .rebind.socket_rebinds == '$NC' and
           .rebind.followed == '$NC' and .rebind.sessions_lost == 0' "$WORK/cid.json")" = true ]
check "cid: $((2 * NC)) messages in the sink" count_is "$WORK/hocid.jsonl" '"payload"' -eq $((2 * NC))
cidm wait_metric "pskgw_listener_thaws_total$LC" -ge $NC >/dev/null
check "cid: second process, $NC sessions woke" cidm metric_is "pskgw_listener_thaws_total$LC" -eq $NC
check "cid: second process, no handshake" cidm metric_is "pskgw_listener_handshakes_completed_total$LC" -eq 0
check "cid: each session moved to its device's new port" \
  cidm metric_is "pskgw_listener_cid_address_changes_total$LC" -eq $NC
check "cid: no unknown CID" cidm metric_is "pskgw_listener_cid_unknown_records_total$LC" -eq 0
stop_gateway_checked hocid

# ---- a damaged state file, then a foreign one (copies of the first one) ------------------------
stop_gateway_checked ho
cp "$WORK/keep.state" "$WORK/state/sessions.state"
size=$(stat -c %s "$WORK/state/sessions.state")
# The byte's bits all flipped (writing a fixed 0xff did nothing when the byte was 0xff already:
# one run in 256 imported the "damaged" file).
byte=$(od -An -tu1 -j $((size - 30)) -N1 "$WORK/state/sessions.state" | tr -d ' ')
printf "\\x$(printf %02x $((byte ^ 0xff)))" |
  dd of="$WORK/state/sessions.state" bs=1 seek=$((size - 30)) conv=notrunc status=none
mv "$WORK/ho.log" "$WORK/ho-2.log"
start_gateway_args ho
check "a damaged state file is refused with a clear line" \
  grep -q "state file .*sessions.state refused: damaged state file" "$WORK/ho.log"
"$BIN/pskgw-devsim" --target "127.0.0.1:$port" --seed it --devices 5 --first-device $N \
  --messages 1 --rate 20 --expect-ack --duration 60 --quiet >"$WORK/devsim2.txt" 2>&1 &&
  rc=0 || rc=$?
check "after it, new devices are served as usual (exit $rc)" [ "$rc" -eq 0 ]
stop_gateway_checked ho
cp "$WORK/keep.state" "$WORK/state/sessions.state"
rm -f "$WORK/state/state.key" # the next process makes a new key: the file is foreign to it
mv "$WORK/ho.log" "$WORK/ho-3.log"
start_gateway_args ho
check "a foreign state file is refused with a clear line" \
  grep -q "state file .*sessions.state refused: foreign state file" "$WORK/ho.log"
"$BIN/pskgw-devsim" --target "127.0.0.1:$port" --seed it --devices 5 --first-device $((N + 5)) \
  --messages 1 --rate 20 --expect-ack --duration 60 --quiet >"$WORK/devsim3.txt" 2>&1 &&
  rc=0 || rc=$?
check "after it, new devices are served as usual (exit $rc)" [ "$rc" -eq 0 ]

# ---- pskgw ctl handover ----------------------------------------------------------------------
"$BIN/pskgw-devsim" --target "127.0.0.1:$port" --seed it --devices 5 --first-device $((N + 10)) \
  --messages 2 --rate 0.1 --expect-ack --ack-timeout 30 --duration 60 --quiet \
  >"$WORK/devsim4.txt" 2>&1 &
DEVSIM=$!
track "devsim4" "$DEVSIM" "$WORK/devsim4.txt"
wait_until count_is "$WORK/ho.jsonl" '"payload"' -ge $((2 * N + 15))
"$BIN/pskgw" ctl --admin "${GW_ADMIN%/metrics}" handover >"$WORK/ctl.txt" 2>&1 && rc=0 || rc=$?
check "pskgw ctl handover accepted (exit $rc: $(cat "$WORK/ctl.txt"))" [ "$rc" -eq 0 ]
peer_wait "${PEER_PID[ho]}" 30 && rc=0 || rc=$?
unset "PEER_PID[ho]"
check "the gateway stopped by itself, exit 0 (got $rc)" [ "$rc" -eq 0 ]
check "5 sessions handed over" grep -q "sessions.state: 5 sessions handed over" "$WORK/ho.log"
mv "$WORK/ho.log" "$WORK/ho-4.log"
start_gateway_args ho
wait "$DEVSIM" && rc=0 || rc=$?
check "devsim: their second messages delivered on the old sessions (exit $rc)" [ "$rc" -eq 0 ]
wait_metric "pskgw_listener_thaws_total$L" -ge 5 >/dev/null
check "no handshake after ctl handover" metric_is "pskgw_listener_handshakes_completed_total$L" -eq 0
stop_gateway_checked ho
finish_peers

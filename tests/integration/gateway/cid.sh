#!/usr/bin/env bash
# DTLS 1.2 Connection ID through the real binaries (pskgw-sim <- pskgw <- a wolfSSL client that
# asks for a CID and changes its source port mid-session, tests/support/cid_client.c): with
# cid = "on" (the default) both messages arrive in one session, the second with the new port as
# its peer, and the session's address moved once; with cid = "off" the record from the new port
# finds no session.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_peers.sh"

CLIENT=$BIN/tests/cid_client
start_sim_tracked --devices 10
L='{domain="cid",listener="dtls"}'
O='{domain="cidoff",listener="dtls"}'

# ---- cid on (the default) -----------------------------------------------------------------------
write_config cid '' ''
start_gateway_args cid
"$CLIENT" "$GW_UDP" it 1 one --rebind two >"$WORK/on.out" 2>"$WORK/on.err" && rc=0 || rc=$?
check "cid on: the client's handshake and records went out (exit $rc)" [ "$rc" -eq 0 ]
cat "$WORK/on.err"
mapfile -t ports < <(sed -n 's/^port //p' "$WORK/on.out")
check "cid on: the client sent from two ports (${ports[*]})" [ "${#ports[@]}" -eq 2 ]
check "cid on: a CID was negotiated ($(grep '^cid' "$WORK/on.out"))" grep -Eq '^cid [0-9a-f]{16}$' "$WORK/on.out"
check "cid on: byte 0 of the CID is the worker index (0)" grep -Eq '^cid 00' "$WORK/on.out"
wait_until count_is "$WORK/cid.jsonl" '"payload"' -ge 2
check "cid on: both messages delivered" count_is "$WORK/cid.jsonl" '"payload"' -eq 2
check "cid on: one session" [ "$(jq -r .session_id "$WORK/cid.jsonl" | sort -u | wc -l)" -eq 1 ]
check "cid on: the first came from port ${ports[0]}" \
  [ "$(jq -r 'select(.seq == 1) | .peer' "$WORK/cid.jsonl")" = "127.0.0.1:${ports[0]}" ]
check "cid on: the second from the new port ${ports[1]}" \
  [ "$(jq -r 'select(.seq == 2) | .peer' "$WORK/cid.jsonl")" = "127.0.0.1:${ports[1]}" ]
# The metrics are a snapshot the loop refreshes: wait for the address change to show.
wait_metric "pskgw_listener_cid_address_changes_total$L" -ge 1 >/dev/null
check "cid on: one handshake" metric_is "pskgw_listener_handshakes_completed_total$L" -eq 1
check "cid on: the address moved once" metric_is "pskgw_listener_cid_address_changes_total$L" -eq 1
check "cid on: one session with a CID" metric_is "pskgw_listener_cid_sessions$L" -eq 1
check "cid on: no unknown CID" metric_is "pskgw_listener_cid_unknown_records_total$L" -eq 0
stop_peer cid

# ---- cid off ------------------------------------------------------------------------------------
write_config cidoff '' ''
sed -i 's/name = "dtls"; proto = "udp"; address = "127.0.0.1"; port = 0;/& cid = "off";/' "$WORK/cidoff.conf"
start_gateway_args cidoff
"$CLIENT" "$GW_UDP" it 2 one --rebind two >"$WORK/off.out" 2>"$WORK/off.err" && rc=0 || rc=$?
check "cid off: the client's handshake and records went out (exit $rc)" [ "$rc" -eq 0 ]
check "cid off: no CID negotiated" grep -qx 'cid none' "$WORK/off.out"
wait_metric "pskgw_listener_bad_datagrams_total$O" -ge 1 >/dev/null
wait_until count_is "$WORK/cidoff.jsonl" '"payload"' -ge 1
check "cid off: the record from the new port found no session" metric_is "pskgw_listener_bad_datagrams_total$O" -eq 1
check "cid off: only the first message delivered" count_is "$WORK/cidoff.jsonl" '"payload"' -eq 1
wait_metric "pskgw_listener_handshakes_completed_total$O" -ge 1 >/dev/null
check "cid off: one handshake" metric_is "pskgw_listener_handshakes_completed_total$O" -eq 1
check "cid off: no session has a CID" metric_is "pskgw_listener_cid_sessions$O" -eq 0
stop_peer cidoff

finish_peers

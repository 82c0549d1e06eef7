#!/usr/bin/env bash
# E2E rejection end to end through the real binaries: with e2e = "required", plain payloads
# (pskgw-devsim) and an E2E payload whose MAC is wrong (sent by openssl s_client as the device)
# are not forwarded, not acknowledged, and counted in the metrics; a valid E2E payload on the
# same DTLS session right after the bad one is forwarded and acknowledged with its own number.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_peers.sh"

start_sim_tracked --devices 1000
write_config rq '' 'ack = "accepted";'
sed -i 's/^e2e = "auto";/e2e = "required";/' "$WORK/rq.conf"
start_gateway_args rq
M() { metric "$1{domain=\"rq\"${2:-}}"; }

# ---- plain payloads in required mode ------------------------------------------------------------
"$BIN/pskgw-devsim" --target "127.0.0.1:$GW_UDP" --seed it --devices 3 --messages 2 --rate 20 \
  --e2e none --expect-ack --ack-timeout 3 --duration 60 --quiet >"$WORK/plain.txt" 2>&1 &&
  rc=0 || rc=$?
check "plain payloads: devsim reports missing acks (exit 1, got $rc)" [ "$rc" -eq 1 ]
check "plain payloads: the handshakes themselves succeeded" \
  [ "$(wait_metric 'pskgw_listener_handshakes_completed_total{domain="rq",listener="dtls"}' -ge 3)" -ge 3 ]
check "plain payloads: 6 counted as rejected not_e2e" \
  [ "$(wait_metric 'pskgw_e2e_payloads_total{domain="rq",outcome="rejected",reason="not_e2e"}' -eq 6)" = 6 ]
check "plain payloads: rejected_e2e counts 6" [ "$(wait_metric 'pskgw_domain_rejected_e2e_total{domain="rq"}' -eq 6)" = 6 ]
check "plain payloads: nothing forwarded" [ "$(M pskgw_domain_forwarded_total)" = 0 ]
check "plain payloads: no acknowledgement sent" [ "$(M pskgw_domain_acks_sent_total)" = 0 ]
check "plain payloads: nothing in the sink" [ ! -s "$WORK/rq.jsonl" ]
check "plain payloads: the rejection is logged with its reason" grep -q 'rejected: not_e2e' "$WORK/rq.log"

# ---- a bad MAC, then a good message, on one DTLS session -----------------------------------------
"$BIN/pskgw-sim" --seed it --show-device 7 >"$WORK/dev7.json"
id=$(jq -r .identity "$WORK/dev7.json")
psk=$(jq -r .psk_128 "$WORK/dev7.json")
good=$(jq -r .hello_v1 "$WORK/dev7.json")
# the last byte belongs to the CCM tag: flip it
last=$(( 16#${good: -2} ^ 1 ))
bad=${good:0:${#good}-2}$(printf '%02x' "$last")
python3 -c 'import sys; open(sys.argv[1], "wb").write(bytes.fromhex(sys.argv[2]))' "$WORK/bad.bin" "$bad"
python3 -c 'import sys; open(sys.argv[1], "wb").write(bytes.fromhex(sys.argv[2]))' "$WORK/good.bin" "$good"
# s_client reads its input from a fifo that only this shell writes (fd 3): one write, one record
mkfifo "$WORK/ossl.in"
exec 3<>"$WORK/ossl.in"
PROC_STDIN=$WORK/ossl.in start_proc ossl openssl s_client -dtls1_2 -connect "127.0.0.1:$GW_UDP" \
  -psk_identity "$id" -psk "$psk" -cipher PSK-AES128-CCM8 -nocommands
wait_for "$WORK/ossl.out" 'Cipher is PSK-AES128-CCM8' 20 >/dev/null
cat "$WORK/bad.bin" >&3
check "bad MAC: counted as rejected bad_mac" \
  [ "$(wait_metric 'pskgw_e2e_payloads_total{domain="rq",outcome="rejected",reason="bad_mac"}' -eq 1)" = 1 ]
check "bad MAC: rejected_e2e counts 7" [ "$(wait_metric 'pskgw_domain_rejected_e2e_total{domain="rq"}' -eq 7)" = 7 ]
check "bad MAC: the rejection is logged with its reason" grep -q 'rejected: bad_mac' "$WORK/rq.log"
cat "$WORK/good.bin" >&3
check "good message after it on the same session: acknowledged as message 2" \
  wait_for "$WORK/ossl.out" 'ACK 2' 20
check "bad MAC: message 1 was never acknowledged" bash -c "! grep -q 'ACK 1' '$WORK/ossl.out'"
check "only the good message was forwarded" [ "$(wait_metric 'pskgw_domain_forwarded_total{domain="rq"}' -eq 1)" = 1 ]
check "the sink holds exactly the good message (HELLO, E2E V1)" bash -c "
  [ \$(grep -c . '$WORK/rq.jsonl') -eq 1 ] &&
  jq -e '.payload == \"SEVMTE8=\" and .e2e.version == 1 and .seq == 2' '$WORK/rq.jsonl' >/dev/null"
check "decrypted payloads counted" \
  [ "$(M pskgw_e2e_payloads_total ',outcome="decrypted"')" = 1 ]
exec 3>&- # end of input: s_client closes the session and exits
peer_wait "${PEER_PID[ossl]}" 30 && rc=0 || rc=$?
check "openssl s_client ended cleanly (exit $rc)" [ "$rc" -eq 0 ]
unset "PEER_PID[ossl]"
check "no payload or key in the log" bash -c "! grep -Eq '$psk|HELLO|SEVMTE8' '$WORK/rq.log'"
stop_gateway_checked rq
finish_peers

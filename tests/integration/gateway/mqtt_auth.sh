#!/usr/bin/env bash
# MQTT sinks against a mosquitto that refuses anonymous clients (password file): with the right
# username and password_file the gateway publishes every message, at QoS 0 from one sink and at
# QoS 2 from another (seen by a QoS 2 subscriber); with a wrong password the broker refuses the
# connection, the sink stays disconnected and spools, and the password never reaches a log.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_peers.sh"

start_sim_tracked --devices 1000
start_mosquitto mq gw 'mq-s3cret'
printf 'mq-s3cret\n' >"$WORK/mq.pass"
printf 'wrong-s3cret\n' >"$WORK/wrong.pass"
start_mqtt_rx mqrx "$MQTT_PORT" 'it/#' gw "$WORK/mq.pass"

mqtt_sink() { # name qos password_file [extra]
  echo "{ type = \"mqtt\"; name = \"$1\"; host = \"127.0.0.1\"; port = $MQTT_PORT; \
topic = \"it/$1/{rot_public_uid}\"; qos = $2; username = \"gw\"; password_file = \"$3\"; \
client_id = \"pskgw-it-$1\"; ${4:-} }"
}

# ---- the right password: QoS 0 and QoS 2 ------------------------------------------------------
write_config ok '' 'ack = "accepted";'
sed -i "s#^sinks = .*#sinks = ( { type = \"file\"; path = \"$WORK/ok.jsonl\"; }, \
$(mqtt_sink q0 0 mq.pass), $(mqtt_sink q2 2 mq.pass) );#" "$WORK/ok.conf"
start_gateway_args ok
"$BIN/pskgw-devsim" --target "127.0.0.1:$GW_UDP" --seed it --devices 3 --messages 2 --rate 20 \
  --expect-ack --duration 60 --verify-file "$WORK/ok.jsonl" --quiet >"$WORK/ok.txt" 2>&1 &&
  rc=0 || rc=$?
check "authenticated sinks: every message delivered and acked" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || sed 's/^/  | /' "$WORK/ok.txt" | tail -n 15
for _ in $(seq 200); do [ "$(grep -c "	it/q2/" "$WORK/mqrx.out")" -ge 6 ] && break; sleep 0.1; done
for _ in $(seq 100); do [ "$(grep -c "	it/q0/" "$WORK/mqrx.out")" -ge 6 ] && break; sleep 0.1; done
got() { grep -P "^$1\tit/$2/" "$WORK/mqrx.out" | cut -f3 | jq -r .message_id | sort; }
check "qos 0 sink: the 6 messages published at QoS 0" diff <(got 0 q0) <(ids_of "$WORK/ok.jsonl")
check "qos 2 sink: the 6 messages published at QoS 2" diff <(got 2 q2) <(ids_of "$WORK/ok.jsonl")
check "no message at another QoS" [ "$(tail -n +2 "$WORK/mqrx.out" | grep -vcP '^0\tit/q0/|^2\tit/q2/')" = 0 ]
check "the broker saw the gateway log in as user gw" grep -q "as pskgw-it-q2 .*u'gw'" "$WORK/mq.err"
for s in q0 q2; do
  check "sink $s: connected" [ "$(wait_metric "pskgw_sink_connected{domain=\"ok\",sink=\"$s\"}" -eq 1)" = 1 ]
done
stop_gateway_checked ok

# ---- a wrong password: refused, disconnected, spooled ---------------------------------------
write_config bad '' ''
sed -i "s#^sinks = .*#sinks = ( { type = \"file\"; path = \"$WORK/bad.jsonl\"; }, \
$(mqtt_sink nope 1 wrong.pass 'queue_size = 1; retry_max_ms = 300; spool = { path = "spool"; };') );#" \
  "$WORK/bad.conf"
start_gateway_args bad
"$BIN/pskgw-devsim" --target "127.0.0.1:$GW_UDP" --seed it --devices 2 --messages 2 --rate 20 \
  --duration 60 --verify-file "$WORK/bad.jsonl" --quiet >"$WORK/bad.txt" 2>&1 && rc=0 || rc=$?
check "wrong password: the file sink still gets every message" [ "$rc" -eq 0 ]
check "wrong password: the broker refused the client" \
  wait_for "$WORK/mq.err" 'not authori[sz]ed' 10
check "wrong password: the gateway says why it cannot connect" \
  wait_for "$WORK/bad.log" 'sink "[a-z-]*nope": cannot connect to mqtt .*: (Not authori[sz]ed|Bad user name or password)' 10
check "wrong password: sink not connected" [ "$(wait_metric 'pskgw_sink_connected{domain="bad",sink="nope"}' -eq 0)" = 0 ]
check "wrong password: messages spooled" [ "$(wait_metric 'pskgw_sink_spooled_total{domain="bad",sink="nope"}' -ge 3)" -ge 3 ]
check "wrong password: nothing published" [ "$(grep -c 'it/nope/' "$WORK/mqrx.out" || true)" = 0 ]
check "no password in the gateway's logs" bash -c "! grep -q 's3cret' '$WORK/ok.log' '$WORK/bad.log'"
stop_gateway_checked bad
finish_peers

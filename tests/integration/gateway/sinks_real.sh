#!/usr/bin/env bash
# The gateway with an http, an mqtt and a kafka sink (each with a spool) next to a file sink,
# configured in one domain file: the configuration's sinks are translated by gateway/domain.c and
# every message of a fleet reaches every real peer (an HTTP receiver, mosquitto, librdkafka's mock
# cluster), acknowledged. Then the same sinks with their peers down: messages go to the spools,
# with the spool.fsync mode of each sink (always / batch / never, seen with strace), and a restart
# with the peers back replays every spooled message to each of them.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_peers.sh"

command -v strace >/dev/null || { echo "FAIL: strace is needed (scripts/lib.sh PSKGW_PACKAGES)"; exit 1; }

# sinks_conf NAME HTTP_URL MQTT_PORT KAFKA_BOOT: a domain NAME with the four sinks.
sinks_conf() {
  write_config "$1" '' 'ack = "accepted";'
  sed -i "s#^sinks = .*#sinks = ( \
{ type = \"file\"; name = \"file\"; path = \"$WORK/$1.jsonl\"; }, \
{ type = \"http\"; name = \"web\"; url = \"$2/hook\"; headers = [ \"X-Test: yes\" ]; timeout_ms = 2000; \
  queue_size = 1; in_flight = 1; retry_max_ms = 500; spool = { path = \"spool\"; fsync = \"always\"; }; }, \
{ type = \"mqtt\"; name = \"mq\"; host = \"127.0.0.1\"; port = $3; topic = \"it/{domain}/{rot_public_uid}\"; \
  queue_size = 1; in_flight = 1; retry_max_ms = 500; spool = { path = \"spool\"; fsync = \"batch\"; }; }, \
{ type = \"kafka\"; name = \"kf\"; brokers = \"$4\"; topic = \"pskgw-it\"; properties = [ \"linger.ms=5\" ]; \
  queue_size = 1; in_flight = 1; retry_max_ms = 500; spool = { path = \"spool\"; fsync = \"never\"; }; } );#" \
    "$WORK/$1.conf"
}

# received NAME: the JSON envelopes a peer got, one per line, in $WORK/NAME.jsonl
# (pskgw-peerrx prints one line of its own first: "subscribed" or "bootstrap ...")
mqtt_envelopes() { tail -n +2 "$WORK/$1.out" | cut -f3 >"$WORK/$1.jsonl"; }
kafka_envelopes() { tail -n +2 "$WORK/$1.out" | cut -f2 >"$WORK/$1.jsonl"; }
wait_lines() { # file count seconds
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    [ "$(grep -c . "$1" 2>/dev/null || true)" -ge "$2" ] && return 0
    sleep 0.1
  done
  return 1
}

start_sim_tracked --devices 1000

# ---- 1. every peer up ------------------------------------------------------------------------
start_http web sink "$WORK/web.jsonl"
start_mosquitto mq
start_mqtt_rx mqrx "$MQTT_PORT" 'it/#'
start_kafka kf pskgw-it
sinks_conf up "$HTTP_URL" "$MQTT_PORT" "$KAFKA_BOOT"
start_gateway_args up

"$BIN/pskgw-devsim" --target "127.0.0.1:$GW_UDP" --seed it --devices 6 --messages 3 --rate 20 \
  --e2e v1 --expect-ack --duration 60 --verify-file "$WORK/web.jsonl" --quiet \
  >"$WORK/up.txt" 2>&1 && rc=0 || rc=$?
check "http sink: every message of the fleet received once, content equal; all acked" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || sed 's/^/  | /' "$WORK/up.txt" | tail -n 20
check "file sink: the same 18 messages" diff <(ids_of "$WORK/up.jsonl") <(ids_of "$WORK/web.jsonl")
check "http sink: 18 messages" [ "$(grep -c . "$WORK/web.jsonl")" -eq 18 ]
wait_lines "$WORK/mqrx.out" 19 20 || true
mqtt_envelopes mqrx
check "mqtt sink: the same 18 messages at the broker's subscriber" \
  diff <(ids_of "$WORK/mqrx.jsonl") <(ids_of "$WORK/web.jsonl")
check "mqtt sink: topic from the template, published with the default QoS 1" bash -c '
  while IFS=$(printf "\t") read -r qos topic env; do
    uid=$(jq -r .rot_public_uid <<<"$env")
    [ "$qos" = 1 ] && [ "$topic" = "it/up/$uid" ] || { echo "got $qos $topic for $uid"; exit 1; }
  done < <(tail -n +2 "$1")' _ "$WORK/mqrx.out"
wait_lines "$WORK/kf.out" 19 30 || true
kafka_envelopes kf
check "kafka sink: the same 18 messages in the topic" \
  diff <(ids_of "$WORK/kf.jsonl") <(ids_of "$WORK/web.jsonl")
check "kafka sink: the message key is the ROTPublicUID" bash -c '
  while IFS=$(printf "\t") read -r key env; do
    [ "$key" = "$(jq -r .rot_public_uid <<<"$env")" ] || { echo "key $key"; exit 1; }
  done < <(tail -n +2 "$1")' _ "$WORK/kf.out"
check "E2E payloads were decrypted on their way to the sinks" \
  [ "$(jq -c 'select(.e2e.version == 1)' "$WORK/kf.jsonl" | grep -c .)" -eq 18 ]
for s in web mq kf; do
  check "sink $s: connected (metric)" [ "$(wait_metric "pskgw_sink_connected{domain=\"up\",sink=\"$s\"}" -eq 1)" = 1 ]
  check "sink $s: delivered 18 (metric)" \
    [ "$(wait_metric "pskgw_sink_delivered_total{domain=\"up\",sink=\"$s\"}" -eq 18)" = 18 ]
  check "sink $s: its spool file exists in the configured directory" [ -f "$WORK/spool/up-$s.spool" ]
done
stop_gateway_checked up
stop_peer web
stop_peer mqrx
stop_peer mq
stop_peer kf

# ---- 2. every peer down: spools, with each sink's fsync mode --------------------------------
reserve_ports tcp # bound for the whole script, never listening: connections are refused
dead=${PORTS[0]}
sinks_conf down "http://127.0.0.1:$dead" "$dead" "127.0.0.1:$dead"
# LeakSanitizer cannot run under ptrace: this run is leak-checked in parts 1 and 3 instead
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
  strace -f -y -qq -e trace=fdatasync,pwrite64 -o "$WORK/strace.txt" \
  "$BIN/pskgw" --config "$WORK/down.conf" >"$WORK/down.stdout" 2>"$WORK/down.log" &
strace_pid=$!
PIDS+=("$strace_pid")
GW_ADMIN=$(wait_for "$WORK/down.log" 'http://127\.0\.0\.1:[0-9]+/metrics' 20)
GW_UDP=$(grep -Eo 'on udp 127\.0\.0\.1:[0-9]+' "$WORK/down.log" | grep -Eo '[0-9]+$')
GW_PID=$(pgrep -P "$strace_pid" -x pskgw)
"$BIN/pskgw-devsim" --target "127.0.0.1:$GW_UDP" --seed it --devices 4 --messages 3 --rate 20 \
  --duration 60 --verify-file "$WORK/down.jsonl" --quiet >"$WORK/down.txt" 2>&1 && rc=0 || rc=$?
check "peers down: the file sink still gets all 12 messages" [ "$rc" -eq 0 ]
for s in web mq kf; do
  # one message per sink waits in its queue of 1 (retried); the other 11 are spooled
  check "sink $s down: 11 messages spooled (metric)" \
    [ "$(wait_metric "pskgw_sink_spooled_total{domain=\"down\",sink=\"$s\"}" -ge 11)" -ge 11 ]
  check "sink $s down: spool bytes exported and above 0" \
    [ "$(wait_metric "pskgw_sink_spool_bytes{domain=\"down\",sink=\"$s\"}" -gt 0)" -gt 0 ]
  check "sink $s down: not connected (metric)" \
    [ "$(wait_metric "pskgw_sink_connected{domain=\"down\",sink=\"$s\"}" -eq 0)" = 0 ]
done
syncs() { grep -c "fdatasync([0-9]*<$WORK/spool/down-$1.spool>" "$WORK/strace.txt" || true; }
# always: every append (pwrite) to the spool is followed by its fdatasync before the next append
# (the spool's 24-byte file header, written at offset 0 with the first record, is not an append;
# strace may print it split, as '<unfinished ...>' and '<... pwrite64 resumed>')
synced_each() {
  grep -E "(pwrite64|fdatasync)\([0-9]+<$WORK/spool/down-$1.spool>" "$WORK/strace.txt" |
    grep -vE 'pwrite64\(.*, 24, 0(\) += 24| <unfinished)' |
    sed -E 's/^[0-9]+ +//; s/\(.*//' | awk '
      $1 == "pwrite64" { if (open) bad = 1; open = 1; n++ }
      $1 == "fdatasync" { open = 0 }
      END { if (n == 0 || bad) { print "appends " n ", an append not synced before the next"; exit 1 } }'
}
check "spool.fsync always: the http spool is synced while running ($(syncs web))" [ "$(syncs web)" -ge 1 ]
check "spool.fsync always: each append to the http spool is synced before the next" synced_each web
for _ in $(seq 100); do [ "$(syncs mq)" -ge 1 ] && break; sleep 0.1; done
check "spool.fsync batch: the mqtt spool is synced by the batch timer ($(syncs mq))" [ "$(syncs mq)" -ge 1 ]
kill -TERM "$GW_PID"
peer_wait "$strace_pid" 60 && rc=0 || rc=$?
check "peers down: SIGTERM, exit status 0 (got $rc)" [ "$rc" -eq 0 ]
check "peers down: no sanitizer report" bash -c '! grep -Eq "$0" "$1"' "$SANITIZER_RE" "$WORK/down.log"
check "spool.fsync never: the kafka spool is never synced" [ "$(syncs kf)" -eq 0 ]

# ---- 3. peers back: a restart replays every spool --------------------------------------------
ids_of "$WORK/down.jsonl" >"$WORK/down.ids"
start_http web2 sink "$WORK/web2.jsonl"
start_mosquitto mq2
start_mqtt_rx mqrx2 "$MQTT_PORT" 'it/#'
start_kafka kf2 pskgw-it
sinks_conf down "$HTTP_URL" "$MQTT_PORT" "$KAFKA_BOOT"
start_gateway_args down
wait_lines "$WORK/web2.jsonl" 12 30 || true
check "replay: the http receiver gets the 12 messages of the outage" \
  diff <(ids_of "$WORK/web2.jsonl") "$WORK/down.ids"
wait_lines "$WORK/mqrx2.out" 13 30 || true
mqtt_envelopes mqrx2
check "replay: the mqtt subscriber gets the 12 messages" diff <(ids_of "$WORK/mqrx2.jsonl") "$WORK/down.ids"
wait_lines "$WORK/kf2.out" 13 30 || true
kafka_envelopes kf2
check "replay: the kafka topic gets the 12 messages" diff <(ids_of "$WORK/kf2.jsonl") "$WORK/down.ids"
for s in web mq kf; do
  check "sink $s: 12 replayed from the spool (metric)" \
    [ "$(wait_metric "pskgw_sink_replayed_total{domain=\"down\",sink=\"$s\"}" -ge 12)" -ge 12 ]
done
stop_gateway_checked down
stop_peer web2
stop_peer mqrx2
stop_peer mq2
stop_peer kf2

finish_peers

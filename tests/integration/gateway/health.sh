#!/usr/bin/env bash
# Health that tells the truth (issue 11.2), through the real pskgw with pskgw-sim, Redis and
# file sinks: /ready is 200 in the good case and 503 naming the failing part (domain, part,
# reason) with wrong API credentials, with Redis down (200 again once it is back), with an
# unwritable sink without a spool, with an idle MQTT or redis-stream sink whose broker or Redis is
# down (from the start or stopped while idle), with an idle http sink whose target stops (its HEAD
# probe; 200 again once the target is back), with an idle kafka sink whose brokers go down (200
# again once they are back, through its metadata probe); it stays 200 while such a sink spools within its limits, and
# while the security service is gone but keys are servable from cache (Redis up).
# /health (liveness) is 200 in all of these, and pskgw_ready / pskgw_ready_part agree.
. "$(dirname "$0")/lib.sh"

start_sim
start_redis
head -c 32 /dev/urandom >"$WORK/kek"
touch "$WORK/not-a-dir" # a file sink under it can never open its file

base() { echo "${GW_ADMIN%/metrics}"; }
code_of() { curl -s -o "$WORK/last.body" -w '%{http_code}' "$(base)$1"; }
health_ok() { [ "$(code_of /health)" = 200 ] && grep -qx ok "$WORK/last.body"; }
ready_ok() { # /ready is 200, says ready, names no failing part
  [ "$(code_of /ready)" = 200 ] &&
    jq -e '.ready == true and .status == "ready" and (.failing | length) == 0' "$WORK/last.body" >/dev/null
}
ready_fails_on() { # domain part reason-regex: /ready is 503 and names that part as failing
  [ "$(code_of /ready)" = 503 ] &&
    jq -e --arg d "$1" --arg p "$2" --arg r "$3" \
      '.ready == false and (.failing | any(.domain == $d and .part == $p and (.reason | test($r))))' \
      "$WORK/last.body" >/dev/null
}
part_is() { # domain part ready(true|false) detail-regex: the part as /ready lists it
  code_of /ready >/dev/null &&
    jq -e --arg d "$1" --arg p "$2" --argjson ok "$3" --arg r "$4" \
      '.parts | any(.domain == $d and .part == $p and .ready == $ok and (.detail | test($r)))' \
      "$WORK/last.body" >/dev/null
}
only_failing() { # n: /ready names exactly n failing parts
  code_of /ready >/dev/null && jq -e --argjson n "$1" '(.failing | length) == $n' "$WORK/last.body" >/dev/null
}
sink_conf() { # name sink-line: replace the sinks of a domain file
  sed -i "s#^sinks = .*#$2#" "$WORK/$1.conf"
}
send() { # a few devices send a few messages (outcome not judged: the sinks are)
  "$BIN/pskgw-devsim" --target "127.0.0.1:$GW_UDP" --seed it --devices 2 --messages 3 --rate 20 \
    --duration 20 --quiet >"$WORK/send.txt" 2>&1 || true
}

# --- the good case, then Redis down and back -------------------------------------------------
write_config h '' ''
sed -i "s#^cache = .*#cache = { entries = 1000; ttl_s = 600; redis = \"redis://127.0.0.1:$REDIS_PORT/0\"; kek_file = \"kek\"; };#" \
  "$WORK/h.conf"
start_gateway h
check "good case: /ready 200, no failing part" wait_until ready_ok
for p in listener/dtls listener/tls upstream cache/psk cache/e2e invalidation sink/file-0; do
  check "good case: part $p listed ready" part_is h "$p" true .
  check "good case: pskgw_ready_part{part=\"$p\"} 1" \
    wait_metric "pskgw_ready_part{domain=\"h\",part=\"$p\"}" = 1
done
check "good case: upstream authenticated" part_is h upstream true '^authenticated$'
check "good case: pskgw_ready 1" wait_metric 'pskgw_ready ' = 1
check "good case: /health 200" health_ok
send
check "good case: messages delivered to the file" wait_until count_is "$WORK/h.jsonl" . -ge 6
check "good case: still ready after traffic" ready_ok

stop_proc "$REDIS_PID" || true # one check: redis-server ended with 0
check "Redis down: /ready 503 naming cache/psk (redis not connected)" \
  wait_until ready_fails_on h cache/psk 'redis not connected'
check "Redis down: cache/e2e named too" ready_fails_on h cache/e2e 'redis not connected'
check "Redis down: the invalidation subscriber named too" \
  wait_until ready_fails_on h invalidation 'not subscribed to invalidations'
check "Redis down: nothing else failing" only_failing 3
check "Redis down: pskgw_ready 0" wait_metric 'pskgw_ready ' = 0
check "Redis down: pskgw_ready_part{part=\"cache/psk\"} 0" \
  wait_metric 'pskgw_ready_part{domain="h",part="cache/psk"}' = 0
check "Redis down: pskgw_ready_part{part=\"upstream\"} still 1" \
  metric_is 'pskgw_ready_part{domain="h",part="upstream"}' = 1
check "Redis down: /health 200" health_ok
start_redis # the same reserved port
check "Redis back: /ready 200 again" wait_until ready_ok
check "Redis back: pskgw_ready 1" wait_metric 'pskgw_ready ' = 1
check "Redis back: /health 200" health_ok
stop_gateway || true

# --- wrong API credentials -------------------------------------------------------------------
write_config bad '' ''
# Re-authentication asked every second (api.reauth_interval_ms, 10 s by default): three tries
# within the run, not one every 10 s.
sed -i 's/key_id = "it-key";/key_id = "not-our-key"; reauth_interval_ms = 1000;/' "$WORK/bad.conf"
start_gateway bad
check "wrong credentials: /ready 503 naming upstream (credentials refused)" \
  wait_until ready_fails_on bad upstream 'credentials refused'
check "wrong credentials: only upstream failing" only_failing 1
check "wrong credentials: pskgw_ready 0" wait_metric 'pskgw_ready ' = 0
check "wrong credentials: pskgw_ready_part{part=\"upstream\"} 0" \
  wait_metric 'pskgw_ready_part{domain="bad",part="upstream"}' = 0
check "wrong credentials: /health 200" health_ok
check "wrong credentials: authentication tried again without traffic" \
  wait_metric 'pskgw_upstream_requests_total{domain="bad",op="authenticate",outcome="auth"}' -ge 3
check "wrong credentials: still 503 after trying again" ready_fails_on bad upstream 'credentials refused'
stop_gateway || true

# --- an unwritable sink without a spool ------------------------------------------------------
write_config nospool '' ''
sink_conf nospool "sinks = ( { type = \"file\"; path = \"$WORK/not-a-dir/x.jsonl\"; retry_max_ms = 200; } );"
start_gateway nospool
check "unwritable sink, idle: ready (nothing failed yet)" wait_until ready_ok
send
check "unwritable sink: attempts failed" wait_metric 'pskgw_sink_retried_total{domain="nospool"' -ge 1
check "unwritable sink, no spool: /ready 503 naming sink/file-0 (target failing, no spool)" \
  wait_until ready_fails_on nospool sink/file-0 'target failing and no spool'
check "unwritable sink, no spool: only the sink failing" only_failing 1
check "unwritable sink, no spool: pskgw_ready 0" wait_metric 'pskgw_ready ' = 0
check "unwritable sink, no spool: pskgw_ready_part{part=\"sink/file-0\"} 0" \
  wait_metric 'pskgw_ready_part{domain="nospool",part="sink/file-0"}' = 0
check "unwritable sink, no spool: /health 200" health_ok
stop_gateway || true

# --- the same sink with a spool: ready while it spools within its limit ----------------------
write_config spool '' ''
sink_conf spool "sinks = ( { type = \"file\"; path = \"$WORK/not-a-dir/x.jsonl\"; retry_max_ms = 200; queue_size = 1; spool = { path = \"$WORK/spool\"; max_bytes = 1048576; }; } );"
start_gateway spool
check "unwritable sink with spool, idle: ready" wait_until ready_ok
send
check "unwritable sink with spool: messages spooled" wait_metric 'pskgw_sink_spooled_total{domain="spool"' -ge 1
check "unwritable sink with spool: attempts failed" wait_metric 'pskgw_sink_retried_total{domain="spool"' -ge 1
check "unwritable sink with spool: the part says it spools" \
  wait_until part_is spool sink/file-0 true 'target failing: spooling'
check "unwritable sink with spool: /ready 200" ready_ok
check "unwritable sink with spool: pskgw_ready 1" metric_is 'pskgw_ready ' = 1
check "unwritable sink with spool: /health 200" health_ok
stop_gateway || true

# --- an MQTT sink without a spool, idle: its connection is its liveness -----------------------
# Down from the start (nothing listens on its port), it is not ready although no message failed;
# ready once a broker runs there; not ready again when the broker stops while the sink is idle.
MQ_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'persistence false\nuser %s\nallow_anonymous true\nlistener %s 127.0.0.1\n' \
  "$(id -un)" "$MQ_PORT" >"$WORK/mq.conf.broker"
write_config mq '' ''
sink_conf mq "sinks = ( { type = \"mqtt\"; name = \"mq\"; host = \"127.0.0.1\"; port = $MQ_PORT; topic = \"it/{domain}\"; retry_max_ms = 500; } );"
start_gateway mq
check "mqtt sink, broker down from the start, idle: /ready 503 naming sink/mq" \
  wait_until ready_fails_on mq sink/mq 'target failing and no spool'
check "mqtt sink, broker down: pskgw_sink_connected 0" \
  wait_metric 'pskgw_sink_connected{domain="mq",sink="mq"}' = 0
/usr/sbin/mosquitto -c "$WORK/mq.conf.broker" >"$WORK/mosquitto.log" 2>&1 &
MQ_PID=$!
track mosquitto "$MQ_PID" "$WORK/mosquitto.log"
check "mqtt sink, broker up, idle: /ready 200" wait_until ready_ok
check "mqtt sink, broker up: pskgw_sink_connected 1" \
  wait_metric 'pskgw_sink_connected{domain="mq",sink="mq"}' = 1
stop_proc "$MQ_PID" || true
check "mqtt sink, broker stopped while idle: /ready 503 naming sink/mq" \
  wait_until ready_fails_on mq sink/mq 'target failing and no spool'
check "mqtt sink, nothing was sent" metric_is 'pskgw_sink_queued_total{domain="mq",sink="mq"}' = 0
stop_gateway || true

# --- a redis-stream sink without a spool, idle: the same with Redis ---------------------------
RS_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
write_config rs '' ''
sink_conf rs "sinks = ( { type = \"redis-stream\"; name = \"rs\"; url = \"redis://127.0.0.1:$RS_PORT/0\"; stream = \"it:{domain}\"; retry_max_ms = 500; } );"
start_gateway rs
check "redis-stream sink, Redis down from the start, idle: /ready 503 naming sink/rs" \
  wait_until ready_fails_on rs sink/rs 'target failing and no spool'
redis-server --port "$RS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" \
  >"$WORK/redis-rs.log" 2>&1 &
RS_PID=$!
track "redis-server (sink)" "$RS_PID" "$WORK/redis-rs.log"
check "redis-stream sink, Redis up, idle: /ready 200" wait_until ready_ok
check "redis-stream sink, Redis up: pskgw_sink_connected 1" \
  wait_metric 'pskgw_sink_connected{domain="rs",sink="rs"}' = 1
stop_proc "$RS_PID" || true
check "redis-stream sink, Redis stopped while idle: /ready 503 naming sink/rs" \
  wait_until ready_fails_on rs sink/rs 'target failing and no spool'
stop_gateway || true

# --- an http sink without a spool, idle: its probe (HEAD every probe_interval_s) tells -------
# A web server on a port reserved for the section answers, is stopped, is started again on the
# same port: /ready follows it with no message sent.
reserve_ports tcp
WEB_PORT=${PORTS[0]}
mkdir -p "$WORK/www"
web_up() {
  python3 -m http.server "$WEB_PORT" --bind 127.0.0.1 --directory "$WORK/www" \
    >"$WORK/web$1.log" 2>&1 &
  WEB_PID=$!
  track "http.server (sink target)" "$WEB_PID" "$WORK/web$1.log"
  wait_until curl -sf -o /dev/null "http://127.0.0.1:$WEB_PORT/"
}
web_up 1
write_config hp '' ''
sink_conf hp "sinks = ( { type = \"http\"; name = \"web\"; url = \"http://127.0.0.1:$WEB_PORT/hook\"; probe_interval_s = 1; retry_max_ms = 500; } );"
start_gateway hp
check "http sink, target up, idle: /ready 200" wait_until ready_ok
stop_proc "$WEB_PID" 0,143 || true
check "http sink, target stopped while idle: /ready 503 naming sink/web" \
  wait_until ready_fails_on hp sink/web 'target failing and no spool'
check "http sink, target stopped: pskgw_sink_connected 0" \
  wait_metric 'pskgw_sink_connected{domain="hp",sink="web"}' = 0
check "http sink, the probe's verdict is logged" \
  grep -q 'sink "hp-web": probe: the target does not answer' "$WORK/hp.log"
web_up 2
check "http sink, target back, idle: /ready 200" wait_until ready_ok
check "http sink, target back: pskgw_sink_connected 1" \
  wait_metric 'pskgw_sink_connected{domain="hp",sink="web"}' = 1
check "http sink, nothing was sent" metric_is 'pskgw_sink_queued_total{domain="hp",sink="web"}' = 0
check "http sink, the probes were HEAD requests" grep -q '"HEAD /hook HTTP/1.1"' "$WORK/web2.log"
stop_gateway || true
stop_proc "$WEB_PID" 0,143 || true
stop_proc "$RESERVE_PID" || true

# --- a kafka sink without a spool, idle: brokers down, then back --------------------------------
# librdkafka's mock cluster (pskgw-peerrx): SIGUSR1 takes its brokers down, SIGUSR2 brings them
# back. Down: librdkafka reports every broker down; back: the sink's metadata probe sees them
# answer, and /ready is 200 again with no message sent (before, only a delivery told it).
"$BIN/pskgw-peerrx" kafka pskgw-hp >"$WORK/kf.out" 2>"$WORK/kf.err" &
KF_PID=$!
track "pskgw-peerrx kafka" "$KF_PID" "$WORK/kf.out" "$WORK/kf.err"
KAFKA_BOOT=$(WAIT_PID=$KF_PID wait_for "$WORK/kf.out" '^bootstrap .*' | cut -d' ' -f2)
write_config kf '' ''
sink_conf kf "sinks = ( { type = \"kafka\"; name = \"kf\"; brokers = \"$KAFKA_BOOT\"; topic = \"pskgw-hp\"; retry_max_ms = 500; } );"
start_gateway kf
check "kafka sink, brokers up, idle: /ready 200" wait_until ready_ok
kill -USR1 "$KF_PID"
wait_line "$WORK/kf.out" '^brokers down' "$KF_PID"
check "kafka sink, brokers down while idle: /ready 503 naming sink/kf" \
  wait_until ready_fails_on kf sink/kf 'target failing and no spool'
kill -USR2 "$KF_PID"
wait_line "$WORK/kf.out" '^brokers up' "$KF_PID"
check "kafka sink, brokers back, idle: /ready 200 without a delivery" wait_until ready_ok
check "kafka sink, brokers back: pskgw_sink_connected 1" \
  wait_metric 'pskgw_sink_connected{domain="kf",sink="kf"}' = 1
check "kafka sink, the probe's verdict is logged" \
  grep -q 'sink "kf-kf": kafka: the brokers answer again (metadata): connected' "$WORK/kf.log"
check "kafka sink, nothing was sent" metric_is 'pskgw_sink_queued_total{domain="kf",sink="kf"}' = 0
stop_gateway || true
stop_proc "$KF_PID" || true

# --- the security service gone: ready while keys are servable from cache ---------------------
start_sim --token-ttl 3 # a token that ends soon after the service is gone
write_config out '' ''
sed -i "s#^cache = .*#cache = { entries = 1000; ttl_s = 600; redis = \"redis://127.0.0.1:$REDIS_PORT/0\"; kek_file = \"kek\"; };#" \
  "$WORK/out.conf"
start_gateway out
check "service outage: ready before it" wait_until ready_ok
stop_proc "$SIM_PID" || true # one check: pskgw-sim ended with 0
check "service outage, Redis up: upstream ready, keys served from cache" \
  wait_until part_is out upstream true 'unusable.*keys served from cache'
check "service outage, Redis up: /ready 200" ready_ok
stop_proc "$REDIS_PID" || true
check "service outage, Redis down, nothing in memory: /ready 503 naming upstream" \
  wait_until ready_fails_on out upstream 'security service unusable'
check "service outage, Redis down: cache/psk named too" wait_until ready_fails_on out cache/psk 'redis not connected'
check "service outage: /health 200" health_ok
stop_gateway || true
finish

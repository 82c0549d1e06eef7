#!/usr/bin/env bash
# The gateway hands every sink option of the configuration to the sink set: a redis-stream
# sink whose Redis requires a password (password_file) gets every message of a fleet, and the
# devices are acknowledged. /ready turns 503 when a sink drops messages (/healthz is liveness only
# since issue 11.2).
. "$(dirname "$0")/lib.sh"

start_sim
printf 'r3dis-pass\n' >"$WORK/redis.pass"
start_redis --requirepass r3dis-pass
port=$REDIS_PORT
rcli() { redis-cli -p "$port" --no-auth-warning -a r3dis-pass "$@"; }
check "redis-server with requirepass is up" bash -c "redis-cli -p $port --no-auth-warning -a r3dis-pass ping | grep -q PONG"

write_config rs '' 'ack = "accepted";'
sed -i "s#^sinks = .*#sinks = ( { type = \"redis-stream\"; url = \"redis://127.0.0.1:$port/0\"; password_file = \"redis.pass\"; stream = \"it:{domain}\"; } );#" \
  "$WORK/rs.conf"
# Keys that no module takes are not in the schema: a file still using one is refused.
sed 's/timeout_ms = 2000;/timeout_ms = 2000; retries = 5;/; s/stream = "it:{domain}";/& retry_min_ms = 200;/' \
  "$WORK/rs.conf" >"$WORK/removed.conf"
"$BIN/pskgw" --check-config "$WORK/removed.conf" >/dev/null 2>"$WORK/removed.err" && rc=0 || rc=$?
check "a removed key is refused (exit 2)" [ "$rc" -eq 2 ]
check "api.retries: unknown key" grep -q "api.retries: unknown key" "$WORK/removed.err"
check "sinks[0].retry_min_ms: unknown key" grep -q "sinks\[0\].retry_min_ms: unknown key" "$WORK/removed.err"
# The limits keys reach the listener: one handshake per second per address with a burst of 100
# lets the 4 devices of one source address start together (were the burst dropped, the bucket
# would hold one handshake and the others would be counted as rate limited).
echo 'limits = { per_ip_handshakes_per_s = 1; per_ip_handshake_burst = 100; max_parked_bytes = 4096; };' \
  >>"$WORK/rs.conf"
start_gateway rs
"$BIN/pskgw-devsim" --target "127.0.0.1:$GW_UDP" --seed it --devices 4 --devices-per-ip 4 \
  --messages 3 --rate 20 --expect-ack --duration 20 --quiet >"$WORK/fleet.txt" 2>&1 && rc=0 || rc=$?
burst_taken() {
  wait_metric 'pskgw_listener_handshakes_completed_total{domain="rs",listener="dtls"}' -ge 4 &&
    metric_is 'pskgw_listener_rate_limited_total{domain="rs",listener="dtls"}' = 0
}
check "limits.per_ip_handshake_burst reaches the listener: no handshake rate limited" burst_taken
check "redis-stream sink with AUTH: devices acknowledged" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || sed 's/^/  | /' "$WORK/fleet.txt" | tail -n 15
stream_len_is() { [ "$(rcli xlen it:rs)" = "$1" ]; }
check "redis-stream sink with AUTH: 12 entries in the stream" wait_until stream_len_is 12
check "the redis password never reaches the log" bash -c "! grep -q 'r3dis-pass' '$WORK/rs.log'"
stop_gateway || true # one check: exit 0, no sanitizer report

# Health reports a sink that drops messages: a file sink that cannot open its file (a path
# under a regular file) and a queue of one message, no spool.
write_config drop '' ''
touch "$WORK/not-a-dir"
sed -i "s#^sinks = .*#sinks = ( { type = \"file\"; path = \"$WORK/not-a-dir/x.jsonl\"; queue_size = 1; } );#" \
  "$WORK/drop.conf"
start_gateway drop
HEALTH=${GW_ADMIN%/metrics}/ready
check "ready before any message" wait_until bash -c "curl -sf '$HEALTH' | grep -q '\"ready\":true'"
"$BIN/pskgw-devsim" --target "127.0.0.1:$GW_UDP" --seed it --devices 3 --messages 3 --rate 20 \
  --duration 20 --quiet >"$WORK/drop.txt" 2>&1 || true
check "metrics: dropped messages counted" wait_metric 'pskgw_sink_dropped_total{domain="drop"' -ge 1
# The health state is published with the metrics, once a second: wait for it.
health_code() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$HEALTH")" = "$1" ]; }
check "ready is 503 while the sink drops messages" wait_until health_code 503
echo "SIGTERM with an undeliverable message queued:"
stop_gateway || true # one check: exit 0, no sanitizer report
finish

#!/usr/bin/env bash
# The gateway hands every sink option of the configuration to the sink set: a redis-stream
# sink whose Redis requires a password (password_file) gets every message of a fleet, and the
# devices are acknowledged. /healthz turns 503 when a sink drops messages.
. "$(dirname "$0")/lib.sh"

start_sim
port=$((20000 + RANDOM % 30000))
printf 'r3dis-pass\n' >"$WORK/redis.pass"
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" \
  --requirepass r3dis-pass --loglevel warning >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
rcli() { redis-cli -p "$port" --no-auth-warning -a r3dis-pass "$@"; }
for _ in $(seq 50); do rcli ping >/dev/null 2>&1 && break; sleep 0.1; done
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
# Every key left is taken by a module: nothing is named as ignored at start-up.
echo 'limits = { per_ip_handshake_burst = 100; max_parked_bytes = 4096; };' >>"$WORK/rs.conf"
start_gateway rs
check "no configuration key is ignored" bash -c "! grep -q 'ignored' '$WORK/rs.log'"
"$BIN/pskgw-devsim" --target "127.0.0.1:$GW_UDP" --seed it --devices 4 --messages 3 --rate 20 \
  --expect-ack --duration 20 --quiet >"$WORK/fleet.txt" 2>&1 && rc=0 || rc=$?
check "redis-stream sink with AUTH: devices acknowledged" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || sed 's/^/  | /' "$WORK/fleet.txt" | tail -n 15
check "redis-stream sink with AUTH: 12 entries in the stream" [ "$(rcli xlen it:rs)" = 12 ]
check "the redis password never reaches the log" bash -c "! grep -q 'r3dis-pass' '$WORK/rs.log'"
stop_gateway && rc=0 || rc=$?
check "SIGTERM: clean exit 0" [ "$rc" -eq 0 ]

# Health reports a sink that drops messages: a file sink that cannot open its file (a path
# under a regular file) and a queue of one message, no spool.
write_config drop '' ''
touch "$WORK/not-a-dir"
sed -i "s#^sinks = .*#sinks = ( { type = \"file\"; path = \"$WORK/not-a-dir/x.jsonl\"; queue_size = 1; } );#" \
  "$WORK/drop.conf"
start_gateway drop
HEALTH=${GW_ADMIN%/metrics}/healthz
check "health ok before any message" bash -c "curl -sf '$HEALTH' | grep -q ok"
"$BIN/pskgw-devsim" --target "127.0.0.1:$GW_UDP" --seed it --devices 3 --messages 3 --rate 20 \
  --duration 20 --quiet >"$WORK/drop.txt" 2>&1 || true
for _ in $(seq 30); do
  [ "$(metric 'pskgw_sink_dropped_total{domain="drop"')" -ge 1 ] 2>/dev/null && break
  sleep 0.2
done
check "metrics: dropped messages counted" [ "$(metric 'pskgw_sink_dropped_total{domain="drop"')" -ge 1 ]
sleep 1.2 # the health state is published with the metrics, once a second
code=$(curl -s -o /dev/null -w '%{http_code}' "$HEALTH")
check "health is 503 while the sink drops messages (got $code)" [ "$code" = 503 ]
stop_gateway && rc=0 || rc=$?
check "SIGTERM with an undeliverable message queued: clean exit 0" [ "$rc" -eq 0 ]
finish

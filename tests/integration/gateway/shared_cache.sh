#!/usr/bin/env bash
# Two gateways sharing one Redis (cache.redis + the same kek_file): devices that connected to
# the first are served by the second without a GetPSK call; with Redis stopped the gateways keep
# serving known devices from memory, and they reconnect when it is back.
. "$(dirname "$0")/lib.sh"

port=$((20000 + RANDOM % 30000))
redis_start() {
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" \
    --loglevel warning >"$WORK/redis.log" 2>&1 &
  REDIS_PID=$!
  PIDS+=($REDIS_PID)
  for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}
redis_start || { echo "redis-server did not start"; exit 1; }
head -c 32 /dev/urandom >"$WORK/kek"
start_sim
cache="cache = { entries = 1000; ttl_s = 600; redis = \"redis://127.0.0.1:$port/0\"; kek_file = \"kek\"; };"
write_config a "" ""
write_config b "" ""
sed -i "s#^cache = .*#$cache#" "$WORK/a.conf" "$WORK/b.conf"
# The second gateway serves the same domain (the cache is namespaced per domain).
sed -i 's/^domain = "b";/domain = "a";/' "$WORK/b.conf"
start_gateway a
A_UDP=$GW_UDP A_PID=$GW_PID
start_gateway b
B_UDP=$GW_UDP B_ADMIN=$GW_ADMIN

fleet() { # port run-file -> exit status
  "$BIN/pskgw-devsim" --target "127.0.0.1:$1" --seed it --devices 20 --messages 2 --rate 20 \
    --duration 60 --verify-file "$2" --quiet >"$WORK/fleet.txt" 2>&1
}
calls() { curl -s "$SIM_URL/_sim/stats" | jq '.calls.get_psk'; }

check "first gateway: fleet delivered" fleet "$A_UDP" "$WORK/a.jsonl"
c1=$(calls)
check "first gateway asked the service once per device ($c1)" [ "$c1" -eq 20 ]
keys=$(redis-cli -p "$port" --scan --pattern '*' | wc -l)
check "the keys are in Redis ($keys)" [ "$keys" -ge 20 ]
check "Redis values are sealed (no PSK or UID in clear)" bash -c \
  "! redis-cli -p $port --scan | head -n 3 | xargs -I{} redis-cli -p $port --raw GET {} | grep -q '0002000'"
check "second gateway: same fleet delivered" fleet "$B_UDP" "$WORK/b.jsonl"
c2=$(calls)
check "second gateway made no GetPSK call ($c1 -> $c2)" [ "$c2" -eq "$c1" ]
sleep 1.2
GW_ADMIN=$B_ADMIN
hits=$(metric 'pskgw_keycache_hits_redis_total{domain="a",cache="psk"}')
check "second gateway counted Redis hits ($hits)" [ "${hits:-0}" -ge 20 ]

kill -TERM "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null || true
check "Redis down: known devices still connect" fleet "$A_UDP" "$WORK/a.jsonl"
redis_start
sleep 1.5
check "Redis back: fleet still delivered" fleet "$B_UDP" "$WORK/b.jsonl"
sleep 1.2
GW_ADMIN=$B_ADMIN
check "the gateway reconnected to Redis" [ "$(metric 'pskgw_keycache_redis_connected{domain="a",cache="psk"}')" = 1 ]
finish

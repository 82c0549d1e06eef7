#!/usr/bin/env bash
# Two gateways sharing one Redis (cache.redis + the same kek_file): devices that connected to
# the first are served by the second without a GetPSK call; with Redis stopped the gateways keep
# serving known devices from memory, and they reconnect when it is back (on the same reserved
# port).
. "$(dirname "$0")/lib.sh"

start_redis
port=$REDIS_PORT
head -c 32 /dev/urandom >"$WORK/kek"
start_sim
cache="cache = { entries = 1000; ttl_s = 600; redis = \"redis://127.0.0.1:$port/0\"; kek_file = \"kek\"; };"
write_config a "" ""
write_config b "" ""
sed -i "s#^cache = .*#$cache#" "$WORK/a.conf" "$WORK/b.conf"
# The second gateway serves the same domain (the cache is namespaced per domain).
sed -i 's/^domain = "b";/domain = "a";/' "$WORK/b.conf"
start_gateway a
A_UDP=$GW_UDP A_ADMIN=$GW_ADMIN
start_gateway b
B_UDP=$GW_UDP B_ADMIN=$GW_ADMIN
CONNECTED='pskgw_keycache_redis_connected{domain="a",cache="psk"}'

fleet() { # port run-file -> exit status
  "$BIN/pskgw-devsim" --target "127.0.0.1:$1" --seed it --devices 20 --messages 2 --rate 20 \
    --duration 60 --verify-file "$2" --quiet >"$WORK/fleet.txt" 2>&1
}
calls() { curl -s "$SIM_URL/_sim/stats" | jq '.calls.get_psk'; }

check "first gateway connected to Redis" wait_metric "$CONNECTED" = 1 "$A_ADMIN"
check "second gateway connected to Redis" wait_metric "$CONNECTED" = 1 "$B_ADMIN"
check "first gateway: fleet delivered" fleet "$A_UDP" "$WORK/a.jsonl"
c1=$(calls)
check "first gateway asked the service once per device ($c1)" [ "$c1" -eq 20 ]
keys=$(redis-cli -p "$port" --scan --pattern '*' | wc -l)
check "the keys are in Redis ($keys)" [ "$keys" -ge 20 ]

# Sealed values: every key holds a value, and no value holds a device's PSK (raw bytes, upper
# or lower case hex) or its ROT public UID. The secrets come from the simulator's derivation.
redis-cli -p "$port" --scan --pattern '*' >"$WORK/keys.txt"
: >"$WORK/values.hex"
while read -r k; do
  redis-cli -p "$port" --raw GET "$k" | head -c -1 | od -An -v -tx1 | tr -d ' \n' >>"$WORK/values.hex"
  echo >>"$WORK/values.hex"
done <"$WORK/keys.txt"
hex() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }
: >"$WORK/secrets.hex"
for i in $(seq 0 19); do
  d=$("$BIN/pskgw-sim" --seed it --show-device "$i")
  for f in psk_128 psk_256 ROTPublicUID; do
    v=$(jq -r ".$f" <<<"$d")
    { hex "$v"; echo; hex "${v,,}"; echo; echo "${v,,}"; } >>"$WORK/secrets.hex" # the last: raw
  done
done
sealed() {
  [ "$(grep -c . "$WORK/values.hex")" -eq "$keys" ] || { echo "  an empty value in Redis"; return 1; }
  [ "$(grep -c . "$WORK/secrets.hex")" -eq 180 ] || { echo "  secrets not all derived"; return 1; }
  ! grep -qFf "$WORK/secrets.hex" "$WORK/values.hex"
}
check "Redis values are sealed: one per key, none holds a PSK or UID of the 20 devices (raw or hex)" sealed

check "second gateway: same fleet delivered" fleet "$B_UDP" "$WORK/b.jsonl"
c2=$(calls)
check "second gateway made no GetPSK call ($c1 -> $c2)" [ "$c2" -eq "$c1" ]
check "second gateway counted Redis hits (at least 20)" \
  wait_metric 'pskgw_keycache_hits_redis_total{domain="a",cache="psk"}' -ge 20 "$B_ADMIN"

stop_proc "$REDIS_PID" || true
check "Redis down: the first gateway saw it" wait_metric "$CONNECTED" = 0 "$A_ADMIN"
check "Redis down: known devices still connect" fleet "$A_UDP" "$WORK/a.jsonl"
start_redis
check "Redis back: the second gateway reconnected" wait_metric "$CONNECTED" = 1 "$B_ADMIN"
check "Redis back: fleet still delivered" fleet "$B_UDP" "$WORK/b.jsonl"
check "Redis back: the first gateway reconnected" wait_metric "$CONNECTED" = 1 "$A_ADMIN"
finish

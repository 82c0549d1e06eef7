#!/usr/bin/env bash
# Redis Sentinel failover under a running gateway (issue 11, section 6): one master, one replica
# and three sentinels on loopback; the key cache and a redis-stream sink use
# redis+sentinel://.../pskgw. The master is stopped (SIGTERM), Sentinel promotes the replica, and
# the same gateway process (no restart) reconnects both to the new master; every message
# acknowledged to a device (before, during and after the failover; the sink spools while no
# master answers) is in the stream of the new master (duplicates allowed: at-least-once).
. "$(dirname "$0")/lib.sh"
. "$SRC/tests/support/skip.sh"

if ! command -v redis-sentinel >/dev/null; then
  pskgw_missing redis-sentinel redis-sentinel || exit 1
  trap - EXIT
  rm -rf "$WORK"
  pskgw_skip_status 0 0 || exit $?
fi

SPID=()
reserve_ports tcp tcp tcp tcp tcp
M=${PORTS[0]} R=${PORTS[1]} S=("${PORTS[2]}" "${PORTS[3]}" "${PORTS[4]}")
redis_on() { # name port [flags...]: a redis-server on a reserved port; sets LAST_PID
  redis-server --port "$2" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" \
    --loglevel notice "${@:3}" >"$WORK/$1.log" 2>&1 &
  track "redis-server $1" $! "$WORK/$1.log"
  LAST_PID=$!
  WAIT_PID=$! wait_for "$WORK/$1.log" 'Ready to accept connections' >/dev/null
}
redis_on master "$M"
PID_master=$LAST_PID
redis_on replica "$R" --replicaof 127.0.0.1 "$M"
PID_replica=$LAST_PID
check "the replica is in sync with the master" \
  wait_line "$WORK/replica.log" 'MASTER <-> REPLICA sync: Finished with success' "$PID_replica"

for i in 0 1 2; do
  # small timeouts: the master is "down" 1 s after it stops answering
  cat >"$WORK/sentinel$i.conf" <<CONF
port ${S[$i]}
bind 127.0.0.1
dir $WORK
sentinel monitor pskgw 127.0.0.1 $M 2
sentinel down-after-milliseconds pskgw 1000
sentinel failover-timeout pskgw 5000
sentinel parallel-syncs pskgw 1
CONF
  redis-sentinel "$WORK/sentinel$i.conf" >"$WORK/sentinel$i.log" 2>&1 &
  track "redis-sentinel $i" $! "$WORK/sentinel$i.log"
  SPID[i]=$!
done
for i in 0 1 2; do
  check "sentinel $i monitors the master" \
    wait_line "$WORK/sentinel$i.log" "\\+monitor master pskgw 127\\.0\\.0\\.1 $M" "${SPID[$i]}"
  check "sentinel $i knows the replica" \
    wait_line "$WORK/sentinel$i.log" "\\+slave slave 127\\.0\\.0\\.1:$R" "${SPID[$i]}"
  # a failover needs a majority of the sentinels: each one must have found the two others
  check "sentinel $i found the other two" \
    wait_until count_is "$WORK/sentinel$i.log" '\+sentinel sentinel ' -ge 2
done

start_sim
head -c 32 /dev/urandom >"$WORK/kek"
SENTINELS="127.0.0.1:${S[0]},127.0.0.1:${S[1]},127.0.0.1:${S[2]}"
write_config fo '' 'ack = "accepted";'
sed -i "s#^cache = .*#cache = { entries = 1000; ttl_s = 600; redis = \"redis+sentinel://$SENTINELS/pskgw/0\"; kek_file = \"kek\"; redis_timeout_ms = 1000; };#" \
  "$WORK/fo.conf"
# the file sink holds every message the gateway accepted: the reference for the stream; the
# redis-stream sink has a queue of 2: while no master answers, messages go to its spool
sed -i "s#^sinks = .*#sinks = ( { type = \"file\"; path = \"$WORK/fo.jsonl\"; }, { name = \"rs\"; type = \"redis-stream\"; url = \"redis+sentinel://$SENTINELS/pskgw\"; stream = \"fo:{domain}\"; retry_max_ms = 500; queue_size = 2; spool = { path = \"$WORK/spool\"; }; } );#" \
  "$WORK/fo.conf"
check "--check-config accepts redis+sentinel:// URLs" "$BIN/pskgw" --check-config "$WORK/fo.conf"
start_gateway fo
check "key cache connected to the master named by the sentinels" \
  wait_line "$WORK/fo.log" "keycache: redis connected to \"127\\.0\\.0\\.1:$M\"" "$GW_PID"
check "redis-stream sink connected to the master named by the sentinels" \
  wait_line "$WORK/fo.log" "sink \"fo-rs\": redis connected to \"127\\.0\\.0\\.1:$M\"" "$GW_PID"

fleet() { # run-id: 6 devices x 4 messages, every one acknowledged (exit 0)
  "$BIN/pskgw-devsim" --target "127.0.0.1:$GW_UDP" --seed it --devices 6 --messages 4 --rate 20 \
    --expect-ack --ack-timeout 20 --duration 60 --run-id "$1" --quiet >"$WORK/fleet-$1.txt" 2>&1
}
check "before the failover: every message acknowledged" fleet 0000000a
CONNECTS='pskgw_keycache_redis_connects_total{domain="fo",cache="psk"}'
c0=$(metric "$CONNECTS")
keys=$(redis-cli -p "$M" --scan --pattern '*' | grep -vc '^fo:' || true)
check "the key cache wrote to the master ($keys keys)" [ "$keys" -ge 6 ]

# Stop the master (SIGTERM: it waits for the replica to catch up, a clean shutdown). Its port
# stays reserved: nothing else can answer there.
stop_proc "$PID_master" || true
# right away, while no master answers (the sentinels wait down-after-milliseconds, 1 s, before
# they even agree it is down): the sink spools, the devices are acknowledged
check "the sink saw the master go" wait_metric 'pskgw_sink_connected{domain="fo",sink="rs"' = 0
check "during the failover: every message acknowledged (spooled)" fleet 0000000b
SPOOLED='pskgw_sink_spooled_total{domain="fo",sink="rs"'
check "the sink spooled while no master answered" wait_metric "$SPOOLED" -ge 1
for i in 0 1 2; do
  check "sentinel $i switched the master to the replica" \
    wait_line "$WORK/sentinel$i.log" "\\+switch-master pskgw 127\\.0\\.0\\.1 $M 127\\.0\\.0\\.1 $R"
done
role_master() { redis-cli -p "$R" role | head -1 | grep -qx master; }
check "the replica is the master now" wait_until role_master
check "key cache reconnected to the new master (same process)" \
  wait_line "$WORK/fo.log" "keycache: redis connected to \"127\\.0\\.0\\.1:$R\"" "$GW_PID"
check "redis-stream sink reconnected to the new master (same process)" \
  wait_line "$WORK/fo.log" "sink \"fo-rs\": redis connected to \"127\\.0\\.0\\.1:$R\"" "$GW_PID"
check "metrics: the key cache counted the reconnect" wait_metric "$CONNECTS" -gt "$c0"
check "metrics: the sink is connected" \
  wait_metric 'pskgw_sink_connected{domain="fo",sink="rs"' = 1
check "after the failover: every message acknowledged" fleet 0000000c
spool_empty() { metric_is 'pskgw_sink_spool_bytes{domain="fo",sink="rs"' = 0; }
check "the spool drained into the new master" wait_until spool_empty
check "metrics: spooled messages replayed" \
  wait_metric 'pskgw_sink_replayed_total{domain="fo",sink="rs"' -ge 1

ids_file() { jq -r '.message_id' "$WORK/fo.jsonl" | sort -u; }
ids_stream() {
  redis-cli -p "$R" --raw xrange fo:fo - + | grep '^{' | jq -r '.message_id' | sort -u
}
all_in_stream() {
  ids_file >"$WORK/ids.file"
  ids_stream >"$WORK/ids.stream"
  [ "$(wc -l <"$WORK/ids.file")" -eq 72 ] && [ -z "$(comm -23 "$WORK/ids.file" "$WORK/ids.stream")" ]
}
check "all 72 acknowledged messages are in the stream of the new master" wait_until all_in_stream
[ -z "$(comm -23 "$WORK/ids.file" "$WORK/ids.stream" 2>/dev/null)" ] ||
  echo "  missing: $(comm -23 "$WORK/ids.file" "$WORK/ids.stream" | wc -l)"
keys=$(redis-cli -p "$R" --scan --pattern '*' | grep -vc '^fo:' || true)
check "the key cache's keys are on the new master ($keys)" [ "$keys" -ge 6 ]
stop_gateway || true # one check: exit 0, no sanitizer report
finish

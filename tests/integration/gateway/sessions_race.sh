#!/usr/bin/env bash
# A stored session is held by one node at a time (issue 12 section 4, docs/SECURITY.md
# "Sessions in Redis"): two pskgw nodes (127.0.0.11, .12) of one domain share one real
# redis-server. A device (pskgw-devsim behind racerelay.py, whose socket is the device's address
# for both nodes) handshakes with node A, its first message is acknowledged, and its session
# hibernates on A and is stored in Redis. With the redis-server stopped (SIGSTOP), a copy of the
# device's next record reaches node B and the record node A (RACE_ORDER=ba, the default), or A
# first and then B (RACE_ORDER=ab), each from the device's own address and port; then Redis
# goes on (SIGCONT). RACE_ORDER=restart: node A restarts (SIGTERM, the state file) before the
# record reaches it; the session, still stored, is claimed by the new process; restart_awake:
# the same with a session awake at the stop (not in Redis): it thaws with no claim and no
# handshake. RACE_ORDER=rehello: the device handshakes again from the same address while its
# old session is stored (nothing of it claimed). RACE_ORDER=taken: Redis running, B takes the session over before the record
# reaches A, whose claim then finds it gone: A's copy ends without a datagram. Exactly one node may send anything to the device afterwards (A and B would
# both write from the same jump of the stored write sequence: AES-CCM nonces used twice), and
# the message is delivered once to the sink both nodes share.
. "$(dirname "$0")/lib.sh"

ORDER=${RACE_ORDER:-ba}
start_redis
rport=$REDIS_PORT
head -c 32 /dev/urandom >"$WORK/kek"
printf 'it-secret' >"$WORK/it.secret"
start_sim --devices 4

HIB=1
case $ORDER in restart_awake) HIB=600 ;; esac # awake at the stop: not stored in Redis
conf() { # name address
  mkdir -p "$WORK/state-$1"
  cat >"$WORK/$1.conf" <<CONF
domain = "race";
state_dir = "$WORK/state-$1";
api = { url = "$SIM_URL"; key_id = "it-key"; secret_file = "it.secret"; timeout_ms = 30000; deadline_ms = 60000; };
listeners = ( { name = "dtls"; proto = "udp"; address = "$2"; port = 0;
                hibernate_after_s = $HIB; ack = "accepted"; } );
cache = { entries = 100; ttl_s = 600; redis = "redis://127.0.0.1:$rport/0"; kek_file = "kek"; };
# (a long reply watchdog: the redis-server is stopped for as long as the test takes)
sessions = { redis = "redis://127.0.0.1:$rport/0"; node_id = "$1"; redis_timeout_ms = 60000; };
sinks = ( { type = "file"; name = "all"; path = "$WORK/all.jsonl"; } );
admin = { address = "127.0.0.1"; port = 0; };
CONF
}
L='{domain="race",listener="dtls"}'
D='{domain="race"}'
m() { metric "$2" "${NODE_ADMIN[$1]}"; } # node metric
sum() { echo $(($(m a "$1") + $(m b "$1"))); }

conf a 127.0.0.11
conf b 127.0.0.12
node a 127.0.0.11
node b 127.0.0.12
for n in a b; do
  check "node $n: sessions' Redis connected" \
    wait_metric "pskgw_sessions_redis_connected$D" = 1 "${NODE_ADMIN[$n]}"
done

# The relay: its socket is the device's address and port for both nodes; the test steers it
# through a FIFO.
mkfifo "$WORK/relay.ctl"
RMODE=()
DFLAGS=()
if [ "$ORDER" = rehello ]; then RMODE=(reconnect) DFLAGS=(--reconnect-every 1); fi
python3 "$LIB_DIR/racerelay.py" 127.0.0.21 "127.0.0.11:${NODE_UDP[a]}" "127.0.0.12:${NODE_UDP[b]}" \
  ${RMODE[@]+"${RMODE[@]}"} <"$WORK/relay.ctl" >"$WORK/relay.out" 2>"$WORK/relay.err" &
RELAY=$!
track relay "$RELAY" "$WORK/relay.out" "$WORK/relay.err"
exec 3>"$WORK/relay.ctl"
rp=$(WAIT_PID=$RELAY wait_for "$WORK/relay.out" '^relay [0-9]+' | grep -Eo '[0-9]+$')

"$BIN/pskgw-devsim" --target "127.0.0.21:$rp" --seed it --devices 1 --messages 2 --rate 1 \
  --expect-ack --ack-timeout 120 --duration 300 --json "$WORK/dev.json" --quiet \
  ${DFLAGS[@]+"${DFLAGS[@]}"} >"$WORK/dev.txt" 2>&1 &
DEV=$!
track devsim "$DEV" "$WORK/dev.txt"

check "node A: the first message acknowledged" \
  wait_metric "pskgw_domain_acks_sent_total$D" -ge 1 "${NODE_ADMIN[a]}"
[ "$ORDER" = rehello ] ||
  check "the device's next record held by the relay" wait_line "$WORK/relay.out" '^held$' "$RELAY"
if [ "$ORDER" != restart_awake ]; then
  check "node A: the session hibernated and stored in Redis" \
    wait_metric "pskgw_sessions_redis_stores_total$D" -ge 1 "${NODE_ADMIN[a]}"
  check "its record in Redis" \
    [ "$(redis-cli -p "$rport" --scan --pattern 'pskgw:sess:race:dtls:*' | wc -l)" -eq 1 ]
fi

if [ "$ORDER" = rehello ]; then
  # The device handshakes again from the same address while its old session is hibernated and
  # stored: the new handshake's records go to the new session, and claim nothing.
  echo "release a" >&3
  check "the device's new handshake released to node A" \
    wait_line "$WORK/relay.out" '^released [0-9]+$' "$RELAY"
  wait "$DEV" && rc=0 || rc=$?
  forget "$DEV"
  cat "$WORK/dev.txt"
  check "devsim: both messages acknowledged, each on its own handshake (exit $rc)" [ "$rc" -eq 0 ]
  # (the metrics are a snapshot: read once it shows the second handshake, which came after
  # anything of the old session)
  check "node A: two handshakes" \
    wait_metric "pskgw_listener_handshakes_completed_total$L" -ge 2 "${NODE_ADMIN[a]}"
  check "node A: the new session replaced the old one" \
    metric_is "pskgw_listener_rehandshakes_total$L" -eq 1 "${NODE_ADMIN[a]}"
  claims=0
  for r in won held gone error; do
    claims=$((claims + $(m a "pskgw_sessions_redis_claims_total{domain=\"race\",result=\"$r\"}")))
  done
  check "no claim: nothing of the new handshake was held for the old session ($claims)" \
    [ "$claims" -eq 0 ]
  check "both messages delivered once" count_is "$WORK/all.jsonl" '"payload"' -eq 2
  exec 3>&-
  finish
  exit
fi
send() { # node: the held record to it, once it is there (its datagram counter)
  local before
  before=$(m "$1" "pskgw_listener_datagrams_in_total$L")
  echo "send $1" >&3
  wait_line "$WORK/relay.out" "^sent $1\$" "$RELAY"
  wait_metric "pskgw_listener_datagrams_in_total$L" -gt "$before" "${NODE_ADMIN[$1]}"
}
first=${ORDER:0:1}
second=${ORDER:1:1}
if [ "${ORDER%_awake}" = restart ]; then
  # Node A restarts (SIGTERM: its session goes to the state file) on the same port; the next
  # process takes the session back, still stored in Redis (restart) or not (restart_awake).
  stop_proc "${NODE_PID[a]}" >/dev/null
  sed -i "s/port = 0;/port = ${NODE_UDP[a]};/" "$WORK/a.conf"
  mv "$WORK/a.log" "$WORK/a-1.log"
  node a 127.0.0.11
  check "node A: the session taken back from the state file" \
    grep -q "1 session taken over without a handshake" "$WORK/a.log"
  check "the record reached the restarted node A" send a
elif [ "$ORDER" = taken ]; then
  # B took the session over before A got the record: A's claim finds it gone.
  check "the record's copy reached node B" send b
  check "node B took the session over" \
    wait_metric "pskgw_listener_redis_imported_total$L" -ge 1 "${NODE_ADMIN[b]}"
  check "the record reached node A" send a
  check "node A's claim lost" wait_metric \
    'pskgw_sessions_redis_claims_total{domain="race",result="gone"}' -ge 1 "${NODE_ADMIN[a]}"
else
  kill -STOP "$REDIS_PID"
  check "the record's copy reached node $first (Redis stopped)" send "$first"
  if [ "$first" = b ]; then
    check "node B: the record held while its Redis lookup is under way" \
      wait_metric "pskgw_listener_redis_parked_total$L" -ge 1 "${NODE_ADMIN[b]}"
  fi
  check "the record reached node $second (Redis stopped)" send "$second"
  kill -CONT "$REDIS_PID"
fi

# The race is decided: B's lookup ended (taken, refused or missed), the message delivered, and
# every message delivered was acknowledged (the acks are what a node sends the device).
looked='pskgw_sessions_redis_lookups_total{domain="race",result='
decided() {
  local n=0 r
  for r in hit miss refused; do n=$((n + $(m b "$looked\"$r\"}"))); done
  [ "$n" -ge 1 ]
}
[ "${ORDER%_awake}" = restart ] || check "node B's lookup ended" wait_until decided
check "the message delivered" wait_until count_is "$WORK/all.jsonl" '"payload"' -ge 2
gone_acks=0 # acknowledgements sent by a process that is gone (restart: the first message's)
[ "${ORDER%_awake}" != restart ] || gone_acks=1
acked() {
  [ $(($(sum "pskgw_domain_acks_sent_total$D") + gone_acks)) -ge "$(grep -c '"payload"' "$WORK/all.jsonl")" ]
}
check "every delivered message acknowledged" wait_until acked
wait "$DEV" && rc=0 || rc=$?
forget "$DEV"
cat "$WORK/dev.txt"
check "devsim: both messages acknowledged (exit $rc)" [ "$rc" -eq 0 ]

senders=$(awk '/^from / { print $2 }' "$WORK/relay.out" | sort -u | tr '\n' ' ')
echo "nodes that sent to the device after the race: ${senders:-none}"
check "exactly one node sent to the device ($senders)" [ "$(echo "$senders" | wc -w)" -eq 1 ]
check "the second message delivered exactly once" count_is "$WORK/all.jsonl" '"payload"' -eq 2
check "no message twice" [ "$(jq -r .payload "$WORK/all.jsonl" | sort | uniq -d | wc -l)" -eq 0 ]
hits=$(m b "$looked\"hit\"}")
won=$(m a 'pskgw_sessions_redis_claims_total{domain="race",result="won"}')
lost=$(($(m a 'pskgw_sessions_redis_claims_total{domain="race",result="held"}') +
  $(m a 'pskgw_sessions_redis_claims_total{domain="race",result="gone"}')))
echo "node A's claim: won $won, lost $lost; node B's lookup: $hits taken"
if [ "$ORDER" != restart_awake ]; then
  check "one claim or take won: A's claim $won + B's take $hits = 1" [ $((won + hits)) -eq 1 ]
  check "node A's claim decided once (won $won, lost $lost)" [ $((won + lost)) -eq 1 ]
fi
if [ "${ORDER%_awake}" = restart ]; then
  check "the restarted node A: no handshake" \
    metric_is "pskgw_listener_handshakes_completed_total$L" -eq 0 "${NODE_ADMIN[a]}"
  check "the restarted node A thawed it" \
    metric_is "pskgw_listener_thaws_total$L" -eq 1 "${NODE_ADMIN[a]}"
  if [ "$ORDER" = restart ]; then
    check "still stored in Redis after the restart: claimed ($won)" [ "$won" -eq 1 ]
  else
    check "not stored in Redis: thawed with no claim" bash -c '[ "$1" -eq 0 ] && [ "$2" -eq 0 ]' _ \
      "$won" "$lost"
  fi
elif [ "$won" -eq 1 ]; then
  check "the node that won (A) sent" [ "$senders" = "a " ]
  check "node A thawed it" metric_is "pskgw_listener_thaws_total$L" -ge 1 "${NODE_ADMIN[a]}"
  check "node B's lookup refused or missed, nothing imported" \
    metric_is "pskgw_listener_redis_imported_total$L" -eq 0 "${NODE_ADMIN[b]}"
else
  check "the node that won (B) sent" [ "$senders" = "b " ]
  check "node A's copy ended without thawing" \
    metric_is "pskgw_listener_thaws_total$L" -eq 0 "${NODE_ADMIN[a]}"
fi
# (what a failed run's kept work directory shows besides the logs)
for n in a b; do curl -s "${NODE_ADMIN[$n]}" | grep -E 'redis|thaw|datagrams_in' >"$WORK/$n.metrics"; done
exec 3>&-
finish

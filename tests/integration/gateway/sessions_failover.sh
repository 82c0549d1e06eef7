#!/usr/bin/env bash
# A lost node costs one round trip (issue 12, section 4), through the real binaries: three pskgw
# nodes (127.0.0.11, .12, .13) of one domain share one real redis-server (cache.redis: keys;
# sessions.redis: hibernated sessions) and one kek_file; a fleet is spread over them (one
# pskgw-devsim per node). Node A's devices start over a few seconds, so that at the kill some of
# their sessions have hibernated (and were stored in Redis) and the last ones are still awake.
# Once every device of A has its first message acknowledged, A gets SIGKILL and its devices'
# next records go to node B from the same source port (devsim --failover-to, as a balancer does
# after losing a node): every message of the fleet is delivered (devsim --verify-file on the
# sink file the three nodes share, acks for the others), the sessions stored in Redis are taken
# over by B with no new handshake (metrics), the others handshake again and that count is
# reported; GetPSK calls per identity across the three nodes = 1. With FAILOVER_CID=1 the same with
# Connection IDs: B finds the sessions by the CID of the records it gets.
. "$(dirname "$0")/lib.sh"

NA=${FAILOVER_DEVICES_A:-40}
NB=${FAILOVER_DEVICES_B:-20}
NC=${FAILOVER_DEVICES_C:-20}
GAP=${FAILOVER_GAP_S:-24} # seconds between a device's messages (the kill happens within the first gap: A's
# fleet is stopped before it, so a gap longer than the ramp, the hibernation and the acks is enough)
# FAILOVER_CID=1: listeners with Connection IDs and wolfSSL devices asking for one (devsim --cid):
# the records that reach node B are tls12_cid records, looked up by their CID.
CID=${FAILOVER_CID:-0}
if [ "$CID" = 1 ]; then LCID='cid = "on";' DCID=(--cid); else LCID='cid = "off";' DCID=(); fi
start_redis
rport=$REDIS_PORT
head -c 32 /dev/urandom >"$WORK/kek"
printf 'it-secret' >"$WORK/it.secret"
start_sim --devices $((NA + NB + NC + 10))

conf() { # name address [more sessions keys]
  cat >"$WORK/$1.conf" <<CONF
domain = "fo";
# (a long request timeout: no retry on a slow service under ASan or load, GetPSK calls are counted)
api = { url = "$SIM_URL"; key_id = "it-key"; secret_file = "it.secret"; timeout_ms = 30000; deadline_ms = 60000; };
listeners = ( { name = "dtls"; proto = "udp"; address = "$2"; port = 0; $LCID
                hibernate_after_s = 4; ack = "accepted"; } );
cache = { entries = 1000; ttl_s = 600; redis = "redis://127.0.0.1:$rport/0"; kek_file = "kek"; };
sessions = { redis = "redis://127.0.0.1:$rport/0"; node_id = "$1"; lease_ms = 3600000; ${3:-} };
sinks = ( { type = "file"; name = "own"; path = "$WORK/$1.jsonl"; },
          { type = "file"; name = "all"; path = "$WORK/all.jsonl"; } );
admin = { address = "127.0.0.1"; port = 0; };
CONF
}
L='{domain="fo",listener="dtls"}'
D='{domain="fo"}'
m() { metric "$2" "${NODE_ADMIN[$1]}"; } # node metric
calls() { curl -s "$SIM_URL/_sim/stats" | jq '.calls.get_psk'; }

conf a 127.0.0.11
conf b 127.0.0.12
conf c 127.0.0.13 'redis_timeout_ms = 60000; park_per_source = 4;'
node a 127.0.0.11
node b 127.0.0.12
node c 127.0.0.13
for n in a b c; do
  check "node $n: sessions' Redis connected" \
    wait_metric "pskgw_sessions_redis_connected$D" = 1 "${NODE_ADMIN[$n]}"
done

fleet() { # name target first-device devices [flags...]: one devsim in the background (DEVSIM[name])
  local name=$1 tgt=$2 first=$3 n=$4
  shift 4
  "$BIN/pskgw-devsim" --target "$tgt" --seed it --first-device "$first" --devices "$n" \
    --messages 3 --rate "$(awk -v g="$GAP" 'BEGIN { print 1 / g }')" --expect-ack --ack-timeout 5 \
    --duration 400 --json "$WORK/$name.json" --quiet ${DCID[@]+"${DCID[@]}"} "$@" >"$WORK/$name.txt" 2>&1 &
  DEVSIM[$name]=$!
  track "devsim $name" "$!" "$WORK/$name.txt"
}
declare -A DEVSIM=()
B_TGT="127.0.0.12:${NODE_UDP[b]}"
fleet fb "$B_TGT" "$NA" "$NB"
fleet fc "127.0.0.13:${NODE_UDP[c]}" $((NA + NB)) "$NC"
# Node A's devices start at 5 per second: at the kill the first ones have hibernated, the last
# ones have not.
fleet fa "127.0.0.11:${NODE_UDP[a]}" 0 "$NA" --ramp 5 --failover-to "$B_TGT" --failover-after 1 \
  --verify-file "$WORK/all.jsonl" --verify-timeout 60

check "node A: every device's first message acknowledged" \
  wait_metric "pskgw_domain_acks_sent_total$D" -ge "$NA" "${NODE_ADMIN[a]}"
check "node A stored hibernated sessions in Redis before the kill" \
  wait_metric "pskgw_sessions_redis_stores_total$D" -ge 1 "${NODE_ADMIN[a]}"
kill -STOP "${DEVSIM[fa]}" # A's devices wait: nothing of theirs moves before the kill
stored=$(m a "pskgw_listener_redis_stored_total$L")
hib=$(m a "pskgw_listener_hibernated$L")
keys=$(redis-cli -p "$rport" --scan --pattern 'pskgw:sess:fo:dtls:*' | wc -l)
cidkeys=$(redis-cli -p "$rport" --scan --pattern 'pskgw:sess:fo:dtls:cid:*' | wc -l)
if [ "$CID" = 1 ]; then
  check "sessions with a Connection ID stored under it too ($cidkeys of $keys keys)" [ "$cidkeys" -ge 1 ]
else
  check "no Connection ID: sessions stored under their address only" [ "$cidkeys" -eq 0 ]
fi
kill -KILL "${NODE_PID[a]}"
reap "${NODE_PID[a]}" 10
verdict "${NODE_PID[a]}" 137 SIGKILL
kill -CONT "${DEVSIM[fa]}"
echo "at the kill: node A had stored $stored sessions (hibernated gauge $hib); $keys session keys in Redis"

for f in fb fc fa; do
  wait "${DEVSIM[$f]}" && rc=0 || rc=$?
  forget "${DEVSIM[$f]}"
  cat "$WORK/$f.txt"
  check "devsim $f: every message delivered and acknowledged (exit $rc)" [ "$rc" -eq 0 ]
done
taken=$(jq '.failover.taken_over' "$WORK/fa.json")
lost=$(jq '.failover.sessions_lost' "$WORK/fa.json")
moved=$(jq '.failover.failovers' "$WORK/fa.json")
echo "failover: $moved of A's $NA devices moved to B: $taken sessions taken over from Redis," \
  "$lost were active at the kill (not hibernated) and handshook again"
check "every device of A moved to B ($moved)" [ "$moved" -eq "$NA" ]
check "taken over + handshook again = A's devices ($taken + $lost)" [ $((taken + lost)) -eq "$NA" ]
check "some sessions were taken over from Redis ($taken)" [ "$taken" -ge 1 ]
wait_metric "pskgw_listener_redis_imported_total$L" -ge "$taken" "${NODE_ADMIN[b]}" >/dev/null || true
imp=$(m b "pskgw_listener_redis_imported_total$L")
check "node B imported exactly the sessions taken over ($imp = $taken)" [ "$imp" -eq "$taken" ]
hits=$(m b 'pskgw_sessions_redis_lookups_total{domain="fo",result="hit"}')
check "node B's Redis lookups: $hits hits" [ "$hits" -eq "$taken" ]
hs=$(m b "pskgw_listener_handshakes_completed_total$L")
check "no new handshake for the hibernated sessions: node B completed $NB + $lost ($hs)" \
  [ "$hs" -eq $((NB + lost)) ]
check "node C: its own $NC handshakes only" \
  metric_is "pskgw_listener_handshakes_completed_total$L" -eq "$NC" "${NODE_ADMIN[c]}"
check "node C took nothing over" \
  metric_is "pskgw_listener_redis_imported_total$L" -eq 0 "${NODE_ADMIN[c]}"
check "no thaw failure on B" metric_is "pskgw_listener_thaw_failures_total$L" -eq 0 "${NODE_ADMIN[b]}"
n=$(calls)
check "GetPSK calls per identity across the three nodes = 1 ($n calls, $((NA + NB + NC)) devices)" \
  [ "$n" -eq $((NA + NB + NC)) ]
total=$(grep -c '"payload"' "$WORK/all.jsonl")
check "every message of the fleet in the shared sink ($total)" [ "$total" -eq $((3 * (NA + NB + NC))) ]
check "no message twice" [ "$(jq -r .payload "$WORK/all.jsonl" | sort | uniq -d | wc -l)" -eq 0 ]
left=$(redis-cli -p "$rport" --scan --pattern 'pskgw:lease:fo:dtls:*' | wc -l)
# A session stored by its own node is claimed there before it thaws: a lease in that node's name
# too (docs/SECURITY.md, "Sessions in Redis"), one per session however often it was claimed.
leases=$(($(m b "pskgw_sessions_redis_leases_total$D") + $(m c "pskgw_sessions_redis_leases_total$D")))
check "a lease per session taken over or claimed: $taken taken, $left leases, $leases taken or claimed" \
  bash -c '[ "$1" -ge "$2" ] && [ "$1" -le "$3" ]' _ "$left" "$taken" "$leases"
check "node C: each stored session that woke there (2 per device) had its Redis copy deleted" \
  metric_is "pskgw_listener_redis_forgotten_total$L" -ge $((2 * NC)) "${NODE_ADMIN[c]}"
check "node C: each of them claimed before it thawed" \
  metric_is 'pskgw_sessions_redis_claims_total{domain="fo",result="won"}' -ge $((2 * NC)) \
  "${NODE_ADMIN[c]}"
check "no claim lost on B or C (no device reached two nodes)" bash -c '[ "$1" -eq 0 ] && [ "$2" -eq 0 ]' _ \
  "$(($(m b 'pskgw_sessions_redis_claims_total{domain="fo",result="held"}') + $(m b 'pskgw_sessions_redis_claims_total{domain="fo",result="gone"}')))" \
  "$(($(m c 'pskgw_sessions_redis_claims_total{domain="fo",result="held"}') + $(m c 'pskgw_sessions_redis_claims_total{domain="fo",result="gone"}')))"

# ---- the bounds on held datagrams: Redis paused, 10 records for unknown sessions from 10 ports
# of one address reach node C (park_per_source = 4): 4 held while looked up, 6 dropped; once
# Redis answers again the 4 lookups end as misses.
# (the claims of C's own stored sessions were held there too: counted from here)
parked0=$(m c "pskgw_listener_redis_parked_total$L")
refused0=$(m c "pskgw_listener_redis_park_refused_total$L")
kill -STOP "$REDIS_PID"
python3 -c '
import socket, sys
rec = bytes([23, 0xFE, 0xFD, 0, 1, 0, 0, 0, 0, 0, 9, 0, 24]) + bytes(24)  # epoch 1 application data
socks = []
for i in range(10):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.2.0.1", 0))
    s.sendto(rec, ("127.0.0.13", int(sys.argv[1])))
    socks.append(s)
' "${NODE_UDP[c]}"
check "node C: 4 datagrams of one source held for a lookup" \
  wait_metric "pskgw_listener_redis_parked_total$L" -ge $((parked0 + 4)) "${NODE_ADMIN[c]}"
check "node C: the other 6 dropped (per-source bound)" \
  wait_metric "pskgw_listener_redis_park_refused_total$L" -ge $((refused0 + 6)) "${NODE_ADMIN[c]}"
kill -CONT "$REDIS_PID"
check "node C: the 4 lookups ended as misses" \
  wait_metric 'pskgw_sessions_redis_lookups_total{domain="fo",result="miss"}' -ge 4 "${NODE_ADMIN[c]}"
check "node C: exactly 4 held, 6 dropped" bash -c '[ "$1" -eq 4 ] && [ "$2" -eq 6 ]' _ \
  "$(($(m c "pskgw_listener_redis_parked_total$L") - parked0))" \
  "$(($(m c "pskgw_listener_redis_park_refused_total$L") - refused0))"
finish

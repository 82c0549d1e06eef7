#!/usr/bin/env bash
# The bounded shutdown through the real binary: an http sink whose receiver takes every request
# and never answers (deliveries in flight), another with nobody listening (retrying), each with
# a spool, plus one without a spool. On SIGTERM the gateway gives the in-flight deliveries their
# close timeout, exits 0 well inside its shutdown limit (30 s, docs/ARCHITECTURE.md), and says per
# sink how many undelivered messages it spooled and how many it lost; the next start delivers
# every spooled message once the receiver answers.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_peers.sh"

start_sim_tracked --devices 1000
start_http hang sink "$WORK/hang.jsonl" hang
hang_url=$HTTP_URL
reserve_ports tcp # bound for the whole script, never listening: connections are refused
dead=${PORTS[0]}
sinks_line() { # hang-url dead-url
  echo "sinks = ( { type = \"file\"; name = \"out\"; path = \"$WORK/sd.jsonl\"; }, \
{ type = \"http\"; name = \"slow\"; url = \"$1/\"; timeout_ms = 600000; in_flight = 4; spool = { path = \"spool\"; }; }, \
{ type = \"http\"; name = \"down\"; url = \"$2/\"; retry_max_ms = 200; spool = { path = \"spool\"; }; }, \
{ type = \"http\"; name = \"nospool\"; url = \"$2/\"; retry_max_ms = 200; } );"
}
write_config sd '' ''
sed -i "s#^sinks = .*#$(sinks_line "$hang_url" "http://127.0.0.1:$dead")#" "$WORK/sd.conf"
start_gateway_args sd
"$BIN/pskgw-devsim" --target "127.0.0.1:$GW_UDP" --seed it --devices 3 --messages 2 --rate 20 \
  --duration 60 --verify-file "$WORK/sd.jsonl" --quiet >"$WORK/fleet.txt" 2>&1 && rc=0 || rc=$?
check "the file sink got the 6 messages" [ "$rc" -eq 0 ]
for _ in $(seq 200); do [ "$(grep -c . "$WORK/hang.jsonl" 2>/dev/null || true)" -ge 3 ] && break; sleep 0.1; done
check "the receiver holds 3 requests without answering (one per device in flight)" \
  [ "$(grep -c . "$WORK/hang.jsonl")" -ge 3 ]
check "the dead sink is retrying" [ "$(wait_metric 'pskgw_sink_retried_total{domain="sd",sink="down"}' -ge 1)" -ge 1 ]

kill -TERM "$GW_PID"
peer_wait "$GW_PID" 30 && rc=0 || rc=$? # 30 s: the shutdown limit; 124 if still running
unset "PEER_PID[sd]"
check "SIGTERM with deliveries hanging: exit status 0 within the shutdown limit (got $rc)" [ "$rc" -eq 0 ]
check "the shutdown limit was not what ended it" bash -c "! grep -q 'shutdown did not finish' '$WORK/sd.log'"
check "sink slow: says it spooled its 6 undelivered messages" \
  grep -q 'sink "sd-slow": closed with 6 undelivered messages: 6 spooled, 0 lost' "$WORK/sd.log"
check "sink down: says it spooled its 6 undelivered messages" \
  grep -q 'sink "sd-down": closed with 6 undelivered messages: 6 spooled, 0 lost' "$WORK/sd.log"
check "sink nospool: says it lost its 6 undelivered messages" \
  grep -q 'sink "sd-nospool": closed with 6 undelivered messages: 0 spooled, 6 lost' "$WORK/sd.log"
check "no sanitizer report in the gateway's log" bash -c '! grep -Eq "$0" "$1"' "$SANITIZER_RE" "$WORK/sd.log"
stop_peer hang

# the next start: the receivers answer; every spooled message is delivered
start_http ok sink "$WORK/ok.jsonl"
sed -i "s#^sinks = .*#$(sinks_line "$HTTP_URL" "$HTTP_URL")#" "$WORK/sd.conf"
start_gateway_args sd
for _ in $(seq 300); do [ "$(grep -c . "$WORK/ok.jsonl" 2>/dev/null || true)" -ge 12 ] && break; sleep 0.1; done
check "after the restart both spools are delivered: each of the 6 messages twice (slow and down)" \
  diff <(ids_of "$WORK/ok.jsonl") <(ids_of "$WORK/sd.jsonl" | sed p)
check "the messages of the sink without a spool are gone" [ "$(grep -c . "$WORK/ok.jsonl")" -eq 12 ]
finish_peers

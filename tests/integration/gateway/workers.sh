#!/usr/bin/env bash
# One worker process per core: two gateways started with --worker 0 and --worker 1 share the
# same UDP and TCP ports (SO_REUSEPORT); a fleet spread over many source addresses is served by
# both, and every message is delivered exactly once. Without --worker the second bind fails.
# The workers share one configuration with a fixed admin port: worker N serves port + N.
. "$(dirname "$0")/lib.sh"

start_sim
for attempt in 1 2 3 4 5; do
  port=$((20000 + RANDOM % 30000))
  write_config w0 "" ""
  # One configuration for all workers, with a fixed admin port as in production: worker N
  # serves it on port + N.
  sed -i "s/\"udp\"; address = \"127.0.0.1\"; port = 0;/\"udp\"; address = \"127.0.0.1\"; port = $port;/; s/port = 0; framing/port = $((port + 1)); framing/; s/^admin = .*/admin = { address = \"127.0.0.1\"; port = $((port + 2)); };/" "$WORK/w0.conf"
  "$BIN/pskgw" --config "$WORK/w0.conf" --worker 0 >/dev/null 2>"$WORK/w0.log" &
  p0=$!
  PIDS+=($p0)
  if wait_for "$WORK/w0.log" 'running' 5 >/dev/null 2>&1; then break; fi
  kill "$p0" 2>/dev/null || true
done
"$BIN/pskgw" --config "$WORK/w0.conf" --worker 1 >/dev/null 2>"$WORK/w1.log" &
p1=$!
PIDS+=($p1)
check "worker 1 binds the same ports" bash -c "for i in \$(seq 50); do grep -q running '$WORK/w1.log' && exit 0; sleep 0.1; done; cat '$WORK/w1.log'; exit 1"

"$BIN/pskgw" --config "$WORK/w0.conf" >/dev/null 2>"$WORK/plain.log" && rc=0 || rc=$?
check "a third process without --worker cannot bind them (exit $rc)" [ "$rc" -ne 0 ]

"$BIN/pskgw-devsim" --target "127.0.0.1:$port" --seed it --devices 40 --messages 3 --rate 20 \
  --e2e v1 --duration 60 --verify-file "$WORK/w0.jsonl" --quiet >"$WORK/fleet.txt" 2>&1 && rc=0 || rc=$?
check "fleet served by the two workers, every message delivered once" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || sed 's/^/  | /' "$WORK/fleet.txt"
sleep 1.2 # metrics snapshots are renewed once a second
hs() { # worker log -> handshakes completed on its DTLS listener
  local url
  url=$(grep -m1 -Eo 'http://127\.0\.0\.1:[0-9]+/metrics' "$1")
  curl -s "$url" | awk '/^pskgw_listener_handshakes_completed_total\{domain="w0",listener="dtls"\}/ {print $2}'
}
check "worker 0 serves the admin port, worker 1 the port + 1" bash -c \
  "grep -q 'http://127.0.0.1:$((port + 2))/metrics' '$WORK/w0.log' &&
   grep -q 'http://127.0.0.1:$((port + 3))/metrics' '$WORK/w1.log'"
n0=$(hs "$WORK/w0.log")
n1=$(hs "$WORK/w1.log")
check "the kernel spread the devices over both workers ($n0 + $n1 handshakes)" \
  [ "${n0:-0}" -ge 1 -a "${n1:-0}" -ge 1 -a $((${n0:-0} + ${n1:-0})) -eq 40 ]

for p in $p0 $p1; do
  kill -TERM "$p"
  wait "$p" && rc=0 || rc=$?
  check "worker $p stops cleanly on SIGTERM" [ "$rc" -eq 0 ]
done
finish

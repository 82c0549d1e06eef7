#!/usr/bin/env bash
# One worker process per core: two gateways started with --worker 0 and --worker 1 share the
# same UDP and TCP ports (SO_REUSEPORT); a fleet spread over many source addresses is served by
# both, and every message is delivered exactly once. Without --worker the UDP bind fails.
# The workers share one configuration with a fixed admin port: worker N serves port + N.
. "$(dirname "$0")/lib.sh"

start_sim
# Fixed ports, as in production, reserved so that no other test can take them: the listener
# ports held with SO_REUSEPORT (the workers join them), two consecutive admin ports.
reserve_ports --reuseport udp tcp
LISTEN_RESERVATION=$RESERVE_PID
port=${PORTS[0]} tport=${PORTS[1]}
reserve_ports tcp+1
aport=${PORTS[0]}
write_config w0 "" ""
sed -i "s/\"udp\"; address = \"127.0.0.1\"; port = 0;/\"udp\"; address = \"127.0.0.1\"; port = $port;/; s/port = 0; framing/port = $tport; framing/; s/^admin = .*/admin = { address = \"127.0.0.1\"; port = $aport; };/" "$WORK/w0.conf"

start_worker() { # N: sets P (its pid)
  "$BIN/pskgw" --config "$WORK/w0.conf" --worker "$1" >"$WORK/w$1.stdout" 2>"$WORK/w$1.log" &
  P=$!
  track "pskgw --worker $1" "$P" "$WORK/w$1.stdout" "$WORK/w$1.log"
}
start_worker 0
p0=$P
check "worker 0 binds the reserved ports" wait_line "$WORK/w0.log" running "$p0"
start_worker 1
p1=$P
check "worker 1 binds the same ports" wait_line "$WORK/w1.log" running "$p1"
# The workers hold the listener ports now; the reserving UDP socket would take datagrams too.
stop_proc "$LISTEN_RESERVATION" || true

# A third process without --worker, with no admin endpoint (so that only the listeners can
# conflict): its UDP bind is refused.
sed '/^admin = /d' "$WORK/w0.conf" >"$WORK/plain.conf"
"$BIN/pskgw" --config "$WORK/plain.conf" >"$WORK/plain.stdout" 2>"$WORK/plain.log" &
track "pskgw without --worker" $! "$WORK/plain.stdout" "$WORK/plain.log"
wait_exit $! 1 || true # one check: exit 1 (a listener that cannot start), no sanitizer report
check "a third process without --worker: its UDP bind refused" \
  grep -q "listener \"dtls\" on udp 127.0.0.1:$port not started: .*cannot bind" "$WORK/plain.log"

"$BIN/pskgw-devsim" --target "127.0.0.1:$port" --seed it --devices 40 --messages 3 --rate 20 \
  --e2e v1 --duration 60 --verify-file "$WORK/w0.jsonl" --quiet >"$WORK/fleet.txt" 2>&1 && rc=0 || rc=$?
check "fleet served by the two workers, every message delivered once" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || sed 's/^/  | /' "$WORK/fleet.txt"
check "worker 0 serves the admin port, worker 1 the port + 1" bash -c \
  "grep -q 'http://127.0.0.1:$aport/metrics' '$WORK/w0.log' &&
   grep -q 'http://127.0.0.1:$((aport + 1))/metrics' '$WORK/w1.log'"
hs() { # admin port -> handshakes completed on that worker's DTLS listener
  metric 'pskgw_listener_handshakes_completed_total{domain="w0",listener="dtls"}' \
    "http://127.0.0.1:$1/metrics"
}
# Metrics snapshots are renewed once a second: wait until both show the whole fleet.
all_counted() {
  local a b
  a=$(hs "$aport") b=$(hs $((aport + 1)))
  [ $((${a:-0} + ${b:-0})) -eq 40 ]
}
wait_until all_counted || true
n0=$(hs "$aport")
n1=$(hs $((aport + 1)))
check "the kernel spread the devices over both workers ($n0 + $n1 handshakes)" \
  [ "${n0:-0}" -ge 1 -a "${n1:-0}" -ge 1 -a $((${n0:-0} + ${n1:-0})) -eq 40 ]
finish # stops both workers: each must exit 0 on SIGTERM, without a sanitizer report

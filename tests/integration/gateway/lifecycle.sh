#!/usr/bin/env bash
# The process around the domains: systemd notifications (READY, WATCHDOG at least twice per
# WatchdogSec while the loop is busy, STOPPING), SIGTERM while handshakes are parked on slow key
# lookups and E2E parameter fetches are in flight (clean exit 0 within the gateway's own
# shutdown limit; a second SIGTERM changes nothing),
# start-up failures (admin port taken, a second domain that cannot bind) ending with exit 1
# and every handle released, and /metrics of several domains accepted by a strict parser.
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
command -v python3 >/dev/null || { echo "FAIL: python3 is needed for the notify socket"; exit 1; }

start_sim --devices 1000 --latency-ms 1200
write_config lc '' 'ack = "accepted";'
sed -i 's/^e2e = .*/e2e = "required";/' "$WORK/lc.conf"

# systemd stand-in: WatchdogSec=0.8 s.
python3 "$HERE/notify.py" "$WORK/notify.sock" >"$WORK/notify.txt" 2>&1 &
track notify.py $! "$WORK/notify.txt"
wait_line "$WORK/notify.txt" listening $!
NOTIFY_SOCKET="$WORK/notify.sock" WATCHDOG_USEC=800000 \
  bash -c 'WATCHDOG_PID=$$ exec "$0" --config "$1"' "$BIN/pskgw" "$WORK/lc.conf" \
  >"$WORK/lc.stdout" 2>"$WORK/lc.log" &
GW_PID=$!
track "pskgw lc (notify socket, watchdog)" "$GW_PID" "$WORK/lc.stdout" "$WORK/lc.log"
read_gateway_ports "$WORK/lc.log"
check "sd_notify: READY=1" wait_line "$WORK/notify.txt" 'READY=1'

# Fleets whose handshakes park on GetPSK (1.2 s each, 64 at once) and whose E2E messages each
# need a fresh GetE2EDecryptionParameters.
"$BIN/pskgw-devsim" --target "127.0.0.1:$GW_UDP" --seed it --devices 100 --messages 5 --rate 50 \
  --e2e v1 --e2e-fresh-ki --duration 20 --quiet >"$WORK/fleet1.txt" 2>&1 &
F1=$!
track "pskgw-devsim (dtls fleet)" "$F1" "$WORK/fleet1.txt"
"$BIN/pskgw-devsim" --tcp "127.0.0.1:$GW_TCP" --seed it --devices 50 --messages 5 --rate 50 \
  --e2e v2 --e2e-fresh-ki --duration 20 --quiet >"$WORK/fleet2.txt" 2>&1 &
F2=$!
track "pskgw-devsim (tls fleet)" "$F2" "$WORK/fleet2.txt"
check "E2E parameters fetched under load" \
  wait_metric 'pskgw_upstream_requests_total{domain="lc",op="e2e_params",outcome="ok"}' -ge 1
# The watchdog is pinged while lookups are parked and fetches are in flight (what systemd
# needs; how often is the bench's business, not a test's).
check "sd_notify: WATCHDOG=1 sent repeatedly while busy (3 times)" \
  wait_until count_is "$WORK/notify.txt" ' WATCHDOG=1$' -ge 3
curl -s "$GW_ADMIN" >"$WORK/busy.metrics"
parked=$(grep -F 'pskgw_upstream_in_flight{domain="lc"}' "$WORK/busy.metrics" | awk '{print $2}')
check "upstream calls in flight at SIGTERM ($parked)" [ "${parked:-0}" -ge 1 ]
check "metrics under load pass the strict parser" awk -f "$HERE/promcheck.awk" "$WORK/busy.metrics"

# SIGTERM twice with lookups and fetches in flight: the second once the first was taken.
kill -TERM "$GW_PID"
check "SIGTERM: 'stopping' logged" wait_line "$WORK/lc.log" 'stopping \(' "$GW_PID"
kill -TERM "$GW_PID" 2>/dev/null || true
echo "SIGTERM (twice) with lookups and fetches in flight:"
wait_exit "$GW_PID" 0 || true # one check: exit 0, no sanitizer report
check "'stopped' logged once, nothing left open" bash -c \
  "[ \$(grep -c 'stopped\$' '$WORK/lc.log') -eq 1 ] && ! grep -qi 'still open' '$WORK/lc.log'"
check "the shutdown ended by itself, not by the gateway's time limit" \
  bash -c "! grep -q 'shutdown did not finish within' '$WORK/lc.log'"
# The fleets: done (0) or interrupted with devices not done (1), depending on the machine's pace.
stop_proc "$F1" 0,1 || true
stop_proc "$F2" 0,1 || true
check "sd_notify: STOPPING=1" wait_line "$WORK/notify.txt" 'STOPPING=1'
check "sd_notify: READY=1, then WATCHDOG=1 (3 or more), then STOPPING=1, in that order" awk '
  / READY=1$/ { r = NR } / WATCHDOG=1$/ { if (r && !s) n++ } / STOPPING=1$/ { s = NR }
  END { exit !(r && s > r && n >= 3) }' "$WORK/notify.txt"

# Start-up failures.
start_sim
write_config a '' ''
start_gateway a
aport=${GW_ADMIN##*:}
aport=${aport%%/*}
write_config b '' ''
sed -i "s/^admin = .*/admin = { address = \"127.0.0.1\"; port = $aport; };/" "$WORK/b.conf"
"$BIN/pskgw" --config "$WORK/b.conf" >"$WORK/b.stdout" 2>"$WORK/b.log" &
track "pskgw b (admin port in use)" $! "$WORK/b.stdout" "$WORK/b.log"
wait_exit $! 1 || true # one check: exit 1, no sanitizer report
check "admin port in use: said so" grep -q 'admin endpoint on 127.0.0.1:'"$aport"' not started: address in use' "$WORK/b.log"
check "admin port in use: the domain's handles released" bash -c \
  "! grep -qiE 'still open|$SANITIZER_RE' '$WORK/b.log'"

write_config c1 '' ''
write_config c2 '' ''
sed -i "/^admin/d; s/port = 0; *},/port = $GW_UDP; },/" "$WORK/c2.conf"
"$BIN/pskgw" --config "$WORK/c1.conf" --config "$WORK/c2.conf" >"$WORK/c.stdout" \
  2>"$WORK/c.log" &
track "pskgw c1 + c2 (second domain cannot bind)" $! "$WORK/c.stdout" "$WORK/c.log"
wait_exit $! 1 || true # one check: exit 1, no sanitizer report
check "second domain cannot bind: named in the log" grep -q 'domain "c2" could not start' "$WORK/c.log"
check "second domain cannot bind: the first domain released" bash -c \
  "! grep -qiE 'still open|$SANITIZER_RE' '$WORK/c.log'"

# Several domains: every family once, its samples together, labels escaped.
write_config d1 '' ''
write_config d2 '' ''
sed -i '/^admin/d' "$WORK/d2.conf"
sed -i 's#^sinks = .*#sinks = ( { type = "file"; path = "'"$WORK"'/d2a.jsonl"; }, { type = "file"; name = "second"; path = "'"$WORK"'/d2b.jsonl"; } );#' "$WORK/d2.conf"
"$BIN/pskgw" --config "$WORK/d1.conf" --config "$WORK/d2.conf" >"$WORK/d.stdout" 2>"$WORK/d.log" &
GW_PID=$!
track "pskgw d1 + d2" "$GW_PID" "$WORK/d.stdout" "$WORK/d.log"
GW_ADMIN=$(WAIT_PID=$GW_PID wait_for "$WORK/d.log" 'http://127\.0\.0\.1:[0-9]+/metrics')
U2=$(WAIT_PID=$GW_PID wait_for "$WORK/d.log" 'domain "d2": listener "dtls" on udp 127\.0\.0\.1:[0-9]+' | grep -Eo '[0-9]+$')
"$BIN/pskgw-devsim" --target "127.0.0.1:$U2" --seed it --devices 3 --messages 2 --rate 20 \
  --duration 20 --quiet >"$WORK/d2fleet.txt" 2>&1 && rc=0 || rc=$?
check "two domains: d2's fleet delivered" [ "$rc" -eq 0 ]
# The metrics snapshot is renewed once a second: wait until it shows the 6 messages.
check "two domains: d2's messages in the metrics" \
  wait_metric 'pskgw_sink_queued_total{domain="d2"' -ge 6
curl -s "$GW_ADMIN" >"$WORK/two.metrics"
check "two domains: /metrics passes the strict parser" awk -f "$HERE/promcheck.awk" "$WORK/two.metrics"
check "two domains: both sinks of d2 listed" [ "$(grep -c '^pskgw_sink_queued_total{domain="d2"' "$WORK/two.metrics")" -eq 2 ]
check "two domains: one TYPE line per family" bash -c \
  "[ -z \"\$(grep '^# TYPE' '$WORK/two.metrics' | sort | uniq -d)\" ]"
echo "two domains:"
stop_proc "$GW_PID" || true # one check: exit 0, no sanitizer report
# A second SIGTERM during the very last steps of a shutdown (after the loop ended; under ASan
# LeakSanitizer's exit check makes that window long) must not turn exit 0 into 143.
write_config e '' ''
start_gateway e
kill -TERM "$GW_PID"
wait_line "$WORK/e.log" '"stopped"|: stopped$' "$GW_PID" || true
kill -TERM "$GW_PID" 2>/dev/null || true
echo "a SIGTERM after 'stopped' does not change the exit status:"
wait_exit "$GW_PID" 0 || true # one check: exit 0, no sanitizer report

finish

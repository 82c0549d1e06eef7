#!/usr/bin/env bash
# The process around the domains: systemd notifications (READY, WATCHDOG at least twice per
# WatchdogSec, STOPPING), SIGTERM while handshakes are parked on slow key lookups and E2E
# parameter fetches are in flight (clean exit 0, fast; a second SIGTERM changes nothing),
# start-up failures (admin port taken, a second domain that cannot bind) ending with exit 1
# and every handle released, and /metrics of several domains accepted by a strict parser.
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
command -v python3 >/dev/null || { echo "FAIL: python3 is needed for the notify socket"; exit 1; }

start_sim --devices 1000 --latency-ms 1200
write_config lc '' 'ack = "accepted";'
sed -i 's/^e2e = .*/e2e = "required";/' "$WORK/lc.conf"

# systemd stand-in: WatchdogSec=0.8 s.
python3 "$HERE/notify.py" "$WORK/notify.sock" 40 >"$WORK/notify.txt" 2>&1 &
PIDS+=($!)
wait_for "$WORK/notify.txt" listening 5 >/dev/null
NOTIFY_SOCKET="$WORK/notify.sock" WATCHDOG_USEC=800000 \
  bash -c 'WATCHDOG_PID=$$ exec "$0" --config "$1"' "$BIN/pskgw" "$WORK/lc.conf" \
  >"$WORK/lc.stdout" 2>"$WORK/lc.log" &
GW_PID=$!
PIDS+=($GW_PID)
GW_UDP=$(wait_for "$WORK/lc.log" 'on udp 127\.0\.0\.1:[0-9]+' 10 | grep -Eo '[0-9]+$')
GW_TCP=$(wait_for "$WORK/lc.log" 'on tcp 127\.0\.0\.1:[0-9]+' 10 | grep -Eo '[0-9]+$')
GW_ADMIN=$(wait_for "$WORK/lc.log" 'http://127\.0\.0\.1:[0-9]+/metrics' 10)
check "sd_notify: READY=1" wait_for "$WORK/notify.txt" 'READY=1' 5

# Fleets whose handshakes park on GetPSK (1.2 s each, 64 at once) and whose E2E messages each
# need a fresh GetE2EDecryptionParameters.
"$BIN/pskgw-devsim" --target "127.0.0.1:$GW_UDP" --seed it --devices 100 --messages 5 --rate 50 \
  --e2e v1 --e2e-fresh-ki --duration 20 --quiet >"$WORK/fleet1.txt" 2>&1 &
F1=$!
"$BIN/pskgw-devsim" --tcp "127.0.0.1:$GW_TCP" --seed it --devices 50 --messages 5 --rate 50 \
  --e2e v2 --e2e-fresh-ki --duration 20 --quiet >"$WORK/fleet2.txt" 2>&1 &
F2=$!
PIDS+=($F1 $F2)
for _ in $(seq 100); do
  v=$(metric 'pskgw_upstream_requests_total{domain="lc",op="e2e_params",outcome="ok"}')
  [ "${v:-0}" -ge 1 ] && break
  sleep 0.1
done
curl -s "$GW_ADMIN" >"$WORK/busy.metrics"
parked=$(grep -F 'pskgw_upstream_in_flight{domain="lc"}' "$WORK/busy.metrics" | awk '{print $2}')
check "upstream calls in flight at SIGTERM ($parked)" [ "${parked:-0}" -ge 1 ]
check "metrics under load pass the strict parser" awk -f "$HERE/promcheck.awk" "$WORK/busy.metrics"

t0=$(date +%s%N)
kill -TERM "$GW_PID"
sleep 0.05
kill -TERM "$GW_PID" 2>/dev/null || true
wait "$GW_PID" && rc=0 || rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
check "SIGTERM (twice) with lookups and fetches in flight: exit 0 (got $rc)" [ "$rc" -eq 0 ]
check "shutdown took ${ms} ms (< 5000)" [ "$ms" -lt 5000 ]
check "'stopped' logged once, nothing left open" bash -c \
  "[ \$(grep -c 'stopped\$' '$WORK/lc.log') -eq 1 ] && ! grep -qi 'still open\|AddressSanitizer\|runtime error' '$WORK/lc.log'"
kill "$F1" "$F2" 2>/dev/null || true
wait "$F1" 2>/dev/null || true
wait "$F2" 2>/dev/null || true
sleep 1.2 # notify.py ends one second after STOPPING=1
check "sd_notify: STOPPING=1" grep -q 'STOPPING=1' "$WORK/notify.txt"
check "sd_notify: WATCHDOG=1 within every WatchdogSec (0.8 s)" awk '
  / WATCHDOG=1$/ { if (last != "" && $1 - last > 0.8) { print "gap " $1 - last; bad = 1 } last = $1; n++ }
  END { exit bad || n < 3 }' "$WORK/notify.txt"

# Start-up failures.
start_sim
write_config a '' ''
start_gateway a
aport=${GW_ADMIN##*:}
aport=${aport%%/*}
write_config b '' ''
sed -i "s/^admin = .*/admin = { address = \"127.0.0.1\"; port = $aport; };/" "$WORK/b.conf"
timeout 20 "$BIN/pskgw" --config "$WORK/b.conf" >/dev/null 2>"$WORK/b.log" && rc=0 || rc=$?
check "admin port in use: exit 1 (got $rc)" [ "$rc" -eq 1 ]
check "admin port in use: said so" grep -q 'admin endpoint on 127.0.0.1:'"$aport"' not started: address in use' "$WORK/b.log"
check "admin port in use: the domain's handles released" bash -c \
  "! grep -qi 'still open\|AddressSanitizer' '$WORK/b.log'"

write_config c1 '' ''
write_config c2 '' ''
sed -i "/^admin/d; s/port = 0; *},/port = $GW_UDP; },/" "$WORK/c2.conf"
timeout 20 "$BIN/pskgw" --config "$WORK/c1.conf" --config "$WORK/c2.conf" >/dev/null \
  2>"$WORK/c.log" && rc=0 || rc=$?
check "second domain cannot bind: exit 1 (got $rc)" [ "$rc" -eq 1 ]
check "second domain cannot bind: named in the log" grep -q 'domain "c2" could not start' "$WORK/c.log"
check "second domain cannot bind: the first domain released" bash -c \
  "! grep -qi 'still open\|AddressSanitizer' '$WORK/c.log'"

# Several domains: every family once, its samples together, labels escaped.
write_config d1 '' ''
write_config d2 '' ''
sed -i '/^admin/d' "$WORK/d2.conf"
sed -i 's#^sinks = .*#sinks = ( { type = "file"; path = "'"$WORK"'/d2a.jsonl"; }, { type = "file"; name = "second"; path = "'"$WORK"'/d2b.jsonl"; } );#' "$WORK/d2.conf"
"$BIN/pskgw" --config "$WORK/d1.conf" --config "$WORK/d2.conf" >/dev/null 2>"$WORK/d.log" &
GW_PID=$!
PIDS+=($GW_PID)
GW_ADMIN=$(wait_for "$WORK/d.log" 'http://127\.0\.0\.1:[0-9]+/metrics' 10)
U2=$(wait_for "$WORK/d.log" 'domain "d2": listener "dtls" on udp 127\.0\.0\.1:[0-9]+' 10 | grep -Eo '[0-9]+$')
"$BIN/pskgw-devsim" --target "127.0.0.1:$U2" --seed it --devices 3 --messages 2 --rate 20 \
  --duration 20 --quiet >/dev/null 2>&1 || true
sleep 1.2
curl -s "$GW_ADMIN" >"$WORK/two.metrics"
check "two domains: /metrics passes the strict parser" awk -f "$HERE/promcheck.awk" "$WORK/two.metrics"
check "two domains: both sinks of d2 listed" [ "$(grep -c '^pskgw_sink_queued_total{domain="d2"' "$WORK/two.metrics")" -eq 2 ]
check "two domains: one TYPE line per family" bash -c \
  "[ -z \"\$(grep '^# TYPE' '$WORK/two.metrics' | sort | uniq -d)\" ]"
kill -TERM "$GW_PID"
wait "$GW_PID" && rc=0 || rc=$?
check "two domains: SIGTERM exit 0" [ "$rc" -eq 0 ]
# A second SIGTERM during the very last steps of a shutdown (after the loop ended; under ASan
# LeakSanitizer's exit check makes that window long) must not turn exit 0 into 143.
write_config e '' ''
start_gateway e
kill -TERM "$GW_PID"
for _ in $(seq 100); do grep -q '"stopped"\|: stopped' "$WORK/e.log" && break; sleep 0.01; done
kill -TERM "$GW_PID" 2>/dev/null || true
wait "$GW_PID" && rc=0 || rc=$?
check "a SIGTERM after 'stopped' does not change the exit status (got $rc)" [ "$rc" -eq 0 ]

finish

#!/usr/bin/env bash
# Smoke test of the bench tooling: pskgw-udpceiling, pskgw-dtls-hammer (usage errors, a few
# hundred handshakes against a real gateway) and `scripts/bench --smoke` (tiny sizes of every
# scenario), checking that report.md, results.json and the plots are produced and well-formed.
# Figures are not judged: this is the tooling's test, not a performance test.
# gnuplot (gnuplot-nox) and coap-server-openssl (libcoap3-bin) are installed by scripts/test; where
# one is missing its checks are skipped (exit 77), and fail under CI=true (tests/support/skip.sh).
set -euo pipefail
BIN=${PSKGW_BIN_DIR:?}
SRC=${PSKGW_SOURCE_DIR:?}
# shellcheck source=../../support/skip.sh
. "$SRC/tests/support/skip.sh"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pskgw-bench-it.XXXXXX")
PASSED=0
FAILED=0
trap 'rm -rf "$WORK"' EXIT

ok() { echo "ok: $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL: $*"; FAILED=$((FAILED + 1)); }
check() { # description, command...
  local what=$1; shift
  if "$@"; then ok "$what"; else fail "$what"; fi
}
jqcheck() { jq -e "$2" "$1" >/dev/null 2>&1; }

for t in jq curl awk; do
  command -v "$t" >/dev/null || { echo "bench smoke test needs $t"; exit 1; }
done

# udpceiling (its one-second run is part of the bench below).
"$BIN/pskgw-udpceiling" --seconds 0 >/dev/null 2>&1 && rc=0 || rc=$?
check "udpceiling refuses --seconds 0 (exit 2)" [ "$rc" -eq 2 ]

# dtls_hammer usage errors.
"$BIN/pskgw-dtls-hammer" --target 10.0.0.1:5684 --seed s --device 0 >/dev/null 2>&1 && rc=0 || rc=$?
check "dtls_hammer refuses a non-loopback target (exit 2)" [ "$rc" -eq 2 ]
"$BIN/pskgw-dtls-hammer" --target 127.0.0.1:5684 >/dev/null 2>&1 && rc=0 || rc=$?
check "dtls_hammer needs credentials (exit 2)" [ "$rc" -eq 2 ]
"$BIN/pskgw-dtls-hammer" --target 127.0.0.1:5684 --identity x --psk zz >/dev/null 2>&1 && rc=0 || rc=$?
check "dtls_hammer refuses a PSK that is not hex (exit 2)" [ "$rc" -eq 2 ]

# dtls_hammer against nothing: bounded, every handshake failed, exit 1.
"$BIN/pskgw-dtls-hammer" --target 127.0.0.1:9 --identity x --psk 00112233 --handshakes 3 \
  --handshake-timeout 1 --duration 5 --json "$WORK/none.json" --quiet && rc=0 || rc=$?
check "dtls_hammer against a closed port: exit 1, 0 ok, 3 failed" \
  bash -c "[ $rc -eq 1 ] && jq -e '.ok == 0 and .failed == 3' '$WORK/none.json' >/dev/null"

# The whole bench at smoke size: sim + gateway + fleets + hammer + peer, report written.
out=$WORK/out
"$SRC/scripts/bench" --smoke --bin "$BIN" --out "$out" >"$WORK/bench.log" 2>&1 && rc=0 || rc=$?
check "scripts/bench --smoke exits 0" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || tail -n 30 "$WORK/bench.log" | sed 's/^/  | /'
J=$out/results.json
check "results.json is JSON with every section" jqcheck "$J" \
  '.ceilings.wolfpair and .ceilings.udp and .handshakes.warm and .handshakes.hammer and
   .handshakes.cold_latency50 and .messages and .memory.fleet and .upstream.first_scenario and .ratios'
check "forwarding: datagrams went to the echo and came back, per CPU-second figures" jqcheck "$J" \
  '.forwarding.datagrams_to_backend > 0 and .forwarding.datagrams_from_backend > 0 and
   .forwarding.round_trips_per_gateway_cpu_s > 0 and .forwarding.bytes_per_gateway_cpu_s > 0'
check "forwarding over TCP: bytes went to the echo and came back, bytes per CPU-second" jqcheck "$J" \
  '.forwarding_tcp.bytes_to_backend > 0 and .forwarding_tcp.bytes_from_backend > 0 and
   .forwarding_tcp.errors == 0 and .forwarding_tcp.bytes_per_gateway_cpu_s > 0'
check "report.md has the TCP forwarding row" grep -q '^| forwarding (TLS -> TCP echo -> TLS' "$out/report.md"
check "udpceiling: received > 0, per CPU-second > 0, received <= sent" jqcheck "$J" \
  '.ceilings.udp.received > 0 and .ceilings.udp.received_per_cpu_s > 0 and .ceilings.udp.received <= .ceilings.udp.sent'
check "wolfpair: handshakes and records per CPU-second, heap per session" jqcheck "$J" \
  '.ceilings.wolfpair.handshakes_per_cpu_s > 0 and .ceilings.wolfpair.records_per_cpu_s > 0 and .ceilings.wolfpair.heap_per_session_bytes > 0'
check "wolfpair: wolfSSL's allocations per record in and out, and the report says them" bash -c "
  jq -e '(.ceilings.wolfpair.allocs_per_record_decrypted | type) == \"number\" and
         (.ceilings.wolfpair.allocs_per_record_encrypted | type) == \"number\"' '$J' >/dev/null &&
  grep -q 'wolfSSL itself allocates [0-9.]* times per record received' '$out/report.md'"
check "hammer against pskgw: every handshake ok" jqcheck "$J" \
  '.handshakes.hammer.ok == .handshakes.hammer.handshakes and .handshakes.hammer.failed == 0'
check "fleet passes without errors" jqcheck "$J" \
  '.handshakes.cold.errors == 0 and .handshakes.warm.errors == 0 and .handshakes.cold_latency50.errors == 0'
check "cold cache with the service at 50 ms: p50 at least 50 ms" jqcheck "$J" \
  '.handshakes.cold_latency50.p50_ms >= 50'
check "messages verified through the file sink" jqcheck "$J" '.messages.verify.ok == true'
check "messages came from several fleet processes at once, the gateway's CPU share measured" jqcheck "$J" \
  '.messages.fleets >= 2 and (.messages.verify.fleets | length) == .messages.fleets and
   .messages.gateway_cpu_share > 0 and .messages_plain.verify.ok == true'
check "latency at half the capacity: lines timed, p99 >= p50 > 0, all verified" jqcheck "$J" \
  '.messages_latency.capacity_per_s > 0 and .messages_latency.latency_us.count >= .messages_latency.sent and
   .messages_latency.latency_us.p99_us >= .messages_latency.latency_us.p50_us and
   .messages_latency.latency_us.p50_us > 0 and .messages_latency.verify.ok == true'
sanitized=false
grep -qE 'lib(a|t|ub)san' <<<"$(ldd "$BIN/pskgw" 2>/dev/null || true)" && sanitized=true # not ldd | grep -q: with pipefail, ldd's SIGPIPE would fail the test
if $sanitized; then
  check "allocations per message: not measured on a sanitizer build" jqcheck "$J" '.messages_allocations == null'
else
  check "allocations per message: counted over two runs, more messages in the second" jqcheck "$J" \
    '(.messages_allocations.per_message | type) == "number" and
     .messages_allocations.runs[1].forwarded > .messages_allocations.runs[0].forwarded and
     .messages_allocations.runs[0].allocations > 0'
fi
sinks_want='["file","http","kafka"'
command -v redis-server >/dev/null && sinks_want+=',"redis-stream"'
command -v mosquitto >/dev/null && sinks_want+=',"mqtt"'
check "each sink measured on its own, nothing failed" jqcheck "$J" \
  "([.sinks[].sink] | sort) == ($sinks_want] | sort) and
   all(.sinks[]; .failed == 0 and .per_s > 0 and .cpu_us_per_message > 0)"
check "upstream: one GetPSK per identity" jqcheck "$J" \
  '.upstream.first_scenario.max_calls_one_identity == 1 and .upstream.cold_latency50.max_calls_one_identity == 1'
check "memory samples with sessions up" jqcheck "$J" '(.memory.fleet.samples | length) >= 1 and .memory.fleet.samples[0].sessions > 0'
check "memory: the sessions hibernated, measured, and the sample's records of hibernated sessions delivered" \
  jqcheck "$J" '.memory.fleet_hibernated.hibernated > 0 and
    (.memory.fleet_hibernated.rss_per_hibernated_session_bytes | type) == "number" and
    .memory.fleet_hibernated.sample.delivered_ok == true'
check "ratios computed against the ceilings" jqcheck "$J" \
  '(.ratios.warm_handshakes_per_cpu_vs_wolfpair | type) == "number" and (.ratios.messages_per_cpu_vs_udp_per_cpu | type) == "number"'
check "hostile: every run measured, both halves of the fleet with latencies" jqcheck "$J" '
  .hostile.fleet_devices > 0 and
  ([.hostile.runs[]] | length == 6 and all(. != null and
     (.cached.p50_ms | type) == "number" and (.cached.p99_ms | type) == "number" and
     (.new.p50_ms | type) == "number" and (.new.p99_ms | type) == "number" and
     (.failures | type) == "number" and (.errors | type) == "number" and
     .cached.devices == .new.devices)) and
  .hostile.runs.none.attack == null and
  ([.hostile.runs | .cke_flood_1, .cke_flood_16, .wrong_key, .replay, .fill] | all(.attack != null)) and
  .hostile.runs.cke_flood_1.attack.sources == 1 and .hostile.runs.cke_flood_16.attack.sources == 16 and
  .hostile.runs.cke_flood_16.attack.ckes_sent > 0'
check "lookup flood: figures and a verdict per target for 1 and 16 sources" jqcheck "$J" '
  [.lookup_flood.one_source, .lookup_flood.sixteen_sources] | all(. != null and
    (.new_p99_ms | type) == "number" and .target_new_p99_ms == 150 and
    (.all_completed | type) == "boolean" and (.new_within_target | type) == "boolean" and
    (.no_positive_evicted | type) == "boolean" and .cached_identities > 0 and
    .cached_get_psk >= .cached_identities)'
# Each half of the fleet is its own process: the cached half's identities are the warm-up's, the
# new half's (--first-device) are others: the service saw both.
check "lookup flood: the new half used identities of its own" jqcheck "$J" \
  '.hostile.runs.none.get_psk.other_identities == .hostile.runs.none.new.devices'
hostile_filled() { # no n/a and no "not run" in the two sections, a PASS or MISS per flood row
  sed -n '/^## Hostile traffic/,/^## Where pskgw stands/p' "$1" >"$WORK/hostile.md"
  ! grep -nE 'n/a|not run' "$WORK/hostile.md" &&
    [ "$(grep -cE '^\| (one source|16 sources) \|.*\| (PASS|MISS) \|$' "$WORK/hostile.md")" -eq 2 ] &&
    [ "$(grep -cE '^\| (no attack|cke-flood|wrong-key|hello replay|many-source fill)' "$WORK/hostile.md")" -eq 6 ]
}
check "report.md: the hostile and lookup-flood sections carry numbers" hostile_filled "$out/report.md"
check "report.md has its sections" bash -c "
  for h in '## Summary against the targets' '## Ceilings of this machine' '## Handshakes' \
           '## Messages end to end' '## Each sink on its own' '## Memory per established session' \
           '## Upstream economy' \
           '## Hostile traffic: the legitimate fleet with and without each attack' \
           '## Lookup flood: real devices while half handshakes flood the key lookups' \
           '## Running a bigger test on a bigger machine'; do
    grep -qF \"\$h\" '$out/report.md' || { echo \"missing \$h\"; exit 1; }
  done"
# The report prints a missing figure as "n/a" (and a jq null as "null"): the summary has neither.
summary_filled() { ! sed -n '/## Summary/,/## Ceilings/p' "$1" | grep -nE 'n/a|null'; }
check "report.md has no unfilled figure in the summary" summary_filled "$out/report.md"
# Issue 13's six targets, each a row of the summary with its target.
summary_targets() {
  sed -n '/## Summary/,/## Ceilings/p' "$1" >"$WORK/summary.md"
  for t in '>= 70 %' '>= 300000 (<= 3.3 us)' '>= 400000 (<= 2.5 us)' '<= 3500 B' '<= 2 ms' '| 0 |'; do
    grep -qF -- "$t" "$WORK/summary.md" || { echo "summary: no row with target $t"; return 1; }
  done
}
check "report.md: the summary has issue 13's targets" summary_targets "$out/report.md"
check "report.md has no null anywhere" bash -c "! grep -n 'null' '$out/report.md'"
# Sentences (lines outside tables) never carry a figure that is missing: they are dropped.
prose_filled() { ! grep -v '^|' "$1" | grep -v '^Not retried; every figure' | grep -n 'n/a'; }
check "no sentence of report.md prints a missing figure" prose_filled "$out/report.md"
# The economy figure (GetPSK calls per identity = 1) is asserted by gateway_sessions_failover; here
# it is a figure of the report (a security service slowed by a loaded machine may be asked again).
mn_ok='.scale_out.nodes == 3 and .scale_out.get_psk.calls_per_identity >= 1 and
  .scale_out.failover.devices_moved == .scale_out.devices_per_node and
  .scale_out.failover.taken_over + .scale_out.failover.awake_at_kill_handshook_again ==
  .scale_out.failover.devices_moved and .scale_out.failover.taken_over == .scale_out.failover.imported_by_b and
  .scale_out.verify_ok == true and .scale_out.fleets_ok == true'
check "three nodes: GetPSK counted across them, node A's devices taken over or handshook again, all delivered" \
  jqcheck "$J" "$mn_ok"
jqcheck "$J" "$mn_ok" || jq -c '.scale_out' "$J" | sed 's/^/  | /' # what failed, for the log
check "no run failed" jqcheck "$J" '.failed_runs == []'
# That check must be able to fail: the same report with one figure of the summary gone is caught.
sed '/^| full PSK-AES128-CCM8/s/| [0-9][0-9.]* |/| n\/a |/' "$out/report.md" >"$WORK/unfilled.md"
check "the summary check catches a figure printed as n/a" bash -c \
  "$(declare -f summary_filled); ! cmp -s '$out/report.md' '$WORK/unfilled.md' &&
   ! summary_filled '$WORK/unfilled.md' >/dev/null"
if command -v gnuplot >/dev/null; then
  check "PNG plots written" bash -c "for p in handshakes latency messages memory; do
    head -c 8 '$out/'\$p.png | od -An -tx1 | grep -q '89 50 4e 47' || exit 1; done"
else
  pskgw_missing gnuplot gnuplot-nox || FAILED=$((FAILED + 1))
fi
if command -v nghttpx >/dev/null; then
  check "cold path: one GetPSK per handshake over HTTP/1.1 and HTTP/2, no error" jqcheck "$J" \
    '[.cold_path.http1, .cold_path.http2] | all(.handshakes_ok > 0 and .get_psk_per_handshake == 1 and .errors == 0)'
  check "cold path: HTTP/2 over one connection, HTTP/1.1 within max_in_flight connections" jqcheck "$J" \
    '.cold_path.http2.connections_to_service == 1 and .cold_path.http2.alpn_seen == "h2" and
     .cold_path.http1.alpn_seen == "http/1.1" and
     .cold_path.http1.connections_to_service <= .cold_path.http1.max_in_flight'
  check "report.md has the cold-path table" grep -q '^| HTTP/2 (ALPN at the front: h2) |' "$out/report.md"
else
  pskgw_missing nghttpx nghttp2-proxy || FAILED=$((FAILED + 1))
fi
if command -v coap-server-openssl >/dev/null; then
  check "peer: coap-server-openssl measured" jqcheck "$J" \
    '.peer.coap_server.handshakes.ok > 0 and .peer.coap_server.memory.held > 0'
else
  pskgw_missing coap-server-openssl libcoap3-bin || FAILED=$((FAILED + 1))
fi
# A ceiling run that fails is reported, not retried: pskgw-wolfpair fails its first run (a second
# would pass). The bench runs everything else, writes the report and exits 1; the report says
# which run failed and prints no figure that needed it.
fake=$WORK/bin-failing-ceiling
mkdir -p "$fake"
for b in pskgw pskgw-sim pskgw-devsim pskgw-udpceiling pskgw-dtls-hammer pskgw-sinkbench pskgw-linelat pskgw-hibbench pskgw-echopeer libpskgw-malloccount.so; do ln -s "$BIN/$b" "$fake/$b"; done
cat >"$fake/pskgw-wolfpair" <<SH
#!/usr/bin/env bash
echo run >>"$WORK/wolfpair.calls"
[ "\$(wc -l <"$WORK/wolfpair.calls")" -eq 1 ] || exec "$BIN/pskgw-wolfpair" "\$@"
echo "pskgw-wolfpair: record 17 failed (a fault injected by the smoke test)" >&2
exit 1
SH
chmod +x "$fake/pskgw-wolfpair"
out2=$WORK/out-failing-ceiling
"$SRC/scripts/bench" --smoke --bin "$fake" --out "$out2" >"$WORK/bench2.log" 2>&1 && rc=0 || rc=$?
check "a failed ceiling run: scripts/bench exits 1" [ "$rc" -eq 1 ]
check "a failed ceiling run is not retried" [ "$(wc -l <"$WORK/wolfpair.calls")" -eq 1 ]
check "a failed ceiling run is in results.json, its figures null" jqcheck "$out2/results.json" \
  '(.failed_runs | length) == 1 and (.failed_runs[0] | test("pskgw-wolfpair.*exit 1")) and
   .ceilings.wolfpair == null and .ratios.warm_handshakes_per_cpu_vs_wolfpair == null'
check "a failed ceiling run is in report.md" bash -c \
  "grep -q '^## Runs that failed' '$out2/report.md' && grep -q '^- pskgw-wolfpair.*exit 1' '$out2/report.md'"
check "a failed ceiling run: its ratio is n/a, no sentence states it, no null printed" bash -c "
  grep -q '^| full PSK-AES128-CCM8.* | n/a | >= 70 % | n/a |' '$out2/report.md' &&
  ! grep -q 'of the in-memory ceiling per CPU-second' '$out2/report.md' &&
  ! grep -n 'null' '$out2/report.md'"
check "a failed ceiling run: no sentence prints a figure that needed it" prose_filled "$out2/report.md"
[ "$rc" -eq 1 ] || tail -n 30 "$WORK/bench2.log" | sed 's/^/  | /'
# --only: the ceilings and the sections named, the others not run (null in results.json, "not
# run" / n/a in the report); an unknown section is refused before anything runs.
out3=$WORK/out-only
"$SRC/scripts/bench" --smoke --only messages --bin "$BIN" --out "$out3" >"$WORK/bench3.log" 2>&1 && rc=0 || rc=$?
check "--only messages exits 0" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || tail -n 30 "$WORK/bench3.log" | sed 's/^/  | /'
check "--only messages: the ceilings and the message path's figures, no other section" jqcheck "$out3/results.json" \
  '.ceilings.wolfpair and .ceilings.udp and .messages.forwarded > 0 and .messages_plain.forwarded > 0 and
   .messages_latency.latency_us.count > 0 and
   (if '"$sanitized"' then .messages_allocations == null else .messages_allocations.per_message != null end) and
   .handshakes.warm == null and .memory.fleet == null and .forwarding == null and .sinks == [] and
   .scale_out == null and .hostile.runs.none == null'
check "--only messages: the report says so and prints no null" bash -c \
  "grep -q -- '--smoke --only messages' '$out3/report.md' && ! grep -n 'null' '$out3/report.md'"
"$SRC/scripts/bench" --smoke --only messages,nosuch --bin "$BIN" --out "$WORK/out-bad" >"$WORK/bench4.log" 2>&1 && rc=0 || rc=$?
check "--only with an unknown section: exit 2, nothing run" bash -c \
  "[ $rc -eq 2 ] && grep -q 'no section \"nosuch\"' '$WORK/bench4.log' && [ ! -e '$WORK/out-bad' ]"
check "no sanitizer report in any program's output" bash -c \
  "! grep -rlE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' '$out/raw'"
check "every process the bench started is gone" bash -c "
  [ -s '$out/raw/pids.txt' ] || exit 1
  while read -r p st; do
    case \$p in '#'*|'') continue ;; esac
    now=\$(sed -E 's/^.*\\) //' /proc/\$p/stat 2>/dev/null | awk '{ print \$20 }')
    [ \"\$now\" = \"\$st\" ] && { echo \"pid \$p (started at \$st) still running\"; exit 1; }
  done <'$out/raw/pids.txt'; exit 0"

pskgw_skip_status "$PASSED" "$FAILED"

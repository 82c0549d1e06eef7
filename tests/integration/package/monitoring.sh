#!/usr/bin/env bash
# What an SRE drops in works against a real gateway: /metrics passes `promtool check metrics`
# with no warning; pskgw_build_info carries the version; the process_* families are there; an
# idle healthy file sink reads connected 1 from the start; every metric the alert rules and the
# Grafana dashboard (contrib/) query is one the gateway exposes, and every dashboard query
# parses (promtool check rules on the queries as recording rules).
. "$(dirname "$0")/../gateway/lib.sh"
. "$SRC/tests/support/skip.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

if ! command -v promtool >/dev/null; then
  pskgw_missing promtool prometheus || exit 1
  pskgw_skip_status 0 0
  exit $?
fi

start_sim
write_config mon '' ''
start_gateway mon
# The first scrape is rendered on the loop's first tick: wait for it, no message sent.
wait_until bash -c "curl -sf '$GW_ADMIN' | grep -q '^pskgw_build_info'"
curl -sf "$GW_ADMIN" >"$WORK/idle.metrics"

out=$(promtool check metrics <"$WORK/idle.metrics" 2>&1) && rc=0 || rc=$?
check "promtool check metrics: no problem and no warning (status $rc: ${out:-none})" \
  [ "$rc" -eq 0 -a -z "$out" ]
check "no metric in milliseconds left" bash -c "! grep -Eq '^pskgw_[a-z_]*_ms(_|\\{| )' '$WORK/idle.metrics'"
check "the strict text-format parser accepts it" awk -f "$SRC/tests/integration/gateway/promcheck.awk" \
  "$WORK/idle.metrics"

version=$("$BIN/pskgw" --version | awk 'NR == 1 { print $2 }')
check "pskgw_build_info{version=\"$version\"} 1" \
  grep -qx "pskgw_build_info{version=\"$version\"} 1" "$WORK/idle.metrics"
for f in process_cpu_seconds_total process_resident_memory_bytes process_virtual_memory_bytes \
  process_open_fds process_max_fds process_start_time_seconds; do
  check "$f exposed" grep -Eq "^$f [0-9]" "$WORK/idle.metrics"
done
val() { awk -v k="$1" '$1 == k { print $2 }' "$WORK/idle.metrics"; }
rss=$(val process_resident_memory_bytes)
rss_proc=$(awk '/^VmRSS:/ { print $2 * 1024 }' "/proc/$GW_PID/status")
check "resident memory ($rss) within a factor of 2 of /proc's VmRSS ($rss_proc)" \
  awk -v a="$rss" -v b="$rss_proc" 'BEGIN { exit !(a > 0 && a < 2 * b && b < 2 * a) }'
fds=$(val process_open_fds)
check "open fds ($fds) between 5 and process_max_fds ($(val process_max_fds))" \
  awk -v a="$fds" -v m="$(val process_max_fds)" 'BEGIN { exit !(a >= 5 && a <= m) }'
start=$(val process_start_time_seconds)
check "start time ($start) within a minute of now" \
  awk -v s="$start" -v n="$(date +%s)" 'BEGIN { exit !(s <= n + 1 && s > n - 60) }'
check "an idle healthy file sink reads connected 1 from the start" \
  grep -qx 'pskgw_sink_connected{domain="mon",sink="file-0"} 1' "$WORK/idle.metrics"
check "the latency histogram is in seconds" \
  grep -q '^pskgw_upstream_latency_seconds_bucket{domain="mon",op="get_psk",le="0.005"} ' \
  "$WORK/idle.metrics"

# Every metric the rules use is exposed (rules may also use Prometheus' own `up`).
missing=""
for m in $(grep -v '^ *#' "$SRC/contrib/prometheus/pskgw.rules.yml" | grep -Eo '\b(pskgw|process)_[a-z0-9_]+' | sort -u); do
  grep -Eq "^${m}[{ ]" "$WORK/idle.metrics" || missing+=" $m"
done
check "every metric of pskgw.rules.yml is exposed (missing:${missing:- none})" [ -z "$missing" ]

check "the dashboard's queries name exposed metrics only" python3 "$HERE/dashboard_exprs.py" \
  "$SRC/contrib/grafana/pskgw.json" "$WORK/idle.metrics" "$WORK/dashboard.rules.yml"
check "the dashboard's queries parse (promtool check rules)" \
  promtool check rules "$WORK/dashboard.rules.yml"

stop_gateway || true
finish

#!/usr/bin/env bash
# What an awake established session holds in the real gateway, block by block (a report, not a
# test; docs/ARCHITECTURE.md, "What an awake session holds").
#
#   bench/awake-mem.sh BUILD_DIR [N]      (N sessions per wave, default 10000)
#
# pskgw runs under libpskgw-malloccount.so with PSKGW_MALLOCCOUNT_LIVE (live blocks by
# malloc_usable_size), configured as scripts/bench's section 5 (hibernation off in effect, per-IP
# limits off). The key cache is warmed with 2N identities first (short sessions); then N devices
# make a session each, send one message and hold it; the live blocks and RSS are taken; N more
# devices do the same and they are taken again. The difference of the two, divided by N, is
# what one more awake session costs: blocks by usable size (chunk = usable + 8), heap bytes,
# RSS. Needs pskgw, pskgw-sim, pskgw-devsim and libpskgw-malloccount.so in BUILD_DIR.
set -euo pipefail

bin=$(cd "${1:?usage: bench/awake-mem.sh BUILD_DIR [N]}" && pwd)
N=${2:-10000}
RAMP=${AWAKE_MEM_RAMP:-2000}
SEED=bench
W=$(mktemp -d "${TMPDIR:-/tmp}/pskgw-awake-mem.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
for b in pskgw pskgw-sim pskgw-devsim libpskgw-malloccount.so; do
  [ -e "$bin/$b" ] || { echo "awake-mem: $bin/$b missing" >&2; exit 1; }
done
[ "$(ulimit -n)" -ge $((N + 1000)) ] || ulimit -n $((N + 1000)) 2>/dev/null ||
  { echo "awake-mem: needs $((N + 1000)) file descriptors (ulimit -n)" >&2; exit 1; }

wait_for() { # file, regex, seconds -> the first match
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    if grep -Eom1 "$2" "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "awake-mem: \"$2\" not in $1" >&2
  exit 1
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
metric() { curl -s "$ADMIN" | awk -v k="$1" 'index($0, k) == 1 { v = $2 } END { print v + 0 }'; }
active() { metric 'pskgw_listener_sessions_active{domain="bench",listener="dtls"}'; }

"$bin/pskgw-sim" --strict --listen 127.0.0.1:0 --api-key bench-key --api-secret bench-secret \
  --seed "$SEED" >"$W/sim.out" 2>"$W/sim.err" &
PIDS+=($!)
SIM_URL=$(wait_for "$W/sim.out" '^https?://[0-9.]+:[0-9]+' 10)
printf 'bench-secret' >"$W/api.secret"
cat >"$W/mem.conf" <<CONF
domain = "bench";
api = { url = "$SIM_URL"; key_id = "bench-key"; secret_file = "api.secret";
        timeout_ms = 5000; deadline_ms = 30000; max_in_flight = 256; queue_size = 1000000; };
listeners = ( { name = "dtls"; proto = "udp"; address = "127.0.0.1"; port = 0;
                hibernate_after_s = 86400; } );
cache = { entries = 1000000; e2e_entries = 1000000; ttl_s = 86400; };
e2e = "auto";
sinks = ( { type = "file"; path = "$W/mem.jsonl"; queue_size = 1000000; } );
limits = { max_sessions = 1000000; max_pending_handshakes = 1000000; idle_timeout_s = 3600;
           handshake_timeout_ms = 60000; per_ip_handshakes_per_s = 0; identity_fail_max = 0; };
admin = { address = "127.0.0.1"; port = 0; };
log = { level = "notice"; };
CONF
(cd "$W" && LD_PRELOAD="$bin/libpskgw-malloccount.so" PSKGW_MALLOCCOUNT_FILE="$W/count" \
  PSKGW_MALLOCCOUNT_LIVE="$W/live" exec "$bin/pskgw" --config "$W/mem.conf" >"$W/gw.out" \
  2>"$W/gw.log") &
GW=$!
PIDS+=("$GW")
UDP=$(wait_for "$W/gw.log" 'on udp 127\.0\.0\.1:[0-9]+' 10 | grep -Eo '[0-9]+$')
ADMIN=$(wait_for "$W/gw.log" 'http://127\.0\.0\.1:[0-9]+/metrics' 10)

echo "awake-mem: warming the key cache with $((2 * N)) identities" >&2
for first in 0 "$N"; do # one socket per device: N per fleet process
  "$bin/pskgw-devsim" --target "127.0.0.1:$UDP" --seed "$SEED" --first-device "$first" \
    --devices "$N" --ramp "$RAMP" --messages 0 --duration 600 --quiet >"$W/warm$first.txt" 2>&1
done
sleep 1.2

dump() { # name: live blocks and RSS
  rm -f "$W/count"
  kill -USR2 "$GW"
  for ((i = 0; i < 50; i++)); do [ -s "$W/count" ] && break; sleep 0.1; done
  sleep 0.2
  cp "$W/live" "$W/live.$1"
  rss_kb "$GW" >"$W/rss.$1"
}
wave() { # name, first device
  "$bin/pskgw-devsim" --target "127.0.0.1:$UDP" --seed "$SEED" --first-device "$2" \
    --devices "$N" --ramp "$RAMP" --messages 1 --rate 100 --hold 900 --duration 1000 \
    --handshake-timeout 30 --quiet >"$W/$1.txt" 2>&1 &
  PIDS+=($!)
  local want=$(($2 + N)) end=$((SECONDS + N / RAMP + 120))
  while [ "$(active)" -lt "$want" ] && [ "$SECONDS" -lt "$end" ]; do sleep 0.3; done
  sleep 1.5 # the last sessions' first records
  echo "awake-mem: $1: $(active) sessions, RSS $(rss_kb "$GW") kB" >&2
  dump "$1"
}
wave a 0
wave b "$N"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "RSS per session (b - a): $((($(cat "$W/rss.b") - $(cat "$W/rss.a")) * 1024 / N)) B"
# Blocks per session by usable size: count(b) - count(a), over N (classes with |d| >= N/20).
awk -v n="$N" '
  FNR == NR { a[$1] = $2; ab[$1] = $3; next }
  { b[$1] = $2; bb[$1] = $3 }
  END {
    for (k in a) if (!(k in b)) b[k] = 0
    printf "%-10s %10s %12s\n", "usable", "blocks/ses", "bytes/ses"
    for (k in b) {
      d = b[k] - a[k]
      if (k ~ /\+$/) { bytes = (bb[k] - ab[k]) / n } else { bytes = d * (k + 8) / n }
      total += bytes
      if (d * 20 >= n || -d * 20 >= n)
        printf "%-10s %10.2f %12.1f\n", k, d / n, bytes
    }
    printf "heap per session (chunks, all classes): %.0f B\n", total
  }' "$W/live.a" "$W/live.b" | sort -n
echo "(raw dumps in $W)"
trap - EXIT
cleanup

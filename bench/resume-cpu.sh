#!/usr/bin/env bash
# Abbreviated handshakes (session ticket, session ID) per gateway CPU-second next to full ones
# (issue 12, section 3). A report, not a test: one pskgw (resumption on, warm key cache) on
# loopback, and pskgw-devsim fleets whose devices reconnect after every message:
#   full:    --reconnect-every 1            every handshake full (keys from the warm cache)
#   resumed: --reconnect-every 1 --resume   the first handshake per device full, then tickets
#   by_id:   ... --resume --no-tickets      the first full, then by session ID (RFC 5246 7.3)
# Gateway CPU: the sum of /proc/PID/task/*/schedstat (ns on a CPU) around each fleet, as
# scripts/bench measures it. Both figures include the one 64-byte message each session carries.
# The CPU of the resumed runs' full handshakes is taken off at the full run's cost per handshake.
# Usage: bench/resume-cpu.sh [BIN_DIR (default build)] [DEVICES (200)] [MESSAGES per device (20)]
# Prints one JSON line.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "${1:-$SRC/build}" && pwd)
DEVICES=${2:-200}
MSGS=${3:-20}
WORK=$(mktemp -d /tmp/pskgw-resume-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
wait_for() { # file regex: first match (guard: 60 s)
  local i
  for ((i = 0; i < 600; i++)); do
    grep -Eo "$2" "$1" 2>/dev/null | head -n 1 | grep . && return 0
    sleep 0.1
  done
  echo "timed out waiting for $2 in $1" >&2
  return 1
}
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{ s += $1 } END { printf "%.0f\n", s }'; } # %d: mawk stops at 2^31-1

"$BIN/pskgw-sim" --listen 127.0.0.1:0 --api-key k --api-secret s --seed bench --devices "$DEVICES" \
  >"$WORK/sim.out" 2>"$WORK/sim.err" &
PIDS+=($!)
SIM_URL=$(wait_for "$WORK/sim.out" '^https?://[0-9.]+:[0-9]+')
printf 's' >"$WORK/api.secret"
openssl rand -hex 32 >"$WORK/tickets.key"
cat >"$WORK/b.conf" <<CONF
domain = "b";
api = { url = "$SIM_URL"; key_id = "k"; secret_file = "api.secret"; };
listeners = ( { name = "dtls"; proto = "udp"; address = "127.0.0.1"; port = 0; } );
limits = { per_ip_handshakes_per_s = 0; };
resumption = { ticket_key_file = "tickets.key"; };
sinks = ( { type = "file"; path = "/dev/null"; } );
CONF
"$BIN/pskgw" --config "$WORK/b.conf" >"$WORK/gw.out" 2>"$WORK/gw.log" &
GW=$!
PIDS+=("$GW")
PORT=$(wait_for "$WORK/gw.log" 'on udp 127\.0\.0\.1:[0-9]+' | grep -Eo '[0-9]+$')
fleet() { # name extra-args...: runs a fleet, prints "cpu_ns handshakes resumed"
  local name=$1 c0 c1
  shift
  c0=$(cpu_ns "$GW")
  "$BIN/pskgw-devsim" --target "127.0.0.1:$PORT" --seed bench --devices "$DEVICES" --messages "$MSGS" \
    --reconnect-every 1 --rate 100000 --duration 600 --quiet --json "$WORK/$name.json" "$@" \
    >"$WORK/$name.txt" 2>&1
  c1=$(cpu_ns "$GW")
  echo "$((c1 - c0)) $(jq '.handshakes.ok' "$WORK/$name.json") $(jq '.resumption.resumed // 0' "$WORK/$name.json")"
}
fleet warm --messages 1 >/dev/null # every key into the gateway's cache
read -r cf hf _ < <(fleet full)
read -r cr hr rr < <(fleet resumed --resume)
read -r ci hi ri < <(fleet by_id --resume --no-tickets)
awk -v cf="$cf" -v hf="$hf" -v cr="$cr" -v hr="$hr" -v rr="$rr" -v ci="$ci" -v hi="$hi" -v ri="$ri" 'BEGIN {
  full_cost = cf / hf;                     # ns per full handshake (+ one message)
  res_cpu = cr - (hr - rr) * full_cost;    # ns of the ticket run spent on its resumed ones
  id_cpu = ci - (hi - ri) * full_cost;     # ns of the session-ID run spent on its resumed ones
  printf "{\"full_handshakes\":%d,\"full_cpu_s\":%.3f,\"full_per_cpu_s\":%.0f,", hf, cf / 1e9, hf / (cf / 1e9);
  printf "\"resumed_run_handshakes\":%d,\"resumed\":%d,\"resumed_run_cpu_s\":%.3f,", hr, rr, cr / 1e9;
  printf "\"resumed_per_cpu_s\":%.0f,\"ratio\":%.2f,", rr / (res_cpu / 1e9), (rr / (res_cpu / 1e9)) / (hf / (cf / 1e9));
  printf "\"by_id_run_handshakes\":%d,\"by_id_resumed\":%d,\"by_id_run_cpu_s\":%.3f,", hi, ri, ci / 1e9;
  printf "\"by_id_per_cpu_s\":%.0f,\"by_id_ratio\":%.2f}\n", ri / (id_cpu / 1e9), (ri / (id_cpu / 1e9)) / (hf / (cf / 1e9));
}'

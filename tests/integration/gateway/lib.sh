# Helpers for the gateway's integration scripts: start the real binaries on loopback (port 0),
# wait for what they print, stop everything at exit. Sourced.
set -euo pipefail
BIN=${PSKGW_BIN_DIR:?}
SRC=${PSKGW_SOURCE_DIR:?}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pskgw-it.XXXXXX")
PIDS=()
PASSED=0
FAILED=0

cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

ok() { echo "ok: $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL: $*"; FAILED=$((FAILED + 1)); }
check() { # description, command...
  local what=$1; shift
  if "$@"; then ok "$what"; else fail "$what"; fi
}
finish() {
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}

wait_for() { # file, regex, seconds -> prints the first match
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    if grep -m1 -Eo "$2" "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "timed out waiting for '$2' in $1" >&2
  sed 's/^/  | /' "$1" >&2
  return 1
}

# start_sim [extra flags...]: sets SIM_URL
start_sim() {
  "$BIN/pskgw-sim" --listen 127.0.0.1:0 --api-key it-key --api-secret it-secret --seed it "$@" \
    >"$WORK/sim.out" 2>"$WORK/sim.err" &
  PIDS+=($!)
  SIM_URL=$(wait_for "$WORK/sim.out" '^https?://[0-9.]+:[0-9]+' 10)
}

# write_config NAME EXTRA: a domain file using the simulator, listeners on port 0.
write_config() {
  printf 'it-secret' >"$WORK/it.secret"
  cat >"$WORK/$1.conf" <<CONF
domain = "$1";
api = { url = "$SIM_URL"; key_id = "it-key"; secret_file = "it.secret"; timeout_ms = 2000; };
listeners = ( { name = "dtls"; proto = "udp"; address = "127.0.0.1"; port = 0; $3 },
              { name = "tls"; proto = "tcp"; address = "127.0.0.1"; port = 0; framing = "len16"; $3 } );
cache = { entries = 1000; ttl_s = 600; negative_ttl_s = 60; stale_s = 3600; };
e2e = "auto";
sinks = ( { type = "file"; path = "$WORK/$1.jsonl"; } );
admin = { address = "127.0.0.1"; port = 0; };
$2
CONF
}

# start_gateway NAME: sets GW_PID, GW_UDP, GW_TCP, GW_ADMIN
start_gateway() {
  "$BIN/pskgw" --config "$WORK/$1.conf" >"$WORK/$1.stdout" 2>"$WORK/$1.log" &
  GW_PID=$!
  PIDS+=($GW_PID)
  GW_UDP=$(wait_for "$WORK/$1.log" 'on udp 127\.0\.0\.1:[0-9]+' 10 | grep -Eo '[0-9]+$')
  GW_TCP=$(wait_for "$WORK/$1.log" 'on tcp 127\.0\.0\.1:[0-9]+' 10 | grep -Eo '[0-9]+$')
  GW_ADMIN=$(wait_for "$WORK/$1.log" 'http://127\.0\.0\.1:[0-9]+/metrics' 10)
}

metric() { # name{labels} substring -> value
  curl -s "$GW_ADMIN" | grep -F "$1" | head -n1 | awk '{print $2}'
}

stop_gateway() { # -> exit status of the gateway after SIGTERM
  local rc=0
  kill -TERM "$GW_PID"
  wait "$GW_PID" || rc=$?
  return $rc
}

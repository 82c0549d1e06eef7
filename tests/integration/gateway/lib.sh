# shellcheck shell=bash disable=SC2034
# Helpers for the gateway's integration scripts: start the real binaries on loopback (port 0 or
# a reserved port), wait for what they print, stop every process with SIGTERM and check how it
# ended. Sourced.
#
# Process registry: every process a script starts is tracked (track, or start_sim, start_gateway,
# start_redis, reserve_ports, which track what they start). stop_proc sends SIGTERM, waits for
# the exit (a guard deadline only against hanging, then SIGTERM again and SIGKILL) and records
# one check: the exit status is one expected (0 unless said) and no log of the process holds a
# sanitizer report.
# finish (and the EXIT trap, if a script ends early) stops whatever is still running the same
# way, then looks for sanitizer reports in every log of the work directory (foreground runs
# included). A failed run keeps its work directory and prints the tail of its processes' logs.
# Ports: listeners on port 0, read back from what the binary prints; a server that needs a fixed
# port (redis-server, pskgw --worker) gets one from reserve_ports, held until the script ends.
#
# No sleeps as synchronisation: wait_for (a line in a file), wait_until (a command that
# succeeds), wait_metric (a metric reaches a value) poll for the event; their deadline (GUARD_S)
# only stops a hanging test and is never an assertion about speed.
set -euo pipefail
BIN=${PSKGW_BIN_DIR:?}
SRC=${PSKGW_SOURCE_DIR:?}
LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pskgw-it.XXXXXX")
GUARD_S=${PSKGW_IT_GUARD_S:-60}
SANITIZER_RE='ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:'
PIDS=() # every process started, in order (a pid added without track is stopped, not judged)
declare -A PROC_NAME=() PROC_LOGS=()
ALL_LOGS=() # the logs of every process tracked, for the tails printed when the run fails
SHOWN_LOGS=" "
PASSED=0
FAILED=0
KEEP_WORK=0

ok() { echo "ok: $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL: $*"; FAILED=$((FAILED + 1)); KEEP_WORK=1; }
check() { # description, command...
  local what=$1; shift
  if "$@"; then ok "$what"; else fail "$what"; fi
}
# A check's command whose output is noise: `check "..." quiet jq -e ...` (a `>/dev/null` after
# the check would hide its ok/FAIL line too; tests/integration/build/check_lines.sh finds those).
quiet() { "$@" >/dev/null; }

# --- waiting on events -----------------------------------------------------------------------
wait_for() { # file, regex[, seconds] -> prints the first match; gives up early when the
  # process WAIT_PID (if set: WAIT_PID=$pid wait_for ...) has ended
  local end=$((SECONDS + ${3:-$GUARD_S}))
  while :; do
    if grep -m1 -Eo "$2" "$1" 2>/dev/null; then return 0; fi
    [ "$SECONDS" -lt "$end" ] || break
    if [ -n "${WAIT_PID:-}" ] && ! kill -0 "$WAIT_PID" 2>/dev/null; then
      grep -m1 -Eo "$2" "$1" 2>/dev/null && return 0
      echo "process $WAIT_PID ended" >&2
      break
    fi
    sleep 0.1
  done
  echo "timed out waiting for '$2' in $1" >&2
  tail -n 40 "$1" 2>/dev/null | sed 's/^/  | /' >&2
  return 1
}
wait_line() { # file regex [pid]: wait_for without printing; gives up early if pid ends
  WAIT_PID=${3:-} wait_for "$1" "$2" >/dev/null
}
wait_until() { # command...: polls it until it succeeds (guard deadline GUARD_S)
  local end=$((SECONDS + GUARD_S))
  while :; do
    if "$@"; then return 0; fi
    [ "$SECONDS" -lt "$end" ] || break
    sleep 0.1
  done
  echo "gave up after ${GUARD_S} s waiting for: $*" >&2
  return 1
}
count_is() { # file regex test n: [ (lines of file matching regex) test n ]
  local n
  n=$(grep -Ec "$2" "$1" 2>/dev/null) || true
  test "${n:-0}" "$3" "$4"
}

# --- the process registry --------------------------------------------------------------------
track() { # name pid log...: a process this script started, and the files it writes its output to
  PROC_NAME[$2]=$1
  PROC_LOGS[$2]="${*:3}"
  ALL_LOGS+=("${@:3}")
  PIDS+=("$2")
}
forget() { # pid
  local p keep=()
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=(${keep[@]+"${keep[@]}"})
  unset "PROC_NAME[$1]" "PROC_LOGS[$1]"
}
show_logs() { # pid: the tail of its logs
  local f
  # shellcheck disable=SC2086
  show_tails ${PROC_LOGS[$1]:-}
}
show_tails() { # file...: the last lines of each (once per run)
  local f
  for f in "$@"; do
    [[ "$SHOWN_LOGS" != *" $f "* ]] || continue
    SHOWN_LOGS+="$f "
    echo "  --- tail of $f"
    tail -n 30 "$f" 2>/dev/null | sed 's/^/  | /'
  done
}
reap() { # pid seconds: waits for the end of the process; sets REAPED (its exit status) and
  # REAP_KILLED=1 when it was still running at the deadline (then it gets SIGTERM and, 10 s
  # later, SIGKILL)
  local end=$((SECONDS + $2))
  REAP_KILLED=0
  while kill -0 "$1" 2>/dev/null && [ "$SECONDS" -lt "$end" ]; do sleep 0.1; done
  if kill -0 "$1" 2>/dev/null; then
    REAP_KILLED=1
    kill -TERM "$1" 2>/dev/null || true
    end=$((SECONDS + 10))
    while kill -0 "$1" 2>/dev/null && [ "$SECONDS" -lt "$end" ]; do sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
  fi
  REAPED=0
  wait "$1" 2>/dev/null || REAPED=$?
}
verdict() { # pid expected-statuses how: one check of how a tracked process ended; the
  # expected statuses are one number or a list ("0,1")
  local name=${PROC_NAME[$1]:-} bad="" logs
  if [ -z "$name" ]; then # added to PIDS by hand: stopped, its status not judged
    echo "note: untracked process $1: $3 -> exit $REAPED"
    forget "$1"
    return 0
  fi
  [ "$REAP_KILLED" = 0 ] || bad="still running after ${GUARD_S} s; "
  [[ ",$2," == *",$REAPED,"* ]] || bad+="expected exit status $2; "
  # shellcheck disable=SC2086
  logs=$(grep -lE "$SANITIZER_RE" ${PROC_LOGS[$1]:-/dev/null} 2>/dev/null || true)
  [ -z "$logs" ] || bad+="sanitizer report in $logs; "
  if [ -z "$bad" ]; then
    ok "$name: $3 -> exit $REAPED, no sanitizer report"
  else
    fail "$name: $3 -> exit $REAPED: ${bad%; }"
    show_logs "$1"
  fi
  forget "$1"
}
stop_proc() { # pid [expected exit statuses, default 0] -> its exit status (and one check)
  kill -TERM "$1" 2>/dev/null || true
  reap "$1" "$GUARD_S"
  verdict "$1" "${2:-0}" SIGTERM
  return "$REAPED"
}
wait_exit() { # pid [expected exit statuses, default 0] -> its exit status, for a process that
  # ends by itself (and one check); SIGTERM, then SIGKILL, if it still runs at the deadline
  reap "$1" "$GUARD_S"
  verdict "$1" "${2:-0}" "ended by itself"
  return "$REAPED"
}
stop_all() { # stops what is still running, the last started first
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_proc "${PIDS[$i]}" || true; done
}
sweep_logs() { # a sanitizer report in any log of the run (foreground runs included) fails it
  local f
  for f in $(grep -rlE --exclude='*.jsonl' "$SANITIZER_RE" "$WORK" 2>/dev/null || true); do
    fail "sanitizer report in $f"
    grep -m3 -E "$SANITIZER_RE" "$f" | sed 's/^/  | /'
  done
}
finish() {
  stop_all
  sweep_logs
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}
on_exit() {
  local rc=$?
  set +e
  if [ "${#PIDS[@]}" -gt 0 ]; then
    echo "ended early (status $rc): stopping what is still running"
    stop_all
    sweep_logs
    echo "$PASSED passed, $FAILED failed"
  fi
  [ "$FAILED" -eq 0 ] || [ "$rc" -ne 0 ] || rc=1
  if [ "$rc" -ne 0 ] || [ "$KEEP_WORK" = 1 ]; then
    show_tails ${ALL_LOGS[@]+"${ALL_LOGS[@]}"}
    echo "logs kept in $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 143' TERM INT HUP # (a CTest timeout): the EXIT trap still stops every process

# --- servers ---------------------------------------------------------------------------------
reserve_ports() { # [--reuseport] tcp|udp|tcp+1...: sets PORTS and RESERVE_PID; the ports stay
  # bound (never listening) until stop_proc "$RESERVE_PID" (see reserve_ports.py)
  local out
  out=$(mktemp "$WORK/reserve.XXXX")
  python3 "$LIB_DIR/reserve_ports.py" "$@" >"$out" 2>&1 &
  RESERVE_PID=$!
  track "port reservation ($*)" "$RESERVE_PID" "$out"
  read -r -a PORTS <<<"$(wait_for "$out" '^[0-9]+( [0-9]+)*$')"
}

# start_sim [extra flags...]: sets SIM_URL and SIM_PID
SIM_SEQ=0
start_sim() {
  # A number of its own per simulator: the count of tracked processes is reused once one is
  # forgotten, and a second simulator then read the first one's (dead) address from its file.
  local n=$((SIM_SEQ += 1))
  # --strict: the simulator refuses what a careful real service would (pskgw must not depend on
  # the simulator's leniency).
  "$BIN/pskgw-sim" --strict --listen 127.0.0.1:0 --api-key it-key --api-secret it-secret --seed it "$@" \
    >"$WORK/sim$n.out" 2>"$WORK/sim$n.err" &
  SIM_PID=$!
  track pskgw-sim "$SIM_PID" "$WORK/sim$n.out" "$WORK/sim$n.err"
  SIM_URL=$(WAIT_PID=$SIM_PID wait_for "$WORK/sim$n.out" '^https?://[0-9.]+:[0-9]+')
}

# start_redis [redis-server flags...]: on a port reserved for the whole script (REDIS_PORT), so
# that a restart gets the same port and no other test can take it meanwhile; sets REDIS_PID.
start_redis() {
  local log
  if [ -z "${REDIS_PORT:-}" ]; then
    reserve_ports tcp
    REDIS_PORT=${PORTS[0]}
  fi
  log=$(mktemp "$WORK/redis.XXXX")
  mv "$log" "$log.log"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" \
    --loglevel notice "$@" >"$log.log" 2>&1 &
  REDIS_PID=$!
  track redis-server "$REDIS_PID" "$log.log"
  WAIT_PID=$REDIS_PID wait_for "$log.log" 'Ready to accept connections' >/dev/null
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

# start_gateway NAME [pskgw flags...]: sets GW_PID, GW_UDP, GW_TCP, GW_ADMIN (the ports it bound,
# read back from its log)
start_gateway() {
  "$BIN/pskgw" --config "$WORK/$1.conf" "${@:2}" >"$WORK/$1.stdout" 2>"$WORK/$1.log" &
  GW_PID=$!
  track "pskgw $1" "$GW_PID" "$WORK/$1.stdout" "$WORK/$1.log"
  read_gateway_ports "$WORK/$1.log"
}
read_gateway_ports() { # log: GW_UDP, GW_TCP, GW_ADMIN of the first domain it names (GW_PID's)
  local w=$GW_PID
  GW_UDP=$(WAIT_PID=$w wait_for "$1" 'on udp 127\.0\.0\.1:[0-9]+' | grep -Eo '[0-9]+$')
  GW_TCP=$(WAIT_PID=$w wait_for "$1" 'on tcp 127\.0\.0\.1:[0-9]+' | grep -Eo '[0-9]+$')
  GW_ADMIN=$(WAIT_PID=$w wait_for "$1" 'http://127\.0\.0\.1:[0-9]+/metrics')
}

metric() { # name{labels} substring [admin url] -> value of the first sample that contains it
  curl -s "${2:-$GW_ADMIN}" | awk -v k="$1" '!/^#/ && index($0, k) && !n++ { print $2 }'
}
metric_is() { # name{labels} test value [admin url]: [ metric test value ]
  local v
  v=$(metric "$1" "${4:-}")
  [ -n "$v" ] && test "$v" "$2" "$3" 2>/dev/null
}
wait_metric() { # name{labels} test value [admin url]: until the metric satisfies the test
  wait_until metric_is "$@"
}

# Several gateways in one test (nodes of a domain sharing Redis): $WORK/NAME.conf written by
# the test, NAME's log in $WORK/NAME.log.
declare -A NODE_PID=() NODE_UDP=() NODE_ADMIN=()
node() { # name address: starts it; sets NODE_PID[name], NODE_UDP[name], NODE_ADMIN[name]
  local re=${2//./\\.}
  "$BIN/pskgw" --config "$WORK/$1.conf" >"$WORK/$1.stdout" 2>"$WORK/$1.log" &
  NODE_PID[$1]=$!
  track "pskgw $1" "$!" "$WORK/$1.stdout" "$WORK/$1.log"
  NODE_UDP[$1]=$(WAIT_PID=${NODE_PID[$1]} wait_for "$WORK/$1.log" "on udp $re:[0-9]+" | grep -Eo '[0-9]+$')
  NODE_ADMIN[$1]=$(WAIT_PID=${NODE_PID[$1]} wait_for "$WORK/$1.log" 'http://127\.0\.0\.1:[0-9]+/metrics')
}
reload_gateway() { # pid log: SIGHUP, then until its log says the reload ended (done or refused)
  local n
  n=$(grep -c 'reload done\|reload refused' "$2" || true)
  kill -HUP "$1"
  wait_until bash -c "[ \$(grep -c 'reload done\|reload refused' '$2') -gt $n ]"
}

stop_gateway() { # -> exit status of the gateway after SIGTERM (and one check of it)
  stop_proc "$GW_PID"
}

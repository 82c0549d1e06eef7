# shellcheck shell=bash disable=SC2034 # sets variables for the scripts that source it
# Real peers for the gateway's integration scripts (sourced after lib.sh): mosquitto (with an
# optional password file), librdkafka's mock cluster with a consumer, an MQTT subscriber, an HTTP
# receiver or recording proxy, and a gateway started with extra command-line arguments. Every
# process started here is tracked by lib.sh (track) under a NAME and stopped with stop_peer NAME:
# lib.sh's stop_proc (SIGTERM, exit status 0, no sanitizer report in its output). The names
# given to start_* name the files $WORK/NAME.out and $WORK/NAME.err.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
declare -A PEER_PID=()
PEER_ORDER=() # names in start order: finish_peers stops them in reverse

SANITIZER_RE='ERROR: (Address|Leak|Thread|Memory)Sanitizer|Sanitizer has encountered a fatal error|runtime error:|SUMMARY: UndefinedBehaviorSanitizer'

# start_proc NAME CMD...: CMD in the background, stdout in $WORK/NAME.out, stderr in NAME.err,
# stdin from $PROC_STDIN (default /dev/null).
start_proc() {
  local name=$1; shift
  "$@" <"${PROC_STDIN:-/dev/null}" >"$WORK/$name.out" 2>"$WORK/$name.err" 3>&- &
  PEER_PID[$name]=$!
  PEER_ORDER+=("$name")
  track "$name" "$!" "$WORK/$name.out" "$WORK/$name.err"
}

# peer_wait PID SECONDS: waits for a child to end by itself (a guard against hanging, not a time
# check); returns its exit status, or 124 if it was still running (then it stays tracked and is
# stopped and judged at the end). The caller checks the status; the process is no longer tracked
# once it ended (sweep_logs still reads its output for sanitizer reports).
running() { # PID: alive and not a zombie waiting to be reaped
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$st" ] && [ "$st" != Z ]
}
peer_wait() {
  local i rc=0
  for ((i = 0; i < $2 * 10; i++)); do
    running "$1" || break
    sleep 0.1
  done
  if running "$1"; then return 124; fi
  wait "$1" || rc=$?
  forget "$1"
  return $rc
}

# stop_peer NAME [LOG...]: lib.sh's stop_proc for the process started as NAME, with LOG files
# searched for sanitizer reports too: SIGTERM, exit status 0, no report (one check).
stop_peer() {
  local name=$1 pid=${PEER_PID[$1]:-}; shift
  [ -n "$pid" ] || return 0
  [ -z "${PROC_NAME[$pid]:-}" ] || PROC_LOGS[$pid]+=" $*"
  stop_proc "$pid" || true
  unset "PEER_PID[$name]"
}

# A port that was free a moment ago, for servers that cannot bind port 0 (mosquitto): callers
# start the server on it and retry with another one when the server fails to bind. Not for a
# port where nothing may listen: reserve_ports (lib.sh) holds one bound, never listening, so that
# connections to it are refused for the whole script. (forward_udp.sh needs a UDP port nobody
# holds, for the ICMP unreachable, until coap-server takes it: a held socket would swallow it.)
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_mosquitto NAME [USER PASSWORD]: a broker on 127.0.0.1; sets MQTT_PORT. With USER, the
# broker refuses anonymous clients and knows only USER/PASSWORD (mosquitto_passwd file).
start_mosquitto() {
  local name=$1 user=${2:-} pass=${3:-}
  {
    echo "persistence false"
    echo "user $(id -un)" # as root mosquitto would become "mosquitto", who cannot read $WORK
    echo "log_dest stderr"
    echo "log_type error"
    echo "log_type warning"
    echo "log_type notice"
    echo "log_type information"
    if [ -n "$user" ]; then
      : >"$WORK/$name.passwd"
      mosquitto_passwd -b "$WORK/$name.passwd" "$user" "$pass"
      echo "allow_anonymous false"
      echo "password_file $WORK/$name.passwd"
    else
      echo "allow_anonymous true"
    fi
  } >"$WORK/$name.conf.base"
  for _ in 1 2 3 4 5; do
    MQTT_PORT=$(free_port)
    { cat "$WORK/$name.conf.base"; echo "listener $MQTT_PORT 127.0.0.1"; } >"$WORK/$name.conf"
    start_proc "$name" /usr/sbin/mosquitto -c "$WORK/$name.conf"
    if wait_for "$WORK/$name.err" 'running' 10 >/dev/null 2>&1 && running "${PEER_PID[$name]}"; then
      return 0
    fi
    wait "${PEER_PID[$name]}" 2>/dev/null || true # the port was taken in between: another one
  done
  echo "mosquitto did not start" >&2
  return 1
}

# start_mqtt_rx NAME PORT FILTER [USER PASSWORD_FILE]: a QoS 2 subscriber, ready on return.
start_mqtt_rx() {
  local name=$1; shift
  start_proc "$name" "$BIN/pskgw-peerrx" mqtt "$@"
  wait_for "$WORK/$name.out" '^subscribed' 15 >/dev/null
}

# start_kafka NAME TOPIC: librdkafka's mock cluster and a consumer of TOPIC; sets KAFKA_BOOT.
start_kafka() {
  start_proc "$1" "$BIN/pskgw-peerrx" kafka "$2"
  KAFKA_BOOT=$(wait_for "$WORK/$1.out" '^bootstrap .*' 15 | cut -d' ' -f2)
}

# start_http NAME MODE FILE [ARG]: httppeer.py (sink receiver or recording proxy); sets HTTP_URL.
start_http() {
  local name=$1; shift
  start_proc "$name" python3 "$HERE/httppeer.py" "$@"
  HTTP_URL=$(wait_for "$WORK/$name.out" '^http://127\.0\.0\.1:[0-9]+' 10)
}

# start_gateway_args NAME ARGS...: start_gateway with extra command-line arguments; the
# gateway is also known to stop_peer as NAME (output in $WORK/NAME.stdout and $WORK/NAME.log).
start_gateway_args() {
  local name=$1; shift
  "$BIN/pskgw" --config "$WORK/$name.conf" "$@" >"$WORK/$name.stdout" 2>"$WORK/$name.log" &
  GW_PID=$!
  track "pskgw $name" "$GW_PID" "$WORK/$name.stdout" "$WORK/$name.log"
  PEER_PID[$name]=$GW_PID
  PEER_ORDER+=("$name")
  GW_UDP=$(wait_for "$WORK/$name.log" 'on udp 127\.0\.0\.1:[0-9]+' 10 | grep -Eo '[0-9]+$')
  GW_TCP=$(wait_for "$WORK/$name.log" 'on tcp 127\.0\.0\.1:[0-9]+' 10 | grep -Eo '[0-9]+$')
  GW_ADMIN=$(wait_for "$WORK/$name.log" 'http://127\.0\.0\.1:[0-9]+/metrics' 10)
}

# stop_gateway_checked NAME: SIGTERM the gateway started as NAME; exit 0, no sanitizer report.
stop_gateway_checked() {
  stop_peer "$1" "$WORK/$1.log" "$WORK/$1.stdout"
}

# wait_metric 'family{labels' OP VALUE [SECONDS]: waits until the gateway's metric compares
# true (the snapshot is renewed once a second); prints the last value seen.
wait_metric() {
  local i v=
  for ((i = 0; i < ${4:-20} * 10; i++)); do
    v=$(metric "$1")
    if [ -n "$v" ] && test "$v" "$2" "$3"; then echo "$v"; return 0; fi
    sleep 0.1
  done
  echo "${v:-missing}"
  return 1
}

# The message ids of a file of JSON envelopes, sorted.
ids_of() { jq -r .message_id "$1" | sort; }

# start_sim_tracked [flags...]: lib.sh's start_sim, known to stop_peer as "sim".
start_sim_tracked() {
  start_sim "$@"
  PEER_PID[sim]=${PIDS[-1]}
  PEER_ORDER+=(sim)
}

# finish_peers: every process still known here is stopped and checked, then no file of the run
# (logs of the gateway, peers, devsim, openssl) may hold a sanitizer report; then lib.sh's finish.
finish_peers() {
  local i name
  for ((i = ${#PEER_ORDER[@]} - 1; i >= 0; i--)); do
    name=${PEER_ORDER[i]}
    [ -z "${PEER_PID[$name]:-}" ] || stop_peer "$name" "$WORK/$name.log"
  done
  check "no sanitizer report in any output of the run" bash -c \
    '! grep -rEqs "$0" "$1"' "$SANITIZER_RE" "$WORK"
  finish
}

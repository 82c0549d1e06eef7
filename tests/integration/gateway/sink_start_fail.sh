#!/usr/bin/env bash
# Sinks that cannot start, through the real binary. A configuration that is valid on paper but
# whose sink cannot be built is a start-up error: exit status 1 (docs/ARCHITECTURE.md, "Error
# handling by phase"), a log line naming the sink, the path or property and the reason, nothing
# left listening. A file sink's own file is opened at its first message instead (a missing
# directory may appear later): the gateway starts, and the first message names the path and the
# reason, is retried and counted, and the gateway still stops cleanly.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_peers.sh"

start_sim_tracked --devices 1000
touch "$WORK/afile" # a regular file where a directory is needed

fails_to_start() { # name sinks-line [check-config status]: --check-config exits with that status
  # (0 by default: valid on paper; 2: it sees the problem too), the start fails with exit 1
  write_config "$1" '' ''
  sed -i "s#^sinks = .*#$2#" "$WORK/$1.conf"
  "$BIN/pskgw" --check-config "$WORK/$1.conf" >"$WORK/$1.check" 2>&1 && rc=0 || rc=$?
  check "$1: --check-config exits ${3:-0} (got $rc)" [ "$rc" -eq "${3:-0}" ]
  "$BIN/pskgw" --config "$WORK/$1.conf" >"$WORK/$1.stdout" 2>"$WORK/$1.log" &
  local pid=$!
  PIDS+=("$pid")
  peer_wait "$pid" 30 && rc=0 || rc=$?
  check "$1: the start fails with exit status 1 (got $rc)" [ "$rc" -eq 1 ]
  check "$1: the domain is named as not started" grep -q "domain \"$1\" could not start" "$WORK/$1.log"
  check "$1: never reported running" bash -c "! grep -q 'running' '$WORK/$1.log'"
  check "$1: no sanitizer report" bash -c '! grep -Eq "$0" "$1"' "$SANITIZER_RE" "$WORK/$1.log"
}

fails_to_start spool "sinks = ( { type = \"file\"; path = \"$WORK/spool.jsonl\"; spool = { path = \"$WORK/afile/spool\"; }; } );" 2
check "spool: --check-config names the line, the key and the directory" \
  grep -q "spool.conf:[0-9]*: sinks\[0\].spool.path: directory \"$WORK/afile/spool\": Not a directory" \
  "$WORK/spool.check"
check "spool: the log names the spool directory and the reason" \
  grep -q "spool: cannot create \"$WORK/afile/spool\": Not a directory" "$WORK/spool.log"

fails_to_start kprop 'sinks = ( { type = "kafka"; name = "kf"; brokers = "127.0.0.1:1"; topic = "t"; properties = [ "linger.ms=soon" ]; } );'
check "kafka: the log names the property and why it is refused" \
  grep -q 'kafka property "linger.ms": Invalid value' "$WORK/kprop.log"

fails_to_start kname 'sinks = ( { type = "kafka"; name = "kf"; brokers = "127.0.0.1:1"; topic = "t"; properties = [ "no.such.property=1" ]; } );'
check "kafka: an unknown property is named" \
  grep -q 'kafka property "no.such.property": No such configuration property' "$WORK/kname.log"

# a file sink whose directory is a regular file: the start succeeds, the first message says why
write_config lazy '' ''
sed -i "s#^sinks = .*#sinks = ( { type = \"file\"; name = \"out\"; path = \"$WORK/afile/out.jsonl\"; } );#" \
  "$WORK/lazy.conf"
start_gateway_args lazy
check "file sink: the gateway starts although the file cannot be opened yet" grep -q 'running' "$WORK/lazy.log"
"$BIN/pskgw-devsim" --target "127.0.0.1:$GW_UDP" --seed it --devices 1 --messages 1 \
  --duration 20 --quiet >"$WORK/lazy.txt" 2>&1 || true
check "file sink: the first message names the path and the reason" \
  wait_for "$WORK/lazy.log" "file \"$WORK/afile/out.jsonl\": cannot open: .*not a directory" 10
check "file sink: the failed attempt is retried (metric)" \
  [ "$(wait_metric 'pskgw_sink_retried_total{domain="lazy",sink="out"}' -ge 1)" -ge 1 ]
stop_gateway_checked lazy
finish_peers

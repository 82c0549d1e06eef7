#!/usr/bin/env bash
# Issue 16 §6: a core dump holds every secret. The running gateway is non-dumpable (the kernel
# gives its /proc/PID files to root instead of its user) with a soft core size limit of 0, and a SIGABRT
# (what WatchdogSec sends) leaves no core; --allow-core-dumps turns both back on.
# Run as root, the gateways run as nobody (setpriv) so that the ownership tells.
. "$(dirname "$0")/lib.sh"

start_sim
write_config cd "" ""
chmod 1777 "$WORK"
chmod 0644 "$WORK/cd.conf" "$WORK/it.secret"
RUN_AS=()
if [ "$(id -u)" -eq 0 ]; then
  RUN_AS=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
fi
core_pattern=$(cat /proc/sys/kernel/core_pattern)

start_in() { # dir, extra pskgw args...: sets GW_PID
  local dir=$WORK/$1
  mkdir -p "$dir"
  chmod 0777 "$dir"
  shift
  (cd "$dir" && ulimit -c unlimited && exec "${RUN_AS[@]}" "$BIN/pskgw" --config "$WORK/cd.conf" "$@") \
    >"$dir.log" 2>&1 &
  GW_PID=$!
  PIDS+=("$GW_PID")
  wait_for "$dir.log" 'on udp 127\.0\.0\.1:[0-9]+' 20 >/dev/null
}

proc_owner() { stat -c %u "/proc/$1/status"; } # root-owned when non-dumpable
proc_uid() { awk '/^Uid:/ {print $2}' "/proc/$1/status"; }
core_soft() { awk '/^Max core file size/ {print $5}' "/proc/$1/limits"; }

abort_and_wait() { # pid -> 0 when it died of SIGABRT
  local rc=0
  kill -ABRT "$1"
  wait "$1" || rc=$?
  [ "$rc" -eq 134 ]
}

# a core file can only be looked for where the kernel writes it to the process's directory
plain_cores=0
case $core_pattern in '|'* | /*) ;; *) plain_cores=1 ;; esac

start_in default
pid=$GW_PID
check "the gateway runs as its own user ($(proc_uid "$pid"))" test -n "$(proc_uid "$pid")"
check "non-dumpable: /proc/PID/status is owned by root, not by uid $(proc_uid "$pid")" \
  test "$(proc_owner "$pid")" = 0
check "soft core size limit 0 (got $(core_soft "$pid"))" test "$(core_soft "$pid")" = 0
check "SIGABRT kills it" abort_and_wait "$pid"
if [ $plain_cores -eq 1 ]; then
  check "no core file left by the SIGABRT" test -z "$(ls "$WORK/default" | grep -E '^core')"
fi

start_in allowed --allow-core-dumps
pid=$GW_PID
check "warned that core dumps are allowed" grep -q 'core dumps allowed' "$WORK/allowed.log"
if [ "$(id -u)" -eq 0 ] || [ "$(proc_uid "$pid")" != 0 ]; then
  check "--allow-core-dumps: dumpable again (/proc/PID/status owned by uid $(proc_uid "$pid"))" \
    test "$(proc_owner "$pid")" = "$(proc_uid "$pid")"
fi
soft=$(core_soft "$pid")
if [ "$soft" = 0 ]; then
  # AddressSanitizer sets the limit to 0 before main (disable_coredump): nothing to restore
  echo "skip: the core limit was 0 before pskgw started (sanitizer build)"
  kill -TERM "$pid"
  wait "$pid" || true
else
  check "--allow-core-dumps: the core limit as given ($soft)" test "$soft" = unlimited
  check "SIGABRT kills it" abort_and_wait "$pid"
  if [ $plain_cores -eq 1 ]; then
    check "--allow-core-dumps: the SIGABRT left a core file" \
      test -n "$(ls "$WORK/allowed" | grep -E '^core')"
  fi
fi
finish

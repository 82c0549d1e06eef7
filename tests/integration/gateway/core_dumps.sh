#!/usr/bin/env bash
# Issue 16 §6: a core dump holds every secret. The running gateway is non-dumpable (the kernel
# gives its /proc/PID files to root instead of its user) with a soft core size limit of 0, and a SIGABRT
# (what WatchdogSec sends) leaves no core; --allow-core-dumps turns both back on.
# Run as root, the gateways run as nobody (setpriv) so that the ownership tells.
# Where the process stays dumpable, key material lives in MADV_DONTDUMP memory (common/secmem):
# a core of a gateway with a device's PSK cached holds neither that PSK, nor the API secret, nor
# the cache KEK, while a non-secret heap string (the API key id) is found by the same search.
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
  (cd "$dir" && ulimit -c unlimited && exec "${RUN_AS[@]}" "$BIN/pskgw" --config "$WORK/${CONF:-cd.conf}" "$@") \
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

# --- key material stays out of the core of a dumpable gateway ---------------------------------
found_in() { # core, needles (hex, one a line) -> prints the needles found in the core
  python3 - "$1" "$2" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
for line in open(sys.argv[2]):
    h = line.split()[0] if line.strip() else ""
    if h and bytes.fromhex(h) in data:
        print(line.strip())
PY
}
hex() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }
none_found() { # core needles
  local f
  f=$(found_in "$1" "$2")
  [ -z "$f" ] || { echo "  found: $f"; return 1; }
}
control_found() { # core
  [ -n "$(found_in "$1" "$WORK/control.hex")" ]
}

start_redis
head -c 32 /dev/urandom >"$WORK/kek"
chmod 0644 "$WORK/kek"
write_config keys "" ""
sed -i "s#^cache = .*#cache = { entries = 1000; ttl_s = 600; redis = \"redis://127.0.0.1:$REDIS_PORT/0\"; kek_file = \"kek\"; };#" \
  "$WORK/keys.conf"
chmod 0644 "$WORK/keys.conf" "$WORK/it.secret"
CONF=keys.conf start_in keys --allow-core-dumps
pid=$GW_PID
if [ "$(core_soft "$pid")" = 0 ]; then
  echo "skip: the core limit was 0 before pskgw started (sanitizer build): no core to search"
  kill -TERM "$pid"
  wait "$pid" || true
  finish
  exit $?
fi
udp=$(grep -Eo 'on udp 127\.0\.0\.1:[0-9]+' "$WORK/keys.log" | head -1 | grep -Eo '[0-9]+$')
check "two devices delivered through it (their PSKs and E2E parameters are cached)" \
  "$BIN/pskgw-devsim" --target "127.0.0.1:$udp" --seed it --devices 2 --messages 1 --rate 20 \
  --e2e v1 --duration 60 --verify-file "$WORK/keys.jsonl" --quiet
check "don't-dump mappings in /proc/PID/smaps (VmFlags dd)" grep -q '^VmFlags:.* dd' "/proc/$pid/smaps"

# the needles: each device's PSKs (raw bytes, upper and lower case hex), the API secret, the KEK
: >"$WORK/secrets.hex"
for i in 0 1; do
  d=$("$BIN/pskgw-sim" --seed it --show-device "$i")
  for f in psk_128 psk_256; do
    v=$(jq -r ".$f" <<<"$d")
    { echo "${v,,} device $i $f (raw)"; echo "$(hex "$v") device $i $f (hex)"
      echo "$(hex "${v,,}") device $i $f (lower hex)"; } >>"$WORK/secrets.hex"
  done
done
echo "$(hex it-secret) API secret" >>"$WORK/secrets.hex"
echo "$(od -An -v -tx1 "$WORK/kek" | tr -d ' \n') KEK" >>"$WORK/secrets.hex"
echo "$(hex it-key) API key id (not a secret; allocated like the secret was)" >"$WORK/control.hex"

gdb -p "$pid" -batch -nx -ex "gcore $WORK/keys.gcore" >"$WORK/gcore.log" 2>&1
check "gcore wrote a core of the running gateway" test -s "$WORK/keys.gcore"
check "control: the search finds the API key id in the gcore" control_found "$WORK/keys.gcore"
check "the gcore holds no PSK, API secret or KEK" none_found "$WORK/keys.gcore" "$WORK/secrets.hex"
check "SIGABRT kills it" abort_and_wait "$pid"
if [ $plain_cores -eq 1 ]; then
  core=$(ls "$WORK/keys" | grep -E '^core' | head -1)
  check "the SIGABRT left a core file" test -n "$core"
  if [ -n "$core" ]; then
    check "control: the search finds the API key id in the kernel's core" control_found "$WORK/keys/$core"
    check "the kernel's core holds no PSK, API secret or KEK" none_found "$WORK/keys/$core" "$WORK/secrets.hex"
  fi
fi
finish

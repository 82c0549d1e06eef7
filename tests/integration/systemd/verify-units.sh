#!/usr/bin/env bash
# The shipped systemd units are valid (systemd-analyze verify, against the built binary) and
# hardened (systemd-analyze security --offline: overall exposure at most 2.0, "OK").
set -euo pipefail
src=${PSKGW_SOURCE_DIR:?}
bin=${PSKGW_BIN_DIR:?}/pskgw
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
for unit in pskgw.service pskgw@.service; do
  name=$unit
  [ "$unit" = pskgw@.service ] && name=pskgw@0.service
  # the unit as installed (PskgwInstall.cmake fills in the paths), run on the built binary; the
  # man pages it names are checked where they are installed (tests/integration/package)
  sed -e "s#@PSKGW_BINDIR@/pskgw#$bin#g" -e "s#@PSKGW_DOCDIR@#$src/docs#g" \
    "$src/systemd/$unit.in" >"$tmp/$unit"
  if ! out=$(cd "$tmp" && systemd-analyze verify --man=no "$tmp/$name" 2>&1) || [ -n "$out" ]; then
    echo "FAIL: systemd-analyze verify $unit: $out"
    fail=1
  fi
  level=$(cd "$tmp" && systemd-analyze security --offline=yes "$tmp/$name" 2>/dev/null |
          sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
  if [ -z "$level" ] || ! awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }'; then
    echo "FAIL: $unit exposure level '$level' (want <= 2.0)"
    fail=1
  else
    echo "ok: $unit verified, exposure $level"
  fi
done
# The units must start the gateway with options it accepts.
grep -q -- '--config-dir' "$src/systemd/pskgw.service.in"
"$bin" --help | grep -q -- '--config-dir' || { echo "FAIL: pskgw --help lacks --config-dir"; fail=1; }
"$bin" --help | grep -q -- '--worker' || { echo "FAIL: pskgw --help lacks --worker"; fail=1; }
if [ $fail -eq 0 ]; then echo "1 passed, 0 failed"; else echo "0 passed, 1 failed"; fi
exit $fail

#!/usr/bin/env bash
# pskgw --version lists each PSK suite once, and every suite it lists is accepted by the
# configuration: each name is fed to --check-config in a domain's `ciphers` (issue 10 §2).
set -euo pipefail
BIN=${PSKGW_BIN_DIR:?}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pskgw-version.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
PASSED=0
FAILED=0
check() { # description, command...
  local what=$1; shift
  if "$@"; then echo "ok: $what"; PASSED=$((PASSED + 1)); else echo "FAIL: $what"; FAILED=$((FAILED + 1)); fi
}

"$BIN/pskgw" --version >"$WORK/version.out"
# The suite lines follow the "PSK cipher suites" heading: "  NAME (0xNNNN[; ...])".
sed -n '/^PSK cipher suites/,$p' "$WORK/version.out" | sed -n 's/^  \([A-Z0-9-]*\) (0x\([0-9A-F]\{4\}\).*/\1 \2/p' \
  >"$WORK/suites"
check "--version lists suites" [ -s "$WORK/suites" ]
check "--version lists the suite modules use, PSK-AES128-CCM8 (0xC0A8)" grep -qx 'PSK-AES128-CCM8 C0A8' "$WORK/suites"
check "every line under the heading is a suite line" \
  [ "$(sed -n '/^PSK cipher suites/,$p' "$WORK/version.out" | tail -n +2 | wc -l)" -eq "$(wc -l <"$WORK/suites")" ]
check "no suite name listed twice" [ -z "$(cut -d' ' -f1 "$WORK/suites" | sort | uniq -d)" ]
check "no suite number listed twice (CCM-8 under two names)" [ -z "$(cut -d' ' -f2 "$WORK/suites" | sort | uniq -d)" ]

printf 's' >"$WORK/api.secret"
while read -r name iana; do
  cat >"$WORK/$name.conf" <<CONF
domain = "v";
api = { url = "https://ssapi.services.u-blox.com"; key_id = "k"; secret_file = "api.secret"; };
listeners = ( { proto = "udp"; address = "127.0.0.1"; port = 0; } );
ciphers = "$name";
sinks = ( { type = "file"; path = "-"; } );
CONF
  (cd "$WORK" && "$BIN/pskgw" --check-config "$name.conf" >/dev/null 2>"$WORK/$name.err") && rc=0 || rc=$?
  check "--check-config accepts $name (0x$iana), as --version lists it" [ "$rc" -eq 0 ]
  [ "$rc" -eq 0 ] || sed 's/^/  | /' "$WORK/$name.err"
done <"$WORK/suites"

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]

#!/usr/bin/env bash
# The gateway-profile wolfSSL is built once per profile and reused by every clone of the
# repository: a copy of the build scripts at another path finds the same build (no rebuild) and
# links its .deps/wolfssl to the same prefix.
set -euo pipefail
src=${PSKGW_SOURCE_DIR:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/elsewhere/clone/scripts"
cp "$src/scripts/build-wolfssl" "$src/scripts/wolfssl-profile" "$src/scripts/lib.sh" \
  "$tmp/elsewhere/clone/scripts/"
cp -R "$src/scripts/wolfssl" "$tmp/elsewhere/clone/scripts/" # pskgw's additions to wolfSSL, which scripts/build-wolfssl hashes and appends
passed=0 failed=0
"$src/scripts/build-wolfssl" 2>/dev/null # the source tree's build exists (scripts/test made it)
if out=$("$tmp/elsewhere/clone/scripts/build-wolfssl" 2>&1) && ! grep -q 'building wolfSSL' <<<"$out"; then
  echo "ok: a clone at another path reuses the build"; passed=$((passed + 1))
else
  echo "FAIL: a clone at another path rebuilt wolfSSL: $out"; failed=$((failed + 1))
fi
if [ "$(readlink "$tmp/elsewhere/clone/.deps/wolfssl")" = "$(readlink "$src/.deps/wolfssl")" ]; then
  echo "ok: both link the same prefix"; passed=$((passed + 1))
else
  echo "FAIL: different prefixes"; failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# scripts/test --coverage on a tiny project next to a copy of the scripts: a separate coverage
# build runs the project's CTest suite and prints line coverage per module, counting code the
# tests never ran (module beta) and leaving tests/ out; a failing test fails the run.
set -euo pipefail
src=${PSKGW_SOURCE_DIR:?}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pskgw-coverage.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }

p=$tmp/proj
mkdir -p "$p/scripts" "$p/alpha" "$p/beta" "$p/tests"
cp "$src"/scripts/{test,coverage-report,lib.sh,build-wolfssl,wolfssl-profile,build-mbedtls} "$p/scripts/"
cp -R "$src/scripts/wolfssl" "$p/scripts/" # pskgw's additions to wolfSSL, which scripts/build-wolfssl hashes and appends
cat >"$p/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.18)
project(proj C)
enable_testing()
add_library(alpha STATIC alpha/alpha.c)
add_library(beta STATIC beta/beta.c)
add_executable(runner tests/runner.c)
target_link_libraries(runner alpha beta)
add_test(NAME runner COMMAND runner)
CM
cat >"$p/alpha/alpha.c" <<'C'
int alpha(int x)
{
    return x + 1;
}
C
cat >"$p/beta/beta.c" <<'C'
int beta(int x)
{
    if (x > 0)
        return x * 2;
    return -x;
}
C
cat >"$p/tests/runner.c" <<'C'
#include <stdlib.h>
int alpha(int x);
int beta(int x);
int main(void)
{
    int (*volatile b)(int) = beta; /* linked, never called */
    (void)b;
    return alpha(1) == 2 && getenv("PROJ_FAIL") == NULL ? 0 : 1;
}
C

rc=0
out=$("$p/scripts/test" --coverage </dev/null 2>&1) || rc=$?
line() { grep -E "^$1 " <<<"$out" || true; }
if [ "$rc" -eq 0 ] && [ "$(tail -n1 <<<"$out")" = "steps: 3 passed, 0 failed" ]; then
  ok "scripts/test --coverage exits 0 and ends with its steps line"
else
  fail "scripts/test --coverage: exit $rc"
  sed 's/^/  | /' <<<"$out" | tail -n 30
fi
if [[ "$(line alpha)" =~ ^alpha\ +([0-9]+)\ +([0-9]+)\ +100\.0\ %$ ]] && [ "${BASH_REMATCH[1]}" -gt 0 ]; then
  ok "module alpha: every line covered ($(line alpha))"
else
  fail "module alpha: '$(line alpha)'"
fi
if [[ "$(line beta)" =~ ^beta\ +([0-9]+)\ +0\ +0\.0\ %$ ]] && [ "${BASH_REMATCH[1]}" -gt 0 ]; then
  ok "module beta, never run, counted at 0 % ($(line beta))"
else
  fail "module beta: '$(line beta)'"
fi
[ -z "$(line tests)" ] && ok "tests/ not counted" || fail "tests/ counted: $(line tests)"
[[ "$(line total)" =~ ^total\ +[0-9]+\ +[0-9]+\ +[0-9.]+\ %$ ]] && ok "a total line" ||
  fail "no total line"

rc=0
out=$(PROJ_FAIL=1 "$p/scripts/test" --coverage </dev/null 2>&1) || rc=$?
if [ "$rc" -ne 0 ] && [ "$(tail -n1 <<<"$out")" = "steps: 2 passed, 1 failed" ] &&
   [ -n "$(line alpha)" ]; then
  ok "a failing test fails scripts/test --coverage (exit $rc), coverage still printed"
else
  fail "with a failing test: exit $rc, last line '$(tail -n1 <<<"$out")'"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

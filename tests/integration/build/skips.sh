#!/usr/bin/env bash
# Skips are skips: how a skipped test reaches CTest, and what CI=true makes of a missing tool.
#   - cmake/criterion-run.sh: a Criterion binary that skipped a test exits 77 (CTest: skipped);
#     a failure or a sanitizer report next to a skip stays a failure.
#   - tests/support/skip.h: a missing tool skips, and fails under CI=true.
#   - tests/support/skip.sh: the same for shell tests.
#   - every test of this build is registered with SKIP_RETURN_CODE 77, every Criterion binary runs
#     through criterion-run.sh.
set -euo pipefail
BIN=${PSKGW_BIN_DIR:?}
SRC=${PSKGW_SOURCE_DIR:?}
fixture=$BIN/tests/skip_fixture
run=$SRC/cmake/criterion-run.sh
passed=0 failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
unset CI FIXTURE_MISSING FIXTURE_FAIL FIXTURE_SANITIZER

expect() { # description, wanted exit status, env assignments... -- (runs the fixture)
  local what=$1 want=$2 rc=0 out
  shift 2
  out=$(env "$@" "$run" "$fixture" --jobs 1 2>&1) || rc=$?
  if [ "$rc" -eq "$want" ]; then
    ok "$what (exit $rc)"
  else
    fail "$what: exit $rc, wanted $want"
    sed 's/^/  | /' <<<"$out"
  fi
}
[ -x "$fixture" ] || { echo "FAIL: $fixture not built"; exit 1; }
expect "all pass: passed" 0
expect "a missing tool: skipped" 77 FIXTURE_MISSING=1
expect "a missing tool under CI=true: failed" 1 FIXTURE_MISSING=1 CI=true
expect "CI=true without anything missing: passed" 0 CI=true
expect "a skip next to a failure: failed" 1 FIXTURE_MISSING=1 FIXTURE_FAIL=1
expect "a skip next to a sanitizer report: failed" 1 FIXTURE_MISSING=1 FIXTURE_SANITIZER=1
expect "a sanitizer report alone: failed" 1 FIXTURE_SANITIZER=1

# The shell helpers.
sh_case() { # CI value -> exit status of a test that lacks a tool and passed one check
  env ${1:+CI=$1} bash -c '. "$1/tests/support/skip.sh"
    pskgw_missing no-such-tool no-such-package || exit 1
    pskgw_skip_status 1 0' _ "$SRC" >/dev/null 2>&1 && return 0 || return $?
}
rc=0; sh_case "" || rc=$?
[ "$rc" -eq 77 ] && ok "skip.sh: a missing tool skips (exit 77)" || fail "skip.sh without CI: exit $rc"
rc=0; sh_case true || rc=$?
[ "$rc" -eq 1 ] && ok "skip.sh: a missing tool under CI=true fails" || fail "skip.sh under CI: exit $rc"
rc=0; env -u CI bash -c '. "$1/tests/support/skip.sh"; pskgw_skip_status 3 1' _ "$SRC" >/dev/null || rc=$?
[ "$rc" -eq 1 ] && ok "skip.sh: a failure is a failure" || fail "skip.sh with a failure: exit $rc"

# How this build registers its tests.
if ! json=$(ctest --test-dir "$BIN" --show-only=json-v1 2>/dev/null); then
  fail "ctest --show-only failed in $BIN"
else
  n=$(jq '.tests | length' <<<"$json")
  bad=$(jq -r '.tests[] | select(([.properties[]? | select(.name == "SKIP_RETURN_CODE") | .value] | first) != 77) | .name' <<<"$json")
  [ "$n" -gt 0 ] && [ -z "$bad" ] && ok "all $n tests have SKIP_RETURN_CODE 77" ||
    fail "tests without SKIP_RETURN_CODE 77: ${bad:-none registered}"
  # Criterion binaries live in tests/; each one must run through the runner.
  bad=$(jq -r --arg d "$BIN/tests/" '.tests[] | select(.command[0] | startswith($d)) | .name' <<<"$json")
  [ -z "$bad" ] && ok "every Criterion binary runs through criterion-run.sh" ||
    fail "run directly (their skips would pass): $bad"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

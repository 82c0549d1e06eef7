#!/usr/bin/env bash
# criterion-run.sh BINARY ARGS...: how CTest runs a Criterion test binary (pskgw_add_unit_test).
# The binary's output passes through unchanged (stderr merged into stdout). Exit status:
#   - the binary's own when it failed (77 becomes 1: only this script says "skipped");
#   - 1 when it passed but its output holds a sanitizer report (CTest lets SKIP_RETURN_CODE win
#     over FAIL_REGULAR_EXPRESSION, so a skip must never hide a report);
#   - 77 (the test's SKIP_RETURN_CODE) when it passed but Criterion skipped tests ("[SKIP]": a
#     cr_skip_test, a disabled test): CTest shows the binary as skipped, not passed;
#   - 0 otherwise.
# Criterion names skipped tests only at --verbose=0 (by default it counts passes and failures and
# says nothing of skips): it is added when ARGS set no verbosity.
# A skip because a tool or package is missing fails under CI=true: tests/support/skip.h.
set -uo pipefail
[ $# -ge 1 ] || { echo "usage: criterion-run.sh BINARY [ARGS...]" >&2; exit 2; }
out=$(mktemp "${TMPDIR:-/tmp}/pskgw-criterion.XXXXXX") || exit 1
trap 'rm -f "$out"' EXIT
args=("$@")
case " $* " in *" --verbose"*) ;; *) args+=(--verbose=0) ;; esac
"${args[@]}" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
if [ "$rc" -ne 0 ]; then
  [ "$rc" -ne 77 ] || rc=1
  exit "$rc"
fi
if grep -qE 'ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|WARNING: ThreadSanitizer' "$out"; then
  echo "criterion-run: a sanitizer report in the output: failed"
  exit 1
fi
if grep -q '\[SKIP\]' "$out"; then
  echo "criterion-run: $(grep -c '\[SKIP\]' "$out") test(s) skipped: reported as skipped"
  exit 77
fi
exit 0

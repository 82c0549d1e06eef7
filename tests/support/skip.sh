# Sourced by shell tests: skips that CI does not allow (the shell side of tests/support/skip.h).
#
#   pskgw_missing TOOL [PACKAGE]   the tool is not installed: under CI=true a failure (returns 1,
#                                  prints FAIL), else a skip (returns 0, prints SKIP and counts it)
#   pskgw_skip_status PASSED FAILED  the test's exit status: 1 if anything failed, else 77 if
#                                  something was skipped (CTest: SKIP_RETURN_CODE), else 0
# Tests count with PSKGW_SKIPPED; a skipped check is never counted as passed.
PSKGW_SKIPPED=0

pskgw_missing() { # tool [package]
  local what=$1
  [ -z "${2:-}" ] || what="$1 (Debian package $2)"
  if [ "${CI:-}" = true ]; then
    echo "FAIL: $what is not installed (CI=true: a missing tool fails, scripts/test installs it)"
    return 1
  fi
  echo "SKIP: $what is not installed"
  PSKGW_SKIPPED=$((PSKGW_SKIPPED + 1))
  return 0
}

pskgw_skip_status() { # passed failed
  echo "$1 passed, $2 failed, $PSKGW_SKIPPED skipped"
  [ "$2" -eq 0 ] || return 1
  [ "$PSKGW_SKIPPED" -eq 0 ] || return 77
  return 0
}

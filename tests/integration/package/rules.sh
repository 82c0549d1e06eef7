#!/usr/bin/env bash
# contrib/prometheus/pskgw.rules.yml: valid (promtool check rules) and each alert fires when it
# should and stays silent on a healthy fleet (promtool test rules, tests/pskgw.rules.test.yml).
set -uo pipefail
. "${PSKGW_SOURCE_DIR:?}/tests/support/skip.sh"
dir=$PSKGW_SOURCE_DIR/contrib/prometheus
passed=0 failed=0
if ! command -v promtool >/dev/null; then
  pskgw_missing promtool prometheus || failed=1
else
  for step in "check rules $dir/pskgw.rules.yml" "test rules $dir/tests/pskgw.rules.test.yml"; do
    # shellcheck disable=SC2086
    if (cd "$dir/tests" && promtool $step); then
      echo "ok: promtool $step"; passed=$((passed + 1))
    else
      echo "FAIL: promtool $step"; failed=$((failed + 1))
    fi
  done
fi
pskgw_skip_status "$passed" "$failed"

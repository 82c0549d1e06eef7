#!/usr/bin/env bash
# A shell test's `check DESCRIPTION COMMAND...` prints its own ok/FAIL line: a redirection of the
# whole check (`check "..." jq -e ... >/dev/null`) hides that line from the log, though the check
# is still counted. Every check of the test scripts (tests/, bench/), continuation lines
# included, must end without sending its output away; a command whose output is noise goes
# through `quiet` (tests/integration/gateway/lib.sh) or inside `bash -c "..."`.
set -euo pipefail
src=${PSKGW_SOURCE_DIR:?}
bad=0
while IFS= read -r f; do
  # One logical line per check (backslash continuations joined); stdout sent to /dev/null at its
  # very end (not inside a quoted bash -c) is the shell's, so it applies to the check itself.
  out=$(awk -v F="${f#"$src"/}" '
    function flush() {
      if (buf ~ /[[:space:]](&|1)?>[[:space:]]*\/dev\/null[[:space:]]*(2>&1)?[[:space:]]*$/)
        print F ":" start ": " buf
      inchk = 0
    }
    !inchk && /^[[:space:]]*check[[:space:]]/ { inchk = 1; start = NR; buf = "" }
    inchk { line = $0; cont = sub(/\\$/, "", line); buf = buf line; if (!cont) flush() }
  ' "$f")
  if [ -n "$out" ]; then
    echo "FAIL: a check whose ok/FAIL line goes to /dev/null:"
    sed 's/^/  | /' <<<"$out"
    bad=$((bad + 1))
  fi
done < <(find "$src/tests" "$src/bench" -name '*.sh' -type f | sort)
[ "$bad" -eq 0 ] && echo "ok: no check sends its own line away"
[ "$bad" -eq 0 ]

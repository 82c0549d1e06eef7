#!/usr/bin/env bash
# pskgw --check-config (the units' ExecStartPre) fails on what start-up would fail on in the
# file system, with file:line errors and exit 2: a spool directory that cannot be created (no
# parent) or is not writable, a file sink or dead-letter file in a missing or read-only
# directory, an unreadable secret; and passes (creating nothing) when a spool directory is
# missing but creatable. The permission cases run as the user nobody when the test runs as root
# (root may write anywhere), as the service user would.
. "$(dirname "$0")/../gateway/lib.sh"
# shellcheck disable=SC2034 # read by write_config (lib.sh)
SIM_URL=http://127.0.0.1:9 # never contacted by --check-config
chmod 755 "$WORK"
as_user=()
if [ "$(id -u)" -eq 0 ]; then
  command -v setpriv >/dev/null || { echo "FAIL: setpriv (util-linux) is needed as root"; exit 1; }
  as_user=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
fi
run_check() { # name -> status in RC, stderr in $WORK/name.err
  RC=0
  "${as_user[@]}" "$BIN/pskgw" --check-config "$WORK/$1.conf" >"$WORK/$1.out" 2>"$WORK/$1.err" || RC=$?
}
sink_conf() { # name sinks-text
  write_config "$1" '' ''
  chmod 644 "$WORK/$1.conf" "$WORK/it.secret"
  python3 - "$WORK/$1.conf" "$2" <<'PY'
import re, sys
p, sinks = sys.argv[1], sys.argv[2]
s = open(p).read()
s = re.sub(r'^sinks = .*$', 'sinks = ( ' + sinks + ' );', s, flags=re.M)
open(p, 'w').write(s)
PY
}
mkdir -m 755 "$WORK/out" "$WORK/ro"
chmod 555 "$WORK/ro"
chown nobody "$WORK/out" 2>/dev/null || chmod 777 "$WORK/out"

sink_conf ok "{ type = \"file\"; path = \"$WORK/out/m.jsonl\"; spool = { path = \"$WORK/out/spool\"; }; }"
run_check ok
check "a missing spool directory whose parent is writable passes (status $RC: $(cat "$WORK/ok.err"))" [ "$RC" -eq 0 ]
check "--check-config created nothing" test ! -e "$WORK/out/spool" -a ! -e "$WORK/out/m.jsonl"

sink_conf noparent "{ type = \"file\"; path = \"-\"; spool = { path = \"$WORK/nowhere/spool\"; }; }"
run_check noparent
check "spool without a parent: exit 2" [ "$RC" -eq 2 ]
check "spool without a parent: file:line: sinks[0].spool.path: says why" \
  grep -Eq "noparent\.conf:[0-9]+: sinks\[0\]\.spool\.path: \"$WORK/nowhere/spool\" cannot be created: its parent directory \"$WORK/nowhere\" does not exist" "$WORK/noparent.err"

sink_conf rospool "{ type = \"file\"; path = \"-\"; spool = { path = \"$WORK/ro\"; }; }"
run_check rospool
check "read-only spool directory: exit 2 and sinks[0].spool.path: not writable" \
  bash -c "[ $RC -eq 2 ] && grep -Eq 'sinks\[0\]\.spool\.path: directory \"$WORK/ro\" is not writable' '$WORK/rospool.err'"

sink_conf nodir "{ type = \"file\"; path = \"$WORK/missing/m.jsonl\"; }"
run_check nodir
check "file sink in a missing directory: exit 2 and sinks[0].path: says which directory" \
  bash -c "[ $RC -eq 2 ] && grep -Eq 'sinks\[0\]\.path: \"$WORK/missing/m.jsonl\" cannot be created: directory \"$WORK/missing\" does not exist' '$WORK/nodir.err'"

sink_conf rofile "{ type = \"file\"; path = \"$WORK/ro/m.jsonl\"; }"
run_check rofile
check "file sink in a read-only directory: exit 2 and sinks[0].path: not writable" \
  bash -c "[ $RC -eq 2 ] && grep -Eq 'sinks\[0\]\.path: .*directory \"$WORK/ro\" is not writable' '$WORK/rofile.err'"

sink_conf dlq "{ type = \"http\"; url = \"http://127.0.0.1:9/x\"; dead_letter_path = \"$WORK/missing/dead.jsonl\"; }"
run_check dlq
check "dead-letter file in a missing directory: exit 2 and sinks[0].dead_letter_path" \
  bash -c "[ $RC -eq 2 ] && grep -q 'sinks\[0\]\.dead_letter_path: ' '$WORK/dlq.err'"

sink_conf secret "{ type = \"file\"; path = \"-\"; }"
chmod 600 "$WORK/it.secret"
if [ ${#as_user[@]} -gt 0 ] || [ "$(id -u)" -ne 0 ]; then
  chmod 000 "$WORK/it.secret"
  run_check secret
  check "an unreadable secret: exit 2 and api.secret_file: cannot read" \
    bash -c "[ $RC -eq 2 ] && grep -q 'api.secret_file: cannot read secret file' '$WORK/secret.err'"
fi
finish

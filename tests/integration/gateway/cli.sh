#!/usr/bin/env bash
# pskgw's command line: --version lists the PSK suites of the wolfSSL profile; --check-config
# accepts the examples and reports bad files as file:line: path: message with exit status 2.
. "$(dirname "$0")/lib.sh"

out=$("$BIN/pskgw" --version)
check "--version lists PSK-AES128-CCM-8" grep -q 'PSK-AES128-CCM-8' <<<"$out"
# The wolfSSL in use (run time) and the one compiled against: the same, and >= 5.7.4 (DTLS 1.2 CID).
wolf_run=$(sed -n 's/^wolfSSL \([0-9.]*\) .*/\1/p' <<<"$out")
wolf_hdr=$(sed -n 's/^wolfSSL .*compiled with \([0-9.]*\))$/\1/p' <<<"$out")
check "--version names the wolfSSL in use ($wolf_run)" [ -n "$wolf_run" ]
check "--version: run-time wolfSSL $wolf_run = compiled-with $wolf_hdr" [ "$wolf_run" = "$wolf_hdr" ]
check "--version: wolfSSL $wolf_run >= 5.7.4" dpkg --compare-versions "${wolf_run:-0}" ge 5.7.4
check "--version offers no NULL cipher" bash -c "! grep -qi null <<<\"\$1\"" _ "$out"

# The production examples name systemd credentials: provide stand-ins.
mkdir -p "$WORK/creds"
printf 'secret' >"$WORK/creds/fleet-api-secret"
printf 'secret' >"$WORK/creds/acme-api-secret"
printf 'Authorization: Bearer t0ken\n' >"$WORK/creds/fleet-http-headers"
printf 'password' >"$WORK/creds/fleet-mqtt-password"
printf '%064d' 7 >"$WORK/creds/acme-kek"
# --check-config also checks the directories they write in: the package's tmpfiles.d creates
# them under /var/lib/pskgw; here the same tree under $WORK stands in for it.
mkdir -p "$WORK/examples" "$WORK/state/spool" "$WORK/state/messages" "$WORK/state/dead-letter"
cp "$SRC"/examples/*.secret "$WORK/examples/"
for f in "$SRC"/examples/*.conf; do
  sed "s#/var/lib/pskgw/#$WORK/state/#g" "$f" >"$WORK/examples/$(basename "$f")"
done
for f in "$WORK"/examples/*.conf; do
  (cd "$(dirname "$f")" && CREDENTIALS_DIRECTORY="$WORK/creds" \
    "$BIN/pskgw" --check-config "$f" >/dev/null 2>"$WORK/check.err") &&
    rc=0 || rc=$?
  check "--check-config $(basename "$f") is valid" [ "$rc" -eq 0 ]
  [ "$rc" -eq 0 ] || cat "$WORK/check.err"
done

cat >"$WORK/bad.conf" <<'CONF'
domain = "bad";
api = { url = "https://ssapi.services.u-blox.com"; key_id = "k"; secret_file = "missing.secret";
        timeout_ms = 5; };
listeners = ( { proto = "udp"; address = "0.0.0.0"; port = 5684; colour = "red"; } );
ciphers = "PSK-NULL-SHA256";
sinks = ( { type = "file"; path = "-"; } );
CONF
"$BIN/pskgw" --check-config "$WORK/bad.conf" >/dev/null 2>"$WORK/bad.err" && rc=0 || rc=$?
check "--check-config of a bad file exits 2" [ "$rc" -eq 2 ]
check "error names file:line: path for the range error" grep -q "bad.conf:3: api.timeout_ms: " "$WORK/bad.err"
check "error for the unknown key" grep -q "bad.conf:4: listeners\[0\].colour: " "$WORK/bad.err"
check "error for the NULL cipher" grep -qi "bad.conf:5: ciphers: .*null" "$WORK/bad.err"
check "error for the unreadable secret file" grep -q "bad.conf:2: api.secret_file: " "$WORK/bad.err"
check "the gateway refuses to start on it (exit 2)" bash -c \
  "'$BIN/pskgw' --config '$WORK/bad.conf' 2>/dev/null; [ \$? -eq 2 ]"
check "no config at all: usage, exit 2" bash -c "'$BIN/pskgw' 2>/dev/null; [ \$? -eq 2 ]"
# More files than the gateway takes: an error, never a silently shortened list.
printf 'secret' >"$WORK/many.secret"
mkdir -p "$WORK/many"
for i in $(seq 0 255); do
  cat >"$WORK/many/d$i.conf" <<CONF
domain = "d$i";
api = { url = "https://ssapi.services.u-blox.com"; key_id = "k"; secret_file = "$WORK/many.secret"; };
listeners = ( { proto = "udp"; address = "127.0.0.1"; port = $((30000 + i)); } );
sinks = ( { type = "file"; path = "$WORK/many/d$i.jsonl"; } );
CONF
done
"$BIN/pskgw" --check-config "$WORK"/many/d*.conf >/dev/null 2>"$WORK/many.err" && rc=0 || rc=$?
check "--check-config of 256 files: valid" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || head -n 5 "$WORK/many.err"
"$BIN/pskgw" --check-config "$WORK"/many/d*.conf "$WORK/missing.conf" >/dev/null \
  2>"$WORK/many.err" && rc=0 || rc=$?
check "--check-config of a 257th (missing) file: exit 2, not ignored" [ "$rc" -eq 2 ]
check "too many files: said so" grep -q "too many configuration files" "$WORK/many.err"
"$BIN/pskgw" --check-config-dir "$WORK/many" --config "$WORK/missing.conf" >/dev/null \
  2>"$WORK/many.err" && rc=0 || rc=$?
check "--check-config-dir of 256 files and one more --config: exit 2" [ "$rc" -eq 2 ]
check "--config beyond the limit: said so" grep -q "too many configuration files" "$WORK/many.err"
# 0..255: a Connection ID names its worker in one byte (256 wrapped to worker 0's CIDs)
for w in "" " 3" "+3" "3x" "-1" "256" "1024"; do
  "$BIN/pskgw" --worker "$w" --check-config "$WORK/many/d0.conf" >/dev/null 2>"$WORK/w.err" &&
    rc=0 || rc=$?
  check "--worker \"$w\" refused (exit 2, said so)" bash -c \
    "[ $rc -eq 2 ] && grep -q -- '--worker: must be 0..255' '$WORK/w.err'"
done
"$BIN/pskgw" --worker 7 --check-config "$WORK/many/d0.conf" >/dev/null 2>&1 && rc=0 || rc=$?
check "--worker 7 accepted" [ "$rc" -eq 0 ]
"$BIN/pskgw" --worker 255 --check-config "$WORK/many/d0.conf" >/dev/null 2>&1 && rc=0 || rc=$?
check "--worker 255 accepted" [ "$rc" -eq 0 ]
check "--help documents --check-config" bash -c "'$BIN/pskgw' --help | grep -q -- --check-config"
finish

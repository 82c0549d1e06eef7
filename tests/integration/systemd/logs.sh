#!/usr/bin/env bash
# What the gateway's logs look like where an operator reads them:
# - text lines outside journald (a terminal, a file) carry a UTC timestamp and the level, and no
#   "<N>" priority prefix; under journald ($JOURNAL_STREAM names the output) they keep "<N>" and
#   no timestamp (journald stamps them);
# - one start-up line per listener;
# - JSON lines of a failed handshake carry domain, listener, peer, identity and reason fields.
. "$(dirname "$0")/../gateway/lib.sh"

start_sim
write_config txt '' ''
start_gateway txt
wait_line "$WORK/txt.log" 'running: 1 domain' "$GW_PID"
stamp='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z (err|warning|notice|info|debug) pskgw: '
check "every text line outside journald starts with a timestamp and the level" \
  bash -c "[ -s '$WORK/txt.log' ] && ! grep -Ev '$stamp' '$WORK/txt.log'"
check "no line carries a <N> priority prefix" bash -c "! grep -q '<[0-7]>' '$WORK/txt.log'"
check "one start-up line per listener (dtls)" count_is "$WORK/txt.log" 'listener "dtls"' -eq 1
check "one start-up line per listener (tls)" count_is "$WORK/txt.log" 'listener "tls"' -eq 1
stop_gateway || true

# Under journald: stderr is the stream JOURNAL_STREAM names (here: a file, its device:inode).
write_config jnl '' ''
: >"$WORK/jnl.log"
js=$(stat -c '%d:%i' "$WORK/jnl.log")
JOURNAL_STREAM=$js "$BIN/pskgw" --config "$WORK/jnl.conf" >"$WORK/jnl.stdout" 2>>"$WORK/jnl.log" &
GW_PID=$!
track "pskgw jnl (journald stream)" "$GW_PID" "$WORK/jnl.stdout" "$WORK/jnl.log"
wait_line "$WORK/jnl.log" 'running: 1 domain' "$GW_PID"
check "under journald every line has the <N> prefix and no timestamp" \
  bash -c "! grep -Ev '^<[0-7]>pskgw: ' '$WORK/jnl.log'"
stop_gateway || true

# JSON: a device with a wrong PSK fails its handshake.
write_config js '' ''
start_gateway js --log-format json
"$BIN/pskgw-devsim" --target "127.0.0.1:$GW_UDP" --seed it --devices 1 --messages 1 \
  --wrong-psk-share 1 --duration 20 --quiet >"$WORK/devsim.txt" 2>&1 || true
line=$(WAIT_PID=$GW_PID wait_for "$WORK/js.log" '.*handshake with .* failed.*') || true
check "a failed handshake is logged" [ -n "$line" ]
check "its JSON line carries domain, listener, peer, identity and reason ($line)" \
  jq -e '.domain == "js" and .listener == "dtls" and (.peer | test("^127\\.[0-9.]+:[0-9]+$"))
         and (.identity | length > 0) and (.reason | length > 0) and (.msg | length > 0)' \
  <<<"$line"
check "every line is a JSON object with ts, level and msg" \
  bash -c "jq -e -s 'all(.[]; has(\"ts\") and has(\"level\") and has(\"msg\"))' '$WORK/js.log' >/dev/null"
stop_gateway || true
finish

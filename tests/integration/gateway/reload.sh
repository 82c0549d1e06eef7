#!/usr/bin/env bash
# Reload (SIGHUP) with the real binaries: one live DTLS session (an OpenSSL client driven line by
# line, tests/.../e2e_client.c) sends, SIGHUP switches its file sink to a new path, the same
# session sends again without a new handshake, and each message lands in the file in force when
# it arrived; systemd's notify socket sees RELOADING=1 (with MONOTONIC_USEC) then READY=1; a
# listener added at reload accepts, a removed one is closed; an invalid file at reload keeps the
# running configuration and the log names file:line; a domain whose file is broken at start is
# skipped while the other serves (--check-config still fails on it), starts once its file is
# fixed, and a domain whose file leaves the configuration directory is drained and stopped; the
# log group (format, level) applies to the running process.
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
CLIENT=$BIN/tests/e2e_client

start_sim --devices 1000
write_config rl '' ''
python3 "$HERE/notify.py" "$WORK/notify.sock" >"$WORK/notify.txt" 2>&1 &
track notify.py $! "$WORK/notify.txt"
wait_line "$WORK/notify.txt" listening $!
NOTIFY_SOCKET="$WORK/notify.sock" "$BIN/pskgw" --config "$WORK/rl.conf" \
  >"$WORK/rl.stdout" 2>"$WORK/rl.log" &
GW_PID=$!
track "pskgw rl (notify socket)" "$GW_PID" "$WORK/rl.stdout" "$WORK/rl.log"
read_gateway_ports "$WORK/rl.log"
check "sd_notify: READY=1" wait_line "$WORK/notify.txt" 'READY=1'
hs='pskgw_listener_handshakes_completed_total{domain="rl",listener="dtls"}'

# One long-lived session: each line written to the fifo is one E2E record of device 1.
mkfifo "$WORK/cmd"
"$CLIENT" "$GW_UDP" it 1 - <"$WORK/cmd" >"$WORK/client.out" 2>&1 &
CLIENT_PID=$!
track "e2e_client (one session)" "$CLIENT_PID" "$WORK/client.out"
exec 3>"$WORK/cmd"
echo 1:1 >&3
check "message 1 in the first file" wait_until count_is "$WORK/rl.jsonl" '"seq":1' -eq 1
check "one handshake" wait_metric "$hs" -eq 1

sed -i "s|$WORK/rl.jsonl|$WORK/rl-b.jsonl|" "$WORK/rl.conf"
reload_gateway "$GW_PID" "$WORK/rl.log"
check "reload logged the sink change" grep -q 'sink "file-0" changed: replaced' "$WORK/rl.log"
check "sd_notify: RELOADING=1 with MONOTONIC_USEC, then READY=1" awk '
  / READY=1$/ { if (!r) first = NR; else if (NR > r) ready = 1 }
  / RELOADING=1$/ { if (first) r = NR } / MONOTONIC_USEC=[0-9]+$/ { if (r && NR == r + 1) m = 1 }
  END { exit !(first && r && m && ready) }' "$WORK/notify.txt"
echo 1:2 >&3
check "message 2 (same session) in the new file" wait_until count_is "$WORK/rl-b.jsonl" '"seq":2' -eq 1
check "message 1 stays alone in the first file" count_is "$WORK/rl.jsonl" . -eq 1
sid1=$(jq -r .session_id "$WORK/rl.jsonl")
sid2=$(jq -r .session_id "$WORK/rl-b.jsonl")
check "the same session sent both ($sid1, $sid2)" test -n "$sid1" -a "$sid1" = "$sid2"
check "no new handshake" metric_is "$hs" -eq 1

# An invalid file: refused with file:line, the running configuration goes on.
cp "$WORK/rl.conf" "$WORK/rl.good"
printf 'sinks = ( { type = "file"; path = 5; } );\n' >>"$WORK/rl.conf"
line=$(wc -l <"$WORK/rl.conf")
reload_gateway "$GW_PID" "$WORK/rl.log"
check "invalid file at reload: file:line logged" grep -q "$WORK/rl.conf:$line:" "$WORK/rl.log"
check "invalid file at reload: refused, running configuration kept" \
  grep -q 'reload refused' "$WORK/rl.log"
check "metrics: one reload refused" wait_metric 'pskgw_config_reloads_total{result="refused"}' -eq 1
check "metrics: the last reload failed" wait_metric 'pskgw_config_last_reload_successful' -eq 0
echo 1:3 >&3
check "message 3 (same session) in the file in force" wait_until count_is "$WORK/rl-b.jsonl" . -eq 2
cp "$WORK/rl.good" "$WORK/rl.conf"

# A listener added, the tls listener removed.
sed -i 's|^ *{ name = "tls";.*$|  { name = "dtls2"; proto = "udp"; address = "127.0.0.1"; port = 0; } );|' \
  "$WORK/rl.conf"
reload_gateway "$GW_PID" "$WORK/rl.log"
port2=$(wait_for "$WORK/rl.log" 'listener "dtls2" on udp 127\.0\.0\.1:[0-9]+' | grep -Eo '[0-9]+$')
"$BIN/pskgw-devsim" --target "127.0.0.1:$port2" --seed it --devices 2 --messages 1 --rate 20 \
  --duration 30 --verify-file "$WORK/rl-b.jsonl" --quiet >"$WORK/dtls2.txt" 2>&1 && rc=0 || rc=$?
check "listener added at reload accepts and delivers" [ "$rc" -eq 0 ]
check "listener removed at reload: logged" grep -q 'listener "tls" closed' "$WORK/rl.log"
check "metrics: two reloads applied, the last one successful" \
  wait_metric 'pskgw_config_reloads_total{result="applied"}' -eq 2
check "metrics: the last reload succeeded" metric_is 'pskgw_config_last_reload_successful' -eq 1
check "listener removed at reload: its port refuses connections" \
  bash -c "! (: <>/dev/tcp/127.0.0.1/$GW_TCP) 2>/dev/null"
echo 1:4 >&3
check "message 4 (same session, kept listener) delivered" \
  wait_until count_is "$WORK/rl-b.jsonl" '"seq":4' -eq 1
check "still one handshake on the kept listener" metric_is "$hs" -eq 1

# api and cache settings: a new client and caches; the old ones finish what they had and close.
sed -i 's/timeout_ms = 2000;/timeout_ms = 3000;/; s/entries = 1000;/entries = 500;/' "$WORK/rl.conf"
reload_gateway "$GW_PID" "$WORK/rl.log"
check "api/cache change applied with a new client and caches" \
  grep -q 'domain "rl": api or cache settings changed: new security-service client' "$WORK/rl.log"
check "the previous client and caches close once idle" \
  wait_line "$WORK/rl.log" 'domain "rl": the previous security-service client and caches closed'
check "the new client authenticates" \
  wait_until count_is "$WORK/rl.log" 'upstream "rl": authenticated' -eq 2
"$BIN/pskgw-devsim" --target "127.0.0.1:$port2" --seed it --devices 3 --messages 1 --rate 20 \
  --duration 30 --verify-file "$WORK/rl-b.jsonl" --quiet >"$WORK/api.txt" 2>&1 && rc=0 || rc=$?
check "handshakes after the api/cache change resolve through the new client" [ "$rc" -eq 0 ]
echo 1:5 >&3
check "message 5 (same session) delivered after the api/cache change" \
  wait_until count_is "$WORK/rl-b.jsonl" '"seq":5' -eq 1
check "still one handshake on the kept listener" metric_is "$hs" -eq 1
# A sink with a spool added at reload whose target is down (its directory is missing): with a
# queue of 2, what it cannot deliver goes to its spool. Then a reload changes it under its name
# (path to a live file): the new sink takes the spool over once the old one has closed (having
# spooled what it still held), holding meanwhile what arrives, and every message, spooled,
# in flight or arriving during the hand-over, lands in the new file exactly once.
mkdir "$WORK/spool"
sed -i 's|^sinks = ( \(.*\) );$|sinks = ( \1, { name = "spooled"; type = "file"; path = "'"$WORK"'/down/sp.jsonl"; queue_size = 2; spool = { path = "'"$WORK"'/spool"; }; } );|' \
  "$WORK/rl.conf"
reload_gateway "$GW_PID" "$WORK/rl.log"
check "a sink with a spool added at reload" grep -q 'sink "spooled" added' "$WORK/rl.log"
n0=$(wc -l <"$WORK/rl-b.jsonl")
"$CLIENT" "$port2" it 2 2:1 2:2 2:3 2:4 2:5 2:6 >"$WORK/dev2.out" 2>&1 && rc=0 || rc=$?
check "device 2 sent 6 messages on the second listener ($rc)" [ "$rc" -eq 0 ]
check "device 2's 6 messages in the live file sink" \
  wait_until count_is "$WORK/rl-b.jsonl" . -ge $((n0 + 6))
sp_metric() { echo "pskgw_sink_$1_total{domain=\"rl\",sink=\"spooled\"}"; }
check "the sink whose target is down spooled what its queue could not hold" \
  wait_metric "$(sp_metric spooled)" -ge 4
sed -i "s|$WORK/down/sp.jsonl|$WORK/sp.jsonl|" "$WORK/rl.conf"
reload_gateway "$GW_PID" "$WORK/rl.log"
echo 1:6 >&3 # arrives while the new sink waits for the spool
check "a spooled sink changed under its name: replaced" \
  grep -q 'sink "spooled" changed: replaced' "$WORK/rl.log"
check "a spooled sink changed under its name: no reload failure" \
  bash -c "! grep -q 'reload failed' '$WORK/rl.log'"
check "the new sink took the spool over" \
  wait_line "$WORK/rl.log" 'sink "rl-spooled": spool taken over from the sink it replaced'
check "the spooled messages replayed to the new target" wait_metric "$(sp_metric replayed)" -ge 4
check "every message in the new file" wait_until count_is "$WORK/sp.jsonl" . -ge 7
seqs=$(jq -r .seq "$WORK/sp.jsonl" | sort -n | paste -sd' ')
check "each message exactly once (seqs: $seqs)" [ "$seqs" = "1 2 3 4 5 6 6" ]
check "nothing dropped by the hand-over" metric_is "$(sp_metric dropped)" -eq 0
check "message 6 (same session) in both sinks" \
  wait_until bash -c "grep -q '\"seq\":6' '$WORK/rl-b.jsonl' && grep -q '\"seq\":6' '$WORK/sp.jsonl'"
check "still one handshake on the kept listener" metric_is "$hs" -eq 1

# ack changed on the kept listener: applied in place, the session goes on and gets acks.
sed -i 's/ queue_size = 2;//; s/name = "dtls"; proto = "udp"; address = "127.0.0.1"; port = 0;/& ack = "accepted";/' \
  "$WORK/rl.conf"
reload_gateway "$GW_PID" "$WORK/rl.log"
last_reload_ok() { # the last reload was applied to every domain
  awk '/SIGHUP: reloading/ { bad = 0; done = 0 } /reload failed|reload refused/ { bad = 1 }
       /reload done/ { done = 1 } END { exit !(done && !bad) }' "$WORK/rl.log"
}
check "ack change: reload applied" last_reload_ok
echo 1:7 >&3
check "ack change: the kept session's message acknowledged" \
  wait_metric 'pskgw_domain_acks_sent_total{domain="rl"}' -eq 1
check "still one handshake on the kept listener" metric_is "$hs" -eq 1

# The slab's mode (dtls/slab.h) is said once, at start, not again at each reload; /metrics says
# the same.
check "the slab's mode logged once over the reloads" \
  count_is "$WORK/rl.log" 'slab: (active|not active), ' -eq 1
slab=0
grep -q 'slab: active, ' "$WORK/rl.log" && slab=1
check "metrics: pskgw_slab_active says the logged mode ($slab)" metric_is pskgw_slab_active -eq "$slab"

# limits.max_sessions lowered to 1: the running listener refuses a second session at once; the
# established one goes on.
echo 'limits = { max_sessions = 1; };' >>"$WORK/rl.conf"
reload_gateway "$GW_PID" "$WORK/rl.log"
check "max_sessions change: reload applied" last_reload_ok
"$BIN/pskgw-devsim" --target "127.0.0.1:$GW_UDP" --seed it --devices 1 --messages 1 --rate 20 \
  --duration 15 --quiet >"$WORK/full.txt" 2>&1 && rc=0 || rc=$?
check "max_sessions = 1 applied to the running listener: a new session refused ($rc)" \
  wait_metric 'pskgw_listener_refused_max_sessions_total{domain="rl",listener="dtls"}' -ge 1
echo 1:8 >&3
check "message 8 (the established session) still delivered" \
  wait_until count_is "$WORK/rl-b.jsonl" '"seq":8' -eq 1

# The log group applies to the running process: format json, then level warning.
echo 'log = { format = "json"; };' >>"$WORK/rl.conf"
reload_gateway "$GW_PID" "$WORK/rl.log"
check "log.format change: reload applied" last_reload_ok
check "  the change is logged" grep -q 'log format now .*json' "$WORK/rl.log"
check "  and the reload's last line is JSON" \
  bash -c "grep 'reload done' '$WORK/rl.log' | tail -n 1 | jq -e '.level == \"notice\"' >/dev/null"
applied='pskgw_config_reloads_total{result="applied"}'
a=$(metric "$applied")
done_lines=$(grep -c 'reload done' "$WORK/rl.log")
sed -i 's/^log = .*/log = { format = "json"; level = "warning"; };/' "$WORK/rl.conf"
kill -HUP "$GW_PID"
check "log.level warning: reload applied" wait_metric "$applied" -gt "$a"
check "  the change is logged (before it applies)" grep -q 'log level now .*warning' "$WORK/rl.log"
check "  and notices are no longer written (no 'reload done')" \
  [ "$(grep -c 'reload done' "$WORK/rl.log")" -eq "$done_lines" ]
echo 1:9 >&3
check "message 9 (the established session) delivered" \
  wait_until count_is "$WORK/rl-b.jsonl" '"seq":9' -eq 1

# The per-source handshake rate applies to the running listener: 1 per second, burst 1 (and
# max_sessions back to its default). Two devices from one source address at once: one is
# rate-limited.
limited='pskgw_listener_rate_limited_total{domain="rl",listener="dtls"}'
r0=$(metric "$limited")
a=$(metric "$applied")
sed -i 's/^limits = .*/limits = { per_ip_handshakes_per_s = 1; per_ip_handshake_burst = 1; };/' "$WORK/rl.conf"
kill -HUP "$GW_PID"
check "per_ip_handshakes_per_s change: reload applied" wait_metric "$applied" -gt "$a"
"$BIN/pskgw-devsim" --target "127.0.0.1:$GW_UDP" --seed it --devices 2 --devices-per-ip 2 --messages 1 \
  --duration 15 --quiet >"$WORK/rate.txt" 2>&1 || true
check "the running listener rate-limited a handshake (was $r0)" wait_metric "$limited" -gt "$r0"
echo 1:10 >&3
check "message 10 (the established session) delivered" \
  wait_until count_is "$WORK/rl-b.jsonl" '"seq":10' -eq 1

# e2e settings apply to the running domain: "off" forwards the next record of the same session
# as it came (no decryption), "auto" again decrypts the one after.
e2e_of() { # seq -> the envelope's e2e member of that message (compact JSON)
  jq -c "select(.seq == $1) | .e2e" "$WORK/rl-b.jsonl"
}
check "message 10 was decrypted" [ "$(e2e_of 10 | jq -r .version)" = 1 ]
a=$(metric "$applied")
sed -i 's/^e2e = .*/e2e = "off";/' "$WORK/rl.conf"
kill -HUP "$GW_PID"
check "e2e = off: reload applied" wait_metric "$applied" -gt "$a"
echo 1:11 >&3
check "message 11 (same session) delivered" wait_until count_is "$WORK/rl-b.jsonl" '"seq":11' -eq 1
check "  as it came: not decrypted (e2e off applied to the running domain)" [ "$(e2e_of 11)" = null ]
a=$(metric "$applied")
sed -i 's/^e2e = .*/e2e = "auto";/' "$WORK/rl.conf"
kill -HUP "$GW_PID"
check "e2e = auto: reload applied" wait_metric "$applied" -gt "$a"
echo 1:12 >&3
check "message 12 (same session) delivered" wait_until count_is "$WORK/rl-b.jsonl" '"seq":12' -eq 1
check "  decrypted again" [ "$(e2e_of 12 | jq -r .version)" = 1 ]
exec 3>&-
wait_exit "$CLIENT_PID" 0 || true
stop_gateway || true

# Two domains from a directory; one file broken at start.
mkdir "$WORK/dir"
write_config good '' ''
write_config late '' ''
sed -i 's/^admin = .*//' "$WORK/late.conf"
mv "$WORK/good.conf" "$WORK/late.conf" "$WORK/dir/"
cp "$WORK/it.secret" "$WORK/dir/"
cp "$WORK/dir/late.conf" "$WORK/late.fixed"
printf 'cache = { entries = "many"; };\n' >>"$WORK/dir/late.conf"
"$BIN/pskgw" --check-config-dir "$WORK/dir" >"$WORK/check.out" 2>&1 && rc=0 || rc=$?
check "--check-config fails on the broken domain file ($rc)" [ "$rc" -eq 2 ]
"$BIN/pskgw" --config-dir "$WORK/dir" >"$WORK/two.stdout" 2>"$WORK/two.log" &
GW_PID=$!
track "pskgw (two domains, one broken)" "$GW_PID" "$WORK/two.stdout" "$WORK/two.log"
read_gateway_ports "$WORK/two.log"
check "broken domain at start: reported with file:line" grep -q "$WORK/dir/late.conf:[0-9]*:" "$WORK/two.log"
check "broken domain at start: skipped" grep -q 'late.conf is invalid: its domain is skipped' "$WORK/two.log"
"$BIN/pskgw-devsim" --target "127.0.0.1:$GW_UDP" --seed it --devices 2 --messages 1 --rate 20 \
  --duration 30 --verify-file "$WORK/good.jsonl" --quiet >"$WORK/good.txt" 2>&1 && rc=0 || rc=$?
check "the other domain serves" [ "$rc" -eq 0 ]
cp "$WORK/late.fixed" "$WORK/dir/late.conf"
kill -HUP "$GW_PID"
check "a domain whose file was fixed starts at reload" \
  wait_line "$WORK/two.log" 'domain "late": added by the reload and started' "$GW_PID"
late_udp=$(wait_for "$WORK/two.log" 'domain "late": listener "dtls" on udp 127\.0\.0\.1:[0-9]+' |
  grep -Eo '[0-9]+$')
rm "$WORK/dir/late.conf"
kill -HUP "$GW_PID"
check "a domain whose file left the directory drains" \
  wait_line "$WORK/two.log" 'domain "late": removed from the configuration: draining' "$GW_PID"
check "after the drain one domain runs" \
  wait_line "$WORK/two.log" 'reload done: 1 domain running' "$GW_PID"
check "the drained domain's listener port is free again" \
  wait_until bash -c "! ss -Hlnu | grep -q ':$late_udp\\b'"
# A domain added at reload that cannot start (its tcp port is the admin endpoint's): reported,
# the others go on; the next reload (its file removed) finds nothing of it left.
aport=${GW_ADMIN##*:}
aport=${aport%%/*}
write_config busy '' ''
sed -i 's/^admin = .*//; s/proto = "tcp"; address = "127.0.0.1"; port = 0;/proto = "tcp"; address = "127.0.0.1"; port = '"$aport"';/' \
  "$WORK/busy.conf"
mv "$WORK/busy.conf" "$WORK/dir/"
kill -HUP "$GW_PID"
check "a domain that cannot start at reload is reported" \
  wait_line "$WORK/two.log" 'domain "busy": added by the reload but not started' "$GW_PID"
rm "$WORK/dir/busy.conf"
kill -HUP "$GW_PID"
check "two more reloads done, one domain running" \
  wait_until count_is "$WORK/two.log" 'reload done: 1 domain running' -ge 3
"$BIN/pskgw-devsim" --target "127.0.0.1:$GW_UDP" --seed it --devices 2 --messages 1 --rate 20 \
  --duration 30 --verify-file "$WORK/good.jsonl" --quiet >"$WORK/good2.txt" 2>&1 && rc=0 || rc=$?
check "the other domain still serves" [ "$rc" -eq 0 ]
stop_gateway || true
check "nothing left open" bash -c "! grep -qi 'still open' '$WORK/rl.log' '$WORK/two.log'"
finish

#!/usr/bin/env bash
# The whole path with the real binaries: pskgw-sim <- pskgw <- pskgw-devsim (DTLS with E2E V1,
# TLS with E2E V2, unknown devices, wrong PSKs, acknowledgements), checked through the file
# sink, the metrics endpoint, the simulator's stats, and a clean SIGTERM shutdown (lib.sh checks
# the exit status and the sanitizer output of every process).
. "$(dirname "$0")/lib.sh"

start_sim --devices 1000
write_config it 'log = { format = "json"; };' 'ack = "accepted";'
start_gateway it

"$BIN/pskgw-devsim" --target "127.0.0.1:$GW_UDP" --seed it --devices 30 --messages 4 --rate 20 \
  --e2e v1 --unknown-share 0.1 --wrong-psk-share 0.1 --expect-ack --duration 60 \
  --verify-file "$WORK/it.jsonl" --quiet >"$WORK/dtls.txt" 2>&1 && rc=0 || rc=$?
check "dtls fleet: every message of a good device delivered once, acked" [ "$rc" -eq 0 ]
grep -q 'result *PASS' "$WORK/dtls.txt" || sed 's/^/  | /' "$WORK/dtls.txt"

"$BIN/pskgw-devsim" --tcp "127.0.0.1:$GW_TCP" --framing len16 --seed it --devices 10 --messages 4 \
  --rate 20 --e2e v2 --expect-ack --duration 60 --verify-file "$WORK/it.jsonl" --quiet \
  >"$WORK/tls.txt" 2>&1 && rc=0 || rc=$?
check "tls fleet (len16, E2E V2): delivered once, acked" [ "$rc" -eq 0 ]
grep -q 'result *PASS' "$WORK/tls.txt" || sed 's/^/  | /' "$WORK/tls.txt"

"$BIN/pskgw-devsim" --target "127.0.0.1:$GW_UDP" --seed it --devices 5 --messages 3 --rate 20 \
  --e2e none --duration 30 --verify-file "$WORK/it.jsonl" --quiet >"$WORK/plain.txt" 2>&1 &&
  rc=0 || rc=$?
check "plain payloads pass through in auto mode" [ "$rc" -eq 0 ]

# Envelope shape of one decrypted DTLS message.
line=$(grep -m1 '"transport":"dtls".*"e2e":{"version":1' "$WORK/it.jsonl" || true)
check "envelope has every documented key" bash -c '
  for k in message_id domain listener transport peer psk_identity rot_public_uid session_id seq \
           received_at payload payload_len e2e; do
    grep -q "\"$k\":" <<<"$1" || { echo "missing $k in $1"; exit 1; }
  done' _ "$line"
check "envelope carries domain, listener and cipher suite" \
  grep -q '"domain":"it","listener":"dtls","transport":"dtls".*"cipher_suite":"AES_128_CCM"' <<<"$line"

# Upstream economy: one GetPSK per identity that connected (the second fleet run and the
# plain run reuse the cache for the identities they share).
stats=$(curl -s "$SIM_URL/_sim/stats")
max_per_id=$(jq '[.by_identity[]] | max' <<<"$stats")
check "at most one GetPSK per identity (max $max_per_id)" [ "$max_per_id" -le 1 ]
# The metrics snapshot is renewed once a second: wait until it shows the runs above.
check "metrics: handshakes completed counted" \
  wait_metric 'pskgw_listener_handshakes_completed_total{domain="it",listener="dtls"}' -ge 24
check "metrics: auth failures counted for unknown and wrong-PSK devices" \
  wait_metric 'pskgw_listener_auth_failures_total{domain="it",listener="dtls"}' -ge 4
check "metrics: acknowledgements sent (at least 100)" \
  wait_metric 'pskgw_domain_acks_sent_total{domain="it"}' -ge 100
check "health endpoint says ok" bash -c "curl -sf '${GW_ADMIN%/metrics}/healthz' | grep -q ok"
check "no secret in the gateway's log" bash -c "! grep -q 'it-secret' '$WORK/it.log'"

check "config log group: JSON log lines" bash -c "head -n1 '$WORK/it.log' | jq -e '.level and .msg and .ts' >/dev/null"

# Log rotation: move the sink file away, SIGHUP, the next messages land in a new file.
mv "$WORK/it.jsonl" "$WORK/it.jsonl.1"
kill -HUP "$GW_PID"
wait_for "$WORK/it.log" 'SIGHUP' >/dev/null
"$BIN/pskgw-devsim" --target "127.0.0.1:$GW_UDP" --seed it --devices 3 --messages 2 --rate 20 \
  --duration 30 --verify-file "$WORK/it.jsonl" --quiet >"$WORK/hup.txt" 2>&1 && rc=0 || rc=$?
check "SIGHUP reopens the file sink: new messages in the new file" [ "$rc" -eq 0 ]
check "SIGHUP: the rotated file is left alone" [ "$(grep -c . "$WORK/it.jsonl.1")" -ge 150 ]

stop_gateway || true # one check: exit 0, no sanitizer report
check "SIGTERM: 'stopped' logged, no handle left open" bash -c \
  "grep -q 'stopped' '$WORK/it.log' && ! grep -q 'handles still open' '$WORK/it.log'"
finish

#!/usr/bin/env bash
# The metric families an operator watches, through the real binaries: each is exported and moves
# when (and only when) its event happens: E2E outcomes, upstream latency, retries, the token
# (renewals, re-authentication after a 401, validity), sink connected and spool bytes, refusals
# at max_sessions, per-IP rate limiting, stale serves while the security service fails.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_peers.sh"

start_sim_tracked --devices 1000
faults() { curl -sf -X POST -d "$1" "$SIM_URL/_sim/faults" >/dev/null; }
fleet() { # devices [devsim flags...]: one DTLS fleet run, exit status ignored (some runs fail)
  local n=$1; shift
  "$BIN/pskgw-devsim" --target "127.0.0.1:$GW_UDP" --seed it --devices "$n" --messages 1 \
    --rate 20 --duration 60 --quiet "$@" >>"$WORK/fleets.txt" 2>&1 || true
}
M() { metric "$1{domain=\"mf\"${2:-}}"; }

# ---- domain mf: short TTL, a failing-fast service budget, a sink that cannot deliver -----------
reserve_ports tcp # bound for the whole script, never listening: connections are refused
dead=${PORTS[0]}
write_config mf '' ''
sed -i "s#^api = .*#api = { url = \"$SIM_URL\"; key_id = \"it-key\"; secret_file = \"it.secret\"; \
timeout_ms = 300; deadline_ms = 600; retry_min_ms = 20; retry_max_ms = 50; };#
s#^cache = .*#cache = { entries = 1000; ttl_s = 1; negative_ttl_s = 60; stale_s = 3600; };#
s#^sinks = .*#sinks = ( { type = \"file\"; name = \"out\"; path = \"$WORK/mf.jsonl\"; }, \
{ type = \"http\"; name = \"web\"; url = \"http://127.0.0.1:$dead/\"; queue_size = 1; in_flight = 1; \
retry_max_ms = 200; spool = { path = \"spool\"; }; } );#" "$WORK/mf.conf"
start_gateway_args mf
curl -s "$GW_ADMIN" >"$WORK/start.metrics"
check "/metrics passes the strict parser" awk -f "$HERE/promcheck.awk" "$WORK/start.metrics"
for f in pskgw_e2e_payloads_total pskgw_upstream_latency_seconds pskgw_upstream_retries_total \
  pskgw_upstream_token_renewals_total pskgw_upstream_reauth_total pskgw_upstream_token_valid \
  pskgw_sink_connected pskgw_sink_spool_bytes pskgw_listener_refused_max_sessions_total \
  pskgw_listener_rate_limited_total pskgw_keycache_stale_serves_total pskgw_forward_sessions_total \
  pskgw_forward_bytes_to_backend_total pskgw_forward_datagrams_from_backend_total \
  pskgw_forward_connect_failures_total pskgw_forward_first_byte_seconds pskgw_forward_buffered_bytes \
  pskgw_listener_cid_sessions pskgw_listener_cid_address_changes_total \
  pskgw_listener_cid_unknown_records_total pskgw_sink_latency_seconds; do
  check "family $f exported" grep -q "^# TYPE $f " "$WORK/start.metrics"
done

# token: the client authenticates at start-up
check "token: renewed once at start-up" [ "$(wait_metric 'pskgw_upstream_token_renewals_total{domain="mf"}' -eq 1)" = 1 ]
check "token: valid" [ "$(M pskgw_upstream_token_valid)" = 1 ]
check "latency: no get_psk observed before any device" \
  [ "$(M pskgw_upstream_latency_seconds_count ',op="get_psk"')" = 0 ]
check "e2e: nothing decrypted before any device" [ "$(M pskgw_e2e_payloads_total ',outcome="decrypted"')" = 0 ]
check "sink latency: nothing observed before any device" \
  [ "$(M pskgw_sink_latency_seconds_count ',sink="out"')" = 0 ]

# E2E outcomes and upstream latency: 3 devices with E2E, 2 plain
fleet 3 --e2e v1
fleet 2 --e2e none # devices 0-1 again: cache hits
check "e2e: 3 decrypted" [ "$(wait_metric 'pskgw_e2e_payloads_total{domain="mf",outcome="decrypted"}' -eq 3)" = 3 ]
check "e2e: 2 plain" [ "$(wait_metric 'pskgw_e2e_payloads_total{domain="mf",outcome="plain"}' -eq 2)" = 2 ]
check "e2e: nothing rejected" \
  [ "$(curl -s "$GW_ADMIN" | grep '^pskgw_e2e_payloads_total{domain="mf",outcome="rejected"' | awk '{s += $2} END {print s}')" = 0 ]
lat=$(M pskgw_upstream_latency_seconds_count ',op="get_psk"')
check "latency: get_psk observed per lookup ($lat)" [ "$lat" -ge 3 ]
check "latency: the +Inf bucket equals the count" \
  [ "$(M pskgw_upstream_latency_seconds_bucket ',op="get_psk",le="+Inf"')" = "$lat" ]
check "latency: e2e parameters observed too" [ "$(M pskgw_upstream_latency_seconds_count ',op="e2e_params"')" -ge 1 ]
check "retries: none while the service answers" [ "$(M pskgw_upstream_retries_total)" = 0 ]
# sink latency: each message the file sink wrote is observed once, decrypted -> written
check "sink latency: out observed its 5 messages" \
  [ "$(wait_metric 'pskgw_sink_latency_seconds_count{domain="mf",sink="out"}' -eq 5)" = 5 ]
check "sink latency: out's +Inf bucket equals the count" \
  [ "$(M pskgw_sink_latency_seconds_bucket ',sink="out",le="+Inf"')" = 5 ]
check "sink latency: as many as out delivered" [ "$(M pskgw_sink_delivered_total ',sink="out"')" = 5 ]
check "sink latency: a sum above 0" \
  awk -v s="$(M pskgw_sink_latency_seconds_sum ',sink="out"')" 'BEGIN { exit !(s > 0) }'
check "sink latency: web (nothing delivered) observed nothing" \
  [ "$(M pskgw_sink_latency_seconds_count ',sink="web"')" = 0 ]

# sink connected and spool bytes
check "sink out (file): connected" [ "$(M pskgw_sink_connected ',sink="out"')" = 1 ]
check "sink web (nobody listening): not connected" [ "$(M pskgw_sink_connected ',sink="web"')" = 0 ]
check "sink web: spool bytes above 0" [ "$(wait_metric 'pskgw_sink_spool_bytes{domain="mf",sink="web"}' -gt 0)" -gt 0 ]
check "sink out: no spool bytes" [ "$(M pskgw_sink_spool_bytes ',sink="out"')" = 0 ]

# retries: the next two calls fail with 503, a new device's lookup is retried and succeeds
faults '{"error_next": 2}'
fleet 4 # device 3 is new
check "retries: counted" \
  [ "$(wait_metric 'pskgw_upstream_retries_total{domain="mf"}' -ge 2)" -ge 2 ]
check "retries: the retried lookup succeeded (get_psk ok, 4 devices)" \
  [ "$(curl -s "$GW_ADMIN" | grep '^pskgw_upstream_requests_total{domain="mf",op="get_psk",outcome="ok"}' | awk '{print $2}')" -ge 4 ]

# token: every token expires at the simulator: the next call gets 401, the client authenticates again
renewals=$(M pskgw_upstream_token_renewals_total)
curl -sf -X POST "$SIM_URL/_sim/expire-tokens" >/dev/null
fleet 5 # device 4 is new
check "token: re-authentication after a 401 counted" [ "$(wait_metric 'pskgw_upstream_reauth_total{domain="mf"}' -ge 1)" -ge 1 ]
check "token: renewed again" [ "$(M pskgw_upstream_token_renewals_total)" -gt "$renewals" ]
check "token: valid again" [ "$(M pskgw_upstream_token_valid)" = 1 ]

# stale serves: the service fails every call; device 0's key (TTL 1 s) is served stale
check "stale: none while the service answers" [ "$(M pskgw_keycache_stale_serves_total ',cache="psk"')" = 0 ]
faults '{"error_rate": 1.0}'
for _ in $(seq 40); do # each run is one lookup of device 0; its key goes stale after 1 s
  fleet 1
  [ "$(M pskgw_keycache_stale_serves_total ',cache="psk"')" -ge 1 ] && break
done
check "stale: device 0 served from a stale key while the service fails" \
  [ "$(wait_metric 'pskgw_keycache_stale_serves_total{domain="mf",cache="psk"}' -ge 1)" -ge 1 ]
faults '{"error_rate": 0}'
check "no refusal or rate limiting without limits" bash -c "
  [ \"\$(curl -s '$GW_ADMIN' | grep -E '^pskgw_listener_(refused_max_sessions|rate_limited)_total\\{domain=\"mf\"' | awk '{s += \$2} END {print s}')\" = 0 ]"
stop_gateway_checked mf

# ---- domain lim: max_sessions and the per-IP handshake rate ---------------------------------
write_config lim '' ''
echo 'limits = { max_sessions = 2; per_ip_handshakes_per_s = 1; per_ip_handshake_burst = 2; };' >>"$WORK/lim.conf"
start_gateway_args lim
L() { metric "pskgw_listener_$1_total{domain=\"lim\",listener=\"dtls\"}"; }
check "refusals: none yet" [ "$(L refused_max_sessions)" = 0 ]
fleet 4 --hold 3 # four devices on four addresses, sessions held: two are refused
check "refusals: handshakes refused at max_sessions" \
  [ "$(wait_metric 'pskgw_listener_refused_max_sessions_total{domain="lim",listener="dtls"}' -ge 1)" -ge 1 ]
check "rate limiting: none while every device has its own address" [ "$(L rate_limited)" = 0 ]
for _ in $(seq 100); do # the held sessions end
  [ "$(metric 'pskgw_listener_sessions_active{domain="lim",listener="dtls"}')" = 0 ] && break
  sleep 0.1
done
fleet 2 --devices-per-ip 2 # one address: within the burst of 2
limited=$(L rate_limited)
check "rate limiting: a burst of 2 from one address passes" [ "$limited" = 0 ]
fleet 6 --devices-per-ip 6 --handshake-timeout 3 # six at once from one address: over the burst
check "rate limiting: handshakes over the per-IP rate counted" \
  [ "$(wait_metric 'pskgw_listener_rate_limited_total{domain="lim",listener="dtls"}' -ge 1)" -ge 1 ]
stop_gateway_checked lim
finish_peers

#!/usr/bin/env bash
# The lookup-admission keys of `limits` reach the listener of the real pskgw, and its counters
# reach /metrics: eight new devices of one source address against a service that answers after
# one second, with one cold lookup per source at a time and two waiting, see one lookup admitted,
# two queued behind it and the rest refused at once; the admitted and queued devices connect.
. "$(dirname "$0")/lib.sh"

start_sim --devices 100 --latency-ms 1000
write_config la 'limits = { lookups_per_source = 1; lookup_queue_per_source = 2; lookups_per_source_per_s = 0; };' ''
start_gateway la
"$BIN/pskgw-devsim" --target "127.0.0.1:$GW_UDP" --seed it --devices 8 --devices-per-ip 8 \
  --messages 1 --rate 20 --duration 15 --quiet >"$WORK/fleet.txt" 2>&1 || true
L='domain="la",listener="dtls"'
check "limits.lookups_per_source reaches the listener: one lookup admitted at once" \
  wait_metric "pskgw_listener_lookups_admitted_total{$L}" -ge 1
check "two lookups waited for their source's turn" \
  metric_is "pskgw_listener_lookups_queued_total{$L}" -ge 2
check "limits.lookup_queue_per_source: the others were refused at once" \
  metric_is "pskgw_listener_lookups_refused_queue_total{$L}" -ge 1
check "the queued lookups were sent at their turn" \
  wait_metric "pskgw_listener_lookups_dequeued_total{$L}" -ge 2
check "the admitted and queued devices connected" \
  wait_metric "pskgw_listener_handshakes_completed_total{$L}" -ge 3
check "nothing waits or is at the service any more" \
  bash -c "[ \"\$(curl -s '$GW_ADMIN' | awk '/^pskgw_listener_lookups_(waiting|in_flight)\\{domain=\"la\"/ { s += \$2 } END { print s + 0 }')\" = 0 ]"
check "the lookup families are described" \
  bash -c "curl -s '$GW_ADMIN' | grep -q '^# TYPE pskgw_listener_lookups_waiting gauge'"
stop_gateway || true # one check: exit 0, no sanitizer report
finish

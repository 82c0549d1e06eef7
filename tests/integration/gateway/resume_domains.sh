#!/usr/bin/env bash
# A session ticket resumes only in the domain that issued it (docs/SECURITY.md, "Session
# tickets"). Three gateways read one ticket_key_file: A and A2 serve domain "a", C serves
# domain "c" (an operator who keeps one ticket file for every customer of a host). A ticket A
# issued (openssl s_client -sess_out) resumes on A2 ("Reused") but not on C: a full handshake
# there, counted unknown_key, and the device's identity reaches C's sink only through C's own
# GetPSK. Failed before the ticket keys were bound to the domain: C resumed the session from A's
# ticket, so a device of customer a delivered messages to customer c without c's security
# service ever vouching for it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_peers.sh"

start_sim_tracked --devices 1000
printf '%s\n' "$(printf 'c%.0s' {1..64})" >"$WORK/tickets.key"
RES="resumption = { ticket_key_file = \"$WORK/tickets.key\"; ticket_lifetime_s = 3600; };"
write_config a "$RES" 'ack = "accepted";'
write_config a2 "$RES" 'ack = "accepted";'
sed -i 's/^domain = "a2";/domain = "a";/' "$WORK/a2.conf" # another gateway of domain a
write_config c "$RES" 'ack = "accepted";'
start_gateway_args a
A_UDP=$GW_UDP A_ADMIN=$GW_ADMIN
start_gateway_args a2
A2_UDP=$GW_UDP A2_ADMIN=$GW_ADMIN
start_gateway_args c
C_UDP=$GW_UDP C_ADMIN=$GW_ADMIN

"$BIN/pskgw-sim" --seed it --show-device 3 >"$WORK/dev3.json"
ID=$(jq -r .identity "$WORK/dev3.json")
PSK=$(jq -r .psk_128 "$WORK/dev3.json")
sc() { # NAME PORT S_CLIENT-ARGS...: one DTLS session sending one line
  local name=$1 port=$2
  shift 2
  printf 'hello %s' "$name" | timeout 60 openssl s_client -dtls1_2 -connect "127.0.0.1:$port" \
    -psk_identity "$ID" -psk "$PSK" -cipher PSK-AES128-CCM8 "$@" >"$WORK/$name.out" 2>&1 || true
}

sc first "$A_UDP" -sess_out "$WORK/a.sess"
check "a full handshake on A" grep -q '^New, ' "$WORK/first.out"
check "A sealed a ticket" \
  [ "$(GW_ADMIN=$A_ADMIN wait_metric 'pskgw_resumption_tickets_total{domain="a",outcome="sealed"}' -ge 1)" -ge 1 ]
sc same "$A2_UDP" -sess_in "$WORK/a.sess"
check "the ticket resumes on A2, another gateway of domain a (Reused)" grep -q '^Reused, ' "$WORK/same.out"
sc other "$C_UDP" -sess_in "$WORK/a.sess"
check "the ticket does not resume on C, domain c (New)" grep -q '^New, ' "$WORK/other.out"
check "C counts it as an unknown key" \
  [ "$(GW_ADMIN=$C_ADMIN wait_metric 'pskgw_resumption_tickets_total{domain="c",outcome="unknown_key"}' -eq 1)" = 1 ]
check "C resumed nothing" \
  [ "$(metric 'pskgw_resumption_handshakes_total{domain="c",kind="ticket"}' "$C_ADMIN")" = 0 ]
check "C forwarded the message of its own full handshake" \
  wait_until bash -c "jq -r '.payload|@base64d' '$WORK/c.jsonl' 2>/dev/null | grep -q 'hello other'"
stop_gateway_checked c
stop_gateway_checked a2
stop_gateway_checked a
finish_peers

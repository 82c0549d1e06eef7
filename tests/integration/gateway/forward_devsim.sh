#!/usr/bin/env bash
# pskgw-devsim's proxy scenario (--expect-echo) through forwarding listeners to echo servers:
# every byte a device sends comes back unchanged through pskgw (DTLS -> UDP echo, TLS -> TCP
# echo), and a broken echo (the last byte of each datagram changed) is caught (exit 1,
# echo_mismatch).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_peers.sh"

start_sim_tracked --devices 1000
for m in udpplain udpflip tcpplain; do
  start_proc "$m" python3 "$HERE/pp2peer.py" "$m" "$WORK/$m.jsonl"
done
U=$(wait_for "$WORK/udpplain.out" '^port [0-9]+' | cut -d' ' -f2)
F=$(wait_for "$WORK/udpflip.out" '^port [0-9]+' | cut -d' ' -f2)
T=$(wait_for "$WORK/tcpplain.out" '^port [0-9]+' | cut -d' ' -f2)
printf 'it-secret' >"$WORK/it.secret"
cat >"$WORK/fd.conf" <<CONF
domain = "fd";
api = { url = "$SIM_URL"; key_id = "it-key"; secret_file = "it.secret"; timeout_ms = 2000; };
listeners = (
  { name = "dtls"; proto = "udp"; address = "127.0.0.1"; port = 0; forward = "udp://127.0.0.1:$U"; },
  { name = "flip"; proto = "udp"; address = "127.0.0.1"; port = 0; forward = "udp://127.0.0.1:$F"; },
  { name = "tls"; proto = "tcp"; address = "127.0.0.1"; port = 0; forward = "tcp://127.0.0.1:$T"; } );
sinks = ( { type = "file"; path = "$WORK/fd.jsonl"; } );
admin = { address = "127.0.0.1"; port = 0; };
CONF
"$BIN/pskgw" --config "$WORK/fd.conf" >"$WORK/fd.stdout" 2>"$WORK/fd.log" &
GW_PID=$!
track "pskgw fd" "$GW_PID" "$WORK/fd.stdout" "$WORK/fd.log"
PEER_PID[fd]=$GW_PID
PEER_ORDER+=(fd)
port_of() { WAIT_PID=$GW_PID wait_for "$WORK/fd.log" "listener \"$1\" on $2 127\.0\.0\.1:[0-9]+" | grep -Eo '[0-9]+$'; }
P_DTLS=$(port_of dtls udp)
P_FLIP=$(port_of flip udp)
P_TLS=$(port_of tls tcp)
GW_ADMIN=$(WAIT_PID=$GW_PID wait_for "$WORK/fd.log" 'http://127\.0\.0\.1:[0-9]+/metrics')

devsim() { # out target-flags...
  local out=$1; shift
  "$BIN/pskgw-devsim" "$@" --seed it --devices 20 --messages 5 --rate 20 --expect-echo \
    --ack-timeout 10 --duration 60 --quiet --json "$WORK/$out.json" >"$WORK/$out.txt" 2>&1
}
devsim dtls --target "127.0.0.1:$P_DTLS" && rc=0 || rc=$?
check "dtls: every byte of 20 devices x 5 messages came back unchanged (exit $rc)" [ "$rc" -eq 0 ]
check "dtls: 100 echoes counted" [ "$(jq .messages.acks "$WORK/dtls.json")" = 100 ]
devsim tls --tcp "127.0.0.1:$P_TLS" && rc=0 || rc=$?
check "tls: every byte came back unchanged over TCP (exit $rc)" [ "$rc" -eq 0 ]
check "tls: 100 echoes counted" [ "$(jq .messages.acks "$WORK/tls.json")" = 100 ]
check "pskgw: one backend flow per DTLS session (20)" \
  [ "$(wait_metric 'pskgw_forward_sessions_total{domain="fd",listener="dtls"}' -eq 20)" = 20 ]
check "pskgw: 100 datagrams to the UDP echo" \
  [ "$(wait_metric 'pskgw_forward_datagrams_to_backend_total{domain="fd",listener="dtls"}' -eq 100)" = 100 ]
check "pskgw: one backend connection per TLS session (20)" \
  [ "$(wait_metric 'pskgw_forward_sessions_total{domain="fd",listener="tls"}' -eq 20)" = 20 ]
devsim flip --target "127.0.0.1:$P_FLIP" && rc=0 || rc=$?
check "broken echo: devsim fails (exit $rc)" [ "$rc" -eq 1 ]
check "broken echo: reported as echo_mismatch for every device" \
  [ "$(jq '.errors.echo_mismatch' "$WORK/flip.json")" = 20 ]

# reload: a changed forward replaces the listener (new port, port 0); its devices now reach the
# broken echo
sed -i "s#forward = \"udp://127.0.0.1:$U\"#forward = \"udp://127.0.0.1:$F\"#" "$WORK/fd.conf"
kill -HUP "$GW_PID"
wait_for "$WORK/fd.log" 'reload done' >/dev/null
P_NEW=$(wait_until bash -c "[ \$(grep -c 'listener \"dtls\" on udp' '$WORK/fd.log') -ge 2 ]" &&
  grep -Eo 'listener "dtls" on udp 127\.0\.0\.1:[0-9]+' "$WORK/fd.log" | tail -n 1 | grep -Eo '[0-9]+$')
check "reload: the dtls listener was replaced (port $P_DTLS -> $P_NEW)" [ "$P_NEW" != "$P_DTLS" ]
devsim reloaded --target "127.0.0.1:$P_NEW" && rc=0 || rc=$?
check "reload: its devices now reach the new backend (the broken echo: exit $rc)" \
  bash -c "[ $rc -eq 1 ] && [ \$(jq '.errors.echo_mismatch' '$WORK/reloaded.json') = 20 ]"
stop_gateway_checked fd
finish_peers

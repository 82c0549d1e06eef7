#!/usr/bin/env bash
# Backends given by host name (issue 14): forward = "tcp://localhost:PORT" and "udp://localhost:PORT"
# are resolved on the thread pool for each backend flow, and the bytes pass as with a literal; a
# name that does not resolve (RFC 6761 reserves .invalid) ends the device session with
# close_notify, counted as a connect failure with reason "resolve". A slow resolution (the
# gateway runs under libpskgw-gaihold.so, a getaddrinfo interposer that holds one name until the
# test releases it) runs on the thread pool: meanwhile the loop serves, and once released the
# bytes the device sent while it resolved reach the backend and their echo the device.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_peers.sh"
getent ahostsv4 localhost | grep -q "^127\.0\.0\.1 " || { echo "SKIP: localhost does not resolve to 127.0.0.1 here"; exit 77; }

start_sim_tracked --devices 1000
start_proc tcpecho python3 "$HERE/pp2peer.py" tcpplain "$WORK/tcpecho.jsonl"
ECHO=$(wait_for "$WORK/tcpecho.out" '^port [0-9]+' | cut -d' ' -f2)
start_proc udpecho python3 "$HERE/pp2peer.py" udpplain "$WORK/udpecho.jsonl"
UECHO=$(wait_for "$WORK/udpecho.out" '^port [0-9]+' | cut -d' ' -f2)

printf 'it-secret' >"$WORK/it.secret"
cat >"$WORK/fn.conf" <<CONF
domain = "fn";
api = { url = "$SIM_URL"; key_id = "it-key"; secret_file = "it.secret"; timeout_ms = 2000; };
listeners = (
  { name = "named"; proto = "tcp"; address = "127.0.0.1"; port = 0; forward = "tcp://localhost:$ECHO"; },
  { name = "nxname"; proto = "tcp"; address = "127.0.0.1"; port = 0; forward = "tcp://backend.invalid:1883";
    forward_connect_timeout_ms = 60000; },
  { name = "unamed"; proto = "udp"; address = "127.0.0.1"; port = 0; forward = "udp://localhost:$UECHO"; },
  { name = "slow"; proto = "tcp"; address = "127.0.0.1"; port = 0; forward = "tcp://slow.pskgw.test:$ECHO";
    forward_connect_timeout_ms = 60000; } );
limits = { idle_timeout_s = 10; };
admin = { address = "127.0.0.1"; port = 0; };
CONF
"$BIN/pskgw" --config "$WORK/fn.conf" --check-config >"$WORK/check.out" 2>&1 && rc=0 || rc=$?
check "--check-config accepts host names in forward (exit $rc)" [ "$rc" -eq 0 ]
HOLD=$WORK/gai.release # its lookups of slow.pskgw.test wait for this file
LD_PRELOAD=$BIN/libpskgw-gaihold.so PSKGW_GAI_HOLD_NAME=slow.pskgw.test PSKGW_GAI_HOLD_FILE=$HOLD \
  ASAN_OPTIONS=${ASAN_OPTIONS:-}:verify_asan_link_order=0 \
  "$BIN/pskgw" --config "$WORK/fn.conf" >"$WORK/fn.stdout" 2>"$WORK/fn.log" &
GW_PID=$!
track "pskgw fn" "$GW_PID" "$WORK/fn.stdout" "$WORK/fn.log"
PEER_PID[fn]=$GW_PID
PEER_ORDER+=(fn)
port_of() { WAIT_PID=$GW_PID wait_for "$WORK/fn.log" "listener \"$1\" on $2 127\.0\.0\.1:[0-9]+" | grep -Eo '[0-9]+$'; }
P_NAMED=$(port_of named tcp)
P_NX=$(port_of nxname tcp)
P_UNAMED=$(port_of unamed udp)
P_SLOW=$(port_of slow tcp)
GW_ADMIN=$(WAIT_PID=$GW_PID wait_for "$WORK/fn.log" 'http://127\.0\.0\.1:[0-9]+/metrics')
M() { metric "$1{domain=\"fn\",listener=\"$2\"${3:-}}"; }

"$BIN/pskgw-sim" --seed it --show-device 7 >"$WORK/dev7.json"
ID=$(jq -r .identity "$WORK/dev7.json")
PSK=$(jq -r .psk_128 "$WORK/dev7.json")
device() { # port input -> its output; the session ends by the gateway (idle timeout or an error)
  printf '%s' "$2" | timeout 60 openssl s_client -connect "127.0.0.1:$1" -tls1_2 -psk_identity "$ID" \
    -psk "$PSK" -cipher PSK-AES128-GCM-SHA256 -quiet 2>>"$WORK/device.err"
}

check "localhost: the bytes reach the echo and come back" [ "$(device "$P_NAMED" 'hello by name')" = 'hello by name' ]
check "localhost: one backend flow, no connect failure" bash -c "
  [ \"\$(curl -s '$GW_ADMIN' | grep -c '^pskgw_forward_connect_failures_total{domain=\"fn\",listener=\"named\",reason=\"[a-z]*\"} [1-9]')\" = 0 ] &&
  [ \"\$(curl -s '$GW_ADMIN' | awk '/^pskgw_forward_sessions_total\\{domain=\"fn\",listener=\"named\"\\}/ { print \$2 }')\" -ge 1 ]"

device "$P_NX" 'lost' >"$WORK/nx.out" && rc=0 || rc=$?
check "unresolvable name: the device session ended (exit $rc, not the guard's 124)" [ "$rc" -ne 124 ]
check "unresolvable name: nothing came back" [ ! -s "$WORK/nx.out" ]
check "unresolvable name: counted as a connect failure, reason resolve" \
  [ "$(wait_metric 'pskgw_forward_connect_failures_total{domain="fn",listener="nxname",reason="resolve"}' -ge 1)" -ge 1 ]
check "unresolvable name: logged with the name" grep -q 'backend "backend.invalid" not resolved' "$WORK/fn.log"
check "unresolvable name: the flow is closed" \
  [ "$(wait_metric 'pskgw_forward_sessions_active{domain="fn",listener="nxname"}' -eq 0)" = 0 ]

# UDP by name: datagrams that arrive while the name resolves are held and sent once the
# backend is connected: every message comes back
"$BIN/pskgw-devsim" --target "127.0.0.1:$P_UNAMED" --seed it --devices 3 --messages 3 --rate 5 \
  --expect-echo --ack-timeout 10 --duration 60 --quiet --json "$WORK/udp.json" >"$WORK/udp.txt" 2>&1 && rc=0 || rc=$?
check "udp://localhost: every message of 3 devices came back (exit $rc)" [ "$rc" -eq 0 ]
check "udp://localhost: 9 echoes" [ "$(jq .messages.acks "$WORK/udp.json")" = 9 ]
# ---- a slow resolution ---------------------------------------------------------------------------
printf 'sent while resolving' | timeout 60 openssl s_client -connect "127.0.0.1:$P_SLOW" -tls1_2 \
  -psk_identity "$ID" -psk "$PSK" -cipher PSK-AES128-GCM-SHA256 -quiet >"$WORK/slow.out" 2>>"$WORK/device.err" &
SLOW_PID=$!
check "slow name: its lookup blocks on a pool thread" wait_until test -e "$HOLD.blocked"
check "slow name: meanwhile the loop serves (metrics: one flow open on listener slow)" \
  [ "$(wait_metric 'pskgw_forward_sessions_active{domain="fn",listener="slow"}' -eq 1)" = 1 ]
check "slow name: no byte reached the echo yet" [ "$(M pskgw_forward_bytes_to_backend_total slow)" = 0 ]
touch "$HOLD"
wait "$SLOW_PID" && rc=0 || rc=$?
check "slow name: the device session ended by the gateway (exit $rc, not the guard's 124)" [ "$rc" -eq 0 ]
check "slow name: the bytes sent while resolving came back" [ "$(cat "$WORK/slow.out")" = 'sent while resolving' ]
check "slow name: counted as no connect failure" \
  [ "$(curl -s "$GW_ADMIN" | grep -c '^pskgw_forward_connect_failures_total{domain="fn",listener="slow",reason="[a-z]*"} [1-9]')" = 0 ]
check "no name was resolved on the loop thread" [ ! -e "$HOLD.loop" ]
stop_gateway_checked fn
finish_peers

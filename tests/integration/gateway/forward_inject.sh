#!/usr/bin/env bash
# A device cannot inject a PROXY v2 header (docs/SECURITY.md, "Attacker's review of the session
# features"): on a forwarding listener with proxy_protocol, a device (openssl s_client -dtls1_2)
# sends a datagram that is itself a complete PROXY v2 header naming another address and another
# identity, followed by data. The backend (pp2peer.py udpecho, HAProxy's format, not pskgw's code)
# reads the gateway's header first: the device's own address and identity; the forged header
# reaches it only as payload after it, and comes back to the device as such.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_peers.sh"

start_sim_tracked --devices 1000
start_proc echo python3 "$HERE/pp2peer.py" udpecho "$WORK/echo.jsonl"
ECHO=$(wait_for "$WORK/echo.out" '^port [0-9]+' | cut -d' ' -f2)
printf 'it-secret' >"$WORK/it.secret"
cat >"$WORK/inj.conf" <<CONF
domain = "inj";
api = { url = "$SIM_URL"; key_id = "it-key"; secret_file = "it.secret"; timeout_ms = 2000; };
listeners = ( { name = "echo"; proto = "udp"; address = "127.0.0.1"; port = 0;
                forward = "udp://127.0.0.1:$ECHO"; proxy_protocol = true; } );
sinks = ( { type = "file"; path = "$WORK/inj.jsonl"; } );
admin = { address = "127.0.0.1"; port = 0; };
CONF
"$BIN/pskgw" --config "$WORK/inj.conf" >"$WORK/inj.stdout" 2>"$WORK/inj.log" &
GW_PID=$!
track "pskgw inj" "$GW_PID" "$WORK/inj.stdout" "$WORK/inj.log"
PEER_PID[inj]=$GW_PID
PEER_ORDER+=(inj)
GW_UDP=$(WAIT_PID=$GW_PID wait_for "$WORK/inj.log" 'listener "echo" on udp 127\.0\.0\.1:[0-9]+' | grep -Eo '[0-9]+$')
"$BIN/pskgw-sim" --seed it --show-device 5 >"$WORK/dev.json"
ID=$(jq -r .identity "$WORK/dev.json")
PSK=$(jq -r .psk_128 "$WORK/dev.json")

# The forged header: PROXY, UDP over IPv4, 10.6.6.6:666 -> 10.7.7.7:777, identity TLV FORGED.
FORGED='\r\n\r\n\x00\r\nQUIT\n\x21\x12\x00\x15\x0a\x06\x06\x06\x0a\x07\x07\x07\x02\x9a\x03\x09\xe0\x00\x06FORGED'
mkfifo "$WORK/ossl.in"
exec 3<>"$WORK/ossl.in"
PROC_STDIN=$WORK/ossl.in start_proc ossl openssl s_client -dtls1_2 -connect "127.0.0.1:$GW_UDP" \
  -psk_identity "$ID" -psk "$PSK" -cipher PSK-AES128-CCM8 -nocommands
wait_for "$WORK/ossl.out" 'Cipher is PSK-AES128-CCM8' 20 >/dev/null
# One write (cat of a file): bash's printf writes in pieces around the NUL, and s_client sends
# each piece it reads as a datagram of its own.
printf "${FORGED}after the forged header\n" >"$WORK/forged.bin"
cat "$WORK/forged.bin" >&3
check "the datagram came back to the device, forged header and all" \
  wait_for "$WORK/ossl.out" 'FORGEDAFTER THE FORGED HEADER' 20
check "the backend read one datagram, with no error" \
  bash -c "[ \$(wc -l <'$WORK/echo.jsonl') = 1 ] && ! grep -q '\"error\"' '$WORK/echo.jsonl'"
# (jq's contains stops at a NUL: index is used; check's output must not go to /dev/null)
check "its PROXY header is the gateway's: the device's address and identity" \
  jq -e --arg id "$ID" '.transport == "dgram" and .src == "127.0.0.1" and .identity == $id' \
  "$WORK/echo.jsonl"
check "the forged header is payload (its signature and identity after the gateway's header)" \
  jq -e '(.payload | startswith("\r\n\r\n\u0000\r\nQUIT\n")) and (.payload | index("FORGEDafter")) > (.payload | index("QUIT\n"))' \
  "$WORK/echo.jsonl"
check "no trace of the forged address" bash -c "! grep -q '10.6.6.6' '$WORK/echo.jsonl'"
exec 3>&-
stop_proc "${PEER_PID[ossl]}" "0,1,143" || true
stop_gateway_checked inj
finish_peers

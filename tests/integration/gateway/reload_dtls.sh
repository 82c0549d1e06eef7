#!/usr/bin/env bash
# Reload of a running listener's DTLS settings (issue 11), with the real binaries and openssl
# s_client as the devices: a live DTLS session (PSK-AES128-CCM8) sends; SIGHUP changes the
# domain's cipher list to PSK-AES128-GCM-SHA256 only, and the listener's cookie_rotate_s,
# max_message_bytes and hibernate_after_s (keys that replaced the listener before): the listener
# is kept, the same session sends again without a handshake, a new device gets the new suite and
# one that asks only for the old suite is refused; a second SIGHUP lowers limits.idle_timeout_s
# to 1 s: the session made with the old context and the one made with the new context both end
# idle (close_notify), and the log says so; the keys that cannot apply to a running listener
# (cid_length of one routing CIDs; framing: a new socket) are named in the log. A forwarding
# listener's session made before a reload that lowered max_message_bytes keeps its own size for
# what the backend sends back.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_peers.sh"

start_sim_tracked --devices 1000
start_proc echo python3 "$HERE/pp2peer.py" udpplain "$WORK/echo.jsonl"
ECHO=$(wait_for "$WORK/echo.out" '^port [0-9]+' | cut -d' ' -f2)
write_config rd '' ''
# a forwarding listener too: its sessions keep their own max_message_bytes after a reload
sed -i 's|^\(  *{ name = "tls";.*\) } );$|\1 },\n  { name = "fwd"; proto = "udp"; address = "127.0.0.1"; port = 0; forward = "udp://127.0.0.1:'"$ECHO"'"; } );|' \
  "$WORK/rd.conf"
start_gateway_args rd
FWD=$(wait_for "$WORK/rd.log" 'listener "fwd" on udp 127\.0\.0\.1:[0-9]+' | grep -Eo '[0-9]+$')
hs='pskgw_listener_handshakes_completed_total{domain="rd",listener="dtls"}'
idle='pskgw_listener_idle_closes_total{domain="rd",listener="dtls"}'
device() { # N -> ID and PSK of simulated device N
  "$BIN/pskgw-sim" --seed it --show-device "$1" >"$WORK/dev$1.json"
  ID=$(jq -r .identity "$WORK/dev$1.json")
  PSK=$(jq -r .psk_128 "$WORK/dev$1.json")
}
lines() { grep -c . "$WORK/rd.jsonl" 2>/dev/null || true; }

# ---- the session that lives through both reloads ----------------------------------------------
device 1
mkfifo "$WORK/old.in"
exec 3<>"$WORK/old.in"
PROC_STDIN=$WORK/old.in start_proc old openssl s_client -dtls1_2 -connect "127.0.0.1:$GW_UDP" \
  -psk_identity "$ID" -psk "$PSK" -cipher PSK-AES128-CCM8 -nocommands
check "the first device negotiated PSK-AES128-CCM8" \
  wait_line "$WORK/old.out" 'Cipher is PSK-AES128-CCM8' "${PEER_PID[old]}"
echo "before the reload" >&3
check "its message 1 in the sink" wait_until bash -c "[ \$(grep -c . '$WORK/rd.jsonl') -eq 1 ]"
check "one handshake" wait_metric "$hs" -eq 1
# and a session of the forwarding listener, through the echo server
device 4
mkfifo "$WORK/fw.in"
exec 5<>"$WORK/fw.in"
PROC_STDIN=$WORK/fw.in start_proc fw openssl s_client -dtls1_2 -connect "127.0.0.1:$FWD" \
  -psk_identity "$ID" -psk "$PSK" -cipher PSK-AES128-CCM8 -nocommands
wait_line "$WORK/fw.out" 'Cipher is PSK-AES128-CCM8' "${PEER_PID[fw]}"
echo "echo me" >&5
check "the forwarding session's echo came back" wait_line "$WORK/fw.out" '^echo me$' "${PEER_PID[fw]}"

# ---- reload 1: ciphers, cookie period, message size, hibernation --------------------------------
echo 'ciphers = "PSK-AES128-GCM-SHA256";' >>"$WORK/rd.conf"
sed -i 's|forward = "udp://127.0.0.1:'"$ECHO"'";|& max_message_bytes = 500;|' "$WORK/rd.conf"
sed -i 's/name = "dtls"; proto = "udp"; address = "127.0.0.1"; port = 0;/& cookie_rotate_s = 60; max_message_bytes = 2048; hibernate_after_s = 600;/' \
  "$WORK/rd.conf"
reload_gateway "$GW_PID" "$WORK/rd.log"
check "reload 1 applied" bash -c "! grep -q 'reload failed\|reload refused' '$WORK/rd.log'"
check "the new DTLS settings are logged for the running listener" grep -q \
  'listener "dtls": ciphers "PSK-AES128-GCM-SHA256", max_message_bytes 2048, .*cookie period 60 s' \
  "$WORK/rd.log"
check "hibernate_after_s applied to the running listener" \
  grep -q 'listener "dtls": idle timeout [0-9]* s, hibernation after 600 s' "$WORK/rd.log"
check "the listener was neither replaced nor closed" \
  bash -c "! grep -q 'listener \"dtls\" \(replaced\|closed\)' '$WORK/rd.log'"
check "no warning that the settings wait for a restart" \
  bash -c "! grep -q 'running listeners keep theirs' '$WORK/rd.log'"
echo "after the reload" >&3
check "the old session's message 2 in the sink" wait_until bash -c "[ \$(grep -c . '$WORK/rd.jsonl') -eq 2 ]"
sids=$(jq -r .session_id "$WORK/rd.jsonl" | sort -u | wc -l)
check "both messages came from the same session ($sids session ids)" [ "$sids" -eq 1 ]
check "no new handshake for the old session" metric_is "$hs" -eq 1
check "the old session still uses PSK-AES128-CCM8" bash -c "! grep -q 'Cipher is PSK-AES128-GCM' '$WORK/old.out'"

# the forwarding session made before the reload keeps its message size (16384): 1000 bytes go to
# the backend and their echo comes back, while the listener's new sessions take 500
long=$(printf 'L%.0s' $(seq 1000))
echo "$long" >&5
check "the forwarding session's 1000-byte echo came back after max_message_bytes 500" \
  wait_line "$WORK/fw.out" "^$long\$" "${PEER_PID[fw]}"
check "no backend datagram dropped" \
  metric_is 'pskgw_forward_datagrams_dropped_total{domain="rd",listener="fwd"}' -eq 0

# a new device gets the new suite
device 2
mkfifo "$WORK/new.in"
exec 4<>"$WORK/new.in"
PROC_STDIN=$WORK/new.in start_proc new openssl s_client -dtls1_2 -connect "127.0.0.1:$GW_UDP" \
  -psk_identity "$ID" -psk "$PSK" -cipher PSK-AES128-GCM-SHA256 -nocommands
check "a new device negotiated PSK-AES128-GCM-SHA256" \
  wait_line "$WORK/new.out" 'Cipher is PSK-AES128-GCM-SHA256' "${PEER_PID[new]}"
echo "new device" >&4
check "its message in the sink" wait_until bash -c "[ \$(grep -c . '$WORK/rd.jsonl') -eq 3 ]"
check "two handshakes" wait_metric "$hs" -eq 2

# a device that offers only the suite removed is refused (s_client retransmits its hello: it is
# stopped once the gateway counted the failed handshake)
failed='pskgw_listener_handshakes_failed_total{domain="rd",listener="dtls"}'
f0=$(metric "$failed")
device 3
start_proc gone openssl s_client -dtls1_2 -connect "127.0.0.1:$GW_UDP" \
  -psk_identity "$ID" -psk "$PSK" -cipher PSK-AES128-CCM8 -nocommands
check "a new device offering only PSK-AES128-CCM8 is refused" wait_metric "$failed" -gt "$f0"
stop_proc "${PEER_PID[gone]}" 0,143 || true
unset "PEER_PID[gone]"
check "... and got no session" bash -c "! grep -q 'Cipher is' '$WORK/gone.out'"
check "still two handshakes" metric_is "$hs" -eq 2

# ---- reload 2: the idle timeout reaches running sessions of both contexts ------------------------
# with it, keys a running listener cannot take, each said in the log: a cid_length other than the
# one its CIDs are routed by (kept), and the tls listener's framing (a new socket: replaced)
echo 'limits = { idle_timeout_s = 1; };' >>"$WORK/rd.conf"
sed -i 's/hibernate_after_s = 600;/& cid_length = 12;/; s/framing = "len16";/framing = "newline";/' \
  "$WORK/rd.conf"
reload_gateway "$GW_PID" "$WORK/rd.log"
check "reload 2 applied" bash -c "! grep -q 'reload failed\|reload refused' '$WORK/rd.log'"
check "a cid_length the running listener cannot take is named in the log" grep -q \
  'listener "dtls": cid_length 12 not applied: its Connection IDs are routed by 8 bytes' "$WORK/rd.log"
check "a changed framing replaces the tls listener, logged as such" \
  grep -q 'listener "tls" replaced: its proto, address, port, framing or forwarding changed' \
  "$WORK/rd.log"
check "the idle timeout is logged as applied to the running sessions" \
  grep -q 'listener "dtls": idle timeout 1 s, hibernation after 600 s: applied to the 2 established sessions' \
  "$WORK/rd.log"
check "both idle sessions end" wait_metric "$idle" -eq 2
# the devices were told (close_notify): s_client ends by itself
peer_wait "${PEER_PID[old]}" 30 && rc=0 || rc=$?
check "the old session's client got close_notify and ended (exit $rc)" [ "$rc" -ne 124 ]
[ "$rc" -ne 124 ] && unset "PEER_PID[old]"
peer_wait "${PEER_PID[new]}" 30 && rc=0 || rc=$?
check "the new session's client got close_notify and ended (exit $rc)" [ "$rc" -ne 124 ]
[ "$rc" -ne 124 ] && unset "PEER_PID[new]"
exec 3>&- 4>&- 5>&-
stop_proc "${PEER_PID[fw]}" 0,143 || true
unset "PEER_PID[fw]"
check "three messages delivered in all" [ "$(lines)" -eq 3 ]
stop_gateway_checked rd
finish_peers

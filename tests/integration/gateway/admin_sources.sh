#!/usr/bin/env bash
# One source cannot take the admin endpoint from everyone (docs/SECURITY.md, "Attacker's review
# of the session features"): the endpoint serves 64 connections at once and drops a silent one
# after 10 s, so a peer that kept 64 idle connections open (renewing them every 10 s) left
# /health, /ready and /metrics unanswered for load balancers and Prometheus. Here 127.0.0.2 opens
# 64 idle connections; a request it sends on one more is not answered (the gateway closes it:
# at most 8 connections per source address), while /health from 127.0.0.3 is answered 200 with
# the 64 still open. Failed before the per-source limit: the extra connection waited until the
# idle ones timed out and was then answered.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_peers.sh"

start_sim_tracked --devices 10
write_config adm '' ''
start_gateway_args adm
PORT=${GW_ADMIN#http://127.0.0.1:}
PORT=${PORT%%/*}

cat >"$WORK/hold.py" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
held = []
for _ in range(64):
    s = socket.socket()
    s.bind(("127.0.0.2", 0))
    s.connect(("127.0.0.1", port))
    held.append(s)
# one more from the same source, with a request on it: answered, or closed without an answer
s = socket.socket()
s.bind(("127.0.0.2", 0))
s.connect(("127.0.0.1", port))
s.settimeout(60)  # a guard only: each outcome is an event (an answer, or the close)
s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
try:
    got = s.recv(64)
except (ConnectionResetError, socket.timeout) as e:
    got = b""
print("extra:", "answered" if got.startswith(b"HTTP/1.1 200") else "closed", flush=True)
open(sys.argv[2], "w").close()  # the idle connections are open: the other source may ask now
time.sleep(3600)
PY
start_proc hold python3 "$WORK/hold.py" "$PORT" "$WORK/held"
wait_until test -f "$WORK/held"
check "a 65th connection from the same source is closed without an answer" \
  grep -qx 'extra: closed' "$WORK/hold.out"
check "/health from another source is answered while 127.0.0.2 holds its connections" \
  [ "$(curl -s -m 60 --interface 127.0.0.3 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health")" = 200 ]
stop_proc "${PEER_PID[hold]}" "0,143,-15" || true
unset "PEER_PID[hold]"
stop_gateway_checked adm
finish_peers

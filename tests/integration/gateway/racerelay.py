#!/usr/bin/env python3
"""The device's address for two gateway nodes (sessions_race.sh): one UDP socket bound to
argv[1] (host) on port 0 prints "relay PORT". A device (pskgw-devsim) targets it; what it
receives from the device goes to node A (argv[2] host:port) from this socket, so both nodes see
this socket's address as the device's; what a node sends comes back to the device. The device's
first application-data record (DTLS content type 23) is passed on; its next one is held
("held") until a line "send a" or "send b" on stdin sends a copy of it to that node, from this
socket ("sent a"): a copy of the device's record at each node, from its own source address.
Every datagram from a node once a record was held is printed "from a LEN" / "from b LEN" (and
passed to the device). With argv[4] "reconnect" (a device that handshakes again from the same
address: pskgw-devsim --reconnect-every 1 behind this one socket), every datagram of the device
after its first application-data record is held instead, its alerts dropped (as a device that
restarted sends no close_notify), until "release a" sends them all to A in order ("released N")
and passes the device's later datagrams on to A. Runs until SIGTERM (exit 0)."""
import selectors
import signal
import socket
import sys


def addr(s):
    host, port = s.rsplit(":", 1)
    return (host, int(port))


signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
nodes = {"a": addr(sys.argv[2]), "b": addr(sys.argv[3])}
by_addr = {v: k for k, v in nodes.items()}
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((sys.argv[1], 0))
print("relay %d" % sock.getsockname()[1], flush=True)
sel = selectors.DefaultSelector()
sel.register(sock, selectors.EVENT_READ, "sock")
sel.register(sys.stdin, selectors.EVENT_READ, "ctl")
reconnect = len(sys.argv) > 4 and sys.argv[4] == "reconnect"
device = None
app_records = 0
held = None
queue = None  # reconnect: the device's datagrams held until "release a"; then []
while True:
    for key, _ in sel.select():
        if key.data == "ctl":
            line = sys.stdin.readline()
            if not line:
                sel.unregister(sys.stdin)
                continue
            cmd = line.split()
            if cmd == ["release", "a"] and queue is not None:
                for d in queue:
                    sock.sendto(d, nodes["a"])
                print("released %d" % len(queue), flush=True)
                queue = []
                reconnect = False
                continue
            if len(cmd) == 2 and cmd[0] == "send" and cmd[1] in nodes and held is not None:
                sock.sendto(held, nodes[cmd[1]])
                print("sent %s" % cmd[1], flush=True)
            continue
        data, src = sock.recvfrom(65536)
        node = by_addr.get(src)
        if node is not None:
            if held is not None:
                print("from %s %d" % (node, len(data)), flush=True)
            if device is not None:
                sock.sendto(data, device)
            continue
        device = src
        if queue is not None and reconnect:
            if data[:1] != b"\x15":
                queue.append(data)
            continue
        if held is not None:
            continue  # the race is on: the device's later datagrams go nowhere
        if data[:1] == b"\x17" and reconnect and queue is None:
            queue = []  # the first message: passed on, what follows held
            sock.sendto(data, nodes["a"])
            continue
        if data[:1] == b"\x17":
            app_records += 1
            if app_records == 2:
                held = data
                print("held", flush=True)
                continue
        sock.sendto(data, nodes["a"])

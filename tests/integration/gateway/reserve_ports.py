#!/usr/bin/env python3
"""Reserve loopback ports for a test, so that no other test can take them.

usage: reserve_ports.py [--reuseport] KIND...
KIND is "tcp", "udp" or "tcp+1" (two consecutive TCP ports; the first is printed). Every socket
is bound to 127.0.0.1 port 0 (the kernel picks a port no one holds) with SO_REUSEADDR, and with
SO_REUSEPORT when --reuseport is given, and never listens. The ports are printed on one line,
in the order of the arguments; then the sockets are held until SIGTERM (exit 0).

A server that sets SO_REUSEADDR (redis-server, libmicrohttpd, libuv's TCP bind) can bind and
listen on a held TCP port, also after a restart, while a process binding the same port without
it is refused. A held UDP socket receives datagrams: stop the reservation once the server holds
the port (pskgw's --worker sockets set SO_REUSEPORT and join it)."""
import signal
import socket
import sys


def bind(kind, port, reuseport):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        return None
    return s


def reserve(kind, reuseport, held):
    if kind in ("tcp", "udp"):
        s = bind(kind, 0, reuseport)
        held.append(s)
        return s.getsockname()[1]
    for _ in range(200):  # tcp+1: a free port whose successor is free too
        first = bind("tcp", 0, reuseport)
        port = first.getsockname()[1]
        second = bind("tcp", port + 1, reuseport) if port < 65535 else None
        if second is not None:
            held.extend((first, second))
            return port
        first.close()
    sys.exit("no two consecutive free ports found")


def main():
    args = sys.argv[1:]
    reuseport = "--reuseport" in args
    kinds = [a for a in args if a != "--reuseport"]
    if not kinds or any(k not in ("tcp", "udp", "tcp+1") for k in kinds):
        sys.exit(__doc__)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    held = []
    print(" ".join(str(reserve(k, reuseport, held)) for k in kinds), flush=True)
    while True:
        signal.pause()


main()

#!/usr/bin/env python3
"""A stand-in for systemd's notification socket: binds AF_UNIX/SOCK_DGRAM at argv[1], prints
"listening", then every message it receives as "<seconds since start> <assignment>" (one line
per assignment), until SIGTERM (exit 0)."""
import signal
import socket
import sys
import time

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("listening", flush=True)
t0 = time.monotonic()
while True:
    data = s.recv(4096)
    for line in data.decode(errors="replace").split("\n"):
        if line:
            print("%.3f %s" % (time.monotonic() - t0, line), flush=True)

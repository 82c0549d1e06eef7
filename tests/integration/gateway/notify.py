#!/usr/bin/env python3
"""A stand-in for systemd's notification socket: binds AF_UNIX/SOCK_DGRAM at argv[1] and
prints every message it receives as "<seconds since start> <message>" (one line per
assignment), until argv[2] seconds have passed or STOPPING=1 was followed by 1 s of silence."""
import socket
import sys
import time

path, limit = sys.argv[1], float(sys.argv[2])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
print("listening", flush=True)
t0 = time.monotonic()
stopping = None
while True:
    now = time.monotonic()
    if now - t0 > limit or (stopping is not None and now - stopping > 1.0):
        break
    s.settimeout(0.1)
    try:
        data = s.recv(4096)
    except socket.timeout:
        continue
    for line in data.decode(errors="replace").split("\n"):
        if line:
            print("%.3f %s" % (time.monotonic() - t0, line), flush=True)
            if line == "STOPPING=1":
                stopping = time.monotonic()

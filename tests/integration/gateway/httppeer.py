#!/usr/bin/env python3
"""An HTTP peer for the gateway's shell tests, on 127.0.0.1, port 0 (prints "http://127.0.0.1:PORT"
as its first line, then serves until SIGTERM or SIGINT and exits 0).

  httppeer.py sink FILE [STATUS|hang]
      A webhook receiver: every POST body is appended to FILE as one line (bodies are JSON
      envelopes). It answers STATUS (default 200); "hang": it records the body and never answers
      (the request stays open until the peer stops).
  httppeer.py proxy FILE UPSTREAM_URL
      A recording reverse proxy: each request is forwarded to UPSTREAM_URL + path and answered with
      the upstream's answer; FILE gets one JSON line per request: method, path and the form of the
      Authorization header ("none", "bearer" for "Bearer <token>", "raw" for a bare token, or
      "other"). The token itself is never recorded.
"""
import http.server
import json
import signal
import sys
import threading
import urllib.error
import urllib.request

mode, out_path = sys.argv[1], sys.argv[2]
arg = sys.argv[3] if len(sys.argv) > 3 else ""
released = threading.Event()
lock = threading.Lock()


def record(line):
    with lock, open(out_path, "a") as f:
        f.write(line + "\n")


def auth_form(value):
    if value is None:
        return "none"
    parts = value.split(" ")
    if len(parts) == 2 and parts[0] == "Bearer" and parts[1]:
        return "bearer"
    if len(parts) == 1 and parts[0]:
        return "raw"
    return "other"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def body(self):
        n = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(n) if n else b""

    def answer(self, status, data=b"", ctype="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        if mode == "proxy":
            return self.proxy()
        data = self.body()
        record(data.decode(errors="replace").replace("\n", " "))
        if arg == "hang":
            released.wait()
            self.close_connection = True
            return
        self.answer(int(arg) if arg else 200, b"ok")

    def do_GET(self):
        if mode == "proxy":
            return self.proxy()
        self.answer(404)

    def proxy(self):
        data = self.body() if self.command == "POST" else None
        record(json.dumps({"method": self.command, "path": self.path,
                           "authorization": auth_form(self.headers.get("Authorization"))}))
        req = urllib.request.Request(arg + self.path, data=data, method=self.command)
        for k, v in self.headers.items():
            if k.lower() not in ("host", "content-length", "connection", "expect"):
                req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                self.answer(r.status, r.read(), r.headers.get("Content-Type", "application/json"))
        except urllib.error.HTTPError as e:
            self.answer(e.code, e.read(), e.headers.get("Content-Type", "application/json"))


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True


def on_stop(signum, frame):
    released.set()
    threading.Thread(target=server.shutdown).start()


signal.signal(signal.SIGTERM, on_stop)
signal.signal(signal.SIGINT, on_stop)
print("http://127.0.0.1:%d" % server.server_address[1], flush=True)
server.serve_forever()
server.server_close()
sys.exit(0)

#!/usr/bin/env python3
"""Backends for the forwarding tests, reading HAProxy's PROXY protocol v2 (not pskgw's code).

  pp2peer.py http LOG     TCP: PROXY v2 header, then one HTTP/1.1 request; answers 200 with a
                          body naming the TLVs it saw and closes. One JSON line per connection
                          in LOG (src, dst, transport, identity, rot_uid, request line).
  pp2peer.py stall LOG    TCP: reads the PROXY v2 header, then never reads again (a backend
                          that stops reading); logs "stalled" once per connection.
  pp2peer.py flood LOG    TCP: reads the PROXY v2 header, then writes 64 MiB (logs "flooding",
                          then "flooded" if it ever got them all out).
  pp2peer.py full LOG     TCP: a listening socket whose accept queue it fills itself and never
                          accepts: further connects get no answer (they time out).
  pp2peer.py udpecho LOG  UDP: each datagram must start with a PROXY v2 header (DGRAM); answers
                          the payload after it, upper-cased; one JSON line per datagram.
  pp2peer.py udpplain LOG UDP: answers each datagram with itself (no PROXY header expected).
  pp2peer.py udpflip LOG  UDP: the same with the last byte changed (a broken echo).
  pp2peer.py ticker LOG N TCP: never reads; writes "tick I" lines, one every 200 ms, I = 1..N,
                          then closes (a backend that streams to a silent device, as MQTT
                          PUBLISHes to a subscriber do); logs "ticked" with N at the end.
  pp2peer.py tcpplain LOG TCP: echoes the stream (no PROXY header expected); logs the peer's
                          FIN ("eof") with the bytes it echoed.
Prints "port N" when ready. Exits on SIGTERM with status 0.
"""
import json
import signal
import socket
import struct
import sys
import threading
import time

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def decode(buf):
    """(header length, dict) of a complete v2 header at the start of buf; None if incomplete."""
    if len(buf) < 16:
        return None
    if buf[:12] != SIG:
        raise ValueError("no PROXY v2 signature")
    ver_cmd, fam, length = buf[12], buf[13], struct.unpack("!H", buf[14:16])[0]
    if ver_cmd >> 4 != 2:
        raise ValueError("not version 2")
    if len(buf) < 16 + length:
        return None
    body, out = buf[16:16 + length], {"command": "proxy" if ver_cmd & 0xF == 1 else "local"}
    out["transport"] = {1: "stream", 2: "dgram"}.get(fam & 0xF, "?")
    alen = {1: 4, 2: 16}.get(fam >> 4, 0)
    if out["command"] == "proxy":
        af = socket.AF_INET if alen == 4 else socket.AF_INET6
        out["src"] = socket.inet_ntop(af, body[:alen])
        out["dst"] = socket.inet_ntop(af, body[alen:2 * alen])
        out["src_port"], out["dst_port"] = struct.unpack("!HH", body[2 * alen:2 * alen + 4])
        body = body[2 * alen + 4:]
    while body:
        t, n = body[0], struct.unpack("!H", body[1:3])[0]
        v = body[3:3 + n]
        if len(v) != n:
            raise ValueError("TLV overruns the header")
        if t == 0xE0:
            out["identity"] = v.decode()
        elif t == 0xE1:
            out["rot_uid"] = v.decode()
        body = body[3 + n:]
    return 16 + length, out


LOCK = threading.Lock()


def log(path, obj):
    with LOCK, open(path, "a") as f:
        f.write(json.dumps(obj) + "\n")


def read_header(c):
    buf = b""
    while True:
        d = decode(buf)
        if d is not None:
            return d[1], buf[d[0]:]
        chunk = c.recv(4096)
        if not chunk:
            raise ValueError("closed before the PROXY header")
        buf += chunk


def http_conn(c, path):
    try:
        hdr, rest = read_header(c)
        while b"\r\n\r\n" not in rest:
            chunk = c.recv(4096)
            if not chunk:
                break
            rest += chunk
        line = rest.split(b"\r\n", 1)[0].decode(errors="replace")
        hdr["request"] = line
        log(path, hdr)
        body = ("identity=%s rot_uid=%s request=%s\n" % (hdr.get("identity", ""), hdr.get("rot_uid", ""), line)).encode()
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                  b"Connection: close\r\n\r\n" % len(body) + body)
    except Exception as e:  # a bad header is logged and the connection closed
        log(path, {"error": str(e)})
    finally:
        c.close()


def stall_conn(c, path, held):
    try:
        hdr, _ = read_header(c)
        hdr["stalled"] = True
        log(path, hdr)
        held.append(c)  # never read again, never closed until the end
    except Exception as e:
        log(path, {"error": str(e)})
        c.close()


def flood_conn(c, path):
    try:
        hdr, _ = read_header(c)
        hdr["flooding"] = True
        log(path, hdr)
        chunk = b"z" * 65536
        for _ in range(1024):
            c.sendall(chunk)
        log(path, {"flooded": True})
    except Exception as e:
        log(path, {"error": str(e)})
    finally:
        c.close()


def ticker_conn(c, path, n):
    try:
        for i in range(1, n + 1):
            time.sleep(0.2)  # the backend's pace, not a synchronisation
            c.sendall(b"tick %d\n" % i)
        log(path, {"ticked": n})
    except OSError as e:
        log(path, {"error": str(e)})
    finally:
        c.close()


def plain_conn(c, path):
    n = 0
    try:
        while True:
            d = c.recv(65536)
            if not d:
                log(path, {"eof": True, "bytes": n})  # the peer's FIN
                break
            n += len(d)
            c.sendall(d)
    except OSError as e:
        log(path, {"error": str(e), "bytes": n})
    finally:
        c.close()


def main():
    mode, path = sys.argv[1], sys.argv[2]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if mode in ("udpplain", "udpflip"):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # bursts of a fleet (the bench): the kernel caps this at net.core.rmem_max
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        s.bind(("127.0.0.1", 0))
        print("port %d" % s.getsockname()[1], flush=True)
        while True:
            data, peer = s.recvfrom(65536)
            if mode == "udpflip" and data:
                data = data[:-1] + bytes([data[-1] ^ 1])
            s.sendto(data, peer)
    if mode == "udpecho":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        print("port %d" % s.getsockname()[1], flush=True)
        while True:
            data, peer = s.recvfrom(65536)
            try:
                d = decode(data)
                if d is None:
                    raise ValueError("truncated PROXY header")
                hdr, payload = d[1], data[d[0]:]
                hdr["payload"], hdr["from_port"] = payload.decode(errors="replace"), peer[1]
                log(path, hdr)
                s.sendto(payload.upper(), peer)
            except Exception as e:
                log(path, {"error": str(e)})
    if mode == "full":
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(0)
        fillers, port = [], s.getsockname()[1]
        for _ in range(8):  # until a connect gets no answer: the queue is full
            c = socket.socket()
            c.settimeout(0.5)
            try:
                c.connect(("127.0.0.1", port))
                fillers.append(c)
            except OSError:
                c.close()
                break
        print("port %d" % port, flush=True)
        signal.pause()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    print("port %d" % s.getsockname()[1], flush=True)
    held = []
    while True:
        c, _ = s.accept()
        if mode == "http":
            threading.Thread(target=http_conn, args=(c, path), daemon=True).start()
        elif mode == "tcpplain":
            threading.Thread(target=plain_conn, args=(c, path), daemon=True).start()
        elif mode == "ticker":
            threading.Thread(target=ticker_conn, args=(c, path, int(sys.argv[3])), daemon=True).start()
        elif mode == "flood":
            threading.Thread(target=flood_conn, args=(c, path), daemon=True).start()
        else:
            stall_conn(c, path, held)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Memory of idle TLS WebSocket connections: opens N connections to a running sfubox over
TLS (or plain TCP with --plain), upgrades each to a Galène WebSocket and handshakes (then leaves it idle), and reports the
server's resident size per connection. Standard library only.

Usage: tls_memory.py --port P --pid PID [--connections 1000] [--max-kib-per-connection K]
Prints one JSON line; exits 1 if the growth per connection is above the bound (when given) or
if a connection could not be opened.
"""

import argparse
import base64
import json
import os
import socket
import ssl
import struct
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def open_session(context, port):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    tls = context.wrap_socket(raw, server_hostname="localhost") if context else raw
    key = base64.b64encode(os.urandom(16)).decode()
    tls.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: localhost:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = tls.recv(4096)
        if not chunk:
            raise ConnectionError("closed during the upgrade")
        head += chunk
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
    payload = json.dumps({"type": "handshake", "version": ["2"], "id": os.urandom(4).hex()})
    data = payload.encode()
    mask = os.urandom(4)
    frame = struct.pack("!BB", 0x81, 0x80 | len(data)) + mask
    frame += bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    tls.sendall(frame)
    # The server's handshake answer.
    if not tls.recv(4096):
        raise ConnectionError("closed after the handshake")
    return tls


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--max-kib-per-connection", type=float, default=None)
    parser.add_argument("--plain", action="store_true",
                        help="plain WebSockets (a server started with -insecure), for comparison")
    args = parser.parse_args()

    context = None
    if not args.plain:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE

    # Warm-up: lazily built state and the allocator's first arenas.
    for _ in range(3):
        warm = [open_session(context, args.port) for _ in range(50)]
        for s in warm:
            s.close()
        time.sleep(1)
    before = rss_kib(args.pid)
    sessions = []
    started = time.monotonic()
    for _ in range(args.connections):
        sessions.append(open_session(context, args.port))
    opened_in = time.monotonic() - started
    time.sleep(2)
    held = rss_kib(args.pid)
    for s in sessions:
        s.close()
    time.sleep(3)
    after = rss_kib(args.pid)
    per_connection = (held - before) / args.connections
    result = {
        "connections": args.connections,
        "tls": not args.plain,
        "rss_kib_before": before,
        "rss_kib_held": held,
        "rss_kib_after_close": after,
        "kib_per_connection": round(per_connection, 1),
        "opened_in_seconds": round(opened_in, 1),
    }
    print(json.dumps(result))
    bound = args.max_kib_per_connection
    if bound is not None and per_connection > bound:
        print(f"FAIL: {per_connection:.1f} KiB per idle TLS WebSocket (bound {bound})",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Measures sfubox's footprint: start-up time to ready, idle RSS, threads, and RSS per
publisher and per subscriber stream. Standard library only.

    tests/soak/footprint.py path/to/sfubox [--publishers 10] [--subscribers 10]
                            [--runner "qemu-aarch64 -L /usr/aarch64-linux-gnu"]

With --runner the binary runs under that command (an ARM build under qemu-user: the start-up
time and RSS are then qemu's, translation cache included, and say nothing exact about a board).

Publishers send a browser-like offer (Opus + VP8); subscribers ask for everything and answer
the server's offers. The SDPs are made up, so no ICE or DTLS follows: the figures are the
server's per-stream state (signalling, the engine's Rtc, routing), not packet buffers, which
the media bench (`cargo bench --bench forward`, kB/down) measures. Prints a Markdown table.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from soak import WebSocket, answer_for, publish_offer, sample  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, started, limit=30.0):
    """Seconds from `started` until GET / answers 200."""
    while time.monotonic() - started < limit:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                if s.recv(12).startswith(b"HTTP/1.1 200"):
                    return time.monotonic() - started
        except OSError:
            time.sleep(0.005)
    raise RuntimeError("the server did not become ready")


def join(port, name):
    ws = WebSocket("127.0.0.1", port)
    ws.send_json({"type": "handshake", "version": ["2"], "id": name})
    ws.send_json({"type": "join", "kind": "join", "group": "footprint", "username": name,
                  "password": ""})
    return ws


def pump(clients, seconds):
    """Reads every client for a while, answering offers and pings."""
    deadline = time.monotonic() + seconds
    counts = {"answers-sent": 0, "answers-received": 0}
    for ws in clients:
        ws.sock.settimeout(0.01)
    while time.monotonic() < deadline:
        for ws in clients:
            try:
                while True:
                    opcode, payload = ws.recv()
                    if opcode != 1:
                        continue
                    message = json.loads(payload)
                    if message.get("type") == "offer":
                        ws.send_json({"type": "answer", "id": message["id"],
                                      "sdp": answer_for(message["sdp"])})
                        counts["answers-sent"] += 1
                    elif message.get("type") == "answer":
                        counts["answers-received"] += 1
                    elif message.get("type") == "ping":
                        ws.send_json({"type": "pong"})
            except (socket.timeout, TimeoutError):
                pass
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("binary")
    parser.add_argument("--publishers", type=int, default=10)
    parser.add_argument("--subscribers", type=int, default=10)
    parser.add_argument("--runner", default="",
                        help="a command to run the binary with, e.g. qemu-aarch64 -L SYSROOT")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="sfubox-footprint-")
    os.makedirs(f"{work}/groups")
    os.makedirs(f"{work}/data")
    with open(f"{work}/groups/footprint.json", "w") as f:
        f.write('{"wildcard-user": {"password": "", "permissions": "present"}}')
    port = free_port()
    started = time.monotonic()
    server = subprocess.Popen(
        args.runner.split() + [args.binary, "-insecure", "-http", f"127.0.0.1:{port}",
                               "-groups", f"{work}/groups", "-data", f"{work}/data"],
        stderr=subprocess.DEVNULL, env=dict(os.environ, RUST_LOG="warn"))
    try:
        ready = wait_ready(port, started)
        time.sleep(1)
        idle = sample(server.pid)

        publishers = [join(port, f"pub{i}") for i in range(args.publishers)]
        for ws in publishers:
            ws.send_json({"type": "offer", "id": os.urandom(6).hex(), "label": "camera",
                          "sdp": publish_offer()})
        published = pump(publishers, 2.0)
        with_publishers = sample(server.pid)

        subscribers = [join(port, f"sub{i}") for i in range(args.subscribers)]
        for ws in subscribers:
            ws.send_json({"type": "request", "request": {"": ["audio", "video"]}})
        subscribed = pump(subscribers + publishers, 3.0)
        with_subscribers = sample(server.pid)
    finally:
        server.terminate()
        server.wait(5)

    down_streams = subscribed["answers-sent"]
    per_publisher = (with_publishers["rss_kib"] - idle["rss_kib"]) / max(1, args.publishers)
    per_down = (with_subscribers["rss_kib"] - with_publishers["rss_kib"]) / max(1, down_streams)
    size = os.path.getsize(args.binary)
    rows = [
        ("binary size", f"{size:,} B ({size / 2**20:.1f} MiB)"),
        ("start-up to first HTTP 200", f"{ready * 1000:.0f} ms"),
        ("idle RSS", f"{idle['rss_kib'] / 1024:.1f} MiB"),
        ("threads", f"{idle['threads']}"),
        ("open fds, idle", f"{idle['fds']}"),
        ("RSS per publisher (audio + video up stream)",
         f"{per_publisher:.0f} KiB ({args.publishers} publishers, "
         f"{published['answers-received']} answered)"),
        ("RSS per subscriber stream (audio + video down stream)",
         f"{per_down:.0f} KiB ({args.subscribers} subscribers, {down_streams} streams)"),
        ("RSS with all of them", f"{with_subscribers['rss_kib'] / 1024:.1f} MiB"),
    ]
    print("| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

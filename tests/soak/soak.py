#!/usr/bin/env python3
"""Churn against one running sfubox, sampling its RSS, open file descriptors and threads.

Standard library only (the WebSocket client is written out here). Several worker threads
loop until the time is up; each round one simulated Galène client connects, handshakes, joins
the soak group and then does a random mix of: chat, publishing (an offer with a made-up but
well-formed SDP; no ICE follows, so the server's engine holds the stream until it is closed),
subscribing (answering the server's offers with a matching made-up answer), malformed frames
(bad JSON, binary, bad UTF-8, an oversized frame, a truncated frame), and leaves in one of
three ways: a clean leave and close, an abrupt reset (the peer vanishes), or going silent
with the socket open (the server's 45 s liveness timeout must drop it).

The churn runs in rounds (two by default) of the same work. After each round every client is
gone; the script waits for the server to settle and checks that open file descriptors are back
at the baseline. RSS is judged across rounds: the allocator keeps the high-water mark of the
busiest moment (so RSS does not drop back to the idle figure), but the same work done again
must not raise it further, while a leak would, so RSS after the last round may exceed RSS after
the first by at most --late-growth-kib, and the idle baseline by at most --rss-growth-kib.
Prints one JSON summary line (and a human-readable table on stderr); exit 1 on failure.
"""

import argparse
import base64
import json
import os
import random
import socket
import struct
import sys
import threading
import time


class WebSocket:
    """A minimal RFC 6455 client: text/binary frames, ping/pong, close."""

    def __init__(self, host, port, path="/ws", timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the upgrade")
            self.buffer += chunk
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status:
            raise ConnectionError(f"upgrade refused: {status!r}")

    def send_frame(self, opcode, payload, fin=True):
        mask = os.urandom(4)
        length = len(payload)
        first = (0x80 if fin else 0) | opcode
        if length < 126:
            header = struct.pack("!BB", first, 0x80 | length)
        elif length < 65536:
            header = struct.pack("!BBH", first, 0x80 | 126, length)
        else:
            header = struct.pack("!BBQ", first, 0x80 | 127, length)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def send_json(self, message):
        self.send_frame(1, json.dumps(message).encode())

    def _read(self, n):
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def recv(self):
        """Returns (opcode, payload); raises socket.timeout or ConnectionError."""
        first, second = self._read(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._read(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._read(8))
        payload = self._read(length)
        opcode = first & 0x0F
        if opcode == 9:
            self.send_frame(10, payload)
        return opcode, payload

    def close(self):
        try:
            self.send_frame(8, struct.pack("!H", 1000))
        except OSError:
            pass
        self.sock.close()

    def reset(self):
        """Vanish: close with a TCP reset instead of a close handshake."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


def fingerprint():
    return ":".join(f"{b:02X}" for b in os.urandom(32))


def sdp_session(ice_ufrag, ice_pwd, mids):
    return (
        "v=0\r\n"
        f"o=- {random.randrange(1, 2**62)} 2 IN IP4 127.0.0.1\r\n"
        "s=-\r\nt=0 0\r\n"
        f"a=group:BUNDLE {' '.join(mids)}\r\n"
        "a=msid-semantic: WMS\r\n"
    ), (
        "c=IN IP4 0.0.0.0\r\n"
        "a=rtcp:9 IN IP4 0.0.0.0\r\n"
        f"a=ice-ufrag:{ice_ufrag}\r\n"
        f"a=ice-pwd:{ice_pwd}\r\n"
        "a=ice-options:trickle\r\n"
        f"a=fingerprint:sha-256 {fingerprint()}\r\n"
    )


def publish_offer():
    """A browser-like offer: Opus audio and VP8 video, send-only."""
    head, common = sdp_session(os.urandom(4).hex(), os.urandom(12).hex(), ["0", "1"])
    ssrc_audio, ssrc_video = random.randrange(1, 2**32), random.randrange(1, 2**32)
    return (
        head
        + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
        + common
        + "a=setup:actpass\r\na=mid:0\r\na=sendonly\r\na=msid:soak audio\r\na=rtcp-mux\r\n"
        + "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n"
        + f"a=ssrc:{ssrc_audio} cname:soak\r\n"
        + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
        + common
        + "a=setup:actpass\r\na=mid:1\r\na=sendonly\r\na=msid:soak video\r\na=rtcp-mux\r\n"
        + "a=rtcp-rsize\r\na=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack\r\n"
        + "a=rtcp-fb:96 nack pli\r\na=rtcp-fb:96 ccm fir\r\n"
        + f"a=ssrc:{ssrc_video} cname:soak\r\n"
    )


def answer_for(offer):
    """A receive-only answer matching the server's offer (same m-lines, mids and codecs)."""
    sections, current = [], None
    for line in offer.split("\r\n"):
        if line.startswith("m="):
            current = {"m": line, "mid": None, "codecs": []}
            sections.append(current)
        elif current is not None:
            if line.startswith("a=mid:"):
                current["mid"] = line[6:]
            elif line.startswith(("a=rtpmap:", "a=fmtp:", "a=rtcp-fb:")):
                current["codecs"].append(line)
    mids = [s["mid"] or str(i) for i, s in enumerate(sections)]
    head, common = sdp_session(os.urandom(4).hex(), os.urandom(12).hex(), mids)
    body = ""
    for section, mid in zip(sections, mids):
        body += section["m"] + "\r\n" + common + f"a=setup:active\r\na=mid:{mid}\r\n"
        body += "a=recvonly\r\na=rtcp-mux\r\n" + "".join(c + "\r\n" for c in section["codecs"])
    return head + body


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}

    def add(self, name, n=1):
        with self.lock:
            self.counts[name] = self.counts.get(name, 0) + n


def client_round(host, port, group, stats, silent, rng):
    ws = WebSocket(host, port)
    stats.add("connections")
    cid = os.urandom(8).hex()
    ws.send_json({"type": "handshake", "version": ["2"], "id": cid})
    user = f"soak-{cid[:6]}"
    ws.send_json({"type": "join", "kind": "join", "group": group, "username": user,
                  "password": ""})
    stats.add("joins")
    published = []
    deadline = time.monotonic() + rng.uniform(0.3, 2.0)
    actions = ["chat", "publish", "subscribe", "malformed", "close-stream", "noop"]
    weights = [5, 4, 4, 1, 2, 4]
    ws.sock.settimeout(0.05)
    while time.monotonic() < deadline:
        action = rng.choices(actions, weights)[0]
        if action == "chat":
            ws.send_json({"type": "chat", "source": cid, "username": user,
                          "value": "x" * rng.randrange(1, 200)})
            stats.add("chats")
        elif action == "publish" and len(published) < 3:
            stream = os.urandom(6).hex()
            ws.send_json({"type": "offer", "id": stream, "label": "camera",
                          "sdp": publish_offer()})
            published.append(stream)
            stats.add("publishes")
        elif action == "subscribe":
            ws.send_json({"type": "request", "request": {"": ["audio", "video"]}})
            stats.add("subscribes")
        elif action == "close-stream" and published:
            ws.send_json({"type": "close", "id": published.pop()})
        elif action == "malformed":
            kind = rng.randrange(4)
            if kind == 0:
                ws.send_frame(1, b'{"type": "chat", "value": ')
            elif kind == 1:
                ws.send_frame(1, b'{"type": "nonsense", "x": [1, 2, {}]}')
            elif kind == 2:
                ws.send_frame(1, b"\xff\xfe not utf-8")
            else:
                ws.send_json({"type": "usermessage", "kind": "error", "dest": "nobody",
                              "value": None})
            stats.add("malformed")
        # Read whatever arrived: answer pings and the server's offers.
        try:
            while True:
                opcode, payload = ws.recv()
                if opcode == 8:
                    stats.add("closed-by-server")
                    ws.sock.close()
                    return None
                if opcode != 1:
                    continue
                message = json.loads(payload)
                kind = message.get("type")
                if kind == "ping":
                    ws.send_json({"type": "pong"})
                elif kind == "offer":
                    ws.send_json({"type": "answer", "id": message.get("id"),
                                  "sdp": answer_for(message.get("sdp", ""))})
                    stats.add("answers")
                elif kind == "answer":
                    stats.add("publish-answers")
        except (socket.timeout, TimeoutError):
            pass
    ending = rng.random()
    if silent:
        stats.add("went-silent")
        return ws  # kept open, never read: the server must time it out
    if ending < 0.1:
        # A binary frame (close 1003) or an oversized one (1009) ends the session.
        if rng.random() < 0.5:
            ws.send_frame(2, b"\x00\x01")
        else:
            try:
                ws.send_frame(1, b"x" * (1 << 20 | 1))
            except OSError:
                pass
        stats.add("killed-by-protocol")
        ws.sock.close()
    elif ending < 0.3:
        ws.reset()
        stats.add("vanished")
    elif ending < 0.4:
        # Half a frame header, then gone.
        try:
            ws.sock.sendall(b"\x81\xfe")
        except OSError:
            pass
        ws.sock.close()
        stats.add("truncated")
    else:
        ws.send_json({"type": "join", "kind": "leave", "group": group, "username": user})
        ws.close()
        stats.add("clean-leaves")
    return None


def sample(pid):
    rss_kib = threads = 0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss_kib = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return {"rss_kib": rss_kib, "fds": fds, "threads": threads}


def churn(args, stats, seed, silent_sockets, errors):
    """One round: `args.seconds` of churn by `args.workers` threads; returns the RSS samples."""
    samples = []
    started = time.monotonic()
    stop = threading.Event()

    def worker(index):
        local = random.Random(seed + index)
        while not stop.is_set():
            try:
                silent = local.random() < 0.02 and len(silent_sockets) < 20
                kept = client_round(args.host, args.port, args.group, stats, silent, local)
                if kept is not None:
                    silent_sockets.append(kept)
            except ConnectionRefusedError as error:
                stats.add("client-errors")
                if len(errors) < 10:
                    errors.append(repr(error))
                time.sleep(0.1)
            except (OSError, ConnectionError, ValueError):
                # The server closed the session (a malformed frame, a full queue): expected.
                stats.add("closed-by-server")

    threads = [threading.Thread(target=worker, args=(i,), daemon=True)
               for i in range(args.workers)]
    for thread in threads:
        thread.start()
    while time.monotonic() - started < args.seconds:
        time.sleep(1)
        samples.append(sample(args.pid)["rss_kib"])
    stop.set()
    for thread in threads:
        thread.join()
    return samples


def settle(args, baseline, silent_sockets):
    """Waits until the server has dropped every client (the silent ones by its 45 s liveness
    timeout), then closes the silent sockets; returns (seconds waited, the final sample)."""
    churn_end = time.monotonic()
    while time.monotonic() - churn_end < args.settle:
        if sample(args.pid)["fds"] <= baseline["fds"]:
            break
        time.sleep(1)
    waited = round(time.monotonic() - churn_end, 1)
    for ws in silent_sockets:
        ws.sock.close()
    silent_sockets.clear()
    time.sleep(1)
    return waited, sample(args.pid)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--group", default="soak")
    parser.add_argument("--seconds", type=float, default=60, help="length of each round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--settle", type=float, default=60,
                        help="longest wait for the server to drop every client after a round")
    parser.add_argument("--rss-growth-kib", type=int, default=32768,
                        help="allowed RSS above the warmed-up baseline after the churn")
    parser.add_argument("--late-growth-kib", type=int, default=2048,
                        help="allowed RSS growth from the end of the first round to the end of "
                             "the last (the same work again; a leak keeps growing)")
    args = parser.parse_args()

    stats = Stats()
    rng = random.Random(1)
    # Warm-up: one round of each kind so lazily built state (the group, the engine) exists.
    for _ in range(3):
        client_round(args.host, args.port, args.group, stats, False, rng)
    time.sleep(2)
    baseline = sample(args.pid)
    silent_sockets = []
    errors = []
    rounds = []
    for index in range(args.rounds):
        samples = churn(args, stats, 100 * (index + 1), silent_sockets, errors)
        waited, after = settle(args, baseline, silent_sockets)
        rounds.append({"peak_rss_kib": max(samples, default=after["rss_kib"]),
                       "settled": after, "settle_seconds": waited})

    final = rounds[-1]["settled"]
    first = rounds[0]["settled"]
    ok_fds = all(r["settled"]["fds"] <= baseline["fds"] for r in rounds)
    ok_rss = final["rss_kib"] <= baseline["rss_kib"] + args.rss_growth_kib
    ok_late = final["rss_kib"] <= first["rss_kib"] + args.late_growth_kib
    ok_errors = not errors
    summary = {
        "seconds_per_round": args.seconds,
        "workers": args.workers,
        "baseline": baseline,
        "rounds": rounds,
        "final": final,
        "counts": stats.counts,
        "client_errors": errors,
        "ok": ok_fds and ok_rss and ok_late and ok_errors,
    }
    print(json.dumps(summary, sort_keys=True))
    print(f"{'':<22}{'RSS (KiB)':>10}{'open fds':>10}{'threads':>10}", file=sys.stderr)
    print(f"{'baseline':<22}{baseline['rss_kib']:>10}{baseline['fds']:>10}"
          f"{baseline['threads']:>10}", file=sys.stderr)
    for index, r in enumerate(rounds, 1):
        s = r["settled"]
        print(f"{f'round {index} peak':<22}{r['peak_rss_kib']:>10}", file=sys.stderr)
        print(f"{f'round {index} settled':<22}{s['rss_kib']:>10}{s['fds']:>10}{s['threads']:>10}",
              file=sys.stderr)
    print(f"counts: {json.dumps(stats.counts, sort_keys=True)}", file=sys.stderr)
    for index, r in enumerate(rounds, 1):
        if r["settled"]["fds"] > baseline["fds"]:
            print(f"FAIL: {r['settled']['fds']} open fds after round {index}, "
                  f"{baseline['fds']} before", file=sys.stderr)
    if not ok_rss:
        print(f"FAIL: RSS grew by {final['rss_kib'] - baseline['rss_kib']} KiB "
              f"(allowed {args.rss_growth_kib})", file=sys.stderr)
    if not ok_late:
        print(f"FAIL: RSS still growing: {final['rss_kib'] - first['rss_kib']} KiB more after "
              f"the last round than after the first (allowed {args.late_growth_kib})",
              file=sys.stderr)
    if not ok_errors:
        print(f"FAIL: client errors: {errors}", file=sys.stderr)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Checks one sfubox server started by tests/arm/run.sh (an ARM build under qemu-user).

    tests/arm/check_server.py BINARY PORT GROUP MACHINE

- BINARY is an ELF executable for MACHINE (aarch64 or arm), so qemu really ran an ARM build;
- GET /group/GROUP/.status answers 200 with the group's name, display name, the WebSocket
  endpoint and, as the group is public, a client count of 0;
- a client joins GROUP over Galène's protocol (handshake, join) and gets `joined`;
- .status then counts that client.

Standard library only; exits non-zero with the reason on the first failure.
"""

import json
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "soak"))
from soak import WebSocket  # noqa: E402

# e_machine values of the ELF header.
MACHINES = {"aarch64": 183, "arm": 40}


def fail(why):
    print(f"check_server: {why}", file=sys.stderr)
    sys.exit(1)


def elf_machine(path):
    with open(path, "rb") as f:
        header = f.read(20)
    if header[:4] != b"\x7fELF":
        fail(f"{path} is not an ELF file")
    return struct.unpack("<H", header[18:20])[0]


def http_get(port, path):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                  "Connection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body


def status_json(port, group):
    status, body = http_get(port, f"/group/{group}/.status")
    if status != 200:
        fail(f".status answered {status}")
    return json.loads(body)


def main():
    binary, port, group, machine = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    if elf_machine(binary) != MACHINES[machine]:
        fail(f"{binary} is not an {machine} executable")

    status = status_json(port, group)
    expected = {"name": group, "displayName": "ARM board", "clientCount": 0,
                "endpoint": f"ws://127.0.0.1:{port}/ws"}
    for key, value in expected.items():
        if status.get(key) != value:
            fail(f".status {key} is {status.get(key)!r}, expected {value!r} (got {status})")
    print(f"   .status: {json.dumps(status)}")

    ws = WebSocket("127.0.0.1", port, timeout=20)
    ws.send_json({"type": "handshake", "version": ["2"], "id": "arm-client"})
    ws.send_json({"type": "join", "kind": "join", "group": group, "username": "pi",
                  "password": "pw"})
    deadline = time.monotonic() + 20
    joined = None
    while joined is None and time.monotonic() < deadline:
        opcode, payload = ws.recv()
        if opcode != 1:
            continue
        message = json.loads(payload)
        if message.get("type") == "joined":
            joined = message
    if joined is None or joined.get("kind") != "join" or joined.get("group") != group:
        fail(f"no join acknowledgement: {joined}")
    print(f"   joined {group} as {joined.get('username')!r}, "
          f"permissions {joined.get('permissions')}")

    count = status_json(port, group).get("clientCount")
    if count != 1:
        fail(f".status counts {count} clients after the join, expected 1")
    ws.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Recovery time of N missed messages (issue 14), against a running parleyd /chat.

A reader joins a room and leaves; a writer then sends N messages (waiting for every ack, so all
are stored); the reader comes back and joins with since_seq. Measured: from sending that join to
having the last of the N missed messages (a history reply, several when over --recovery-limit is
not expected here). The reader's connection drops without a close frame, so with session resume
on (parleyd's default) it comes back with its resume token. Prints one JSON line. Standard library only: a minimal RFC 6455 client
(masked text frames, no extensions), enough for this probe.

usage: recovery_probe.py HOST PORT [--missed N] [--runs R] [--room NAME]
"""
import argparse
import base64
import json
import os
import socket
import struct
import time


class Ws:
    def __init__(self, host, port, path="/chat"):
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self.sock.sendall(request.encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("connection closed during the handshake")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise RuntimeError("upgrade refused: " + head.split(b"\r\n")[0].decode(errors="replace"))

    def send(self, obj):
        payload = json.dumps(obj, separators=(",", ":")).encode()
        mask = os.urandom(4)
        n = len(payload)
        header = bytes([0x81])  # RFC 6455 5.2: FIN + text
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))  # RFC 6455 5.3
        self.sock.sendall(header + mask + masked)

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise RuntimeError("connection closed")
            self.buf += chunk

    def recv(self):
        """The next text message as a dict (control frames skipped; servers do not fragment ours)."""
        while True:
            self._need(2)
            opcode = self.buf[0] & 0x0F
            n = self.buf[1] & 0x7F
            at = 2
            if n == 126:
                self._need(4)
                n = struct.unpack("!H", self.buf[2:4])[0]
                at = 4
            elif n == 127:
                self._need(10)
                n = struct.unpack("!Q", self.buf[2:10])[0]
                at = 10
            self._need(at + n)
            payload, self.buf = self.buf[at:at + n], self.buf[at + n:]
            if opcode == 1:
                return json.loads(payload)
            if opcode == 8:
                raise RuntimeError("server closed the connection")

    def close(self):
        self.sock.close()


def expect(ws, kind):
    while True:
        msg = ws.recv()
        if msg.get("type") == kind:
            return msg
        if msg.get("type") == "error":
            raise RuntimeError(f"error while waiting for {kind}: {msg}")


def run_once(host, port, room, missed, tag):
    reader = Ws(host, port)
    reader.send({"type": "hello", "name": f"rd{tag}"})
    token = expect(reader, "welcome").get("resume")
    reader.send({"type": "join", "room": room})
    history = expect(reader, "history")
    seen = max([m["seq"] for m in history["messages"]], default=0)
    reader.close()

    writer = Ws(host, port)
    writer.send({"type": "hello", "name": f"wr{tag}"})
    expect(writer, "welcome")
    writer.send({"type": "join", "room": room})
    expect(writer, "history")
    window = 64
    sent = acked = 0
    while acked < missed:
        while sent < missed and sent - acked < window:
            writer.send({"type": "msg", "room": room, "text": f"m{sent}", "id": f"{tag}-{sent}"})
            sent += 1
        msg = writer.recv()
        if msg.get("type") == "ack":
            acked += 1
        elif msg.get("type") == "error":
            raise RuntimeError(f"writer refused: {msg}")
    writer.close()

    # A dropped connection: the server holds the session (--resume-window) for its token.
    reader = Ws(host, port)
    hello = {"type": "hello", "name": f"rd{tag}"}
    if token:
        hello["resume"] = token
    reader.send(hello)
    expect(reader, "welcome")
    start = time.perf_counter()
    reader.send({"type": "join", "room": room, "since_seq": seen})
    got = 0
    recovered = None
    while got < missed:
        msg = reader.recv()
        if msg.get("type") == "history":
            got += len(msg["messages"])
            recovered = msg.get("recovered")
        elif msg.get("type") == "msg":
            got += 1
        elif msg.get("type") == "error":
            raise RuntimeError(f"recovery refused: {msg}")
    elapsed = time.perf_counter() - start
    reader.close()
    return elapsed, got, recovered


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--missed", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--room", default=f"recovery-{os.getpid()}")
    args = parser.parse_args()
    times = []
    for run in range(args.runs):
        elapsed, got, recovered = run_once(args.host, args.port, args.room, args.missed, f"{os.getpid()}-{run}")
        if got != args.missed or recovered is not True:
            raise SystemExit(f"recovery_probe: run {run}: got {got} of {args.missed}, recovered={recovered}")
        times.append(elapsed * 1000)
    times.sort()
    print(json.dumps({"missed": args.missed, "runs": args.runs, "median_ms": round(times[len(times) // 2], 3),
                      "min_ms": round(times[0], 3), "max_ms": round(times[-1], 3)}))


if __name__ == "__main__":
    main()

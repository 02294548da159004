#!/usr/bin/env python3
"""Attack mixes and a handshake probe for bench/soak.sh (loopback only, bounded, self-stopping).

Every mode runs for --duration seconds against 127.x.y.z and then exits, printing one JSON line
of what it did. Modes:
  slowloris  --conns N --sources K   N connections that send a request head one byte a second
                                     (reconnecting when refused), from K 127.1.x.y source addresses
  garbage    --rate R                R connections a second that send random bytes or a TLS
                                     ClientHello; reports how long the server took to answer
  flood      --members N --rate R    N /chat members of one room that never read (tiny receive
                                     buffers), one publisher sending R msgs/s of --size bytes, and
                                     --churn C members a second leaving (TCP close) and new ones
                                     joining, so every leave is a notice queued behind the flood
  history    --conns N --rooms K     N connections each joining K rooms and filling their history
                                     with --size-byte messages as fast as the rate limit allows
  probe      --interval S            a legit client: a new /chat upgrade every S seconds; reports
                                     time-to-101 percentiles and failures
"""
import argparse
import asyncio
import base64
import json
import os
import random
import socket
import struct
import sys
import time


def mask_frame(opcode, payload):
    """A masked client frame (RFC 6455 5.2: every client frame is masked)."""
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    key = os.urandom(4)
    body = bytes(b ^ key[i & 3] for i, b in enumerate(payload))
    return head + key + body


def text(obj):
    return mask_frame(0x1, json.dumps(obj).encode())


def upgrade_request(host, port, path):
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n\r\n").encode()


def source_address(index, spread):
    """127.1.x.y for index % spread: many source addresses on loopback (fd and port limits)."""
    i = index % max(spread, 1)
    return f"127.1.{(i // 250) % 250}.{i % 250 + 1}"


async def open_socket(args, index, spread, rcvbuf=None):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind((source_address(index, spread), 0))
    await asyncio.get_running_loop().sock_connect(sock, (args.host, args.port))
    return sock


async def read_head(loop, sock, timeout):
    """Reads an HTTP response head; returns (status, leftover bytes) or (None, b'')."""
    data = b""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            return None, b""
        try:
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 4096), left)
        except (asyncio.TimeoutError, OSError):
            return None, b""
        if not chunk:
            return None, b""
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    try:
        return int(head.split(b" ", 2)[1]), rest
    except (IndexError, ValueError):
        return None, b""


async def websocket(args, index, spread, rcvbuf=None, path="/chat"):
    """An upgraded socket, or None when the server refused or did not answer in time."""
    loop = asyncio.get_running_loop()
    try:
        sock = await open_socket(args, index, spread, rcvbuf)
        await loop.sock_sendall(sock, upgrade_request(args.host, args.port, path))
        status, _ = await read_head(loop, sock, 5.0)
    except OSError:
        return None
    if status != 101:
        sock.close()
        return None
    return sock


async def slowloris(args, stats):
    loop = asyncio.get_running_loop()
    end = time.monotonic() + args.duration
    head = upgrade_request(args.host, args.port, "/chat")

    async def one(i):
        while time.monotonic() < end:
            try:
                sock = await open_socket(args, i, args.sources)
            except OSError:
                stats["connect_errors"] += 1
                await asyncio.sleep(0.5)
                continue
            stats["opened"] += 1
            try:
                for b in head[:-1]:  # never completes the head
                    if time.monotonic() >= end:
                        break
                    await loop.sock_sendall(sock, bytes([b]))
                    await asyncio.sleep(1.0)
            except OSError:
                stats["cut"] += 1
            sock.close()

    await asyncio.gather(*(one(i) for i in range(args.conns)))


async def garbage(args, stats):
    loop = asyncio.get_running_loop()
    end = time.monotonic() + args.duration
    answers = []
    client_hello = bytes([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03]) + os.urandom(32)

    async def one(i):
        try:
            sock = await open_socket(args, i, args.sources)
        except OSError:
            stats["connect_errors"] += 1
            return
        started = time.monotonic()
        try:
            await loop.sock_sendall(sock, client_hello if i % 2 else os.urandom(64))
            status, _ = await read_head(loop, sock, 15.0)
            answers.append(time.monotonic() - started)
            stats["status_%s" % status] += 1
        except OSError:
            stats["reset"] += 1
        sock.close()

    i = 0
    tasks = []
    while time.monotonic() < end:
        tasks.append(asyncio.create_task(one(i)))
        i += 1
        await asyncio.sleep(1.0 / args.rate)
    await asyncio.gather(*tasks)
    answers.sort()
    if answers:
        stats["answer_p50_ms"] = round(answers[len(answers) // 2] * 1000, 1)
        stats["answer_max_ms"] = round(answers[-1] * 1000, 1)


async def flood(args, stats):
    loop = asyncio.get_running_loop()
    end = time.monotonic() + args.duration
    room = args.room
    members = []
    next_index = [0]

    async def add_member():
        i = next_index[0]
        next_index[0] += 1
        sock = await websocket(args, i, args.sources, rcvbuf=4096)
        if sock is None:
            stats["refused"] += 1
            return
        try:
            await loop.sock_sendall(sock, text({"type": "hello", "name": f"sink{args.tag}{i}"})
                                    + text({"type": "join", "room": room}))
        except OSError:
            sock.close()
            stats["refused"] += 1
            return
        members.append(sock)
        stats["joined"] += 1

    for start in range(0, args.members, 200):
        await asyncio.gather(*(add_member() for _ in range(min(200, args.members - start))))
    publisher = await websocket(args, 10**6, 1)
    if publisher is None:
        stats["publisher_refused"] += 1
        return
    await loop.sock_sendall(publisher, text({"type": "hello", "name": f"pub{args.tag}"})
                            + text({"type": "join", "room": room}))

    async def drain_publisher():
        while True:
            try:
                if not await loop.sock_recv(publisher, 65536):
                    return
            except OSError:
                return

    drain = asyncio.create_task(drain_publisher())
    body = "x" * args.size
    sent = 0
    churn_due = time.monotonic()
    while time.monotonic() < end:
        try:
            await loop.sock_sendall(publisher, text({"type": "msg", "room": room, "text": body, "id": str(sent)}))
            sent += 1
        except OSError:
            stats["publisher_cut"] += 1
            break
        now = time.monotonic()
        while args.churn > 0 and churn_due <= now and members:
            members.pop(random.randrange(len(members))).close()
            stats["left"] += 1
            await add_member()
            churn_due += 1.0 / args.churn
        await asyncio.sleep(1.0 / args.rate)
    stats["published"] = sent
    drain.cancel()
    for s in members:
        s.close()
    publisher.close()


async def history(args, stats):
    loop = asyncio.get_running_loop()
    end = time.monotonic() + args.duration
    body = "h" * args.size

    async def one(i):
        sock = await websocket(args, i, args.sources)
        if sock is None:
            stats["refused"] += 1
            return
        stats["opened"] += 1

        async def drain():
            while True:
                try:
                    if not await loop.sock_recv(sock, 65536):
                        return
                except OSError:
                    return

        reader = asyncio.create_task(drain())
        try:
            await loop.sock_sendall(sock, text({"type": "hello", "name": f"hist{args.tag}{i}"}))
            rooms = [f"pin{args.tag}-{i}-{k}" for k in range(args.rooms)]
            for r in rooms:
                await loop.sock_sendall(sock, text({"type": "join", "room": r}))
            n = 0
            while time.monotonic() < end:
                await loop.sock_sendall(sock, text({"type": "msg", "room": rooms[n % len(rooms)], "text": body}))
                n += 1
                await asyncio.sleep(1.0 / 19)  # inside the default rate limit
            stats["sent"] += n
        except OSError:
            stats["cut"] += 1
        reader.cancel()
        sock.close()

    await asyncio.gather(*(one(i) for i in range(args.conns)))


async def probe(args, stats):
    loop = asyncio.get_running_loop()
    end = time.monotonic() + args.duration
    times = []
    i = 0
    while time.monotonic() < end:
        started = time.monotonic()
        sock = None
        try:
            sock = await open_socket(args, 5000 + i, 50)
            await loop.sock_sendall(sock, upgrade_request(args.host, args.port, "/chat"))
            status, _ = await read_head(loop, sock, 5.0)
        except OSError:
            status = None
        elapsed = time.monotonic() - started
        if status == 101:
            times.append(elapsed)
        else:
            stats["failed_%s" % status] += 1
        if sock is not None:
            sock.close()
        i += 1
        await asyncio.sleep(max(0.0, args.interval - elapsed))
    times.sort()
    stats["ok"] = len(times)
    if times:
        stats["p50_ms"] = round(times[len(times) // 2] * 1000, 1)
        stats["p99_ms"] = round(times[min(len(times) - 1, int(len(times) * 0.99))] * 1000, 1)
        stats["max_ms"] = round(times[-1] * 1000, 1)


class Counter(dict):
    def __missing__(self, key):
        return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["slowloris", "garbage", "flood", "history", "probe"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--duration", type=float, default=30)
    p.add_argument("--conns", type=int, default=1000)
    p.add_argument("--sources", type=int, default=1)
    p.add_argument("--rate", type=float, default=19)
    p.add_argument("--members", type=int, default=2000)
    p.add_argument("--churn", type=float, default=5)
    p.add_argument("--size", type=int, default=4000)
    p.add_argument("--rooms", type=int, default=32)
    p.add_argument("--room", default="soak-flood")
    p.add_argument("--interval", type=float, default=0.1)
    p.add_argument("--tag", default="")
    args = p.parse_args()
    if not args.host.startswith("127."):
        sys.exit("soak_attack.py: loopback (127.0.0.0/8) targets only")
    stats = Counter()
    mode = globals()[args.mode]
    try:
        asyncio.run(asyncio.wait_for(mode(args, stats), args.duration + 60))
    except asyncio.TimeoutError:
        stats["overran"] = 1
    print(json.dumps({"mode": args.mode, **stats}), flush=True)


if __name__ == "__main__":
    main()

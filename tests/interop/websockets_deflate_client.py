"""permessage-deflate interop: Python's websockets client (Debian python3-websockets, which offers
permessage-deflate by default) against parleyd's /echo. Usage: python3 websockets_deflate_client.py
PORT. Prints one line starting with "OK " and exits 0 when every echo matched, the extension was
negotiated and the server really sent compressed messages; otherwise prints "FAIL ..." and exits 1.
"""
import asyncio
import sys

import websockets


class Failure(Exception):
    pass


def fail(why):
    raise Failure(why)


async def main(port):
    sizes = [0, 10, 100, 1000, 20000, 200000]
    messages = []
    for size in sizes:
        messages.append(("parley says hello. " * (size // 19 + 1))[:size])
        messages.append(bytes(((i % 37) * 7) & 0xFF for i in range(size)))  # compressible
    async with websockets.connect("ws://127.0.0.1:%d/echo" % port, max_size=2**22) as ws:
        offered = ws.response_headers.get("Sec-WebSocket-Extensions", "")
        if not ws.extensions or ws.extensions[0].name != "permessage-deflate":
            fail("extension not negotiated: %r" % offered)
        extension = ws.extensions[0]
        compressed_in = 0
        decode = extension.decode

        # Count compressed frames from the server (RSV1 set) as the extension inflates them.
        def counting_decode(frame, *, max_size=None):
            nonlocal compressed_in
            if frame.rsv1:
                compressed_in += 1
            return decode(frame, max_size=max_size)

        extension.decode = counting_decode
        for i, message in enumerate(messages):
            await ws.send(message)
            echo = await asyncio.wait_for(ws.recv(), 10)
            if echo != message:
                fail("echo %d differs (size %d)" % (i, len(message)))
        expected = sum(1 for m in messages if len(m) >= 64)
        if compressed_in < expected:
            fail("only %d of %d echoes came compressed" % (compressed_in, expected))
        print("OK %d echoes, %d compressed, extensions: %s" % (len(messages), compressed_in, offered))


if __name__ == "__main__":
    try:
        asyncio.run(asyncio.wait_for(main(int(sys.argv[1])), 30))
    except Failure as failure:
        print("FAIL %s" % failure)
        sys.exit(1)
    except Exception as error:  # noqa: BLE001 - any failure is reported as one line
        print("FAIL %s: %s" % (type(error).__name__, error))
        sys.exit(1)

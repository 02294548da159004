"""Autobahn|Testsuite 12.*/13.* in miniature with Autobahn's own permessage-deflate code (Debian
python3-autobahn, the library the testsuite's client is built on) against parleyd's /echo.

Usage: python3 autobahn_deflate_client.py PORT. For every client offer of cases 13.1-13.7 (window
8 becomes 9: this Autobahn version only allows 9-15) and every (size, auto-fragment) pair of
cases 12.*/13.*, sends COUNT JSON text messages and checks each echo byte for byte, as the
testsuite does (it sends 1000). Prints "OK ..." and exits 0, or "FAIL ..." and exits 1.
"""
import asyncio
import socket
import sys

from autobahn.asyncio.websocket import WebSocketClientFactory, WebSocketClientProtocol
from autobahn.websocket.compress import (PerMessageDeflateOffer, PerMessageDeflateResponse,
                                         PerMessageDeflateResponseAccept)

COUNT = 2
# (payload length, auto-fragment size) of Autobahn's MSG_SIZES.
SIZES = [(16, 0), (64, 0), (256, 0), (1024, 0), (4096, 0), (8192, 0), (16384, 0), (32768, 0), (65536, 0),
         (131072, 0), (8192, 256), (16384, 256), (32768, 256), (65536, 256), (131072, 256), (131072, 1024),
         (131072, 4096), (131072, 32768)]
# (requestNoContextTakeover, requestMaxWindowBits) of the offers of cases 13.1-13.7.
OFFERS = {
    "13.1": [(False, 0)],
    "13.2": [(True, 0)],
    "13.3": [(False, 9)],
    "13.4": [(False, 15)],
    "13.5": [(True, 9)],
    "13.6": [(True, 15)],
    "13.7": [(True, 9), (True, 0), (False, 0)],
}


def json_text(size):
    unit = '{"id":%d,"user":"alice","text":"message in the room","tags":["a","b"]},'
    out = "".join(unit % i for i in range(size // 40 + 2))
    return out[:size]


class EchoCase(WebSocketClientProtocol):
    def onConnect(self, response):
        # Autobahn writes a frame's header and payload separately; without TCP_NODELAY each echo
        # waits ~40 ms for a delayed ACK (Nagle), which is the client's doing, not the server's.
        self.transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.factory.answer = response.headers.get("sec-websocket-extensions", "")

    def onOpen(self):
        if self._perMessageCompress is None:
            self.factory.finish("extension not negotiated (answer %r)" % self.factory.answer)
            return
        self.autoFragmentSize = self.factory.fragment
        self.sent = 0
        self.send_next()

    def send_next(self):
        self.sent += 1
        self.sendMessage(self.factory.payload.encode(), isBinary=False)

    def onMessage(self, payload, is_binary):
        if is_binary or payload != self.factory.payload.encode():
            self.factory.finish("echo %d differs (%d bytes)" % (self.sent, len(payload)))
            self.sendClose(1000)
            return
        if self.sent < COUNT:
            self.send_next()
        else:
            self.factory.finish(None)
            self.sendClose(1000)

    def onClose(self, was_clean, code, reason):
        self.factory.finish("closed early: %s %s" % (code, reason))
        self.factory.closed(was_clean, code)


async def run_case(port, offers, size, fragment):
    factory = WebSocketClientFactory("ws://127.0.0.1:%d/echo" % port)
    factory.protocol = EchoCase
    factory.setProtocolOptions(
        perMessageCompressionOffers=[PerMessageDeflateOffer(request_no_context_takeover=nct,
                                                            request_max_window_bits=bits) for nct, bits in offers],
        perMessageCompressionAccept=lambda r: PerMessageDeflateResponseAccept(r)
        if isinstance(r, PerMessageDeflateResponse) else None)
    done = asyncio.get_running_loop().create_future()
    closed = asyncio.get_running_loop().create_future()
    factory.payload = json_text(size)
    factory.fragment = fragment
    factory.answer = ""
    factory.finish = lambda error: done.done() or done.set_result(error)
    factory.closed = lambda clean, code: closed.done() or closed.set_result((clean, code))
    transport, _ = await asyncio.get_running_loop().create_connection(factory, "127.0.0.1", port)
    try:
        error = await asyncio.wait_for(done, 20)
        if error is not None:
            return error
        # The closing handshake too (RFC 6455 7.1.2), as the testsuite checks: closing the
        # transport before it ended made Autobahn log a closing-handshake timeout of its own
        # doing, now and then, ahead of the result line.
        clean, code = await asyncio.wait_for(closed, 5)
        return None if clean and code == 1000 else "closing handshake: clean %s, code %s" % (clean, code)
    finally:
        transport.close()


async def main(port):
    cases = 0
    for name, offers in OFFERS.items():
        for size, fragment in SIZES:
            error = await run_case(port, offers, size, fragment)
            if error is not None:
                return "FAIL %s size %d fragment %d: %s" % (name, size, fragment, error)
            cases += 1
    return "OK %d cases (%d offers x %d sizes), %d echoes each" % (cases, len(OFFERS), len(SIZES), COUNT)


if __name__ == "__main__":
    try:
        result = asyncio.run(asyncio.wait_for(main(int(sys.argv[1])), 120))
    except Exception as error:  # noqa: BLE001 - any failure is reported as one line
        result = "FAIL %s: %s" % (type(error).__name__, error)
    print(result)
    sys.exit(0 if result.startswith("OK") else 1)

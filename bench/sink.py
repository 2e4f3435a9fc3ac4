"""A lean asyncio SMTP sink: answers 250 to everything, counts messages, stores nothing.

Not aiosmtpd: that tops out near 700 messages/s and would measure itself. This one parses only what it must
(line commands, and the end-of-data marker) so the sender is what gets measured.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import socket

END = b"\r\n.\r\n"


class SinkProtocol(asyncio.Protocol):
    def __init__(self, counter):
        self.counter = counter
        self.buffer = bytearray()
        self.in_data = False
        self.scan = 0  # how far the current message was already searched for END

    def connection_made(self, transport):
        self.transport = transport
        transport.write(b"220 sink ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        replies = []
        while buffer:
            if self.in_data:
                end = buffer.find(END, self.scan)
                if end < 0:
                    self.scan = max(0, len(buffer) - len(END))
                    break
                del buffer[: end + len(END)]
                self.scan = 0
                self.in_data = False
                self.counter.value += 1
                replies.append(b"250 2.0.0 queued\r\n")
                continue
            end = buffer.find(b"\r\n")
            if end < 0:
                break
            verb = bytes(buffer[:4]).upper()
            del buffer[: end + 2]
            if verb in (b"EHLO", b"HELO"):
                replies.append(b"250-sink\r\n250-8BITMIME\r\n250-PIPELINING\r\n250 SIZE 52428800\r\n")
            elif verb == b"DATA":
                self.in_data = True
                replies.append(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                replies.append(b"221 bye\r\n")
                self.transport.write(b"".join(replies))
                self.transport.close()
                return
            else:
                replies.append(b"250 OK\r\n")
        if replies:
            self.transport.write(b"".join(replies))


def _serve(sock: socket.socket, counter) -> None:
    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SinkProtocol(counter), sock=sock)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


class Sink:
    """The sink in its own process; `count` is read from shared memory."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.counter = multiprocessing.RawValue("Q", 0)
        self.process = multiprocessing.Process(target=_serve, args=(self.sock, self.counter), daemon=True)
        self.process.start()

    @property
    def count(self) -> int:
        return self.counter.value

    def reset(self) -> None:
        self.counter.value = 0

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(5)
        self.sock.close()

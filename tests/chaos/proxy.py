"""A small TCP proxy for fault injection: forward, delay, black-hole or cut connections.

    proxy = FaultProxy(target_port=8086).start()   # listens on proxy.port, in its own thread
    proxy.delay(0.2)       # every chunk waits 200 ms before it is forwarded, both ways
    proxy.blackhole()      # accept and read, forward nothing (a dead route: clients hang)
    proxy.reset()          # cut every open connection with a TCP RST (SO_LINGER 0)
    proxy.refuse(True)     # new connections are accepted and reset at once
    proxy.heal()           # forward again; black-holed connections are cut, clients reconnect
    proxy.stop()

A black-holed connection has lost bytes in both directions, so it can never carry on: `heal`
resets it, as a router coming back would leave the peers to find out by themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import threading
from dataclasses import dataclass, field

log = logging.getLogger(__name__)
_CHUNK = 64 << 10


@dataclass(eq=False)
class _Link:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class FaultProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.connections = 0
        self.resets = 0
        self._delay = 0.0
        self._blackhole = False
        self._refuse = False
        self._links: set[_Link] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._server: asyncio.Server | None = None

    # -- life cycle ----------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    # -- faults (thread-safe) ------------------------------------------------------------------

    def delay(self, seconds: float) -> None:
        self._delay = seconds

    def blackhole(self) -> None:
        self._blackhole = True

    def refuse(self, on: bool = True) -> None:
        self._refuse = on

    def reset(self) -> None:
        """Cut every open connection, both sides, with a TCP RST."""
        self._call(self._reset_all())

    def heal(self) -> None:
        was_blackhole = self._blackhole
        self._blackhole = False
        self._refuse = False
        self._delay = 0.0
        if was_blackhole:
            self.reset()

    # -- inside the proxy's loop -----------------------------------------------------------------

    def _call(self, coroutine) -> object:  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._reset_all()

    async def _reset_all(self) -> None:
        links = list(self._links)
        for link in links:
            _abort(link.client)
            if link.upstream is not None:
                _abort(link.upstream)
            for task in link.tasks:
                task.cancel()
        self.resets += len(links)
        self._links.clear()
        await asyncio.sleep(0)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self._refuse:
            _abort(writer)
            return
        link = _Link(writer)
        self._links.add(link)
        try:
            if self._blackhole:  # a dead route: swallow what the client sends until healed
                await self._swallow(reader)
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.target)
            except OSError:
                _abort(writer)
                return
            link.upstream = up_writer
            link.tasks = [
                asyncio.create_task(self._pipe(reader, up_writer)),
                asyncio.create_task(self._pipe(up_reader, writer)),
            ]
            await asyncio.gather(*link.tasks, return_exceptions=True)
        finally:
            self._links.discard(link)
            for stream in (writer, link.upstream):
                if stream is not None:
                    with contextlib.suppress(Exception):
                        stream.close()

    async def _swallow(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while await reader.read(_CHUNK):
                pass

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(_CHUNK)
                if not data:
                    break
                if self._delay:
                    await asyncio.sleep(self._delay)
                while self._blackhole:  # the route died mid-stream: what was read is gone
                    data = b""
                    if not await reader.read(_CHUNK):
                        return
                if data:
                    writer.write(data)
                    await writer.drain()
            with contextlib.suppress(OSError):
                if writer.can_write_eof():
                    writer.write_eof()
        except (OSError, ConnectionError):
            pass


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with RST instead of FIN: the peer sees 'connection reset', as after a cable cut."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport = writer.transport
    with contextlib.suppress(Exception):
        transport.abort()

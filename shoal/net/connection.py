"""asyncio glue: one `Connection` per TCP stream, framed by `shoal.wire.frame`.

It is a `BufferedProtocol`, so the frame decoder chooses where received bytes land
(object payloads go straight into their final buffer). Requests are multiplexed by
`tid`; `request()` awaits the matching reply, `send()` is fire-and-forget, and
unsolicited frames go to the handler given at construction.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from shoal.errors import ProtocolError, Shutdown
from shoal.wire.frame import Frame, FrameDecoder, Opener, Sealer, encode_frame
from shoal.wire.messages import Msg

log = logging.getLogger("shoal.net")

Handler = Callable[["Connection", Frame], Awaitable[None] | None]

# Replies are the request type + 1 for every request/reply pair in Msg.
_HIGH_WATER = 8 << 20


class Connection(asyncio.BufferedProtocol):
    def __init__(self, handler: Handler | None = None, name: str = "") -> None:
        self.handler = handler
        self.name = name
        self.peer: str = ""
        self.transport: asyncio.Transport | None = None
        self.decoder = FrameDecoder()
        self._tids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Frame]] = {}
        self._closed = asyncio.get_running_loop().create_future()
        self._can_write = asyncio.Event()
        self._can_write.set()
        self.info: dict[str, Any] = {}  # what the handshake established (entity, caps…)
        self._tasks: set[asyncio.Task[None]] = set()
        # Frames queued in one loop iteration leave in one writelines() (one syscall).
        self._out: list[bytes | bytearray | memoryview] = []
        self._loop = asyncio.get_running_loop()
        self.sealer: Sealer | None = None

    # -- protocol callbacks ---------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's are not asyncio.Transport subclasses
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        transport.set_write_buffer_limits(high=_HIGH_WATER)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.decoder.get_buffer()

    def install_session(self, sealer: Sealer, opener: Opener) -> None:
        """From now on every frame is sealed both ways (after the auth handshake)."""
        self.sealer = sealer
        self.decoder.opener = opener
        self.buffer_updated(0)  # sealed frames that arrived early were waiting for the opener

    def buffer_updated(self, nbytes: int) -> None:
        try:
            frames = self.decoder.buffer_updated(nbytes)
        except ProtocolError as exc:
            log.warning("event=bad_frame peer=%s conn=%s reason=%s", self.peer, self.name, exc)
            self.abort()
            return
        for frame in frames:
            self._dispatch(frame)

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    def connection_lost(self, exc: Exception | None) -> None:
        err = Shutdown(f"connection to {self.peer or self.name} closed")
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(err)
        self._waiting.clear()
        if not self._closed.done():
            self._closed.set_result(None)
        self._can_write.set()

    # -- dispatch -------------------------------------------------------------------
    def _dispatch(self, frame: Frame) -> None:
        tid = frame.meta.get("rtid")
        if tid is not None:
            fut = self._waiting.pop(tid, None)
            if fut is not None and not fut.done():
                fut.set_result(frame)
            return
        if self.handler is None or self.closing:
            return
        result = self.handler(self, frame)
        if asyncio.iscoroutine(result):
            task = asyncio.ensure_future(self._guarded(result))
            self._tasks.add(task)
            task.add_done_callback(self._task_done)

    async def _guarded(self, handler: Any) -> None:
        """Run a frame's handler unless an earlier frame's handler closed the connection:
        requests queued behind a refused one must not execute."""
        if self.closing:
            handler.close()
            return
        await handler

    @property
    def closing(self) -> bool:
        return self.transport is None or self.transport.is_closing()

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("event=handler_failed peer=%s conn=%s error=%r", self.peer, self.name, exc,
                      exc_info=exc)

    # -- sending --------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed.done()

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)

    def send(self, type_: int, meta: dict[str, Any], data: bytes | bytearray | memoryview = b"") -> None:
        if self.transport is None or self.transport.is_closing():
            raise Shutdown(f"connection to {self.peer or self.name} closed")
        if not self._out:
            self._loop.call_soon(self._flush)
        self._out.extend(encode_frame(type_, meta, data, sealer=self.sealer))

    def _flush(self) -> None:
        out, self._out = self._out, []
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.writelines(out)

    def reply(self, request: Frame, type_: int, meta: dict[str, Any],
              data: bytes | bytearray | memoryview = b"") -> None:
        meta["rtid"] = request.meta.get("tid")
        try:
            self.send(type_, meta, data)
        except Shutdown:
            log.debug("event=reply_dropped peer=%s reason=closed", self.peer)

    def refuse(self, request: Frame, err: int, msg: str) -> None:
        """Answer `request` with an ERROR (negative errno) and close the connection."""
        self.reply(request, Msg.ERROR, {"err": err, "msg": msg})
        self.close()

    async def request(self, type_: int, meta: dict[str, Any], data: bytes | bytearray | memoryview = b"",
                      timeout: float | None = None) -> Frame:
        fut = self.start_request(type_, meta, data)
        tid = meta["tid"]
        try:
            if not self._can_write.is_set():
                await self._can_write.wait()
            if timeout:
                return await asyncio.wait_for(fut, timeout)
            return await fut
        finally:
            self._waiting.pop(tid, None)

    def start_request(self, type_: int, meta: dict[str, Any],
                      data: bytes | bytearray | memoryview = b"") -> asyncio.Future[Frame]:
        """Send a request now; the returned future gets its reply (or Shutdown on close).
        Cancelling the future forgets the request."""
        tid = next(self._tids)
        meta["tid"] = tid
        fut: asyncio.Future[Frame] = self._loop.create_future()
        self.send(type_, meta, data)
        self._waiting[tid] = fut
        fut.add_done_callback(lambda f: self._waiting.pop(tid, None) if f.cancelled() else None)
        return fut

    def close(self) -> None:
        """Close after sending what is queued (a refusal must reach the peer before the close)."""
        self._flush()
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


async def connect(host: str, port: int, handler: Handler | None = None, name: str = "",
                  timeout: float = 5.0) -> Connection:
    loop = asyncio.get_running_loop()
    _, conn = await asyncio.wait_for(
        loop.create_connection(lambda: Connection(handler, name), host, port), timeout)
    return conn


async def serve(host: str, port: int, handler: Handler, name: str = "") -> asyncio.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: Connection(handler, name), host, port,
                                    reuse_address=True, backlog=1024)


def split_addr(addr: str) -> tuple[str, int]:
    """'127.0.0.1:6789', '[::1]:6789', 'v2:127.0.0.1:3300/0' -> (host, port)."""
    addr = addr.strip()
    if addr.startswith(("v1:", "v2:")):
        addr = addr[3:]
    addr = addr.split("/", 1)[0]
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


def parse_mon_hosts(text: str) -> list[str]:
    """`mon_host` forms: 'a:1,b:2', 'a b', '[v2:h:3300/0,v1:h:6789/0]', bare host (port 6789)."""
    out: list[str] = []
    for group in text.replace(";", ",").replace(" ", ",").split(","):
        item = group.strip().strip("[]")
        if not item:
            continue
        if item.startswith("v2:"):
            continue  # Ceph's msgr2 address: we serve the v1-style address of the same monitor
        if item.startswith("v1:"):
            item = item[3:]
        item = item.split("/", 1)[0]
        if ":" not in item.rsplit("]", 1)[-1]:
            item = f"{item}:6789"
        out.append(item)
    return out

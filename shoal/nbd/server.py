"""The asyncio driver: sockets in, the sans-IO core in the middle, an export registry behind.

One task per connection reads the handshake, then requests; each request runs in its own
task (bounded by a byte budget, so a client can't make the server hold more than
`IN_FLIGHT_BYTES` of payloads), and replies go out whole, one at a time, in completion
order (NBD matches replies by handle). A failing request gets an NBD error; a broken
stream closes that connection; nothing a client sends can stop the server.

With TLS-PSK configured, NBD_OPT_STARTTLS swaps the connection's reader and writer for a
`TlsStream` (shoal/nbd/tls.py) over the same socket, and negotiation and transmission
go on through it unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import stat
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from shoal.errors import ShoalError
from shoal.nbd import constants as C
from shoal.nbd import transmission as T
from shoal.nbd.backend import Backend, ExportError, Registry
from shoal.nbd.handshake import (
    Closed,
    ExportInfo,
    ExportQuery,
    ListQuery,
    ProtocolViolation,
    Ready,
    ServerHandshake,
    StartTls,
)
from shoal.nbd.tls import PskServerContext, TlsError, TlsStream

log = logging.getLogger("shoal.nbd")

DEFAULT_PORT = 10809
IN_FLIGHT_BYTES = 128 << 20
HANDSHAKE_TIMEOUT = 60.0


def transmission_flags(backend: Backend) -> int:
    flags = C.TF_HAS_FLAGS | C.TF_SEND_FLUSH | C.TF_SEND_DF | C.TF_CAN_MULTI_CONN
    if backend.read_only:
        return flags | C.TF_READ_ONLY
    return flags | C.TF_SEND_FUA | C.TF_SEND_TRIM | C.TF_SEND_WRITE_ZEROES


class ByteBudget:
    """Admits requests while the payload bytes in flight stay under a bound."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._cond = asyncio.Condition()

    async def acquire(self, n: int) -> int:
        n = min(n, self.limit)  # one request bigger than the budget runs alone
        async with self._cond:
            await self._cond.wait_for(lambda: self.used + n <= self.limit)
            self.used += n
        return n

    async def release(self, n: int) -> None:
        async with self._cond:
            self.used -= n
            self._cond.notify_all()


class ByteReader(Protocol):
    """What a connection reads through: a StreamReader, or a TlsStream after STARTTLS."""

    async def readexactly(self, n: int) -> bytes: ...


class ByteWriter(Protocol):
    def writelines(self, buffers: list[bytes | memoryview]) -> None: ...
    async def drain(self) -> None: ...
    def close(self) -> None: ...
    async def wait_closed(self) -> None: ...
    def get_extra_info(self, name: str, default: Any = None) -> Any: ...


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, registry: Registry,
                 tls: PskServerContext | None = None) -> None:
        self.reader: ByteReader = reader
        self.writer: ByteWriter = writer
        self._raw = (reader, writer)
        self.registry = registry
        self.tls = tls
        self.peer = str(writer.get_extra_info("peername") or "unix")
        self._send_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._budget = ByteBudget(IN_FLIGHT_BYTES)
        self._trailing = b""

    async def run(self) -> None:
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                negotiated = await self._handshake()
            if negotiated is not None:
                await self._transmission(*negotiated)
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            pass  # the client went away (or never finished negotiating)
        except ProtocolViolation as exc:
            log.info("event=nbd_protocol_error peer=%s reason=%r", self.peer, str(exc))
        finally:
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()

    async def _send(self, buffers: list[bytes | memoryview]) -> None:
        async with self._send_lock:
            self.writer.writelines(buffers)
            await self.writer.drain()

    # -- handshake ----------------------------------------------------------------------------
    async def _handshake(self) -> tuple[Ready, Backend] | None:
        hs = ServerHandshake(tls_offered=self.tls is not None,
                             tls_required=self.tls is not None and self.tls.config.required)
        chosen: dict[str, Backend] = {}
        while True:
            out = hs.data_to_send()
            if out:
                await self._send([out])
            ev = hs.next_event()
            if ev is None:
                hs.feed(await self.reader.readexactly(max(1, hs.needed())))
            elif isinstance(ev, ExportQuery):
                try:
                    backend = await self.registry.lookup(ev.name)
                except ExportError as exc:
                    log.info("event=nbd_export_refused peer=%s export=%r reason=%r", self.peer, ev.name, exc.message)
                    hs.refuse(exc.reply_type, exc.message)
                    continue
                chosen[ev.name] = backend
                hs.answer_export(ExportInfo(backend.size, transmission_flags(backend)))
            elif isinstance(ev, ListQuery):
                hs.answer_list(await self.registry.names())
            elif isinstance(ev, StartTls):
                if not await self._start_tls():
                    return None
                hs.tls_started()
            elif isinstance(ev, Ready):
                out = hs.data_to_send()
                if out:
                    await self._send([out])
                self._trailing = hs.trailing()
                log.info("event=nbd_connect peer=%s export=%r structured=%s tls=%s",
                         self.peer, ev.name, ev.structured, hs.tls)
                return ev, chosen[ev.name]
            elif isinstance(ev, Closed):
                log.info("event=nbd_handshake_closed peer=%s reason=%r", self.peer, ev.reason)
                return None

    async def _start_tls(self) -> bool:
        """Run the TLS handshake over the socket (the ACK to STARTTLS is already sent)."""
        assert self.tls is not None
        stream = TlsStream(self.tls, *self._raw)
        try:
            await stream.handshake()
        except TlsError as exc:
            # A wrong key or an unknown user: the handshake fails, this connection closes,
            # the server goes on. The identity is what the client claimed; no key is logged.
            # OpenSSL words an unknown identity as a certificate problem (it falls back to
            # certificates, and we have none), so say what it means.
            reason = str(exc)
            if stream.identity and stream.identity not in self.tls.config.keys:
                reason = f"unknown PSK username ({reason})"
            log.warning("event=nbd_tls_failed peer=%s user=%r reason=%r", self.peer, stream.identity, reason)
            return False
        self.reader = self.writer = stream
        log.info("event=nbd_tls peer=%s user=%r version=%s cipher=%s",
                 self.peer, stream.identity, stream.version, stream.cipher)
        return True

    # -- transmission -------------------------------------------------------------------------
    async def _transmission(self, ready: Ready, backend: Backend) -> None:
        state = T.ExportState(ready.info.size, backend.read_only, ready.structured,
                              frozenset(ready.meta_contexts))
        rr = T.RequestReader(state)
        pending = rr.feed(self._trailing) if self._trailing else []
        while True:
            if pending:
                ev: T.Event | None = pending.pop(0)
            else:
                ev = rr.feed_exact(await self.reader.readexactly(rr.needed()))
            if ev is None:
                continue
            if isinstance(ev, T.Disconnect):
                return
            if isinstance(ev, T.Rejected):
                log.debug("event=nbd_rejected peer=%s reason=%r", self.peer, ev.message)
                await self._send(T.error_reply(ev.request, ev.error, ev.message, state.structured))
                continue
            cost = await self._budget.acquire(max(ev.request.length, len(ev.payload))
                                              if ev.request.type in (C.CMD_READ, C.CMD_WRITE) else 0)
            task = asyncio.create_task(self._execute(ev, backend, ready, cost))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _execute(self, cmd: T.Command, backend: Backend, ready: Ready, cost: int) -> None:
        req = cmd.request
        structured = ready.structured
        try:
            reply = await self._perform(cmd, backend, ready)
        except ShoalError as exc:
            log.warning("event=nbd_io_error export=%r op=%s off=%d len=%d errno=%d reason=%r",
                        backend.name, req.name, req.offset, req.length, exc.errno, str(exc))
            reply = T.error_reply(req, C.nbd_error(exc.errno), str(exc), structured)
        except Exception as exc:  # a bug must cost one request, not the connection or the server
            log.exception("event=nbd_internal_error export=%r op=%s", backend.name, req.name)
            reply = T.error_reply(req, C.NBD_EIO, f"internal error: {exc}", structured)
        finally:
            await self._budget.release(cost)
        with contextlib.suppress(ConnectionError):
            await self._send(reply)

    async def _perform(self, cmd: T.Command, backend: Backend, ready: Ready) -> list[bytes | memoryview]:
        req = cmd.request
        structured = ready.structured
        fua = bool(req.flags & C.CMD_FLAG_FUA)
        if req.type == C.CMD_READ:
            data = await backend.read(req.offset, req.length) if req.length else b""
            return T.read_reply(req, memoryview(data), structured)
        if req.type == C.CMD_WRITE:
            if cmd.payload:
                await backend.write(req.offset, cmd.payload)
        elif req.type == C.CMD_TRIM:
            if req.length:
                await backend.trim(req.offset, req.length)
        elif req.type == C.CMD_WRITE_ZEROES:
            if req.length:
                await backend.write_zeroes(req.offset, req.length, bool(req.flags & C.CMD_FLAG_NO_HOLE))
        elif req.type == C.CMD_FLUSH:
            await backend.flush()
        elif req.type == C.CMD_BLOCK_STATUS:
            extents = await backend.block_status(req.offset, req.length)
            extents = T.merge_extents(extents, req.length, bool(req.flags & C.CMD_FLAG_REQ_ONE))
            context_id = min(ready.meta_contexts)
            return T.block_status_reply(req, context_id, extents)
        if fua:
            await backend.flush()
        return T.ok_reply(req, structured)


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def connection_handler(registry: Registry, tls: PskServerContext | None = None) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await Connection(reader, writer, registry, tls).run()

    return handle


async def start_unix(registry: Registry, path: str, tls: PskServerContext | None = None) -> asyncio.AbstractServer:
    """Listen on a Unix socket (mode 0600: only this user may reach the images through it)."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            if _answers(path):
                raise OSError(errno.EADDRINUSE, f"another server is listening on {path}")
            os.unlink(path)  # a stale socket of a server that is gone
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    old = os.umask(0o177)
    try:
        return await asyncio.start_unix_server(connection_handler(registry, tls), path, limit=1 << 20)
    finally:
        os.umask(old)


def _answers(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except OSError:
            return False
    return True


async def start_tcp(registry: Registry, host: str, port: int,
                    tls: PskServerContext | None = None) -> asyncio.AbstractServer:
    return await asyncio.start_server(connection_handler(registry, tls), host, port, limit=1 << 20)

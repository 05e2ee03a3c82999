"""The transmission phase, sans-IO: request framing, validation, reply encoding.

`RequestReader` is fed exactly `needed()` bytes at a time (or any amount, in tests) and
yields `Command`s (validated, with the WRITE payload), `Rejected` requests (answered with
an error, nothing done: out-of-range, read-only, unknown flags) and `Disconnect`. Broken
framing (a bad magic, a WRITE too big to read past) raises `ProtocolViolation`: the
connection must then close. A rejected WRITE's payload is still consumed, so the stream
stays in step.

The reply encoders return lists of buffers, so that READ data goes out without a copy.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from shoal.nbd import constants as C
from shoal.nbd.handshake import ProtocolViolation

REQUEST = struct.Struct(">IHHQQI")
SIMPLE_REPLY = struct.Struct(">IIQ")
CHUNK = struct.Struct(">IHHQI")

_KNOWN_FLAGS = (C.CMD_FLAG_FUA | C.CMD_FLAG_NO_HOLE | C.CMD_FLAG_DF | C.CMD_FLAG_REQ_ONE)
# Which command flags each command accepts (FAST_ZERO is not advertised, so never valid).
_ALLOWED_FLAGS = {
    C.CMD_READ: C.CMD_FLAG_DF,
    C.CMD_WRITE: C.CMD_FLAG_FUA,
    C.CMD_DISC: 0,
    C.CMD_FLUSH: 0,
    C.CMD_TRIM: C.CMD_FLAG_FUA,
    C.CMD_WRITE_ZEROES: C.CMD_FLAG_FUA | C.CMD_FLAG_NO_HOLE,
    C.CMD_BLOCK_STATUS: C.CMD_FLAG_REQ_ONE,
}
_MODIFYING = (C.CMD_WRITE, C.CMD_TRIM, C.CMD_WRITE_ZEROES)


@dataclass(frozen=True)
class Request:
    flags: int
    type: int
    handle: int
    offset: int
    length: int

    @property
    def name(self) -> str:
        return C.CMD_NAMES.get(self.type, f"command {self.type}")


@dataclass(frozen=True)
class Command:
    request: Request
    payload: bytes = b""  # WRITE data


@dataclass(frozen=True)
class Rejected:
    request: Request
    error: int  # NBD error value
    message: str


@dataclass(frozen=True)
class Disconnect:
    pass


Event = Command | Rejected | Disconnect


@dataclass(frozen=True)
class ExportState:
    """What validation needs to know about the export and the negotiation."""

    size: int
    read_only: bool
    structured: bool
    meta_contexts: frozenset[int] = frozenset()


def validate(req: Request, export: ExportState) -> Rejected | None:
    """Why `req` must be refused (nothing is done then), or None."""
    def no(error: int, message: str) -> Rejected:
        return Rejected(req, error, f"{req.name}: {message}")

    allowed = _ALLOWED_FLAGS.get(req.type)
    if allowed is None:
        return no(C.NBD_EINVAL, "unsupported command")
    if req.flags & ~allowed:
        return no(C.NBD_EINVAL, f"invalid flags {req.flags:#x}")
    if req.type in (C.CMD_FLUSH, C.CMD_DISC):
        if req.offset or req.length:
            return no(C.NBD_EINVAL, "offset and length must be 0")
        return None
    if req.type == C.CMD_BLOCK_STATUS:
        if not export.structured or not export.meta_contexts:
            return no(C.NBD_EINVAL, "no metadata context was negotiated")
        if req.length == 0:
            return no(C.NBD_EINVAL, "length must not be 0")
    if req.offset + req.length > export.size:
        return no(C.NBD_EINVAL, f"range {req.offset}+{req.length} is beyond the export size {export.size}")
    if req.type in (C.CMD_READ, C.CMD_WRITE) and req.length > C.MAX_PAYLOAD:
        return no(C.NBD_EOVERFLOW if export.structured else C.NBD_EINVAL,
                  f"length {req.length} exceeds the maximum {C.MAX_PAYLOAD}")
    if req.type in _MODIFYING and export.read_only:
        return no(C.NBD_EPERM, "the export is read-only")
    return None


class RequestReader:
    """Splits the client's byte stream into requests (with their payloads)."""

    def __init__(self, export: ExportState) -> None:
        self.export = export
        self._buf = bytearray()
        self._header: Request | None = None  # a WRITE whose payload is being read
        self._closed = False

    def _unit(self) -> int:
        return REQUEST.size if self._header is None else self._header.length

    def needed(self) -> int:
        """Bytes still missing for the next event (a header, or the pending WRITE payload)."""
        return self._unit() - len(self._buf)

    def feed_exact(self, data: bytes) -> Event | None:
        """Fast path for the driver: exactly `needed()` bytes, no buffering copy for payloads."""
        if not self._buf and len(data) == self.needed():
            return self._complete(data)
        return self.feed(data)[0] if data else None

    def feed(self, data: bytes) -> list[Event]:
        """Any amount of bytes; every event they complete."""
        events: list[Event] = []
        self._buf += data
        while not self._closed:
            need = self._unit()
            if len(self._buf) < need:
                break
            unit = bytes(self._buf[:need])
            del self._buf[:need]
            ev = self._complete(unit)
            if ev is not None:
                events.append(ev)
        return events

    def _complete(self, unit: bytes) -> Event | None:
        if self._closed:
            raise ProtocolViolation("request after NBD_CMD_DISC")
        if self._header is not None:
            req, self._header = self._header, None
            return self._check(req, unit)
        magic, flags, cmd, handle, offset, length = REQUEST.unpack(unit)
        if magic != C.REQUEST_MAGIC:
            raise ProtocolViolation(f"bad request magic {magic:#x}")
        req = Request(flags, cmd, handle, offset, length)
        if cmd == C.CMD_DISC:
            self._closed = True
            return Disconnect()
        if cmd == C.CMD_WRITE and length:
            if length > C.MAX_PAYLOAD:
                # The payload can't be skipped safely at any size: refuse to go on.
                raise ProtocolViolation(f"write of {length} bytes exceeds the maximum {C.MAX_PAYLOAD}")
            self._header = req
            return None
        return self._check(req, b"")

    def _check(self, req: Request, payload: bytes) -> Event:
        rejected = validate(req, self.export)
        return rejected if rejected is not None else Command(req, payload)


# -- replies ----------------------------------------------------------------------------------
Buffers = list[bytes | memoryview]


def simple_reply(handle: int, error: int = 0, data: bytes | memoryview = b"") -> Buffers:
    head = SIMPLE_REPLY.pack(C.SIMPLE_REPLY_MAGIC, error, handle)
    return [head, data] if data else [head]


def chunk(handle: int, kind: int, payload_len: int, done: bool = True) -> bytes:
    return CHUNK.pack(C.STRUCTURED_REPLY_MAGIC, C.REPLY_FLAG_DONE if done else 0, kind, handle, payload_len)


def error_reply(req: Request, error: int, message: str, structured: bool) -> Buffers:
    """An error for `req`: an ERROR chunk when structured replies are on, else a simple reply."""
    if not structured:
        return simple_reply(req.handle, error)
    msg = message.encode()[:4096]
    return [chunk(req.handle, C.REPLY_TYPE_ERROR, 6 + len(msg)), struct.pack(">IH", error, len(msg)), msg]


def ok_reply(req: Request, structured: bool) -> Buffers:
    if structured:
        return [chunk(req.handle, C.REPLY_TYPE_NONE, 0)]
    return simple_reply(req.handle)


def read_reply(req: Request, data: bytes | memoryview, structured: bool) -> Buffers:
    if not structured:
        return simple_reply(req.handle, 0, data)
    if not data:
        return [chunk(req.handle, C.REPLY_TYPE_NONE, 0)]
    return [chunk(req.handle, C.REPLY_TYPE_OFFSET_DATA, 8 + len(data)), struct.pack(">Q", req.offset), data]


def block_status_reply(req: Request, context_id: int, extents: list[tuple[int, int]]) -> Buffers:
    """One BLOCK_STATUS chunk: (length, flags) extents covering the start of the range."""
    body = struct.pack(">I", context_id) + b"".join(struct.pack(">II", n, f) for n, f in extents)
    return [chunk(req.handle, C.REPLY_TYPE_BLOCK_STATUS, len(body)), body]


def merge_extents(extents: list[tuple[int, int]], limit: int, one: bool) -> list[tuple[int, int]]:
    """Merge neighbours with the same flags, clip to `limit` bytes in all (each extent fits
    in u32), and keep only the first with REQ_ONE."""
    out: list[tuple[int, int]] = []
    total = 0
    for n, f in extents:
        n = min(n, limit - total)
        if n <= 0:
            break
        total += n
        if out and out[-1][1] == f and out[-1][0] + n <= 0xFFFFFFFF:
            out[-1] = (out[-1][0] + n, f)
        else:
            out.append((n, f))
    return out[:1] if one else out

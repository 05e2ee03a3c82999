"""The fixed-newstyle handshake, sans-IO: bytes in, events and reply bytes out.

The driver sends `data_to_send()`, reads `needed()` bytes (or any amount) into `feed()`,
and takes events from `next_event()`:

* `ExportQuery` (NBD_OPT_INFO, NBD_OPT_GO, NBD_OPT_EXPORT_NAME) needs the export looked up,
  which is I/O: the driver answers with `answer_export(info)` or `refuse(reply_type, msg)`;
* `ListQuery` (NBD_OPT_LIST): the driver answers with `answer_list(names)`;
* `StartTls` (NBD_OPT_STARTTLS, ACK queued): the driver sends the ACK, runs the TLS
  handshake on the connection, then calls `tls_started()` (negotiation goes on over TLS)
  or closes;
* `Ready`: transmission starts (after GO's ACK or EXPORT_NAME's export data);
* `Closed`: send what is pending, then close (ABORT, or a client we can't talk to).

Everything else (STRUCTURED_REPLY, meta contexts, STARTTLS when TLS is not offered,
unknown options, malformed option data) is answered here. With `tls_required`, every
option but STARTTLS and ABORT gets NBD_REP_ERR_TLS_REQD until TLS is up, and
EXPORT_NAME (which has no error reply) closes, as nbdkit's --tls=require does. Malformed option *data* gets NBD_REP_ERR_INVALID, since the
framing is intact; broken framing (bad magic, oversized option, unknown client flags)
closes the connection, as the protocol allows.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from shoal.nbd import constants as C

_OPT_HEADER = struct.Struct(">QII")
_REPLY_HEADER = struct.Struct(">QIII")


@dataclass(frozen=True)
class ExportInfo:
    """What the server tells a client about an export."""

    size: int
    flags: int  # transmission flags, TF_HAS_FLAGS included
    description: str = ""


@dataclass(frozen=True)
class ExportQuery:
    option: int  # OPT_INFO, OPT_GO or OPT_EXPORT_NAME
    name: str
    info_types: tuple[int, ...] = ()


@dataclass(frozen=True)
class ListQuery:
    pass


@dataclass(frozen=True)
class StartTls:
    pass


@dataclass(frozen=True)
class Ready:
    name: str
    info: ExportInfo
    structured: bool
    meta_contexts: dict[int, str]  # context id -> name, for BLOCK_STATUS


@dataclass(frozen=True)
class Closed:
    reason: str


Event = ExportQuery | ListQuery | StartTls | Ready | Closed

# Context ids of the meta contexts we know (only base:allocation).
META_IDS = {C.META_BASE_ALLOCATION: 1}


class ProtocolViolation(Exception):
    """Raised by a parser when the framing is broken; becomes a Closed event."""


class _Reader:
    """Bounds-checked reads from one option's data."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError("option data too short")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u16(self) -> int:
        return int(struct.unpack(">H", self.take(2))[0])

    def u32(self) -> int:
        return int(struct.unpack(">I", self.take(4))[0])

    def text(self, n: int) -> str:
        if n > C.MAX_NAME_LENGTH:
            raise ValueError("string too long")
        return self.take(n).decode("utf-8")

    def end(self) -> None:
        if self.pos != len(self.data):
            raise ValueError("trailing bytes in option data")


@dataclass
class ServerHandshake:
    """One connection's negotiation, server side."""

    description: str = ""
    tls_offered: bool = False  # the driver can run a TLS handshake (the gateway has keys)
    tls_required: bool = False  # nothing but STARTTLS and ABORT before TLS is up
    tls: bool = False  # TLS is up on this connection
    _in: bytearray = field(default_factory=bytearray)
    _out: bytearray = field(default_factory=bytearray)
    _state: str = "flags"  # flags | options | answering | tls | done | closed
    _events: list[Event] = field(default_factory=list)
    _pending: ExportQuery | ListQuery | None = None
    no_zeroes: bool = False
    fixed: bool = False
    structured: bool = False
    meta_contexts: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._out += struct.pack(">QQH", C.NBDMAGIC, C.IHAVEOPT, C.FLAG_FIXED_NEWSTYLE | C.FLAG_NO_ZEROES)

    # -- driver interface -----------------------------------------------------------------
    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    @property
    def done(self) -> bool:
        return self._state in ("done", "closed")

    def trailing(self) -> bytes:
        """Bytes fed after the handshake ended (they belong to the transmission phase)."""
        out = bytes(self._in)
        self._in.clear()
        return out

    def needed(self) -> int:
        """How many more bytes complete the unit being parsed (0 while an answer is awaited)."""
        if self._state == "flags":
            return 4 - len(self._in)
        if self._state != "options":
            return 0
        if len(self._in) < _OPT_HEADER.size:
            return _OPT_HEADER.size - len(self._in)
        _, _, length = _OPT_HEADER.unpack_from(self._in)
        return max(1, _OPT_HEADER.size + min(length, C.MAX_OPTION_LENGTH + 1) - len(self._in))

    def feed(self, data: bytes) -> None:
        if self._state != "closed":
            self._in += data
            self._parse()

    def next_event(self) -> Event | None:
        return self._events.pop(0) if self._events else None

    def answer_export(self, info: ExportInfo) -> None:
        """The export of the pending ExportQuery exists and may be used."""
        query = self._pending
        assert isinstance(query, ExportQuery), "no export query to answer"
        self._pending = None
        if query.option == C.OPT_EXPORT_NAME:
            self._out += struct.pack(">QH", info.size, info.flags & 0xFFFF)
            if not self.no_zeroes:
                self._out += bytes(124)
            self._finish(Ready(query.name, info, False, {}))
            return
        self._info_reply(query.option, struct.pack(">HQH", C.INFO_EXPORT, info.size, info.flags & 0xFFFF))
        if C.INFO_NAME in query.info_types:
            self._info_reply(query.option, struct.pack(">H", C.INFO_NAME) + query.name.encode())
        if C.INFO_DESCRIPTION in query.info_types and info.description:
            self._info_reply(query.option, struct.pack(">H", C.INFO_DESCRIPTION) + info.description.encode())
        if C.INFO_BLOCK_SIZE in query.info_types:
            self._info_reply(query.option, struct.pack(">HIII", C.INFO_BLOCK_SIZE, 1, C.PREFERRED_BLOCK_SIZE,
                                                       C.MAX_PAYLOAD))
        self._reply(query.option, C.REP_ACK)
        if query.option == C.OPT_GO:
            self._finish(Ready(query.name, info, self.structured, dict(self.meta_contexts)))
        else:
            self._resume()

    def refuse(self, reply_type: int, message: str) -> None:
        """The pending query fails: an error reply (EXPORT_NAME can only close)."""
        query = self._pending
        assert query is not None, "no query to refuse"
        self._pending = None
        if isinstance(query, ExportQuery) and query.option == C.OPT_EXPORT_NAME:
            self._close(f"export {query.name!r} refused: {message}")
            return
        option = query.option if isinstance(query, ExportQuery) else C.OPT_LIST
        self._reply(option, reply_type, message.encode())
        self._resume()

    def tls_started(self) -> None:
        """The driver finished the TLS handshake that StartTls asked for."""
        assert self._state == "tls", "no STARTTLS to complete"
        self.tls = True
        self._resume()

    def answer_list(self, names: list[str]) -> None:
        assert isinstance(self._pending, ListQuery), "no list query to answer"
        self._pending = None
        for name in names:
            raw = name.encode()
            self._reply(C.OPT_LIST, C.REP_SERVER, struct.pack(">I", len(raw)) + raw)
        self._reply(C.OPT_LIST, C.REP_ACK)
        self._resume()

    # -- parsing --------------------------------------------------------------------------
    def _parse(self) -> None:
        try:
            while self._state in ("flags", "options"):
                if self._state == "flags":
                    if len(self._in) < 4:
                        return
                    (flags,) = struct.unpack_from(">I", self._in)
                    del self._in[:4]
                    if flags & ~(C.FLAG_C_FIXED_NEWSTYLE | C.FLAG_C_NO_ZEROES):
                        raise ProtocolViolation(f"unknown client flags {flags:#x}")
                    self.fixed = bool(flags & C.FLAG_C_FIXED_NEWSTYLE)
                    self.no_zeroes = bool(flags & C.FLAG_C_NO_ZEROES)
                    self._state = "options"
                    continue
                if len(self._in) < _OPT_HEADER.size:
                    return
                magic, option, length = _OPT_HEADER.unpack_from(self._in)
                if magic != C.IHAVEOPT:
                    raise ProtocolViolation(f"bad option magic {magic:#x}")
                if length > C.MAX_OPTION_LENGTH:
                    raise ProtocolViolation(f"option {option} of {length} bytes is too long")
                if len(self._in) < _OPT_HEADER.size + length:
                    return
                data = bytes(self._in[_OPT_HEADER.size:_OPT_HEADER.size + length])
                del self._in[:_OPT_HEADER.size + length]
                self._option(option, data)
        except ProtocolViolation as exc:
            self._close(str(exc))

    def _option(self, option: int, data: bytes) -> None:
        if option == C.OPT_STARTTLS:
            self._starttls(data)
        elif self.tls_required and not self.tls and option != C.OPT_ABORT:
            if option == C.OPT_EXPORT_NAME:
                self._close("NBD_OPT_EXPORT_NAME before TLS, which this server requires")
            else:
                self._error(option, C.REP_ERR_TLS_REQD, "TLS is required: send NBD_OPT_STARTTLS first")
        elif option == C.OPT_EXPORT_NAME:
            try:
                name = data.decode("utf-8")
            except UnicodeDecodeError:
                raise ProtocolViolation("export name is not UTF-8") from None
            self._ask(ExportQuery(option, name))
        elif option == C.OPT_ABORT:
            self._reply(option, C.REP_ACK)
            self._close("client aborted the handshake")
        elif option == C.OPT_LIST:
            if data:
                self._error(option, C.REP_ERR_INVALID, "NBD_OPT_LIST takes no data")
            else:
                self._ask(ListQuery())
        elif option in (C.OPT_INFO, C.OPT_GO):
            try:
                r = _Reader(data)
                name = r.text(r.u32())
                infos = tuple(r.u16() for _ in range(r.u16()))
                r.end()
            except (ValueError, UnicodeDecodeError) as exc:
                self._error(option, C.REP_ERR_INVALID, f"malformed option data: {exc}")
                return
            self._ask(ExportQuery(option, name, infos))
        elif option == C.OPT_STRUCTURED_REPLY:
            if data:
                self._error(option, C.REP_ERR_INVALID, "NBD_OPT_STRUCTURED_REPLY takes no data")
            else:
                self.structured = True
                self._reply(option, C.REP_ACK)
        elif option in (C.OPT_LIST_META_CONTEXT, C.OPT_SET_META_CONTEXT):
            self._meta_context(option, data)
        else:
            self._error(option, C.REP_ERR_UNSUP, f"option {option} is not supported")

    def _starttls(self, data: bytes) -> None:
        option = C.OPT_STARTTLS
        if not self.tls_offered:
            # No keys were given (see docs/decisions/0006-nbd-gateway.md): the client may go on in clear.
            self._error(option, C.REP_ERR_UNSUP, "TLS is not offered by this server")
        elif self.tls:
            self._error(option, C.REP_ERR_INVALID, "TLS is already in use")
        elif data:
            self._error(option, C.REP_ERR_INVALID, "NBD_OPT_STARTTLS takes no data")
        elif self._in:
            # The client must wait for our ACK before its ClientHello: bytes already here were
            # sent in clear and would otherwise be read as if they came over TLS (injection).
            raise ProtocolViolation("data after NBD_OPT_STARTTLS before its reply")
        else:
            self._reply(option, C.REP_ACK)
            # Nothing negotiated in clear carries over into the TLS session (an attacker could
            # have injected it), so the client negotiates again.
            self.structured = False
            self.meta_contexts = {}
            self._state = "tls"
            self._events.append(StartTls())

    def _meta_context(self, option: int, data: bytes) -> None:
        try:
            r = _Reader(data)
            r.text(r.u32())  # the export name: every export has the same contexts
            queries = [r.text(r.u32()) for _ in range(r.u32())]
            r.end()
        except (ValueError, UnicodeDecodeError) as exc:
            self._error(option, C.REP_ERR_INVALID, f"malformed option data: {exc}")
            return
        if option == C.OPT_SET_META_CONTEXT:
            if not self.structured:
                self._error(option, C.REP_ERR_INVALID, "structured replies must be negotiated first")
                return
            self.meta_contexts = {}
        matched = [name for name in META_IDS
                   if (not queries and option == C.OPT_LIST_META_CONTEXT)
                   or any(q == name or (q == "base:" and option == C.OPT_LIST_META_CONTEXT) for q in queries)]
        for name in matched:
            self._reply(option, C.REP_META_CONTEXT, struct.pack(">I", META_IDS[name]) + name.encode())
            if option == C.OPT_SET_META_CONTEXT:
                self.meta_contexts[META_IDS[name]] = name
        self._reply(option, C.REP_ACK)

    # -- output ---------------------------------------------------------------------------
    def _ask(self, query: ExportQuery | ListQuery) -> None:
        self._pending = query
        self._state = "answering"
        self._events.append(query)

    def _resume(self) -> None:
        self._state = "options"
        self._parse()

    def _finish(self, ready: Ready) -> None:
        self._state = "done"
        self._events.append(ready)

    def _close(self, reason: str) -> None:
        self._state = "closed"
        self._in.clear()
        self._events.append(Closed(reason))

    def _reply(self, option: int, reply_type: int, data: bytes = b"") -> None:
        self._out += _REPLY_HEADER.pack(C.OPT_REPLY_MAGIC, option, reply_type, len(data)) + data

    def _error(self, option: int, reply_type: int, message: str) -> None:
        self._reply(option, reply_type, message.encode())

    def _info_reply(self, option: int, payload: bytes) -> None:
        self._reply(option, C.REP_INFO, payload)

"""The sans-IO NBD core (handshake, request framing, replies) and the asyncio server over
the in-memory export, without a cluster: conformance cases plus hypothesis fuzzing —
whatever a client sends, the server answers with an NBD error or closes that connection,
never raises, and a refused request changes nothing."""

from __future__ import annotations

import asyncio
import os
import struct
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoal.nbd import constants as C
from shoal.nbd import transmission as T
from shoal.nbd.backend import MemoryBackend, MemoryRegistry
from shoal.nbd.handshake import (
    Closed,
    ExportInfo,
    ExportQuery,
    ListQuery,
    ProtocolViolation,
    Ready,
    ServerHandshake,
)
from shoal.nbd.server import start_unix

SIZE = 1 << 20
INFO = ExportInfo(SIZE, C.TF_HAS_FLAGS | C.TF_SEND_FLUSH)


def opt(option: int, data: bytes = b"") -> bytes:
    return struct.pack(">QII", C.IHAVEOPT, option, len(data)) + data


def go_data(name: str, infos: tuple[int, ...] = ()) -> bytes:
    raw = name.encode()
    return struct.pack(">I", len(raw)) + raw + struct.pack(">H", len(infos)) + b"".join(
        struct.pack(">H", i) for i in infos)


def meta_data(name: str, *queries: str) -> bytes:
    raw = name.encode()
    out = struct.pack(">I", len(raw)) + raw + struct.pack(">I", len(queries))
    return out + b"".join(struct.pack(">I", len(q.encode())) + q.encode() for q in queries)


def replies(data: bytes) -> list[tuple[int, int, bytes]]:
    """Parse option replies: (option, type, payload); asserts the framing is right."""
    out = []
    while data:
        magic, option, kind, length = struct.unpack_from(">QIII", data)
        assert magic == C.OPT_REPLY_MAGIC
        out.append((option, kind, data[20:20 + length]))
        assert len(data) >= 20 + length
        data = data[20 + length:]
    return out


def started(flags: int = C.FLAG_C_FIXED_NEWSTYLE | C.FLAG_C_NO_ZEROES) -> ServerHandshake:
    hs = ServerHandshake()
    greeting = hs.data_to_send()
    assert struct.unpack(">QQH", greeting) == (C.NBDMAGIC, C.IHAVEOPT, C.FLAG_FIXED_NEWSTYLE | C.FLAG_NO_ZEROES)
    hs.feed(struct.pack(">I", flags))
    return hs


# -- handshake ------------------------------------------------------------------------------
def test_go_with_structured_replies_and_base_allocation() -> None:
    hs = started()
    hs.feed(opt(C.OPT_STRUCTURED_REPLY))
    hs.feed(opt(C.OPT_SET_META_CONTEXT, meta_data("rbd/a", "base:allocation", "qemu:dirty-bitmap:x")))
    hs.feed(opt(C.OPT_GO, go_data("rbd/a", (C.INFO_BLOCK_SIZE, C.INFO_NAME))))
    got = replies(hs.data_to_send())
    assert got[0] == (C.OPT_STRUCTURED_REPLY, C.REP_ACK, b"")
    assert got[1] == (C.OPT_SET_META_CONTEXT, C.REP_META_CONTEXT, struct.pack(">I", 1) + b"base:allocation")
    assert got[2] == (C.OPT_SET_META_CONTEXT, C.REP_ACK, b"")
    ev = hs.next_event()
    assert ev == ExportQuery(C.OPT_GO, "rbd/a", (C.INFO_BLOCK_SIZE, C.INFO_NAME))
    hs.answer_export(INFO)
    got = replies(hs.data_to_send())
    assert got[0] == (C.OPT_GO, C.REP_INFO, struct.pack(">HQH", C.INFO_EXPORT, SIZE, INFO.flags))
    assert got[1] == (C.OPT_GO, C.REP_INFO, struct.pack(">H", C.INFO_NAME) + b"rbd/a")
    assert got[2] == (C.OPT_GO, C.REP_INFO, struct.pack(">HIII", C.INFO_BLOCK_SIZE, 1, 4096, C.MAX_PAYLOAD))
    assert got[3] == (C.OPT_GO, C.REP_ACK, b"")
    ready = hs.next_event()
    assert isinstance(ready, Ready) and ready.structured and ready.meta_contexts == {1: "base:allocation"}
    assert hs.done


def test_info_then_unknown_export_then_list_and_abort() -> None:
    hs = started()
    hs.feed(opt(C.OPT_INFO, go_data("rbd/a")) + opt(C.OPT_GO, go_data("rbd/missing")) + opt(C.OPT_LIST)
            + opt(C.OPT_ABORT))
    assert hs.next_event() == ExportQuery(C.OPT_INFO, "rbd/a", ())
    hs.answer_export(INFO)
    assert hs.next_event() == ExportQuery(C.OPT_GO, "rbd/missing", ())
    hs.refuse(C.REP_ERR_UNKNOWN, "no such image")
    assert isinstance(hs.next_event(), ListQuery)
    hs.answer_list(["rbd/a", "rbd/b"])
    assert isinstance(hs.next_event(), Closed)
    kinds = [(o, k) for o, k, _ in replies(hs.data_to_send())]
    assert kinds == [(C.OPT_INFO, C.REP_INFO), (C.OPT_INFO, C.REP_ACK), (C.OPT_GO, C.REP_ERR_UNKNOWN),
                     (C.OPT_LIST, C.REP_SERVER), (C.OPT_LIST, C.REP_SERVER), (C.OPT_LIST, C.REP_ACK),
                     (C.OPT_ABORT, C.REP_ACK)]


@pytest.mark.parametrize("no_zeroes", [True, False])
def test_export_name(no_zeroes: bool) -> None:
    hs = started(C.FLAG_C_FIXED_NEWSTYLE | (C.FLAG_C_NO_ZEROES if no_zeroes else 0))
    hs.feed(opt(C.OPT_EXPORT_NAME, b"rbd/a"))
    assert hs.next_event() == ExportQuery(C.OPT_EXPORT_NAME, "rbd/a", ())
    hs.answer_export(INFO)
    assert hs.data_to_send() == struct.pack(">QH", SIZE, INFO.flags) + (b"" if no_zeroes else bytes(124))
    assert isinstance(hs.next_event(), Ready)


def test_export_name_refused_closes() -> None:
    hs = started()
    hs.feed(opt(C.OPT_EXPORT_NAME, b"nope"))
    hs.next_event()
    hs.refuse(C.REP_ERR_UNKNOWN, "no")
    assert isinstance(hs.next_event(), Closed)


@pytest.mark.parametrize("option,data,reply", [
    (C.OPT_STARTTLS, b"", C.REP_ERR_UNSUP),
    (C.OPT_EXTENDED_HEADERS, b"", C.REP_ERR_UNSUP),
    (99, b"junk", C.REP_ERR_UNSUP),
    (C.OPT_GO, b"\x00\x00\x00\x09ab", C.REP_ERR_INVALID),
    (C.OPT_GO, go_data("a") + b"x", C.REP_ERR_INVALID),
    (C.OPT_LIST, b"x", C.REP_ERR_INVALID),
    (C.OPT_STRUCTURED_REPLY, b"x", C.REP_ERR_INVALID),
    (C.OPT_SET_META_CONTEXT, meta_data("a", "base:allocation"), C.REP_ERR_INVALID),  # before structured
    (C.OPT_LIST_META_CONTEXT, b"\xff", C.REP_ERR_INVALID),
])
def test_bad_options_get_errors_and_negotiation_goes_on(option: int, data: bytes, reply: int) -> None:
    hs = started()
    hs.feed(opt(option, data))
    assert [(o, k) for o, k, _ in replies(hs.data_to_send())] == [(option, reply)]
    hs.feed(opt(C.OPT_GO, go_data("a")))
    assert isinstance(hs.next_event(), ExportQuery)


@pytest.mark.parametrize("raw", [
    struct.pack(">I", 0x80),  # unknown client flags
    struct.pack(">I", 1) + struct.pack(">QII", 0x1234, C.OPT_GO, 0),  # bad magic
    struct.pack(">I", 1) + struct.pack(">QII", C.IHAVEOPT, C.OPT_GO, C.MAX_OPTION_LENGTH + 1),
    struct.pack(">I", 1) + opt(C.OPT_EXPORT_NAME, b"\xff\xfe"),
])
def test_broken_framing_closes(raw: bytes) -> None:
    hs = ServerHandshake()
    hs.feed(raw)
    assert isinstance(hs.next_event(), Closed) and hs.done


def drive(hs: ServerHandshake, data: bytes, chunks: list[int], exists: bool) -> list[object]:
    """Feed `data` in `chunks`, answering every query; return the events seen."""
    seen: list[object] = []
    pos = 0
    for n in [*chunks, len(data)]:
        hs.feed(data[pos:pos + n])
        pos += n
        while (ev := hs.next_event()) is not None:
            seen.append(ev)
            if isinstance(ev, ExportQuery):
                if exists:
                    hs.answer_export(INFO)
                else:
                    hs.refuse(C.REP_ERR_UNKNOWN, "no")
            elif isinstance(ev, ListQuery):
                hs.answer_list(["x"])
        if hs.done or pos >= len(data):
            break
    return seen


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(1, 40), max_size=20), st.booleans())
def test_fuzz_handshake_random_bytes(data: bytes, chunks: list[int], exists: bool) -> None:
    hs = ServerHandshake()
    hs.data_to_send()
    drive(hs, data, chunks, exists)
    out = hs.data_to_send()
    if hs._state != "done":  # before transmission, all output is well-formed option replies
        replies(out)


_option = st.builds(
    opt, st.sampled_from([1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 42]),
    st.one_of(st.binary(max_size=40), st.builds(go_data, st.text(max_size=10), st.lists(st.integers(0, 5)).map(tuple)),
              st.builds(meta_data, st.text(max_size=5), st.sampled_from(["base:allocation", "base:", "x"]))))


@settings(max_examples=300, deadline=None)
@given(st.lists(_option, max_size=8), st.lists(st.integers(1, 50), max_size=10), st.booleans())
def test_fuzz_handshake_option_sequences(options: list[bytes], chunks: list[int], exists: bool) -> None:
    hs = started()
    events = drive(hs, b"".join(options), chunks, exists)
    out = hs.data_to_send()
    if not any(isinstance(e, Ready) for e in events):
        replies(out)  # (after EXPORT_NAME the export data is not an option reply)
    assert all(not isinstance(e, Closed) for e in events[:-1])  # nothing after a close


# -- transmission core ------------------------------------------------------------------------
EXPORT = T.ExportState(SIZE, read_only=False, structured=True, meta_contexts=frozenset({1}))


def request(cmd: int, off: int = 0, length: int = 0, flags: int = 0, handle: int = 7) -> bytes:
    return T.REQUEST.pack(C.REQUEST_MAGIC, flags, cmd, handle, off, length)


@pytest.mark.parametrize("cmd,off,length,flags,error", [
    (C.CMD_READ, SIZE - 1, 2, 0, C.NBD_EINVAL),
    (C.CMD_WRITE, SIZE, 1, 0, C.NBD_EINVAL),
    (C.CMD_TRIM, 0, SIZE + 1, 0, C.NBD_EINVAL),
    (C.CMD_WRITE_ZEROES, 2 ** 63, 1, 0, C.NBD_EINVAL),
    (C.CMD_BLOCK_STATUS, 0, 0, 0, C.NBD_EINVAL),
    (C.CMD_READ, 0, 1, C.CMD_FLAG_FUA | C.CMD_FLAG_FAST_ZERO, C.NBD_EINVAL),
    (C.CMD_FLUSH, 1, 0, 0, C.NBD_EINVAL),
    (C.CMD_CACHE, 0, 1, 0, C.NBD_EINVAL),
    (42, 0, 1, 0, C.NBD_EINVAL),
])
def test_invalid_requests_are_rejected(cmd: int, off: int, length: int, flags: int, error: int) -> None:
    rr = T.RequestReader(EXPORT)
    events = rr.feed(request(cmd, off, length, flags) + (bytes(length) if cmd == C.CMD_WRITE else b""))
    assert len(events) == 1 and isinstance(events[0], T.Rejected) and events[0].error == error


def test_read_only_export_refuses_modifications() -> None:
    rr = T.RequestReader(T.ExportState(SIZE, True, False))
    for cmd in (C.CMD_WRITE, C.CMD_TRIM, C.CMD_WRITE_ZEROES):
        (ev,) = rr.feed(request(cmd, 0, 4) + (b"abcd" if cmd == C.CMD_WRITE else b""))
        assert isinstance(ev, T.Rejected) and ev.error == C.NBD_EPERM
    (ev,) = rr.feed(request(C.CMD_READ, 0, 4))
    assert isinstance(ev, T.Command)


def test_framing() -> None:
    rr = T.RequestReader(EXPORT)
    assert rr.needed() == 28
    assert rr.feed_exact(request(C.CMD_WRITE, 8, 3)) is None and rr.needed() == 3
    assert rr.feed_exact(b"xyz") == T.Command(T.Request(0, C.CMD_WRITE, 7, 8, 3), b"xyz")
    assert isinstance(rr.feed_exact(request(C.CMD_DISC)), T.Disconnect)
    with pytest.raises(ProtocolViolation):
        rr.feed_exact(request(C.CMD_READ, 0, 1))
    with pytest.raises(ProtocolViolation):
        T.RequestReader(EXPORT).feed(b"\x00" * 28)
    with pytest.raises(ProtocolViolation):
        T.RequestReader(EXPORT).feed(request(C.CMD_WRITE, 0, C.MAX_PAYLOAD + 1))


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_request_stream(data: bytes) -> None:
    rr = T.RequestReader(EXPORT)
    try:
        for ev in rr.feed(data):
            assert isinstance(ev, T.Command | T.Rejected | T.Disconnect)
    except ProtocolViolation:
        pass


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 10), st.integers(0, 0xFFFF), st.integers(0, 2 ** 64 - 1), st.integers(0, 2 ** 32 - 1))
def test_fuzz_validate(cmd: int, flags: int, off: int, length: int) -> None:
    rej = T.validate(T.Request(flags, cmd, 1, off, length), EXPORT)
    if rej is None:
        assert off + length <= SIZE or cmd in (C.CMD_FLUSH, C.CMD_DISC)
    elif off + length > SIZE and cmd not in (C.CMD_FLUSH, C.CMD_DISC):
        assert rej.error == C.NBD_EINVAL


def test_merge_extents() -> None:
    assert T.merge_extents([(4, 0), (4, 0), (8, 3), (8, 3), (2, 0)], 20, False) == [(8, 0), (12, 3)]
    assert T.merge_extents([(4, 0), (4, 3)], 100, True) == [(4, 0)]


# -- the server over the in-memory export -------------------------------------------------------
class RawClient:
    """A minimal NBD client speaking to the server under test."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.r, self.w = reader, writer

    @classmethod
    async def connect(cls, path: str, name: str = "disk") -> RawClient:
        r, w = await asyncio.open_unix_connection(path)
        c = cls(r, w)
        await r.readexactly(18)
        w.write(struct.pack(">I", 3) + opt(C.OPT_STRUCTURED_REPLY)
                + opt(C.OPT_SET_META_CONTEXT, meta_data(name, "base:allocation")) + opt(C.OPT_GO, go_data(name)))
        while True:
            _, option, kind, length = struct.unpack(">QIII", await r.readexactly(20))
            await r.readexactly(length)
            if option == C.OPT_GO and kind == C.REP_ACK:
                return c

    async def call(self, cmd: int, off: int, length: int, data: bytes = b"", flags: int = 0) -> tuple[int, bytes]:
        self.w.write(request(cmd, off, length, flags) + data)
        error, payload = 0, b""
        while True:
            magic, rflags, kind, handle, n = struct.unpack(">IHHQI", await self.r.readexactly(20))
            assert magic == C.STRUCTURED_REPLY_MAGIC and handle == 7
            body = await self.r.readexactly(n)
            if kind == C.REPLY_TYPE_OFFSET_DATA:
                payload += body[8:]
            elif kind == C.REPLY_TYPE_BLOCK_STATUS:
                payload += body
            elif kind & (1 << 15):
                error = struct.unpack(">I", body[:4])[0]
            if rflags & C.REPLY_FLAG_DONE:
                return error, payload

    async def close(self) -> None:
        self.w.close()


def with_server(test: object) -> object:
    async def run(backend: MemoryBackend, body: object) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "s")
            server = await start_unix(MemoryRegistry(backend), path)
            try:
                await body(path)  # type: ignore[operator]
            finally:
                server.close()
    return run


def test_server_round_trip_and_block_status() -> None:
    backend = MemoryBackend("disk", SIZE)

    async def body(path: str) -> None:
        c = await RawClient.connect(path)
        assert await c.call(C.CMD_WRITE, 65536, 5, b"hello", C.CMD_FLAG_FUA) == (0, b"")
        assert await c.call(C.CMD_READ, 65536, 5) == (0, b"hello")
        err, body_ = await c.call(C.CMD_BLOCK_STATUS, 0, SIZE)
        assert err == 0
        assert struct.unpack(">I", body_[:4]) == (1,)
        assert list(struct.iter_unpack(">II", body_[4:])) == [(65536, 3), (65536, 0), (SIZE - 131072, 3)]
        assert await c.call(C.CMD_FLUSH, 0, 0) == (0, b"")
        assert backend.flushes == 2  # the FUA write and the flush
        await c.close()

    asyncio.run(with_server(None)(backend, body))  # type: ignore[operator]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([C.CMD_WRITE, C.CMD_TRIM, C.CMD_WRITE_ZEROES, C.CMD_READ]),
       st.integers(0, SIZE + 10), st.integers(1, 4096))
def test_fuzz_out_of_range_gets_einval_and_changes_nothing(cmd: int, off: int, length: int) -> None:
    backend = MemoryBackend("disk", SIZE)
    backend.blocks[0] = bytearray(os.urandom(backend.block))
    backend.blocks[(SIZE - 1) // backend.block] = bytearray(os.urandom(backend.block))
    before = {k: bytes(v) for k, v in backend.blocks.items()}
    if off + length <= SIZE:
        off = SIZE - length + 1 + off % 7  # make it cross or start past the end

    async def body(path: str) -> None:
        c = await RawClient.connect(path)
        err, _ = await c.call(cmd, off, length, bytes(length) if cmd == C.CMD_WRITE else b"")
        assert err == C.NBD_EINVAL
        assert (await c.call(C.CMD_READ, 0, 4))[0] == 0  # the connection still works
        await c.close()

    asyncio.run(with_server(None)(backend, body))  # type: ignore[operator]
    assert {k: bytes(v) for k, v in backend.blocks.items()} == before


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=1, max_size=120), st.booleans())
def test_fuzz_server_survives_garbage(junk: bytes, after_handshake: bool) -> None:
    backend = MemoryBackend("disk", SIZE)

    async def body(path: str) -> None:
        if after_handshake:
            c = await RawClient.connect(path)
            c.w.write(junk)
        else:
            r, w = await asyncio.open_unix_connection(path)
            await r.readexactly(18)
            w.write(junk)
            c = RawClient(r, w)
        # Whatever comes back, the server must not crash: a fresh client still works.
        await asyncio.sleep(0.01)
        await c.close()
        fresh = await RawClient.connect(path)
        assert await fresh.call(C.CMD_WRITE, 0, 2, b"ok") == (0, b"")
        assert await fresh.call(C.CMD_READ, 0, 2) == (0, b"ok")
        await fresh.close()

    asyncio.run(with_server(None)(backend, body))  # type: ignore[operator]

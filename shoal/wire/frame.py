"""Shoal's frame format (sans-IO).

A frame is::

    header  16 bytes  magic "SH", version u8, flags u8, type u16, reserved u16,
                      meta length u32, data length u32          (little-endian)
    meta    msgpack map (operation descriptions, small values)
    data    raw payload bytes (object data), never re-encoded
    crc     u32 crc32c over header + meta + data
    tag     16 bytes, only in sealed frames (flag SEALED): the AES-GCM tag of the
            connection's session (shoal/auth/session.py); meta and data are then
            authenticated, and in secure mode encrypted

Keeping the payload out of msgpack lets senders hand it to the socket as is and
receivers land it straight in its own buffer (see `FrameDecoder.get_buffer`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Protocol

import crc32c
import msgpack

from shoal.errors import ProtocolError

MAGIC = b"SH"
VERSION = 1
HEADER = struct.Struct("<2sBBHHII")
TRAILER = struct.Struct("<I")
TAG_LEN = 16
MAX_META = 16 << 20
MAX_DATA = 128 << 20
FLAG_SEALED = 1


class Sealer(Protocol):
    def seal(self, header: bytes, meta: bytes, data: Any = b"") -> tuple[bytes, Any, bytes]: ...


class Opener(Protocol):
    def open(self, header: Any, meta: Any, data: Any, tag: Any) -> tuple[bytes, Any]: ...


@dataclass(slots=True)
class Frame:
    type: int
    meta: dict[str, Any]
    data: bytes | bytearray | memoryview = b""
    flags: int = 0


def pack_meta(meta: dict[str, Any]) -> bytes:
    return msgpack.packb(meta, use_bin_type=True)


def encode_frame(type_: int, meta: dict[str, Any], data: bytes | bytearray | memoryview = b"",
                 flags: int = 0, sealer: Sealer | None = None) -> list[bytes | bytearray | memoryview]:
    """Buffers to write, in order; the payload is passed through uncopied (unless encrypted)."""
    m = pack_meta(meta)
    tag = b""
    if sealer is not None:
        flags |= FLAG_SEALED
        header = HEADER.pack(MAGIC, VERSION, flags, type_, 0, len(m), len(data))
        m, data, tag = sealer.seal(header, m, data)
    else:
        header = HEADER.pack(MAGIC, VERSION, flags, type_, 0, len(m), len(data))
    crc = crc32c.crc32c(header)
    crc = crc32c.crc32c(m, crc)
    if data:
        crc = crc32c.crc32c(data, crc)
        return [header + m, data, TRAILER.pack(crc) + tag]
    return [header + m + TRAILER.pack(crc) + tag]


def frame_bytes(type_: int, meta: dict[str, Any], data: bytes = b"", flags: int = 0,
                sealer: Sealer | None = None) -> bytes:
    return b"".join(bytes(b) for b in encode_frame(type_, meta, data, flags, sealer))


class FrameDecoder:
    """Incremental decoder with a get_buffer/buffer_updated interface.

    Small frames are parsed straight out of a staging buffer (read and write offsets,
    no shifting per frame). A frame with a large payload switches to streaming: the
    payload gets its own bytearray and `get_buffer()` hands out slices of it, so a
    4 MiB write is never copied between the socket and the object store.
    """

    STREAM_MIN = 64 * 1024  # payloads at least this large are received in place

    def __init__(self, max_meta: int = MAX_META, max_data: int = MAX_DATA) -> None:
        self.max_meta = max_meta
        self.max_data = max_data
        self._buf = bytearray(256 * 1024)
        self._start = 0  # first unparsed byte
        self._end = 0  # end of received bytes
        # streaming state (a large payload being received in place)
        self._data: bytearray | None = None
        self._data_got = 0
        self._hdr: tuple[int, int, int, int] = (0, 0, 0, 0)  # flags, type, meta_len, data_len
        self._meta_raw = b""
        self._hdr_raw = b""
        self._crc = 0
        # Set once the connection's handshake is done; from then on every frame must be
        # sealed. A sealed frame arriving before it is installed waits in the buffer.
        self.opener: Opener | None = None

    # -- buffer protocol ---------------------------------------------------------
    def get_buffer(self) -> memoryview:
        if self._data is not None and self._data_got < len(self._data):
            return memoryview(self._data)[self._data_got:]
        if self._end == len(self._buf):
            self._make_room(4096)
        return memoryview(self._buf)[self._end:]

    def _make_room(self, need: int) -> None:
        """Compact the unparsed bytes to the front, growing the buffer if `need` won't fit."""
        pending = self._end - self._start
        size = len(self._buf)
        if pending + need > size:
            size = max(size * 2, pending + need)
        if size != len(self._buf) or self._start:
            fresh = bytearray(size)
            fresh[:pending] = memoryview(self._buf)[self._start:self._end]
            self._buf, self._start, self._end = fresh, 0, pending

    def buffer_updated(self, n: int) -> list[Frame]:
        if self._data is not None and self._data_got < len(self._data):
            self._data_got += n
        else:
            self._end += n
        frames: list[Frame] = []
        while True:
            frame = self._streaming_step() if self._data is not None else self._parse()
            if frame is None:
                return frames
            frames.append(frame)

    def feed(self, data: bytes) -> list[Frame]:
        """Convenience for tests and simple drivers: push bytes, get frames."""
        frames: list[Frame] = []
        view = memoryview(data)
        while view:
            buf = self.get_buffer()
            n = min(len(buf), len(view))
            buf[:n] = view[:n]
            view = view[n:]
            frames.extend(self.buffer_updated(n))
        return frames

    # -- parsing ----------------------------------------------------------------------
    def _header(self) -> tuple[int, int, int, int]:
        magic, version, flags, type_, _res, meta_len, data_len = HEADER.unpack_from(self._buf, self._start)
        if magic != MAGIC:
            raise ProtocolError(f"bad frame magic {magic!r}")
        if version != VERSION:
            raise ProtocolError(f"unsupported frame version {version}")
        if meta_len > self.max_meta or data_len > self.max_data:
            raise ProtocolError(f"frame too large: meta {meta_len} data {data_len}")
        return flags, type_, meta_len, data_len

    def _parse(self) -> Frame | None:
        avail = self._end - self._start
        if avail < HEADER.size:
            return None
        flags, type_, meta_len, data_len = self._header()
        sealed = bool(flags & FLAG_SEALED)
        if sealed and self.opener is None:
            return None  # wait until the handshake installs the opener
        if not sealed and self.opener is not None:
            raise ProtocolError("unsealed frame on an authenticated connection")
        body = HEADER.size + meta_len
        trailer = TRAILER.size + (TAG_LEN if sealed else 0)
        total = body + data_len + trailer
        if avail >= total:  # the whole frame is here
            view = memoryview(self._buf)
            s = self._start
            crc = crc32c.crc32c(view[s:s + body + data_len])
            (want,) = TRAILER.unpack_from(self._buf, s + body + data_len)
            if crc != want:
                raise ProtocolError("frame checksum mismatch")
            meta_raw: Any = view[s + HEADER.size:s + body]
            data: Any = bytes(view[s + body:s + body + data_len]) if data_len else b""
            if sealed:
                assert self.opener is not None
                tag_at = s + body + data_len + TRAILER.size
                meta_raw, data = self.opener.open(bytes(view[s:s + HEADER.size]), bytes(meta_raw), data,
                                                  bytes(view[tag_at:tag_at + TAG_LEN]))
            meta = _unpack_meta(meta_raw)
            self._start += total
            if self._start == self._end:
                self._start = self._end = 0
            return Frame(type_, meta, data, flags)
        if data_len >= self.STREAM_MIN and avail >= body:
            # Large payload: take header + meta now, receive the payload in place.
            view = memoryview(self._buf)
            s = self._start
            self._hdr = (flags, type_, meta_len, data_len)
            self._hdr_raw = bytes(view[s:s + HEADER.size])
            self._crc = crc32c.crc32c(view[s:s + body])
            self._meta_raw = bytes(view[s + HEADER.size:s + body])
            self._data = bytearray(data_len)
            have = min(avail - body, data_len)
            self._data[:have] = view[s + body:s + body + have]
            self._data_got = have
            self._start += body + have
            return self._streaming_step()
        if total > len(self._buf) - self._start:
            self._make_room(min(total, body + trailer) if data_len >= self.STREAM_MIN else total)
        return None

    def _streaming_step(self) -> Frame | None:
        assert self._data is not None
        if self._data_got < len(self._data):
            return None
        flags, type_, _meta_len, _data_len = self._hdr
        sealed = bool(flags & FLAG_SEALED)
        trailer = TRAILER.size + (TAG_LEN if sealed else 0)
        if self._end - self._start < trailer:
            if len(self._buf) - self._start < trailer:
                self._make_room(trailer)
            return None
        (want,) = TRAILER.unpack_from(self._buf, self._start)
        tag = bytes(self._buf[self._start + TRAILER.size:self._start + trailer])
        self._start += trailer
        crc = crc32c.crc32c(self._data, self._crc)
        if crc != want:
            raise ProtocolError("frame checksum mismatch")
        data: Any
        data, self._data = self._data, None
        meta_raw: Any = self._meta_raw
        if sealed:
            assert self.opener is not None
            meta_raw, data = self.opener.open(self._hdr_raw, meta_raw, data, tag)
        return Frame(type_, _unpack_meta(meta_raw), data, flags)


def _unpack_meta(raw: bytes | memoryview) -> dict[str, Any]:
    try:
        meta = msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise ProtocolError(f"undecodable frame meta: {exc}") from exc
    if not isinstance(meta, dict):
        raise ProtocolError("frame meta is not a map")
    return meta

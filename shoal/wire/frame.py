"""Shoal's frame format (sans-IO).

A frame is::

    header  16 bytes  magic "SH", version u8, flags u8, type u16, reserved u16,
                      meta length u32, data length u32          (little-endian)
    meta    msgpack map (operation descriptions, small values)
    data    raw payload bytes (object data), never re-encoded
    crc     u32 crc32c over header + meta + data

Keeping the payload out of msgpack lets senders hand it to the socket as is and
receivers land it straight in its own buffer (see `FrameDecoder.get_buffer`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import crc32c
import msgpack

from shoal.errors import ProtocolError

MAGIC = b"SH"
VERSION = 1
HEADER = struct.Struct("<2sBBHHII")
TRAILER = struct.Struct("<I")
MAX_META = 16 << 20
MAX_DATA = 128 << 20


@dataclass(slots=True)
class Frame:
    type: int
    meta: dict[str, Any]
    data: bytes | bytearray | memoryview = b""
    flags: int = 0


def pack_meta(meta: dict[str, Any]) -> bytes:
    return msgpack.packb(meta, use_bin_type=True)


def encode_frame(type_: int, meta: dict[str, Any], data: bytes | bytearray | memoryview = b"",
                 flags: int = 0) -> list[bytes | bytearray | memoryview]:
    """Buffers to write, in order; the payload is passed through uncopied."""
    m = pack_meta(meta)
    header = HEADER.pack(MAGIC, VERSION, flags, type_, 0, len(m), len(data))
    crc = crc32c.crc32c(header)
    crc = crc32c.crc32c(m, crc)
    if data:
        crc = crc32c.crc32c(data, crc)
        return [header + m, data, TRAILER.pack(crc)]
    return [header + m + TRAILER.pack(crc)]


def frame_bytes(type_: int, meta: dict[str, Any], data: bytes = b"", flags: int = 0) -> bytes:
    return b"".join(bytes(b) for b in encode_frame(type_, meta, data, flags))


class FrameDecoder:
    """Incremental decoder with a get_buffer/buffer_updated interface.

    `get_buffer()` returns where the next received bytes should go; while a frame's
    payload is being received that is a slice of the payload's own bytearray, so a
    4 MiB write is never copied between the socket and the object store.
    """

    _HDR, _META, _DATA, _CRC = range(4)

    def __init__(self, max_meta: int = MAX_META, max_data: int = MAX_DATA) -> None:
        self.max_meta = max_meta
        self.max_data = max_data
        self._small = bytearray(64 * 1024)  # header/meta/crc staging area
        self._small_len = 0
        self._state = self._HDR
        self._need = HEADER.size
        self._hdr: tuple[Any, ...] = ()
        self._meta_raw = b""
        self._data: bytearray | None = None
        self._data_len = 0
        self._data_got = 0
        self._crc = 0

    # -- buffer protocol ---------------------------------------------------------
    def get_buffer(self) -> memoryview:
        if self._state == self._DATA:
            assert self._data is not None
            return memoryview(self._data)[self._data_got:]
        if len(self._small) - self._small_len < max(self._need - self._small_len, 4096):
            grown = bytearray(max(self._need, self._small_len + 65536))
            grown[: self._small_len] = self._small[: self._small_len]
            self._small = grown
        return memoryview(self._small)[self._small_len:]

    def buffer_updated(self, n: int) -> list[Frame]:
        frames: list[Frame] = []
        if self._state == self._DATA:
            self._data_got += n
        else:
            self._small_len += n
        while True:
            frame = self._step()
            if frame is None:
                if not self._progress_possible():
                    return frames
                continue
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

    # -- state machine -------------------------------------------------------------
    def _progress_possible(self) -> bool:
        if self._state == self._DATA:
            return self._data_got >= self._data_len
        return self._small_len >= self._need

    def _take_small(self, n: int) -> bytes:
        out = bytes(self._small[:n])
        rest = self._small_len - n
        self._small[:rest] = self._small[n: self._small_len]
        self._small_len = rest
        return out

    def _step(self) -> Frame | None:
        if self._state == self._HDR:
            if self._small_len < HEADER.size:
                return None
            raw = self._take_small(HEADER.size)
            magic, version, flags, type_, _res, meta_len, data_len = HEADER.unpack(raw)
            if magic != MAGIC:
                raise ProtocolError(f"bad frame magic {magic!r}")
            if version != VERSION:
                raise ProtocolError(f"unsupported frame version {version}")
            if meta_len > self.max_meta or data_len > self.max_data:
                raise ProtocolError(f"frame too large: meta {meta_len} data {data_len}")
            self._hdr = (flags, type_, meta_len, data_len)
            self._crc = crc32c.crc32c(raw)
            self._state, self._need = self._META, meta_len
            return None
        if self._state == self._META:
            if self._small_len < self._need:
                return None
            self._meta_raw = self._take_small(self._need)
            self._crc = crc32c.crc32c(self._meta_raw, self._crc)
            data_len = self._hdr[3]
            if data_len:
                self._data = bytearray(data_len)
                self._data_len, self._data_got = data_len, 0
                # bytes already staged beyond the meta belong to the payload
                take = min(self._small_len, data_len)
                if take:
                    self._data[:take] = self._take_small(take)
                    self._data_got = take
                self._state = self._DATA
            else:
                self._data, self._data_len = None, 0
                self._state, self._need = self._CRC, TRAILER.size
            return None
        if self._state == self._DATA:
            if self._data_got < self._data_len:
                return None
            assert self._data is not None
            self._crc = crc32c.crc32c(self._data, self._crc)
            self._state, self._need = self._CRC, TRAILER.size
            return None
        # _CRC
        if self._small_len < TRAILER.size:
            return None
        (crc,) = TRAILER.unpack(self._take_small(TRAILER.size))
        if crc != self._crc:
            raise ProtocolError("frame checksum mismatch")
        flags, type_, _meta_len, _data_len = self._hdr
        try:
            meta = msgpack.unpackb(self._meta_raw, raw=False, strict_map_key=False)
        except (ValueError, msgpack.UnpackException) as exc:
            raise ProtocolError(f"undecodable frame meta: {exc}") from exc
        if not isinstance(meta, dict):
            raise ProtocolError("frame meta is not a map")
        data = self._data if self._data is not None else b""
        self._data = None
        self._state, self._need = self._HDR, HEADER.size
        return Frame(type_, meta, data, flags)

"""Ceph's little-endian `encode()`/`decode()` for the values object classes store.

Only the primitives cls_rbd / cls_lock need: u8, u32, u64, i64, string (u32 length +
bytes), utime_t (u32 sec + u32 nsec), `set<string>` (u32 count + elements) and the
versioned-struct header written by ENCODE_START(v, compat, len) (u8 v, u8 compat,
u32 len). Decoding truncated or malformed bytes raises `InvalidArgument`, which is
what a cls method answers when its stored value or input can't be decoded.
"""

from __future__ import annotations

import struct

from shoal.errors import InvalidArgument

_U8 = struct.Struct("<B")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")


def _check(value: int, bits: int, signed: bool = False) -> int:
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise InvalidArgument(f"value {value!r} does not fit in {'i' if signed else 'u'}{bits}")
    return value


def enc_u8(value: int) -> bytes:
    return _U8.pack(_check(value, 8))


def enc_u32(value: int) -> bytes:
    return _U32.pack(_check(value, 32))


def enc_u64(value: int) -> bytes:
    return _U64.pack(_check(value, 64))


def enc_i64(value: int) -> bytes:
    return _I64.pack(_check(value, 64, signed=True))


def enc_bool(value: bool) -> bytes:
    return b"\x01" if value else b"\x00"


def enc_bytes(value: bytes) -> bytes:
    """A bufferlist/string: u32 length, then the bytes."""
    return enc_u32(len(value)) + bytes(value)


def enc_string(value: str) -> bytes:
    return enc_bytes(value.encode())


def enc_utime(sec: int, nsec: int) -> bytes:
    return enc_u32(sec) + enc_u32(nsec)


def enc_utime_float(t: float) -> bytes:
    sec = int(t)
    return enc_utime(sec, min(int(round((t - sec) * 1e9)), 999_999_999))


def enc_string_set(values: set[str] | list[str]) -> bytes:
    # Ceph's std::set is ordered, so a set encodes sorted (by byte value).
    items = sorted(set(values), key=str.encode)
    return enc_u32(len(items)) + b"".join(enc_string(v) for v in items)


def enc_struct(version: int, compat: int, body: bytes) -> bytes:
    """ENCODE_START/ENCODE_FINISH: u8 version, u8 compat, u32 body length, body."""
    return enc_u8(version) + enc_u8(compat) + enc_u32(len(body)) + body


class Decoder:
    """Reads Ceph-encoded values from a buffer, front to back."""

    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)
        self.pos = 0

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise InvalidArgument(f"truncated encoding: need {n} bytes at {self.pos}, have {self.remaining()}")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return int(_U8.unpack(self.take(1))[0])

    def u32(self) -> int:
        return int(_U32.unpack(self.take(4))[0])

    def u64(self) -> int:
        return int(_U64.unpack(self.take(8))[0])

    def i64(self) -> int:
        return int(_I64.unpack(self.take(8))[0])

    def bool(self) -> bool:
        return self.u8() != 0

    def bytes_(self) -> bytes:
        return self.take(self.u32())

    def string(self) -> str:
        raw = self.bytes_()
        try:
            return raw.decode()
        except UnicodeDecodeError as exc:
            raise InvalidArgument("string is not valid UTF-8") from exc

    def utime(self) -> tuple[int, int]:
        return self.u32(), self.u32()

    def string_set(self) -> set[str]:
        count = self.u32()
        # Each element needs at least its 4-byte length: refuse absurd counts early.
        if count * 4 > self.remaining():
            raise InvalidArgument(f"truncated encoding: set of {count} elements")
        return {self.string() for _ in range(count)}

    def struct_start(self, max_compat: int) -> tuple[int, Decoder]:
        """DECODE_START: returns (version, decoder over just the body); the outer decoder skips it.

        Refuses a struct whose compat version is newer than `max_compat` (we can't read it).
        """
        version, compat, length = self.u8(), self.u8(), self.u32()
        if compat > max_compat:
            raise InvalidArgument(f"struct compat version {compat} > supported {max_compat}")
        return version, Decoder(self.take(length))

    def finish(self) -> None:
        """Insist that every byte was consumed (a trailing byte means a wrong format)."""
        if self.remaining():
            raise InvalidArgument(f"{self.remaining()} trailing bytes after decoding")


def dec_u8(data: bytes) -> int:
    d = Decoder(data)
    v = d.u8()
    d.finish()
    return v


def dec_u64(data: bytes) -> int:
    d = Decoder(data)
    v = d.u64()
    d.finish()
    return v


def dec_i64(data: bytes) -> int:
    d = Decoder(data)
    v = d.i64()
    d.finish()
    return v


def dec_string(data: bytes) -> str:
    d = Decoder(data)
    v = d.string()
    d.finish()
    return v


def dec_utime(data: bytes) -> tuple[int, int]:
    d = Decoder(data)
    v = d.utime()
    d.finish()
    return v


def dec_string_set(data: bytes) -> set[str]:
    d = Decoder(data)
    v = d.string_set()
    d.finish()
    return v

"""cephx secret keys in Ceph's encoding (sans-IO).

A key is what `ceph auth get-key` prints: base64 of Ceph's `CryptoKey` encoding,

    u16 type (1 = AES) | utime_t created (u32 sec, u32 nsec) | u16 length (16) | secret

all little-endian: 28 bytes, 40 base64 characters, always starting "AQ" because the
type is 1. Shoal writes and reads the same text so keyrings move between Ceph and
Shoal unchanged.

A key is secret material: `repr()` and error messages never show it, so it cannot
leak into logs by accident.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
import time
from dataclasses import dataclass

CRYPTO_AES = 1  # CEPH_CRYPTO_AES: the only type Ceph creates for cephx keys
SECRET_LEN = 16  # AES-128
_HEADER = struct.Struct("<HIIH")  # type, created.sec, created.nsec, secret length
ENCODED_LEN = _HEADER.size + SECRET_LEN  # 28 bytes
_WHITESPACE = b" \t\r\n\v\f"


@dataclass(frozen=True, repr=False)
class CryptoKey:
    """An AES cephx key: 16 secret bytes and the time it was made (sec, nsec)."""

    secret: bytes
    created: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        if not isinstance(self.secret, bytes) or len(self.secret) != SECRET_LEN:
            raise ValueError(f"a cephx secret is {SECRET_LEN} bytes")
        sec, nsec = self.created
        if not (0 <= sec < 2**32 and 0 <= nsec < 2**32):
            raise ValueError(f"key creation time {self.created!r} does not fit a utime_t")

    @classmethod
    def generate(cls, now: float | None = None) -> CryptoKey:
        """A fresh random key stamped `now` (seconds since the epoch; default: the clock)."""
        t = time.time() if now is None else now
        sec = int(t)
        nsec = min(int(round((t - sec) * 1e9)), 999_999_999)
        return cls(os.urandom(SECRET_LEN), (sec, max(nsec, 0)))

    @classmethod
    def from_bytes(cls, data: bytes) -> CryptoKey:
        """Decode Ceph's binary `CryptoKey` encoding (exactly 28 bytes)."""
        if len(data) < _HEADER.size:
            raise ValueError(f"cephx key is truncated: {len(data)} bytes, expected {ENCODED_LEN}")
        ktype, sec, nsec, length = _HEADER.unpack_from(data)
        if ktype != CRYPTO_AES:
            raise ValueError(f"unsupported cephx key type {ktype} (only 1 = AES is supported)")
        if length != SECRET_LEN:
            raise ValueError(f"cephx AES secret must be {SECRET_LEN} bytes, the key says {length}")
        if len(data) != ENCODED_LEN:
            raise ValueError(f"cephx key has {len(data)} bytes, expected {ENCODED_LEN}")
        return cls(bytes(data[_HEADER.size:]), (sec, nsec))

    @classmethod
    def decode(cls, b64: str | bytes) -> CryptoKey:
        """Parse the base64 text of a key ("AQ...=="); ValueError says what is wrong.

        Whitespace around or inside the text is ignored, as Ceph's base64 decoder
        ignores line breaks (a `keyfile` usually ends with a newline).
        """
        if isinstance(b64, str):
            try:
                raw = b64.encode("ascii")
            except UnicodeEncodeError:
                raise ValueError("cephx key is not base64 text (non-ASCII characters)") from None
        elif isinstance(b64, bytes | bytearray):
            raw = bytes(b64)
        else:
            raise ValueError(f"cephx key must be text, not {type(b64).__name__}")
        raw = raw.translate(None, _WHITESPACE)
        if not raw:
            raise ValueError("cephx key is empty")
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("cephx key is not valid base64") from None
        return cls.from_bytes(data)

    def to_bytes(self) -> bytes:
        return _HEADER.pack(CRYPTO_AES, self.created[0], self.created[1], SECRET_LEN) + self.secret

    def encode(self) -> str:
        """The base64 text Ceph prints and writes in keyrings: 40 characters, "AQ...=="."""
        return base64.b64encode(self.to_bytes()).decode("ascii")

    def __repr__(self) -> str:
        # Never the secret: reprs and str() end up in logs and tracebacks; the
        # text of a key is only ever produced on purpose, by encode().
        return f"CryptoKey(created={self.created!r}, secret=<{SECRET_LEN} bytes>)"

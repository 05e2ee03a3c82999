"""Typed records and errors shared by the `rbd export` / `export-diff` stream codecs.

The codecs are sans-IO: readers take bytes and hand back these records, writers take
records (or their fields) and hand back bytes. Nothing here touches a file or socket.
"""

from __future__ import annotations

import errno as _errno
import struct
from dataclasses import dataclass

from shoal.errors import InvalidArgument, ProtocolError, ShoalError

DIFF_BANNER_V1 = b"rbd diff v1\n"
DIFF_BANNER_V2 = b"rbd diff v2\n"
IMAGE_BANNER_V2 = b"rbd image v2\n"
IMAGE_DIFFS_BANNER_V2 = b"rbd image diffs v2\n"

# Ceph's readers refuse snapshot names and metadata strings longer than this.
MAX_STRING = 4096
U64_MAX = (1 << 64) - 1

U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")
U64X2 = struct.Struct("<QQ")


class StreamError(ShoalError):
    """Base of every error the stream codecs raise (callers catch just this)."""


class BadBanner(StreamError, InvalidArgument):
    """The stream does not start with the expected banner: `rbd import-diff` says EINVAL."""

    errno = _errno.EINVAL


class MalformedStream(StreamError, ProtocolError):
    """A record that cannot be decoded (bad length, unknown tag, oversized string)."""

    errno = _errno.EBADMSG


class TruncatedStream(MalformedStream):
    """The stream ended inside a record or before `e`; Ceph's EDOM maps to EBADMSG (74)."""


@dataclass(frozen=True, slots=True)
class FromSnap:
    name: str


@dataclass(frozen=True, slots=True)
class ToSnap:
    name: str


@dataclass(frozen=True, slots=True)
class Size:
    size: int


@dataclass(frozen=True, slots=True)
class Protected:
    """v2 only. Real Ceph 16 declares length 8 but writes one byte; keep what was read."""

    protected: bool
    declared_len: int = 8


@dataclass(frozen=True, slots=True)
class Write:
    offset: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Zero:
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class End:
    pass


@dataclass(frozen=True, slots=True)
class Unknown:
    """A record the reader skipped: in v2 a whole tag+length+payload, in lenient v1 one byte.

    Kept (rather than dropped) so that re-serialising a parsed stream gives the same bytes.
    """

    tag: int
    payload: bytes | None = None  # None: v1 single-byte skip (no length field)


DiffRecord = FromSnap | ToSnap | Size | Protected | Write | Zero | End | Unknown


# Export format 2 image header records.
@dataclass(frozen=True, slots=True)
class HeaderField:
    """`O` order, `T` features, `U` stripe unit, `C` stripe count: all a u64."""

    tag: str
    value: int


@dataclass(frozen=True, slots=True)
class Metadata:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class HeaderEnd:
    pass


@dataclass(frozen=True, slots=True)
class DiffCount:
    count: int


@dataclass(frozen=True, slots=True)
class DiffStart:
    """Marks the start of embedded diff number `index` (0-based); its records follow."""

    index: int


ExportRecord = HeaderField | Metadata | HeaderEnd | DiffCount | DiffStart | DiffRecord | Unknown


def encode_string(s: str) -> bytes:
    raw = s.encode("utf-8", "surrogateescape")
    if len(raw) > MAX_STRING:
        raise InvalidArgument(f"string of {len(raw)} bytes exceeds the {MAX_STRING}-byte limit")
    return U32.pack(len(raw)) + raw


def decode_string(raw: bytes) -> str:
    # surrogateescape so that any bytes survive a parse/serialise round trip
    return raw.decode("utf-8", "surrogateescape")

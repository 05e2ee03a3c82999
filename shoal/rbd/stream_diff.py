"""`rbd export-diff` / `import-diff` streams, v1 and v2, as a sans-IO reader and writer.

v1: banner, then `tag payload` records with fixed layouts per tag and no lengths, then `e`.
v2: banner, then `tag u64-length payload` records (so unknown tags can be skipped), then `e`.
See ceph-facts.md §5 for the byte layout; the fixtures in reference/fixtures/streams pin it.
"""

from __future__ import annotations

from collections.abc import Iterable

from shoal.errors import InvalidArgument
from shoal.rbd.stream_records import (
    DIFF_BANNER_V1,
    DIFF_BANNER_V2,
    MAX_STRING,
    U32,
    U64,
    U64_MAX,
    U64X2,
    BadBanner,
    DiffRecord,
    End,
    FromSnap,
    MalformedStream,
    Protected,
    Size,
    ToSnap,
    TruncatedStream,
    Unknown,
    Write,
    Zero,
    decode_string,
    encode_string,
)

_BANNERS = {1: DIFF_BANNER_V1, 2: DIFF_BANNER_V2}
_BANNER_LEN = len(DIFF_BANNER_V1)
# A bound on one record's buffered payload (CONVENTIONS §5); Ceph's own extents are at
# most an object (or a whole-object run) long, far below this.
DEFAULT_MAX_RECORD = 1 << 30


# --------------------------------------------------------------------------- writing


def encode_record(rec: DiffRecord, version: int) -> bytes:
    """The bytes of one record in a v1 or v2 diff stream."""
    if version not in _BANNERS:
        raise InvalidArgument(f"unsupported diff version {version}")
    match rec:
        case FromSnap(name) | ToSnap(name):
            tag = b"f" if isinstance(rec, FromSnap) else b"t"
            body = encode_string(name)
        case Size(size):
            _check_u64(size, "size")
            tag, body = b"s", U64.pack(size)
        case Protected(protected, declared_len):
            if version == 1:
                raise InvalidArgument("diff v1 has no protection record")
            # Ceph 16 writes length 8 with a 1-byte payload; the length is what we were given.
            return b"p" + U64.pack(declared_len) + (b"\x01" if protected else b"\x00")
        case Write(offset, data):
            _check_extent(offset, len(data))
            tag, body = b"w", U64X2.pack(offset, len(data)) + bytes(data)
        case Zero(offset, length):
            _check_extent(offset, length)
            tag, body = b"z", U64X2.pack(offset, length)
        case End():
            return b"e"
        case Unknown(tag_byte, payload):
            if payload is None:
                if version != 1:
                    raise InvalidArgument("a lengthless unknown record exists only in v1")
                return bytes([tag_byte])
            if version == 1:
                raise InvalidArgument("v1 has no way to carry an unknown record's payload")
            return bytes([tag_byte]) + U64.pack(len(payload)) + payload
        case _:
            raise InvalidArgument(f"not a diff record: {rec!r}")
    if version == 1:
        return tag + body
    return tag + U64.pack(len(body)) + body


def encode_diff(records: Iterable[DiffRecord], version: int) -> bytes:
    """Banner plus every record: the inverse of `DiffReader` (End must be among the records)."""
    return _BANNERS[version] + b"".join(encode_record(r, version) for r in records)


def _check_u64(v: int, what: str) -> None:
    if not 0 <= v <= U64_MAX:
        raise InvalidArgument(f"{what} {v} does not fit in a u64")


def _check_extent(offset: int, length: int) -> None:
    _check_u64(offset, "offset")
    _check_u64(length, "length")
    if offset + length > U64_MAX:
        raise InvalidArgument(f"extent {offset}+{length} overflows a u64")


def is_zero(data: bytes | memoryview) -> bool:
    return not any(data) if len(data) < 64 else bytes(data).count(0) == len(data)


class DiffWriter:
    """Emits one diff stream piece by piece, so a caller can stream extents as it reads them.

    `header()` once, then `write`/`zero`/`extent` in ascending offset order, then `end()`.
    """

    def __init__(self, version: int = 1, from_snap: str | None = None, to_snap: str | None = None,
                 protected: bool | None = None, size: int = 0) -> None:
        if version not in _BANNERS:
            raise InvalidArgument(f"unsupported diff version {version}")
        if version == 1 and protected is not None:
            raise InvalidArgument("diff v1 cannot carry snapshot protection")
        _check_u64(size, "size")
        self.version = version
        self.from_snap = from_snap
        self.to_snap = to_snap
        self.protected = protected
        self.size = size

    def header_records(self) -> list[DiffRecord]:
        recs: list[DiffRecord] = []
        if self.from_snap is not None:
            recs.append(FromSnap(self.from_snap))
        if self.to_snap is not None:
            recs.append(ToSnap(self.to_snap))
            # Ceph's v2 writer always follows a to-snap with its protection state.
            if self.version == 2:
                recs.append(Protected(bool(self.protected)))
        recs.append(Size(self.size))
        return recs

    def header(self) -> bytes:
        return _BANNERS[self.version] + b"".join(encode_record(r, self.version) for r in self.header_records())

    def write(self, offset: int, data: bytes) -> bytes:
        return encode_record(Write(offset, data), self.version)

    def zero(self, offset: int, length: int) -> bytes:
        return encode_record(Zero(offset, length), self.version)

    def extent(self, offset: int, data: bytes) -> bytes:
        """Ceph's export-diff rule: an extent that reads back all-zero goes out as `z`, whole;
        any other extent goes out as one `w`, zeros included (never split)."""
        if is_zero(data):
            return self.zero(offset, len(data))
        return self.write(offset, data)

    def end(self) -> bytes:
        return b"e"


def split_sparse(offset: int, data: bytes, sparse_size: int = 4096) -> list[Write | Zero]:
    """How `rbd import-diff`/`import` apply a `w`: in `sparse_size` chunks aligned to the
    image, all-zero chunks becoming write-zeroes. Adjacent chunks of one kind are merged."""
    out: list[Write | Zero] = []
    pos = 0
    mv = memoryview(data)
    while pos < len(data):
        step = min(sparse_size - (offset + pos) % sparse_size, len(data) - pos)
        chunk = mv[pos:pos + step]
        zero = is_zero(chunk)
        last = out[-1] if out else None
        if zero and isinstance(last, Zero):
            out[-1] = Zero(last.offset, last.length + step)
        elif not zero and isinstance(last, Write):
            out[-1] = Write(last.offset, last.data + bytes(chunk))
        else:
            out.append(Zero(offset + pos, step) if zero else Write(offset + pos, bytes(chunk)))
        pos += step
    return out


# --------------------------------------------------------------------------- reading


class DiffReader:
    """Incremental parser: `feed(bytes) -> list[record]`, `close()` raises if incomplete.

    strict=True (default) rejects what Ceph would merely tolerate: an unknown v1 tag (Ceph
    skips it one byte at a time and exits 0) and bytes after `e`. strict=False behaves like
    Ceph, returning each skipped v1 byte as `Unknown(tag)` so the stream still round-trips.
    `stop_at_end=True` (for embedded streams) keeps bytes after `e` in `.unused`.
    """

    def __init__(self, version: int | None = None, *, strict: bool = True, stop_at_end: bool = False,
                 max_record: int = DEFAULT_MAX_RECORD) -> None:
        if version is not None and version not in _BANNERS:
            raise InvalidArgument(f"unsupported diff version {version}")
        self.version = version
        self.strict = strict
        self.stop_at_end = stop_at_end
        self.max_record = max_record
        self.done = False
        self.size: int | None = None
        self.unused = b""
        self._buf = bytearray()
        self._banner_ok = False
        self._need = 0  # bytes the pending record needs; skip re-parsing until we have them
        self._stage = "tag"  # where a truncated stream stopped, for the error message

    def feed(self, data: bytes) -> list[DiffRecord]:
        if self.done:
            self._after_end(bytes(data))
            return []
        self._buf += data
        if len(self._buf) < self._need:
            return []
        out: list[DiffRecord] = []
        pos = 0
        if not self._banner_ok:
            pos = self._parse_banner()
            if pos == 0:
                return []
        while not self.done:
            res = self._parse_one(pos)
            if res is None:
                break
            rec, pos = res
            out.append(rec)
        rest = bytes(self._buf[pos:]) if self.done else b""
        del self._buf[:pos]
        self._need = max(self._need - pos, 0)
        if self.done:
            self._buf.clear()
            self._after_end(rest)
        return out

    def close(self) -> None:
        """Declare end of input; raises `TruncatedStream` unless a complete stream was seen."""
        if self.done:
            return
        if not self._banner_ok:
            raise TruncatedStream("failed to read diff banner: stream truncated")
        raise TruncatedStream(f"failed to decode {self._stage}: stream truncated")

    # -- internals

    def _after_end(self, rest: bytes) -> None:
        if not rest:
            return
        if self.stop_at_end or not self.strict:
            self.unused += rest
        else:
            raise MalformedStream(f"{len(rest)} unexpected bytes after the end record")

    def _parse_banner(self) -> int:
        buf = bytes(self._buf[:_BANNER_LEN])
        candidates = [self.version] if self.version else [1, 2]
        if not any(_BANNERS[v].startswith(buf) for v in candidates):
            raise BadBanner(f"invalid or unexpected diff banner {buf!r}")
        if len(buf) < _BANNER_LEN:
            self._need = _BANNER_LEN
            return 0
        self.version = 1 if buf == DIFF_BANNER_V1 else 2
        self._banner_ok = True
        return _BANNER_LEN

    def _wait(self, need: int, stage: str) -> None:
        self._need = need
        self._stage = stage

    def _parse_one(self, pos: int) -> tuple[DiffRecord, int] | None:
        buf = self._buf
        avail = len(buf) - pos
        if avail < 1:
            self._wait(pos + 1, "tag")
            return None
        tag = buf[pos]
        if tag == 0x65:  # 'e'
            self.done = True
            return End(), pos + 1
        if self.version == 1:
            return self._parse_v1(pos, tag, avail)
        return self._parse_v2(pos, tag, avail)

    def _parse_v1(self, pos: int, tag: int, avail: int) -> tuple[DiffRecord, int] | None:
        buf = self._buf
        if tag in (0x66, 0x74):  # f, t
            if avail < 5:
                self._wait(pos + 5, "snap name")
                return None
            (n,) = U32.unpack_from(buf, pos + 1)
            if n > MAX_STRING:
                raise MalformedStream(f"snapshot name of {n} bytes exceeds {MAX_STRING}")
            if avail < 5 + n:
                self._wait(pos + 5 + n, "snap name")
                return None
            name = decode_string(bytes(buf[pos + 5:pos + 5 + n]))
            return (FromSnap(name) if tag == 0x66 else ToSnap(name)), pos + 5 + n
        if tag == 0x73:  # s
            if avail < 9:
                self._wait(pos + 9, "image size")
                return None
            (size,) = U64.unpack_from(buf, pos + 1)
            self.size = size
            return Size(size), pos + 9
        if tag in (0x77, 0x7A):  # w, z
            if avail < 17:
                self._wait(pos + 17, "IO length")
                return None
            off, length = U64X2.unpack_from(buf, pos + 1)
            self._check_extent(off, length)
            if tag == 0x7A:
                return Zero(off, length), pos + 17
            if length > self.max_record:
                raise MalformedStream(f"write of {length} bytes exceeds the {self.max_record}-byte bound")
            if avail < 17 + length:
                self._wait(pos + 17 + length, "write data")
                return None
            return Write(off, bytes(buf[pos + 17:pos + 17 + length])), pos + 17 + length
        if self.strict:
            raise MalformedStream(f"unrecognized tag byte {tag} in diff v1 stream")
        return Unknown(tag), pos + 1

    def _parse_v2(self, pos: int, tag: int, avail: int) -> tuple[DiffRecord, int] | None:
        buf = self._buf
        if avail < 9:
            self._wait(pos + 9, "record length")
            return None
        (reclen,) = U64.unpack_from(buf, pos + 1)
        body = pos + 9
        if tag in (0x66, 0x74):
            if not 4 <= reclen <= 4 + MAX_STRING:
                raise MalformedStream(f"snapshot name record of length {reclen} is malformed")
        elif tag == 0x70:  # p: Ceph 16 declares 8 but writes 1 byte; the worked example says 1
            if reclen not in (1, 8):
                raise MalformedStream(f"protection record of length {reclen} is malformed")
            if avail < 10:
                self._wait(pos + 10, "protection status")
                return None
            flag = buf[body]
            if flag > 1:
                raise MalformedStream(f"protection flag {flag} is not a bool")
            return Protected(bool(flag), reclen), pos + 10
        elif tag == 0x73 and reclen != 8 or tag == 0x7A and reclen != 16:
            raise MalformedStream(f"{chr(tag)} record of length {reclen} is malformed")
        elif tag == 0x77 and reclen < 16:
            raise MalformedStream(f"write record of length {reclen} is too short")
        if reclen > self.max_record + 16:
            raise MalformedStream(f"record of {reclen} bytes exceeds the {self.max_record}-byte bound")
        if tag == 0x77 and avail >= 25:
            # check the header before waiting for up to a whole extent of data
            off, length = U64X2.unpack_from(buf, body)
            if length != reclen - 16:
                raise MalformedStream(f"write length {length} does not match record length {reclen}")
            self._check_extent(off, length)
        if avail < 9 + reclen:
            self._wait(body + reclen, "write data" if tag == 0x77 else "record payload")
            return None
        end = body + reclen
        if tag in (0x66, 0x74):
            (n,) = U32.unpack_from(buf, body)
            if n != reclen - 4:
                raise MalformedStream(f"snapshot name length {n} does not match record length {reclen}")
            name = decode_string(bytes(buf[body + 4:end]))
            return (FromSnap(name) if tag == 0x66 else ToSnap(name)), end
        if tag == 0x73:
            (size,) = U64.unpack_from(buf, body)
            self.size = size
            return Size(size), end
        if tag == 0x7A:
            off, length = U64X2.unpack_from(buf, body)
            self._check_extent(off, length)
            return Zero(off, length), end
        if tag == 0x77:
            (off,) = U64.unpack_from(buf, body)
            return Write(off, bytes(buf[body + 16:end])), end
        # v2 exists so that readers can skip what they do not know, as Ceph does
        return Unknown(tag, bytes(buf[body:end])), end

    def _check_extent(self, off: int, length: int) -> None:
        if off + length > U64_MAX:
            raise MalformedStream(f"extent {off}+{length} overflows a u64")
        if self.size is not None and off + length > self.size:
            raise MalformedStream(f"extent {off}+{length} lies beyond the image size {self.size}")


def parse_diff(data: bytes, version: int | None = None, *, strict: bool = True) -> list[DiffRecord]:
    """Parse a whole diff held in memory (tests, small streams)."""
    r = DiffReader(version, strict=strict)
    recs = r.feed(data)
    r.close()
    return recs

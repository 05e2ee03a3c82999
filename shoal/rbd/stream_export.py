"""`rbd export` streams: format 1 (raw bytes) and `--export-format 2` (header + v2 diffs).

Format 2 layout (confirmed against img1.exp2 / img2.exp2 from Ceph 16):
  "rbd image v2\\n", `O`,`T`,`U`,`C` (tag, u64 len 8, u64 value), one `M` per metadata pair
  (tag, u64 len, string key, string value), `E`; then "rbd image diffs v2\\n", u64 count,
  then `count` complete v2 diff streams: ∅→snap0, snap0→snap1, …, last snap→HEAD.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from shoal.errors import InvalidArgument
from shoal.rbd.stream_diff import DEFAULT_MAX_RECORD, DiffReader, DiffWriter, encode_record
from shoal.rbd.stream_records import (
    DIFF_BANNER_V2,
    IMAGE_BANNER_V2,
    IMAGE_DIFFS_BANNER_V2,
    MAX_STRING,
    U32,
    U64,
    BadBanner,
    DiffCount,
    DiffStart,
    ExportRecord,
    HeaderEnd,
    HeaderField,
    MalformedStream,
    Metadata,
    TruncatedStream,
    Unknown,
    Write,
    decode_string,
    encode_string,
)

HEADER_TAGS = ("O", "T", "U", "C")  # order, features, stripe unit, stripe count
# Far more than any image has snapshots; bounds what a corrupt count can make us expect.
MAX_DIFFS = 1 << 20


@dataclass(frozen=True, slots=True)
class ExportSnap:
    """One snapshot as `rbd export --export-format 2` writes it (oldest first)."""

    name: str
    size: int
    protected: bool = False


def encode_header_record(rec: HeaderField | Metadata | HeaderEnd | Unknown) -> bytes:
    match rec:
        case HeaderField(tag, value):
            if tag not in HEADER_TAGS:
                raise InvalidArgument(f"unknown image header tag {tag!r}")
            return tag.encode() + U64.pack(8) + U64.pack(value)
        case Metadata(key, value):
            body = encode_string(key) + encode_string(value)
            return b"M" + U64.pack(len(body)) + body
        case HeaderEnd():
            return b"E"
        case Unknown(tag, payload) if payload is not None:
            return bytes([tag]) + U64.pack(len(payload)) + payload
    raise InvalidArgument(f"not an image header record: {rec!r}")


def encode_export_v2(records: Sequence[ExportRecord]) -> bytes:
    """Serialise the records `ExportV2Reader` yields back to the exact stream."""
    out = [IMAGE_BANNER_V2]
    in_header = True
    for rec in records:
        if in_header:
            out.append(encode_header_record(rec))  # type: ignore[arg-type]
            if isinstance(rec, HeaderEnd):
                out.append(IMAGE_DIFFS_BANNER_V2)
                in_header = False
        elif isinstance(rec, DiffCount):
            out.append(U64.pack(rec.count))
        elif isinstance(rec, DiffStart):
            out.append(DIFF_BANNER_V2)
        else:
            out.append(encode_record(rec, 2))
    return b"".join(out)


class ExportV2Writer:
    """Produces an export-format-2 stream: `header()`, then for each i in range(`diff_count`)
    `diff_writer(i)` whose header/extents/end the caller emits, in order."""

    def __init__(self, order: int, features: int, stripe_unit: int, stripe_count: int,
                 metadata: dict[str, str], snaps: Sequence[ExportSnap], size: int) -> None:
        self.fields = {"O": order, "T": features, "U": stripe_unit, "C": stripe_count}
        self.metadata = dict(metadata)
        self.snaps = list(snaps)
        self.size = size

    @property
    def diff_count(self) -> int:
        return len(self.snaps) + 1  # one per snapshot plus the last snapshot → HEAD

    def header(self) -> bytes:
        recs: list[HeaderField | Metadata | HeaderEnd] = [HeaderField(t, v) for t, v in self.fields.items()]
        recs += [Metadata(k, v) for k, v in self.metadata.items()]
        recs.append(HeaderEnd())
        return (IMAGE_BANNER_V2 + b"".join(encode_header_record(r) for r in recs)
                + IMAGE_DIFFS_BANNER_V2 + U64.pack(self.diff_count))

    def diff_writer(self, index: int) -> DiffWriter:
        if not 0 <= index < self.diff_count:
            raise InvalidArgument(f"diff index {index} out of range 0..{self.diff_count - 1}")
        from_snap = self.snaps[index - 1].name if index > 0 else None
        if index < len(self.snaps):
            snap = self.snaps[index]
            return DiffWriter(2, from_snap, snap.name, snap.protected, snap.size)
        return DiffWriter(2, from_snap, None, None, self.size)


class ExportV2Reader:
    """Incremental parser of an export-format-2 stream; records as described in the module doc.

    Each embedded diff is announced by `DiffStart(i)` and finished by its `End()`.
    """

    def __init__(self, *, max_record: int = DEFAULT_MAX_RECORD) -> None:
        self.max_record = max_record
        self.done = False
        self._buf = bytearray()
        self._state = "banner"  # banner, header, diffs-banner, count, diff, done
        self._count = 0
        self._index = 0
        self._diff: DiffReader | None = None

    def feed(self, data: bytes) -> list[ExportRecord]:
        if self.done:
            if data:
                raise MalformedStream(f"{len(data)} unexpected bytes after the last diff")
            return []
        out: list[ExportRecord] = []
        if self._state == "diff":
            self._feed_diff(bytes(data), out)
        else:
            self._buf += data
            self._run(out)
        return out

    def close(self) -> None:
        if not self.done:
            if self._diff is not None:
                self._diff.close()
            raise TruncatedStream(f"export stream truncated in its {self._state}")

    def _feed_diff(self, data: bytes, out: list[ExportRecord]) -> None:
        assert self._diff is not None
        out.extend(self._diff.feed(data))
        if self._diff.done:
            rest = self._diff.unused
            self._diff = None
            self._index += 1
            self._start_diff_or_finish(out)
            if rest:
                if self.done:
                    raise MalformedStream(f"{len(rest)} unexpected bytes after the last diff")
                self._feed_diff(rest, out)

    def _start_diff_or_finish(self, out: list[ExportRecord]) -> None:
        if self._index >= self._count:
            self._state = "done"
            self.done = True
            return
        self._state = "diff"
        self._diff = DiffReader(2, stop_at_end=True, max_record=self.max_record)
        out.append(DiffStart(self._index))

    def _run(self, out: list[ExportRecord]) -> None:
        buf = self._buf
        pos = 0
        while True:
            avail = len(buf) - pos
            if self._state in ("banner", "diffs-banner"):
                want = IMAGE_BANNER_V2 if self._state == "banner" else IMAGE_DIFFS_BANNER_V2
                got = bytes(buf[pos:pos + len(want)])
                if not want.startswith(got):
                    raise BadBanner(f"invalid or unexpected image banner {got!r}")
                if len(got) < len(want):
                    break
                pos += len(want)
                self._state = "header" if self._state == "banner" else "count"
            elif self._state == "header":
                res = self._header_record(pos, avail)
                if res is None:
                    break
                rec, pos = res
                out.append(rec)
                if isinstance(rec, HeaderEnd):
                    self._state = "diffs-banner"
            elif self._state == "count":
                if avail < 8:
                    break
                (self._count,) = U64.unpack_from(buf, pos)
                if self._count > MAX_DIFFS:
                    raise MalformedStream(f"export claims {self._count} diffs")
                pos += 8
                out.append(DiffCount(self._count))
                self._start_diff_or_finish(out)
                rest = bytes(buf[pos:])
                buf.clear()
                if self.done:
                    if rest:
                        raise MalformedStream(f"{len(rest)} unexpected bytes after the last diff")
                elif rest:
                    self._feed_diff(rest, out)
                return
        del buf[:pos]

    def _header_record(self, pos: int, avail: int) -> tuple[ExportRecord, int] | None:
        buf = self._buf
        if avail < 1:
            return None
        tag = buf[pos]
        if tag == 0x45:  # E
            return HeaderEnd(), pos + 1
        if avail < 9:
            return None
        (reclen,) = U64.unpack_from(buf, pos + 1)
        ch = chr(tag)
        if ch in HEADER_TAGS and reclen != 8:
            raise MalformedStream(f"image header {ch} record of length {reclen} is malformed")
        if ch == "M" and not 8 <= reclen <= 8 + 2 * MAX_STRING:
            raise MalformedStream(f"metadata record of length {reclen} is malformed")
        if reclen > self.max_record:
            raise MalformedStream(f"header record of {reclen} bytes exceeds the bound")
        if avail < 9 + reclen:
            return None
        body, end = pos + 9, pos + 9 + reclen
        if ch in HEADER_TAGS:
            return HeaderField(ch, U64.unpack_from(buf, body)[0]), end
        if ch == "M":
            (kn,) = U32.unpack_from(buf, body)
            if 8 + kn > reclen or kn > MAX_STRING:
                raise MalformedStream("metadata key length does not fit its record")
            (vn,) = U32.unpack_from(buf, body + 4 + kn)
            if 8 + kn + vn != reclen or vn > MAX_STRING:
                raise MalformedStream("metadata value length does not fit its record")
            key = decode_string(bytes(buf[body + 4:body + 4 + kn]))
            value = decode_string(bytes(buf[body + 8 + kn:end]))
            return Metadata(key, value), end
        # Ceph's importer skips unknown header records by their length (e.g. the documented `F`).
        return Unknown(tag, bytes(buf[body:end])), end


# ------------------------------------------------------------------ format 1 (raw)

RAW_CHUNK = 4 << 20  # zero fill is produced in pieces of at most this size


class RawExportWriter:
    """`rbd export` format 1 is just the image bytes; this fills the gaps between the
    extents a caller supplies (ascending, non-overlapping) with zeros, without ever
    materialising more than `RAW_CHUNK` zeros at once."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.pos = 0

    def write(self, offset: int, data: bytes) -> Iterator[bytes]:
        if offset < self.pos or offset + len(data) > self.size:
            raise InvalidArgument(f"extent {offset}+{len(data)} out of order or beyond {self.size}")
        yield from self._zeros(offset)
        if data:
            yield bytes(data)
        self.pos = offset + len(data)

    def end(self) -> Iterator[bytes]:
        yield from self._zeros(self.size)

    def _zeros(self, upto: int) -> Iterator[bytes]:
        while self.pos < upto:
            n = min(RAW_CHUNK, upto - self.pos)
            self.pos += n
            yield bytes(n)


class RawImportReader:
    """Turns a raw export's bytes into `Write` records at their image offsets; with a known
    `size`, `close()` insists the stream was exactly that long."""

    def __init__(self, size: int | None = None) -> None:
        self.size = size
        self.pos = 0

    def feed(self, data: bytes) -> list[Write]:
        if not data:
            return []
        if self.size is not None and self.pos + len(data) > self.size:
            raise MalformedStream(f"raw export longer than the image size {self.size}")
        rec = Write(self.pos, bytes(data))
        self.pos += len(data)
        return [rec]

    def close(self) -> None:
        if self.size is not None and self.pos != self.size:
            raise TruncatedStream(f"raw export has {self.pos} of {self.size} bytes")


__all__ = [
    "ExportSnap", "ExportV2Reader", "ExportV2Writer", "RawExportWriter", "RawImportReader",
    "encode_export_v2", "encode_header_record",
]

"""`rbd import` and `rbd import-diff`: streams back into images.

Stream bytes are decoded by the sans-IO codecs in `shoal/rbd/stream_*.py`; options, texts and
exit codes are Ceph 16's (`src/tools/rbd/action/Import.cc`). One deliberate difference:
`import-diff` (and `import --export-format 2`) reads and checks the *whole* stream before it
touches the image, spooling stdin to a temporary file, so a truncated or corrupt stream fails
with Ceph's message and exit code yet leaves the image exactly as it was (Ceph applies records
as it reads them and leaves half a diff behind).
"""

from __future__ import annotations

import errno
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import IO, Any, BinaryIO

from shoal.cli.rados_cmd import err, strerror
from shoal.cli.rbd_args import (
    SNAP_NONE,
    VALIDATE_FULL,
    Args,
    ImageSpec,
    create_options,
    extract_spec,
    image_spec,
    path_arg,
)
from shoal.cli.rbd_image_cmd import create_image
from shoal.cli.rbd_session import API_ERRORS, Exit, Progress, Session, errno_of
from shoal.cli.rbd_streams_cmd import CHUNK, concurrency, ordered
from shoal.compat import rbd
from shoal.rbd.stream_diff import DiffReader, split_sparse
from shoal.rbd.stream_export import ExportV2Reader
from shoal.rbd.stream_records import (
    DIFF_BANNER_V1,
    BadBanner,
    DiffCount,
    DiffRecord,
    DiffStart,
    End,
    FromSnap,
    HeaderField,
    MalformedStream,
    Metadata,
    Protected,
    Size,
    StreamError,
    ToSnap,
    Unknown,
    Write,
    Zero,
)

DEFAULT_SPARSE_SIZE = 4096  # rbd's --sparse-size default


# -- reading streams back -------------------------------------------------------------------------------

class Failure(Exception):
    """A failed import: `message` (if any) for stderr, then rbd's "<op> failed: (N) ..." line.
    `started` says whether rbd had begun reporting progress (open and banner errors come first)."""

    def __init__(self, message: str | None, code: int, started: bool = True) -> None:
        super().__init__(message or strerror(code))
        self.message = message
        self.code = code
        self.started = started


def open_stream(path: str) -> IO[bytes]:
    """The stream as a seekable file: `-` (stdin) is spooled to a temporary file first, so the
    whole stream can be checked before anything is written."""
    if path != "-":
        if os.path.isdir(path):
            raise Failure("rbd: cannot import a directory", errno.EISDIR, started=False)
        try:
            return open(path, "rb")  # noqa: SIM115 - the caller closes it
        except OSError as exc:
            raise Failure(f"rbd: error opening {path}", exc.errno or errno.EIO, started=False) from None
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - returned to the caller
    while chunk := sys.stdin.buffer.read(CHUNK):
        spool.write(chunk)
    spool.seek(0)
    return spool


def record_size(rec: DiffRecord) -> int:
    """Bytes a v1 record takes in the stream."""
    match rec:
        case FromSnap(name) | ToSnap(name):
            return 5 + len(name.encode("utf-8", "surrogateescape"))
        case Size():
            return 9
        case Write(_, data):
            return 17 + len(data)
        case Zero():
            return 17
    return 1  # End, or an unknown byte skipped


# Ceph's message for a v1 stream that ends inside a record, by the record's tag.
_TRUNCATED = {0x66: "start snap name", 0x74: "end snap name", 0x73: "image size", 0x7A: "IO length"}


def _cut_short(f: BinaryIO, pos: int) -> Failure:
    """Where and how the stream ended early, in import-diff's words (EDOM, reported as EBADMSG)."""
    f.seek(pos)
    rest = f.read(17)
    if not rest:
        stage = "tag"
    elif rest[0] == 0x77:
        stage = "IO length" if len(rest) < 17 else "write data"
    else:
        stage = _TRUNCATED.get(rest[0], "tag")
    return Failure(f"rbd: failed to decode {stage}", errno.EBADMSG)


def _malformed(f: BinaryIO, pos: int, exc: MalformedStream) -> Failure:
    """A record that cannot be decoded; an oversized snapshot name is Ceph's read_string EINVAL."""
    f.seek(pos)
    tag = f.read(1)
    if tag in (b"f", b"t"):
        return Failure(f"rbd: failed to decode {_TRUNCATED[tag[0]]}", errno.EINVAL)
    return Failure(f"rbd: {exc}", exc.errno)


@dataclass
class DiffSummary:
    """What checking a v1 diff found: its snapshots, and the first fault (None for a sound
    stream)."""

    from_snap: str | None = None
    to_snap: str | None = None
    fault: Failure | None = None
    skipped: list[int] = field(default_factory=list)  # unknown tag bytes before the fault


def check_diff(f: BinaryIO) -> DiffSummary:
    """Read a whole v1 diff without applying it. The header records are fed a byte at a time,
    so that a fault in one of them still leaves the records before it known (import-diff
    checks the snapshots named before the fault first, as Ceph, reading in order, does)."""
    out = DiffSummary()
    banner = f.read(len(DIFF_BANNER_V1))
    if len(banner) < len(DIFF_BANNER_V1):
        raise Failure("rbd: failed to decode diff banner", errno.EBADMSG, started=False)
    if banner != DIFF_BANNER_V1:
        raise Failure("rbd: invalid or unexpected diff banner", errno.EINVAL, started=False)
    reader = DiffReader(1, strict=False)
    reader.feed(banner)
    consumed = len(banner)
    in_header = True
    while not reader.done:
        chunk = f.read(1 if in_header else CHUNK)
        if not chunk:
            out.fault = _cut_short(f, consumed)
            break
        try:
            records = reader.feed(chunk)
        except MalformedStream as exc:
            out.fault = _malformed(f, consumed, exc)
            break
        for rec in records:
            consumed += record_size(rec)
            match rec:
                case FromSnap(name):
                    out.from_snap = name
                case ToSnap(name):
                    out.to_snap = name
                case Write() | Zero() | End():
                    in_header = False
                case Unknown(tag):  # Ceph says so as it skips them, before any later fault
                    out.skipped.append(tag)
    return out


def records_of(f: BinaryIO) -> Iterator[tuple[DiffRecord, int]]:
    """(record, stream position after it) of an already checked v1 diff, from the start."""
    f.seek(0)
    reader = DiffReader(1, strict=False)
    pos = 0
    while chunk := f.read(CHUNK):
        for rec in reader.feed(chunk):
            pos += record_size(rec)
            yield rec, pos
        if reader.done:
            return


class DiffApplier:
    """Applies diff records to an image as import-diff does: `s` resizes, each `w` is split in
    --sparse-size chunks whose all-zero ones become write-zeroes, `z` writes zeroes, and `e`
    creates the end snapshot (protected when a v2 `p` said so)."""

    def __init__(self, image: Any, sparse_size: int, window: int) -> None:
        self.image = image
        self.sparse_size = sparse_size
        self.window = window

    def check_snaps(self, from_snap: str | None, to_snap: str | None) -> None:
        if from_snap is not None and not self.image.snap_exists(from_snap):
            raise Failure(f"start snapshot '{from_snap}' does not exist in the image, aborting", errno.EINVAL)
        if to_snap is not None and self.image.snap_exists(to_snap):
            raise Failure(f"end snapshot '{to_snap}' already exists, aborting", errno.EEXIST)

    def _io(self, rec: Write | Zero) -> Iterator[Callable[[], Any]]:
        image = self.image
        if isinstance(rec, Zero):
            yield lambda: image.write_zeroes(rec.offset, rec.length)
            return
        pieces = split_sparse(rec.offset, rec.data, self.sparse_size) if self.sparse_size else [rec]
        for piece in pieces:
            if isinstance(piece, Zero):
                yield lambda p=piece: image.write_zeroes(p.offset, p.length)
            else:
                yield lambda p=piece: image.write(p.data, p.offset)

    def apply(self, records: Iterable[tuple[DiffRecord, int]], progress: Callable[[int], None]) -> None:
        state: dict[str, Any] = {"to": None, "protected": False}

        def calls() -> Iterator[Callable[[], Any]]:
            for rec, pos in records:
                match rec:
                    case FromSnap(name):
                        self.check_snaps(name, None)
                    case ToSnap(name):
                        state["to"] = name
                        self.check_snaps(None, name)
                    case Protected(flag):
                        state["protected"] = flag
                    case Size(size):
                        if self.image.size() != size:
                            self.image.resize(size)
                    case Write() | Zero():
                        yield from self._io(rec)
                    case Unknown(tag):  # Ceph skips an unknown v1 tag byte by byte
                        err(f"unrecognized tag byte {tag} in stream; skipping")
                    case End():
                        return
                progress(pos)

        for _ in ordered(calls(), self.window):
            pass
        if state["to"] is not None:
            self.image.create_snap(state["to"])
            if state["protected"]:
                self.image.protect_snap(state["to"])


def _report(fl: Failure, pc: Progress, what: str) -> Exit:
    if fl.message:
        err(fl.message)
    if fl.started:
        pc.fail()
    err(f"rbd: {what} failed: {strerror(fl.code)}")
    return Exit(fl.code)


def cmd_import_diff(s: Session, a: Args) -> int:
    path = path_arg(a)
    spec = image_spec(a, snap=SNAP_NONE)
    image = s.open_image(s.open_pool(spec.pool, spec.namespace), spec.image, False)
    pc = Progress("Importing image diff", not a.flag("no-progress"))
    try:
        with open_stream(path) as f:
            total = os.fstat(f.fileno()).st_size
            summary = check_diff(f)
            applier = DiffApplier(image, a.get("sparse-size", DEFAULT_SPARSE_SIZE), concurrency(s))
            applier.check_snaps(summary.from_snap, summary.to_snap)
            if summary.fault is not None:
                for tag in summary.skipped:
                    err(f"unrecognized tag byte {tag} in stream; skipping")
                raise summary.fault
            applier.apply(records_of(f), lambda pos: pc.update(pos, total))
    except Failure as fl:
        raise _report(fl, pc, "import-diff") from None
    except API_ERRORS as exc:
        raise _report(Failure(None, errno_of(exc)), pc, "import-diff") from None
    finally:
        image.close()
    pc.finish()
    return 0


# -- import ------------------------------------------------------------------------------------------------

def import_dest(a: Args, path: str) -> ImageSpec:
    """Where `rbd import` puts the image: --dest-pool/--dest or the second positional, else the
    deprecated --pool/--image, else the file's base name in the default pool."""
    legacy = ImageSpec(pool=a.get("pool", ""))
    extract_spec(a.get("image") or path[max(path.rfind("/"), path.rfind("\\")) + 1:], VALIDATE_FULL, legacy,
                 namespace_allowed=False)
    spec = image_spec(a, dest=True, image_required=False, snap=SNAP_NONE, validation=VALIDATE_FULL,
                      preset=ImageSpec(pool=legacy.pool, snap=legacy.snap))
    spec.image = spec.image or legacy.image
    return spec


def _read_block(src: BinaryIO, size: int) -> bytes:
    """Up to `size` bytes, short only at the end of the input (a pipe may return less)."""
    parts: list[bytes] = []
    want = size
    while want and (chunk := src.read(want)):
        parts.append(chunk)
        want -= len(chunk)
    return b"".join(parts)


def _discard_image(ioctx: Any, name: str) -> None:
    """Remove a half-imported image (snapshots first), as rbd does after a failed import."""
    try:
        with rbd.Image(ioctx, name) as image:
            for snap in image.list_snaps():
                if image.is_protected_snap(snap["name"]):
                    image.unprotect_snap(snap["name"])
                image.remove_snap(snap["name"])
        rbd.RBD().remove(ioctx, name)
    except API_ERRORS:
        pass  # the import's own error is the one to report


def import_raw(s: Session, ioctx: Any, name: str, path: str, a: Args, pc: Progress) -> None:
    opts, _ = create_options(a, with_format=True)
    block = 1 << (opts.order or int(s.conf_get("rbd_default_order") or 22))
    from_stdin = path == "-"
    if from_stdin:
        src: BinaryIO = sys.stdin.buffer
        size = block  # grown by doubling as data arrives, trimmed at the end
    else:
        src = open_stream(path)
        size = os.fstat(src.fileno()).st_size
    sparse = a.get("sparse-size", DEFAULT_SPARSE_SIZE)
    try:
        try:
            create_image(s, ioctx, name, size, opts)
        except API_ERRORS as exc:
            raise Failure("rbd: image creation failed", errno_of(exc)) from None
        try:
            with rbd.Image(ioctx, name) as image:
                pos = 0

                def calls() -> Iterator[Callable[[], Any]]:
                    nonlocal pos, size
                    while data := _read_block(src, block):
                        if not from_stdin:  # from stdin the total is unknown: no percentages
                            pc.update(pos, size)
                        if from_stdin and pos + len(data) > size:
                            while pos + len(data) > size:
                                size *= 2
                            image.resize(size)
                        # All-zero chunks are not written: the new image reads back zeros there.
                        pieces = split_sparse(pos, data, sparse) if sparse else [Write(pos, data)]
                        for piece in pieces:
                            if isinstance(piece, Write):
                                yield lambda p=piece: image.write(p.data, p.offset)
                        pos += len(data)
                        if not from_stdin and pos >= size:
                            break

                for _ in ordered(calls(), 1 if from_stdin else concurrency(s)):
                    pass
                if from_stdin:
                    image.resize(pos)
        except (*API_ERRORS, OSError) as exc:
            _discard_image(ioctx, name)
            raise Failure("rbd: failed to import image", errno_of(exc)) from None
    finally:
        if not from_stdin:
            src.close()


@dataclass
class ExportHeader:
    fields: dict[str, int] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    diffs: int = 0
    size: int = 0  # the first diff's image size: what the image is created with


def check_export_v2(f: BinaryIO) -> ExportHeader:
    """Read a whole `--export-format 2` stream, keeping only its header."""
    out = ExportHeader()
    reader = ExportV2Reader()
    sized = False
    try:
        while chunk := f.read(CHUNK):
            for rec in reader.feed(chunk):
                match rec:
                    case HeaderField(tag, value):
                        out.fields[tag] = value
                    case Metadata(key, value):
                        out.metadata[key] = value
                    case DiffCount(count):
                        out.diffs = count
                    case Size(size) if not sized:
                        out.size, sized = size, True
        reader.close()
    except BadBanner:
        raise Failure("rbd: invalid or unexpected diff banner\nrbd: import header failed.", errno.EINVAL) from None
    except StreamError as exc:
        raise Failure(f"rbd: {exc}\nrbd: failed to import image", exc.errno or errno.EBADMSG) from None
    return out


def export_v2_diffs(f: BinaryIO) -> Iterator[Iterator[tuple[DiffRecord, int]]]:
    """The embedded diffs of a checked export-format-2 stream, each as an iterator of its
    records that ends at its `e`; records are read as they are consumed, never all at once."""
    f.seek(0)
    reader = ExportV2Reader()
    stream = (rec for chunk in iter(lambda: f.read(CHUNK), b"") for rec in reader.feed(chunk))

    def one_diff() -> Iterator[tuple[DiffRecord, int]]:
        for rec in stream:
            if isinstance(rec, (FromSnap, ToSnap, Protected, Size, Write, Zero, End)):
                yield rec, 0
            if isinstance(rec, End):
                return

    for rec in stream:
        if isinstance(rec, DiffStart):
            yield one_diff()


def import_v2(s: Session, ioctx: Any, name: str, path: str, a: Args, pc: Progress) -> None:
    opts, _ = create_options(a, with_format=True)
    with open_stream(path) as f:
        header = check_export_v2(f)
        h = header.fields
        # Options given on the command line win over the stream's header (Import.cc).
        o = replace(opts, order=opts.order if opts.order is not None else h.get("O"),
                    features=opts.features if opts.features is not None else h.get("T"),
                    stripe_unit=opts.stripe_unit if opts.stripe_unit is not None else h.get("U"),
                    stripe_count=opts.stripe_count if opts.stripe_count is not None else h.get("C"))
        try:
            create_image(s, ioctx, name, header.size, o)
        except API_ERRORS as exc:
            raise Failure("rbd: image creation failed", errno_of(exc)) from None
        try:
            with rbd.Image(ioctx, name) as image:
                for key, value in header.metadata.items():
                    image.metadata_set(key, value)
                applier = DiffApplier(image, a.get("sparse-size", DEFAULT_SPARSE_SIZE), concurrency(s))
                for i, records in enumerate(export_v2_diffs(f)):
                    applier.apply(records, lambda _pos: None)
                    pc.update(i + 1, header.diffs)
        except Failure as fl:
            _discard_image(ioctx, name)
            raise Failure(f"{fl.message}\nrbd: import-diff failed: {strerror(fl.code)}", fl.code) from None
        except API_ERRORS as exc:
            _discard_image(ioctx, name)
            raise Failure("rbd: failed to import image", errno_of(exc)) from None


def cmd_import(s: Session, a: Args) -> int:
    path = path_arg(a)
    spec = import_dest(a, path)
    _, warnings = create_options(a, with_format=True)
    for warning in warnings:
        err(warning)
    ioctx = s.open_pool(spec.pool, spec.namespace)
    pc = Progress("Importing image", not a.flag("no-progress"))
    try:
        if a.get("export-format", "1") == "2":
            import_v2(s, ioctx, spec.image, path, a, pc)
        else:
            import_raw(s, ioctx, spec.image, path, a, pc)
    except Failure as fl:
        raise _report(fl, pc, "import") from None
    pc.finish()
    return 0

"""`rbd export`, `export-diff` and `merge-diff`: images (and diffs) out to files or stdout.

The bytes come from the sans-IO codecs in `shoal/rbd/stream_*.py`; this module reads images
and moves the bytes, with Ceph 16's options, texts and exit codes (`src/tools/rbd/action/
Export.cc`, `MergeDiff.cc`). The way back in is `rbd_import_cmd.py`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from shoal.cli.rados_cmd import err
from shoal.cli.rbd_args import Args, ImageSpec, image_spec, path_arg, required
from shoal.cli.rbd_session import API_ERRORS, Exit, Progress, Session
from shoal.errors import InvalidArgument
from shoal.rbd.stream_diff import DiffReader, DiffWriter, is_zero
from shoal.rbd.stream_export import ExportSnap, ExportV2Writer, RawExportWriter
from shoal.rbd.stream_merge import merge_diffs
from shoal.rbd.stream_records import DIFF_BANNER_V1, MAX_STRING, FromSnap, Size, StreamError, ToSnap

CHUNK = 1 << 20  # bytes read from a stream file at a time
MAX_READ = 64 << 20  # the largest single image read, whatever the stripe period
HEADER_MAX = len(DIFF_BANNER_V1) + 2 * (5 + MAX_STRING) + 9  # banner, f, t and s records


def concurrency(s: Session) -> int:
    """rbd_concurrent_management_ops: image I/Os kept in flight by export and import."""
    return max(1, int(s.conf_get("rbd_concurrent_management_ops") or 10))


def ordered(calls: Iterable[Callable[[], Any]], window: int) -> Iterator[Any]:
    """Run the calls on a thread pool with at most `window` in flight; results in call order.

    python-rbd images may be used from many threads at once (librbd's and ours alike), which is
    how rbd keeps rbd_concurrent_management_ops requests outstanding.
    """
    with ThreadPoolExecutor(max_workers=window) as pool:
        pending: deque[Future[Any]] = deque()
        for call in calls:
            pending.append(pool.submit(call))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def read_pieces(image: Any, ranges: Iterable[tuple[int, int]], window: int) -> Iterator[tuple[int, bytes]]:
    """(offset, data) for each (offset, length), read concurrently, yielded in order."""
    def reader(off: int, length: int) -> Callable[[], tuple[int, bytes]]:
        return lambda: (off, image.read(off, length))
    return ordered((reader(off, length) for off, length in ranges), window)


def open_new_file(path: str) -> int:
    """rbd's O_EXCL create: an existing file is EEXIST, never overwritten."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)


def write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


# -- export / export-diff -------------------------------------------------------------------------------

def diff_extents(image: Any, size: int, from_snap: str | None, whole_object: bool) -> list[tuple[int, int, bool]]:
    extents: list[tuple[int, int, bool]] = []

    def collect(offset: int, length: int, exists: bool) -> int:
        extents.append((offset, length, bool(exists)))
        return 0

    image.diff_iterate(0, size, from_snap, collect, include_parent=True, whole_object=whole_object)
    return sorted(extents)


def write_diff(image: Any, writer: DiffWriter, from_snap: str | None, whole_object: bool, fd: int,
               window: int, pc: Progress | None) -> None:
    """One diff stream (header, extents, end) of the snapshot the image is set to."""
    write_all(fd, writer.header())
    extents = diff_extents(image, writer.size, from_snap, whole_object)
    present = [(off, length) for off, length, exists in extents if exists]
    data = read_pieces(image, present, window)
    for off, length, exists in extents:
        # An extent that reads back all zeros goes out as `z`, as Ceph's exporter does.
        write_all(fd, writer.extent(off, next(data)[1]) if exists else writer.zero(off, length))
        if pc is not None:
            pc.update(off, writer.size)
    write_all(fd, writer.end())


def export_raw(image: Any, fd: int, to_file: bool, window: int, pc: Progress) -> None:
    """Format 1: the image bytes, read a stripe period at a time. A regular file gets holes
    where a period reads back all zeros (seek, then ftruncate to the size), as rbd does."""
    size = image.size()
    period = min(image.stripe_count() * image.stat()["obj_size"], MAX_READ)
    ranges = [(off, min(period, size - off)) for off in range(0, size, period)]
    stream = RawExportWriter(size)
    for off, data in read_pieces(image, ranges, window):
        if to_file:
            if not is_zero(data):
                os.pwrite(fd, data, off)
        else:
            for piece in stream.write(off, data):
                write_all(fd, piece)
        pc.update(off, size)
    if to_file:
        os.ftruncate(fd, size)
    else:
        for piece in stream.end():
            write_all(fd, piece)


def export_v2(image: Any, fd: int, window: int, pc: Progress) -> None:
    """Format 2: the image header, then one v2 diff per snapshot and one to HEAD."""
    st = image.stat()
    snaps = sorted(image.list_snaps(), key=lambda sn: sn["id"])
    writer = ExportV2Writer(st["order"], image.features(), image.stripe_unit(), image.stripe_count(),
                            {str(k): str(v) for k, v in image.metadata_list()},
                            [ExportSnap(sn["name"], sn["size"], image.is_protected_snap(sn["name"]))
                             for sn in snaps], st["size"])
    write_all(fd, writer.header())
    previous: str | None = None
    for i in range(writer.diff_count):
        target = snaps[i]["name"] if i < len(snaps) else None
        image.set_snap(target)
        write_diff(image, writer.diff_writer(i), previous, False, fd, window, None)
        # Ceph counts a snapshot's diff as done only when the next one starts.
        pc.update(i + 1 if target is None else i, writer.diff_count)
        previous = target


@contextlib.contextmanager
def output(path: str, discard_on_error: bool) -> Iterator[tuple[int, bool]]:
    """(fd, is a regular file) to write an export to: stdout for `-`, else a new file (rbd's
    O_EXCL create: an existing file is EEXIST, never overwritten), removed again on failure
    when `discard_on_error`."""
    if path == "-":
        yield sys.stdout.fileno(), False
        return
    fd = open_new_file(path)
    try:
        yield fd, os.path.isfile(path)
    except BaseException:
        os.close(fd)
        if discard_on_error:
            os.unlink(path)
        raise
    os.close(fd)


def _export(s: Session, a: Args, what: str, discard_on_error: bool,
            body: Callable[[Any, ImageSpec, int, bool, Progress], None]) -> int:
    """Open the image (at its snapshot) and the output, run `body`, report as rbd does."""
    src = image_spec(a)
    path = path_arg(a)
    pc = Progress("Exporting image", not a.flag("no-progress"))
    with s.image(src, True, f"rbd: {what} error", errors=(OSError,), at_snap=True) as image, \
            output(path, discard_on_error) as (fd, to_file):
        try:
            body(image, src, fd, to_file, pc)
        except (*API_ERRORS, OSError):
            pc.fail()
            raise
    pc.finish()
    return 0


def cmd_export(s: Session, a: Args) -> int:
    def body(image: Any, _src: ImageSpec, fd: int, to_file: bool, pc: Progress) -> None:
        if a.get("export-format", "1") == "2":
            export_v2(image, fd, concurrency(s), pc)
        else:
            export_raw(image, fd, to_file, concurrency(s), pc)
    return _export(s, a, "export", False, body)


def cmd_export_diff(s: Session, a: Args) -> int:
    def body(image: Any, src: ImageSpec, fd: int, _to_file: bool, pc: Progress) -> None:
        writer = DiffWriter(1, a.get("from-snap"), src.snap or None, None, image.size())
        write_diff(image, writer, a.get("from-snap"), a.flag("whole-object"), fd, concurrency(s), pc)
    return _export(s, a, "export-diff", True, body)


# -- merge-diff ---------------------------------------------------------------------------------------------

class MergeError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _slurp(path: str, stdin_ok: bool) -> bytes:
    """A whole diff (merge_diffs works in memory); only the first may come from stdin."""
    if path == "-" and stdin_ok:
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise MergeError(f"rbd: error opening {path}", exc.errno or errno.EIO) from None


def _header_snaps(which: str, data: bytes) -> tuple[str, str]:
    """(from, to) snapshot names of a v1 diff, "" when absent (MergeDiff.cc compares them so)."""
    banner = data[:len(DIFF_BANNER_V1)]
    if banner != DIFF_BANNER_V1:
        raise MergeError(f"invalid banner '{banner.decode('utf-8', 'replace')}', expected "
                         f"'{DIFF_BANNER_V1.decode()}'\nrbd: failed to parse {which} diff header", errno.EINVAL)
    snaps = {"from": "", "to": ""}
    try:
        # The header records come first and take at most two names of MAX_STRING bytes.
        for rec in DiffReader(1).feed(data[:HEADER_MAX]):
            if isinstance(rec, FromSnap | ToSnap):
                snaps["from" if isinstance(rec, FromSnap) else "to"] = rec.name
            elif not isinstance(rec, Size):
                break
    except StreamError:
        raise MergeError(f"rbd: failed to parse {which} diff header", errno.EINVAL) from None
    return snaps["from"], snaps["to"]


def cmd_merge_diff(s: Session, a: Args) -> int:
    first, second = required(a, "first diff"), required(a, "second diff")
    path = path_arg(a)
    pc = Progress("Merging image diff", not a.flag("no-progress"))
    to_stdout = path == "-"
    fd = -1
    try:
        diffs = (_slurp(first, True), _slurp(second, False))
        try:
            fd = sys.stdout.fileno() if to_stdout else open_new_file(path)
        except OSError as exc:
            raise MergeError(f"rbd: error create {path}", exc.errno or errno.EIO) from None
        snaps = [_header_snaps(which, data) for which, data in zip(("first", "second"), diffs, strict=True)]
        if snaps[0][1] != snaps[1][0]:
            raise MergeError("The first TO snapshot must be equal with the second FROM snapshot, aborting",
                             errno.EINVAL)
        try:
            merged = merge_diffs([diffs[0]], [diffs[1]])
        except StreamError:
            raise MergeError("rbd: failed to merge diff chunk", errno.EDOM) from None
        except InvalidArgument:
            raise MergeError("The first TO snapshot must be equal with the second FROM snapshot, aborting",
                             errno.EINVAL) from None
        write_all(fd, merged)
    except (MergeError, OSError) as exc:
        code = exc.code if isinstance(exc, MergeError) else exc.errno or errno.EIO
        err(str(exc) if isinstance(exc, MergeError) else f"rbd: {exc}")
        pc.fail()
        err("rbd: merge-diff error")
        if fd >= 0 and not to_stdout:
            os.close(fd)
            os.unlink(path)
        raise Exit(code) from None
    if not to_stdout:
        os.close(fd)
    pc.finish()
    return 0

"""Image I/O: read, write, discard, write-zeroes, flush through the striping formula.

An image range is cut into per-object extents (striping.py) and the object ops go out
concurrently (at most IO_CONCURRENCY per call). Payloads are memoryview slices of the
caller's buffer; a read fills one zeroed bytearray in place.

Layering (ceph-facts §4): a read of a child object that does not exist falls through to
the parent image at the parent snapshot, for the part below the overlap; bytes past the
overlap are zeros. The first write (or partial discard) to a missing child object inside
the overlap copies the parent's data for the whole object up first, with cls
`rbd.copyup` in the same op vector as the write. When the image has snapshots and the
parent data is not all zeros the copy-up goes alone with an empty SnapContext, so the
following write clones it and the snapshots keep the parent data after a flatten
(librbd's "deep" copy-up).

With `rbd cache` on, a HEAD handle has a write-back cache (cache.py): `write` hands the
bytes to it (it decides between write-through and write-back and calls `write_direct`
for the cluster), `read` lays the cached bytes over what the cluster returns, and
`discard`/`write_zeroes` write the cache back first so they land after older writes.
Per-image librbd perf counters (rd, wr, discard, flush...) are counted here.
"""

from __future__ import annotations

import asyncio
import errno
import time
from collections.abc import Callable
from dataclasses import dataclass

from shoal.errors import from_errno
from shoal.rbd import object_map
from shoal.rbd.header import RBD
from shoal.rbd.image import ImageCtx
from shoal.rbd.ioctx import (
    EMPTY_SNAPC,
    IO_CONCURRENCY,
    SnapContext,
    add_call,
    errno_text,
    gather_bounded,
)
from shoal.rbd.striping import ObjectExtent
from shoal.wire.osd_op import OpBuilder

# librbd's rbd_skip_partial_discard=true with rbd_discard_granularity_bytes=64 KiB:
# a discard only frees whole 64 KiB blocks of an object (capped at the object size),
# or an object's tail when the granularity is the whole object.
DISCARD_GRANULARITY = 64 << 10


def clip(ictx: ImageCtx, off: int, length: int, size: int | None = None) -> int:
    """librbd's clip_io: an empty request is always fine; one starting at or past the end
    (of the selected version, or `size`) is EINVAL; one crossing it is shortened. Returns
    the usable length."""
    if off < 0 or length < 0:
        raise from_errno(errno.EINVAL, f"negative offset or length on image {ictx.spec_text()}")
    if length == 0:
        return 0
    size = ictx.size if size is None else size
    if off >= size:
        raise from_errno(errno.EINVAL, f"offset {off} is at or past the end ({size}) of image {ictx.spec_text()}")
    return min(length, size - off)


def _view(reply_data: bytes | bytearray | memoryview, ref: list[int] | None) -> memoryview:
    if ref is None:
        return memoryview(b"")
    return memoryview(reply_data)[ref[0]:ref[0] + ref[1]]


def _scatter(data: memoryview, ext: ObjectExtent, out: memoryview) -> None:
    """Copy object bytes (starting at ext.offset) into their places in the caller's buffer."""
    pos = 0
    for boff, blen in ext.buffer_extents:
        chunk = data[pos:pos + blen]
        if not chunk:
            return
        out[boff:boff + len(chunk)] = chunk
        pos += blen


def _count(ictx: ImageCtx, op: str, start: float, nbytes: int | None = None) -> None:
    """librbd's per-image counters for one op: OP, OP_bytes, OP_latency."""
    perf = ictx.perf
    if perf is not None:
        perf.inc(op)
        if nbytes is not None:
            perf.inc(f"{op}_bytes", nbytes)
        perf.tinc(f"{op}_latency", time.monotonic() - start)


# -- reads -------------------------------------------------------------------------------------
async def read(ictx: ImageCtx, off: int, length: int) -> bytes:
    """Bytes [off, off+length) of the selected version; shortened at the end (see clip)."""
    return bytes(await read_buffer(ictx, off, length))


async def read_buffer(ictx: ImageCtx, off: int, length: int) -> bytearray:
    """`read` into a fresh buffer handed to the caller as is (the NBD gateway sends it
    without the copy `bytes` would make)."""
    await ictx.refresh_if_needed()
    length = clip(ictx, off, length)
    start = time.monotonic()
    buf = bytearray(length)
    if length:
        cache = ictx.cache if ictx.snap_id is None else None
        # Taken before the cluster read: a writeback finishing meanwhile leaves the cluster
        # and these bytes alike, and a write arriving meanwhile is concurrent with the read.
        pieces = cache.overlay(off, length) if cache is not None else []
        out = memoryview(buf)
        if not (pieces and cache is not None and cache.covers(off, length)):
            await read_into(ictx, ictx.read_snap, off, length, out)
        for pos, piece in pieces:
            out[pos - off:pos - off + len(piece)] = piece
        del out
    _count(ictx, "rd", start, length)
    return buf


async def read_into(ictx: ImageCtx, snap: int, off: int, length: int, out: memoryview) -> None:
    """Fill `out` (zeroed, `length` bytes) with image bytes [off, off+length) as of `snap`."""
    om = await object_map.for_reads(ictx) if snap == ictx.read_snap else None
    extents = ictx.layout.file_to_extents(off, length)
    await gather_bounded((_read_object(ictx, snap, om, off, ext, out) for ext in extents), IO_CONCURRENCY)


async def _read_object(ictx: ImageCtx, snap: int, om: object_map.ObjectMap | None, off: int,
                       ext: ObjectExtent, out: memoryview) -> None:
    if om is None or om.may_exist(ext.objectno):
        b = OpBuilder()
        b.add("read", off=ext.offset, len=ext.length)
        reply = await ictx.data_io.operate(ictx.data_object(ext.objectno), b, snap=snap)
        if reply.result == 0:
            _scatter(_view(reply.data, reply.outs[0].get("d")), ext, out)
            return
        if reply.result != -errno.ENOENT:
            raise from_errno(reply.result, f"reading object {ext.objectno} of image {ictx.spec_text()}: "
                                           f"{errno_text(reply.result)}")
    await _read_parent(ictx, snap, off, ext, out)


async def _read_parent(ictx: ImageCtx, snap: int, off: int, ext: ObjectExtent, out: memoryview) -> None:
    """A missing child object reads as the parent's bytes below the overlap, zeros above."""
    overlap = ictx.parent_overlap_at(snap)
    if not overlap:
        return
    parent = await ictx.get_parent()
    limit = min(overlap, parent.size)
    reads = []
    for boff, blen in ext.buffer_extents:
        start = off + boff
        n = min(blen, limit - start)
        if n > 0:
            reads.append(read_into(parent, parent.read_snap, start, n, out[boff:boff + n]))
    await asyncio.gather(*reads)


def in_parent_overlap(ictx: ImageCtx, objectno: int) -> bool:
    """Whether any byte of a HEAD object reads through to the parent (its first byte is its lowest)."""
    overlap = ictx.parent_overlap_at(None)
    return bool(overlap) and ictx.layout.object_to_file(objectno, 0) < overlap


async def parent_object_data(ictx: ImageCtx, objectno: int) -> bytes:
    """The parent's bytes for a whole HEAD object (clipped to the overlap, without trailing
    zeros; b"" if all zero)."""
    overlap = min(ictx.parent_overlap_at(None), ictx.size_at(None))
    parent = await ictx.get_parent()
    overlap = min(overlap, parent.size)
    layout = ictx.layout
    buf = bytearray(layout.object_size)
    view = memoryview(buf)
    reads, end, pos = [], 0, 0
    for img_off, plen in layout.extent_to_file(objectno, 0, layout.object_size):
        n = min(plen, overlap - img_off)
        if n > 0:
            reads.append(read_into(parent, parent.read_snap, img_off, n, view[pos:pos + n]))
            end = pos + n
        pos += plen
    await asyncio.gather(*reads)
    del view
    # Trailing zeros need not be stored: past its end an object reads as zeros anyway, and a
    # shorter object keeps diffs and usage to what the parent really held.
    return bytes(buf[:end]).rstrip(b"\0")


AddOps = Callable[[OpBuilder], None]


async def copyup(ictx: ImageCtx, objectno: int, snapc: SnapContext, add_ops: AddOps | None) -> None:
    """Copy the parent's data into a missing child object, then run `add_ops` on it.

    cls copyup writes only if the object is still missing, so racing copy-ups are safe.
    """
    data = await parent_object_data(ictx, objectno)
    oid = ictx.data_object(objectno)
    what = f"copy-up of object {objectno} of image {ictx.spec_text()}"
    if snapc[1] and data:
        b = OpBuilder()
        add_call(b, RBD, "copyup", raw=data)
        await ictx.data_io.checked(oid, b, what, snapc=EMPTY_SNAPC)
        await object_map.after_deep_copyup(ictx, objectno, snapc[1])
        if add_ops is None:
            return
        b = OpBuilder()
        add_ops(b)
        await ictx.data_io.checked(oid, b, what, snapc=snapc)
        return
    b = OpBuilder()
    add_call(b, RBD, "copyup", raw=data)
    if add_ops is not None:
        add_ops(b)
    await ictx.data_io.checked(oid, b, what, snapc=snapc)


async def _modify_object(ictx: ImageCtx, snapc: SnapContext, objectno: int, add_ops: AddOps,
                         missing_ok: bool) -> None:
    """Run write ops on one object: copy-up first when it is missing inside the parent overlap.

    `missing_ok`: ops that mean nothing on a missing object (zero, truncate of a discard)
    are skipped for it instead of creating it.
    """
    oid = ictx.data_object(objectno)
    what = f"writing object {objectno} of image {ictx.spec_text()}"
    overlap = in_parent_overlap(ictx, objectno)
    if not overlap and not missing_ok:
        b = OpBuilder()
        add_ops(b)
        await ictx.data_io.checked(oid, b, what, snapc=snapc)
        return
    b = OpBuilder()
    b.add("assert_exists")
    add_ops(b)
    reply = await ictx.data_io.operate(oid, b, snapc=snapc)
    if reply.result == 0 or (reply.result == -errno.ENOENT and not overlap):
        return
    if reply.result != -errno.ENOENT:
        raise from_errno(reply.result, f"{what}: {errno_text(reply.result)}")
    await copyup(ictx, objectno, snapc, add_ops)


# -- writes ------------------------------------------------------------------------------------
@dataclass
class _WriteTracker:
    """Registers a write so that a later flush waits for it."""

    ictx: ImageCtx
    fut: asyncio.Future[None] | None = None

    async def __aenter__(self) -> None:
        self.fut = asyncio.get_running_loop().create_future()
        self.ictx.writes_in_flight.add(self.fut)

    async def __aexit__(self, *exc: object) -> None:
        assert self.fut is not None
        self.ictx.writes_in_flight.discard(self.fut)
        self.fut.set_result(None)


async def write(ictx: ImageCtx, off: int, data: bytes | bytearray | memoryview) -> int:
    """Write `data` at `off`; returns the bytes written (fewer when it crosses the end)."""
    await ictx.refresh_if_needed()
    ictx.require_writable(f"writing to image {ictx.spec_text()}")
    length = clip(ictx, off, len(data))
    if not length:
        return 0
    start = time.monotonic()
    view = memoryview(data)[:length]
    if ictx.cache is not None:
        await ictx.cache.write(off, view)
    else:
        await write_direct(ictx, off, view)
    _count(ictx, "wr", start, length)
    return length


async def write_direct(ictx: ImageCtx, off: int, view: memoryview) -> None:
    """Write image bytes to the cluster (the cache's writeback and write-through path);
    `view` is already clipped to the image."""
    length = len(view)
    async with ictx.write_guard(), _WriteTracker(ictx):
        # Taking the exclusive lock may have followed another client's header change (a
        # snapshot): the SnapContext is read only once the lock is ours.
        await ictx.refresh_if_needed()
        snapc = ictx.snapc
        extents = ictx.layout.file_to_extents(off, length)
        await object_map.before_write(ictx, [e.objectno for e in extents])

        def payload(ext: ObjectExtent) -> bytes | memoryview:
            if len(ext.buffer_extents) == 1:
                boff, blen = ext.buffer_extents[0]
                return view[boff:boff + blen]
            return b"".join(view[boff:boff + blen] for boff, blen in ext.buffer_extents)

        def ops_for(ext: ObjectExtent) -> AddOps:
            chunk = payload(ext)

            def add(b: OpBuilder) -> None:
                b.add("write", chunk, off=ext.offset)

            return add

        await gather_bounded((_modify_object(ictx, snapc, e.objectno, ops_for(e), missing_ok=False)
                              for e in extents), IO_CONCURRENCY)


async def discard(ictx: ImageCtx, off: int, length: int, skip_partial: bool = True) -> None:
    """Discard a range: it reads back as zeros. With `skip_partial` (python-rbd's discard,
    rbd_skip_partial_discard) only whole 64 KiB blocks of each object are affected;
    without it (write_zeroes) every byte is zeroed."""
    await ictx.refresh_if_needed()
    ictx.require_writable(f"discarding from image {ictx.spec_text()}")
    length = clip(ictx, off, length)
    if not length:
        return
    start = time.monotonic()
    if ictx.cache is not None:
        await ictx.cache.flush()  # cached older writes of the range must land first
    async with ictx.write_guard(), _WriteTracker(ictx):
        await ictx.refresh_if_needed()  # as in write(): the SnapContext once the lock is ours
        snapc = ictx.snapc
        plans = await _discard_plans(ictx, off, length, skip_partial)
        removed = [p.objectno for p in plans if p.action == "remove"]
        await object_map.before_write(ictx, [p.objectno for p in plans if p.action != "remove"])
        await gather_bounded((_discard_object(ictx, snapc, p) for p in plans), IO_CONCURRENCY)
        await object_map.after_remove(ictx, removed)
    _count(ictx, "discard", start, length)


@dataclass(frozen=True)
class _DiscardPlan:
    objectno: int
    action: str  # remove | empty (masks the parent) | truncate | zero
    start: int
    length: int


async def _discard_plans(ictx: ImageCtx, off: int, length: int, skip_partial: bool) -> list[_DiscardPlan]:
    """librbd's per-object discard actions: a whole object is removed (or, inside the parent
    overlap, left empty so it masks the parent); a tail is truncated; anything else zeroed.
    Object bytes past the image end never hold data, so a piece reaching the end counts as a tail."""
    osz = ictx.layout.object_size
    gran = min(DISCARD_GRANULARITY, osz) if skip_partial else 1
    om = await object_map.for_writes(ictx)
    plans = []
    for ext in ictx.layout.file_to_extents(off, length):
        start, end = ext.offset, ext.offset + ext.length
        # librbd's prune_object_extents: align to the granularity, except a tail of the
        # object when the granularity is the whole object (truncating it frees space).
        if gran < osz or end < osz:
            start, end = -(-start // gran) * gran, end // gran * gran
            if end <= start:
                continue
        in_overlap = in_parent_overlap(ictx, ext.objectno)
        if om is not None and not om.may_exist(ext.objectno) and not in_overlap:
            continue  # nothing there to discard
        last_boff, last_blen = ext.buffer_extents[-1]
        tail = end == osz or (end == ext.offset + ext.length and off + last_boff + last_blen == ictx.size)
        if start == 0 and tail:
            action = "empty" if in_overlap else "remove"
        else:
            action = "truncate" if tail else "zero"
        plans.append(_DiscardPlan(ext.objectno, action, start, end - start))
    return plans


async def _discard_object(ictx: ImageCtx, snapc: SnapContext, plan: _DiscardPlan) -> None:
    oid = ictx.data_object(plan.objectno)
    what = f"discarding object {plan.objectno} of image {ictx.spec_text()}"
    if plan.action == "remove":
        b = OpBuilder()
        b.add("delete")
        reply = await ictx.data_io.operate(oid, b, snapc=snapc)
        if reply.result < 0 and reply.result != -errno.ENOENT:
            raise from_errno(reply.result, f"{what}: {errno_text(reply.result)}")
    elif plan.action == "empty":
        b = OpBuilder()
        b.add("create", excl=False)
        b.add("truncate", size=0)
        await ictx.data_io.checked(oid, b, what, snapc=snapc)
    elif plan.action == "truncate":
        def truncate(b: OpBuilder) -> None:
            b.add("truncate", size=plan.start)

        await _modify_object(ictx, snapc, plan.objectno, truncate, missing_ok=True)
    else:
        def zero(b: OpBuilder) -> None:
            b.add("zero", off=plan.start, len=plan.length)

        await _modify_object(ictx, snapc, plan.objectno, zero, missing_ok=True)


async def write_zeroes(ictx: ImageCtx, off: int, length: int) -> None:
    await discard(ictx, off, length, skip_partial=False)


async def flush(ictx: ImageCtx) -> None:
    """The user's flush: write back the cache (and leave its write-through phase), then
    wait for the writes issued before this call."""
    start = time.monotonic()
    pending = list(ictx.writes_in_flight)
    if ictx.cache is not None:
        await ictx.cache.flush(user=True)
    if pending:
        await asyncio.gather(*pending)
    _count(ictx, "flush", start)


"""Resize: grow is a header update; shrink first trims the data past the new end.

Shrinking removes the objects wholly past the new end and truncates (or zeroes) the part
of the boundary objects past it, with the image's SnapContext, so snapshots keep the old
data. The header's `set_size` clamps the parent overlap (cls), so bytes past a shrink
never read through to the parent again. The object map follows the object count.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any

from shoal.errors import from_errno
from shoal.rbd import object_map
from shoal.rbd.image import ImageCtx
from shoal.rbd.ioctx import bounded_each, errno_text, gather_bounded
from shoal.wire.osd_op import OpBuilder

Progress = Callable[[int, int], Any] | None


async def resize(ictx: ImageCtx, size: int, allow_shrink: bool = True, progress: Progress = None,
                 concurrency: int = 10) -> None:
    """EROFS on a read-only handle; EINVAL for a shrink with `allow_shrink` False."""
    ictx.require_writable(f"resizing image {ictx.spec_text()}")
    if size < 0:
        raise from_errno(errno.EINVAL, f"resizing image {ictx.name}: negative size")
    async with ictx.op_guard(), ictx.gate.exclusive():
        await ictx.refresh()
        if size < ictx.st.size and not allow_shrink:
            raise from_errno(errno.EINVAL, f"resizing image {ictx.name}: shrinking is not allowed")
        await resize_locked(ictx, size, progress, concurrency)


async def resize_locked(ictx: ImageCtx, size: int, progress: Progress, concurrency: int) -> None:
    """Resize with the op lock held and writes blocked (also used by rollback)."""
    old = ictx.st.size
    if size == old:
        return
    if size < old:
        await _trim(ictx, size, old, progress, concurrency)
    await object_map.resize(ictx, size)
    await ictx.header.set_size(size)
    await ictx.header_updated()


async def _trim(ictx: ImageCtx, new_size: int, old_size: int, progress: Progress, concurrency: int) -> None:
    layout = ictx.layout
    snapc = ictx.snapc
    first_gone, old_count = layout.object_count(new_size), layout.object_count(old_size)
    om = await object_map.for_writes(ictx)
    gone = [n for n in range(first_gone, old_count) if om is None or om.may_exist(n)]
    total = len(gone)
    done = 0

    async def remove(objno: int) -> None:
        nonlocal done
        b = OpBuilder()
        b.add("delete")
        reply = await ictx.data_io.operate(ictx.data_object(objno), b, snapc=snapc)
        if reply.result < 0 and reply.result != -errno.ENOENT:
            raise from_errno(reply.result, f"removing object {objno} of image {ictx.name}: {errno_text(reply.result)}")
        done += 1
        if progress is not None:
            progress(done, total)

    await bounded_each(gone, concurrency, remove)
    await object_map.after_remove(ictx, gone)
    # The boundary objects: the rest of the stripe period holding the new end.
    period = layout.period
    boundary_end = min(old_size, -(-new_size // period) * period)
    if boundary_end <= new_size:
        return

    async def cut(objno: int, off: int) -> None:
        # Within an object image offsets grow with object offsets: every byte from `off` on
        # lies past the new end, so truncating is always right.
        b = OpBuilder()
        b.add("assert_exists")
        b.add("truncate", size=off)
        reply = await ictx.data_io.operate(ictx.data_object(objno), b, snapc=snapc)
        if reply.result < 0 and reply.result != -errno.ENOENT:
            raise from_errno(reply.result, f"trimming object {objno} of image {ictx.name}: "
                                           f"{errno_text(reply.result)}")

    await gather_bounded((cut(e.objectno, e.offset)
                          for e in layout.file_to_extents(new_size, boundary_end - new_size)
                          if e.objectno < first_gone), concurrency)

"""BLOCK_STATUS `base:allocation` from the object map: a data object that can't exist is a
hole that reads as zeros, so `nbdcopy`/`qemu-img convert` skip it.

Which map is trusted (object_map.py): a snapshot's own map; for HEAD the map this handle
keeps while it owns the exclusive lock, else the map as stored now — writers mark an
object EXISTS there before writing it, so a fresh copy never calls written data a hole.
Without a usable map every byte is reported as data (always correct, just slower to copy).
Objects that read through to a parent are data too (the parent is not consulted).
"""

from __future__ import annotations

from shoal.nbd import constants as C
from shoal.rbd import object_map
from shoal.rbd.image import ImageCtx
from shoal.rbd.ioctx import CEPH_NOSNAP

HOLE = C.STATE_HOLE | C.STATE_ZERO


async def _trusted_map(ictx: ImageCtx) -> object_map.ObjectMap | None:
    if not object_map.enabled(ictx):
        return None
    if ictx.snap_id is not None:
        return await object_map.for_reads(ictx)
    held = object_map.head_map(ictx)
    if held is not None and ictx.exclusive_owner:
        return held
    return await object_map.load(ictx, None)


async def extents(ictx: ImageCtx, off: int, length: int) -> list[tuple[int, int]]:
    """(length, flags) runs covering [off, off+length) in order, unmerged."""
    await ictx.refresh_if_needed()
    om = await _trusted_map(ictx)
    if om is None:
        return [(length, 0)]
    overlap = ictx.parent_overlap_at(ictx.snap_id if ictx.snap_id is not None else CEPH_NOSNAP)
    pieces: list[tuple[int, int, int]] = []
    for ext in ictx.layout.file_to_extents(off, length):
        data = om.may_exist(ext.objectno) or (overlap and ictx.layout.object_to_file(ext.objectno, 0) < overlap)
        for boff, blen in ext.buffer_extents:
            pieces.append((boff, blen, 0 if data else HOLE))
    pieces.sort()
    return [(blen, flags) for _, blen, flags in pieces]

"""diff_iterate: the extents of an image that changed between a snapshot and the selected version.

As librbd's DiffIterate: the range is walked one stripe period at a time; for each data
object the OSD's `list_snaps` answer (clones, their snaps and overlaps) says which object
bytes differ (snap_diff.py), mapped back to image offsets. With `whole_object` and the
fast-diff feature the object maps answer instead, without touching the data objects.
Within a period the extents are sorted and adjacent ones of the same kind merged, which
is what callers (export-diff) see from librbd.

From the beginning of time (`from_snap` None) with `include_parent`, a child object that
does not exist reports the parent's allocated extents below the overlap instead.
`exists` False means "now zeros" (a removed or truncated object).
"""

from __future__ import annotations

import errno
from collections.abc import AsyncIterator

from shoal.errors import from_errno
from shoal.rbd import object_map
from shoal.rbd.image import ImageCtx
from shoal.rbd.io import clip
from shoal.rbd.ioctx import errno_text, gather_bounded
from shoal.rbd.snap_diff import Extents, SnapSetInfo, calc_snap_set_diff, intersect, normalize
from shoal.rbd.striping import ObjectExtent
from shoal.wire.osd_op import OpBuilder

DiffExtent = tuple[int, int, bool]  # image offset, length, exists

# Objects whose list_snaps go out together (results are still reported in image order).
LIST_SNAPS_BATCH = 32


def _merge(items: list[DiffExtent]) -> list[DiffExtent]:
    out: list[DiffExtent] = []
    for off, length, exists in sorted(items):
        if out and out[-1][0] + out[-1][1] == off and out[-1][2] == exists:
            out[-1] = (out[-1][0], out[-1][1] + length, exists)
        else:
            out.append((off, length, exists))
    return out


def _image_pieces(base: int, ext: ObjectExtent) -> Extents:
    return [(base + boff, blen) for boff, blen in ext.buffer_extents]


class _Differ:
    def __init__(self, ictx: ImageCtx, from_id: int, end_id: int, include_parent: bool, whole_object: bool,
                 concurrency: int) -> None:
        self.ictx = ictx
        self.from_id = from_id
        self.end_id = end_id
        self.include_parent = include_parent
        self.whole_object = whole_object
        self.concurrency = concurrency
        self.parent_extents: Extents = []
        self.states: bytearray | None = None

    async def prepare(self) -> None:
        ictx = self.ictx
        if self.whole_object:
            self.states = await object_map.diff_states(ictx, self.from_id, self.end_id)
        overlap = ictx.parent_overlap_at(self.end_id)
        if self.include_parent and self.from_id == 0 and overlap:
            parent = await ictx.get_parent()
            overlap = min(overlap, parent.size)
            found: list[tuple[int, int]] = []
            async for batch in diff_iterate(parent, None, 0, overlap, True, self.whole_object, self.concurrency):
                found.extend((o, n) for o, n, exists in batch if exists)
            self.parent_extents = normalize(found)

    def _parent(self, base: int, ext: ObjectExtent) -> list[DiffExtent]:
        if not self.parent_extents:
            return []
        return [(o, n, True) for o, n in intersect(_image_pieces(base, ext), self.parent_extents)]

    def _fast(self, base: int, ext: ObjectExtent) -> list[DiffExtent]:
        assert self.states is not None
        state = self.states[ext.objectno] if ext.objectno < len(self.states) else object_map.DIFF_HOLE
        if state == object_map.DIFF_HOLE and self.from_id == 0:
            return self._parent(base, ext)
        if state in (object_map.DIFF_HOLE_UPDATED, object_map.DIFF_DATA_UPDATED):
            exists = state == object_map.DIFF_DATA_UPDATED
            return [(o, n, exists) for o, n in _image_pieces(base, ext)]
        return []

    async def _listed(self, base: int, ext: ObjectExtent) -> list[DiffExtent]:
        ictx = self.ictx
        b = OpBuilder()
        b.add("list_snaps")
        reply = await ictx.data_io.operate(ictx.data_object(ext.objectno), b)
        if reply.result == -errno.ENOENT:
            return self._parent(base, ext) if self.from_id == 0 else []
        if reply.result < 0:
            raise from_errno(reply.result, f"listing the snapshots of object {ext.objectno} of image "
                                           f"{ictx.spec_text()}: {errno_text(reply.result)}")
        od = calc_snap_set_diff(SnapSetInfo.from_wire(reply.outs[0]), self.from_id, self.end_id)
        if not od.extents and not od.whole_object:
            return self._parent(base, ext) if self.from_id == 0 and not od.end_exists else []
        exists = od.end_exists or od.whole_object
        if self.whole_object or od.whole_object:
            return [(o, n, exists) for o, n in _image_pieces(base, ext)]
        found: list[DiffExtent] = []
        opos = ext.offset
        for boff, blen in ext.buffer_extents:
            for s, n in intersect([(opos, blen)], od.extents):
                found.append((base + boff + (s - opos), n, exists))
            opos += blen
        return found

    async def object_diff(self, base: int, ext: ObjectExtent) -> list[DiffExtent]:
        if self.states is not None:
            return self._fast(base, ext)
        return await self._listed(base, ext)


async def diff_iterate(ictx: ImageCtx, from_snap: str | int | None, off: int, length: int,
                       include_parent: bool = True, whole_object: bool = False,
                       concurrency: int = 10, end_snap: int | None = None) -> AsyncIterator[list[DiffExtent]]:
    """Yield the changed extents, one sorted batch per stripe period (batches may be empty).

    `from_snap` is a snapshot name, a snap id, or None for the beginning; the end is the
    version the image handle has selected (or snap id `end_snap`). ENOENT for an unknown
    snapshot, EINVAL when `from_snap` is newer than the end.
    """
    await ictx.refresh_if_needed()
    if end_snap is None and ictx.snap_id is None:
        await ictx.flush_cache()  # the diff is read from the cluster: cached writes go there first
    if from_snap is None:
        from_id = 0
    elif isinstance(from_snap, int):
        from_id = ictx.snap_info(from_snap).id
    else:
        from_id = ictx.snap_by_name(from_snap).id
    end_id = ictx.read_snap if end_snap is None else end_snap
    if from_id == end_id:
        return
    if from_id > end_id:
        raise from_errno(errno.EINVAL, f"diff of image {ictx.spec_text()}: the start snapshot is newer than the end")
    length = clip(ictx, off, length, ictx.size_at(end_id))
    if not length:
        return
    differ = _Differ(ictx, from_id, end_id, include_parent, whole_object, concurrency)
    await differ.prepare()
    period = ictx.layout.period
    periods: list[tuple[int, int]] = []
    pos, end = off, off + length
    while pos < end:
        n = min(end, (pos // period + 1) * period) - pos
        periods.append((pos, n))
        pos += n
    per_batch = max(1, LIST_SNAPS_BATCH // ictx.layout.stripe_count)
    for i in range(0, len(periods), per_batch):
        batch = periods[i:i + per_batch]
        work = [(p_off, ext) for p_off, p_len in batch for ext in ictx.layout.file_to_extents(p_off, p_len)]
        results = await gather_bounded((differ.object_diff(p_off, ext) for p_off, ext in work), concurrency)
        by_period: dict[int, list[DiffExtent]] = {p_off: [] for p_off, _ in batch}
        for (p_off, _), found in zip(work, results, strict=True):
            by_period[p_off].extend(found)
        for p_off, _ in batch:
            yield _merge(by_period[p_off])


"""The object map: which data objects of an image (or of one snapshot) may exist.

Stored in `rbd_object_map.<id>` (HEAD) and `rbd_object_map.<id>.<%016x snap>` by the cls
object_map_* methods, 2 bits per object: NONEXISTENT, EXISTS (written since the last
snapshot), PENDING (being removed), EXISTS_CLEAN (unchanged since the last snapshot).

Who trusts it, as librbd:
* reads at a snapshot use that snapshot's map (immutable once taken);
* HEAD's map is loaded by the handle that writes and kept current by it: a write first
  marks its objects EXISTS on disk, a removal marks them NONEXISTENT afterwards, so a
  crash never leaves data the map hides. Reads trust it only while the handle owns the
  exclusive lock (librbd's rule), which also makes this handle the only writer;
* fast-diff and du load the maps they compare afresh (diff_states).
A map that is missing or of the wrong size is not used (the feature flag
OBJECT_MAP_INVALID is set, as librbd does); callers then fall back to asking the OSDs.
"""

from __future__ import annotations

import asyncio
import errno
import weakref
from typing import TYPE_CHECKING, Any

from shoal.errors import from_errno
from shoal.rbd import features as F
from shoal.rbd import naming
from shoal.rbd.header import RBD, remove_object
from shoal.rbd.ioctx import CEPH_NOSNAP, IoCtx, add_call, bounded_each, is_errno
from shoal.wire.osd_op import OpBuilder

if TYPE_CHECKING:
    from shoal.rbd.image import ImageCtx

NONEXISTENT, EXISTS, PENDING, EXISTS_CLEAN = 0, 1, 2, 3
FLAG_OBJECT_MAP_INVALID = 1  # RBD_FLAG_OBJECT_MAP_INVALID
FLAG_FAST_DIFF_INVALID = 2  # RBD_FLAG_FAST_DIFF_INVALID

# Unpack one map byte into its four object states (most significant pair first).
_UNPACK = [bytes(((b >> 6) & 3, (b >> 4) & 3, (b >> 2) & 3, b & 3)) for b in range(256)]


def unpack_states(size: int, bits: bytes) -> bytearray:
    return bytearray(b"".join(_UNPACK[b] for b in bits)[:size])


def pack_states(states: bytes | bytearray) -> bytes:
    padded = bytes(states) + bytes(-len(states) % 4)
    return bytes((padded[i] << 6) | (padded[i + 1] << 4) | (padded[i + 2] << 2) | padded[i + 3]
                 for i in range(0, len(padded), 4))


class ObjectMap:
    """One version's map held in memory: one state byte per object."""

    def __init__(self, states: bytearray) -> None:
        self.states = states
        # objno -> the update in flight for it: later writers to the object wait for it,
        # so no write reaches an object before the map on disk says it may exist.
        self._updating: dict[int, asyncio.Future[None]] = {}

    def __len__(self) -> int:
        return len(self.states)

    def may_exist(self, objno: int) -> bool:
        return objno >= len(self.states) or self.states[objno] != NONEXISTENT


def map_oid(ictx: ImageCtx, snap_id: int | None) -> str:
    return naming.object_map_object(ictx.id, CEPH_NOSNAP if snap_id is None else snap_id)


async def _load_raw(io: IoCtx, oid: str) -> dict[str, Any] | None:
    """cls `object_map_load` of one map object ({"size", "bits"}), or None if it is missing
    or corrupt."""
    try:
        return dict(await io.call(oid, RBD, "object_map_load", what=f"loading object map {oid}"))
    except Exception as exc:
        if is_errno(exc, errno.ENOENT, errno.EINVAL):
            return None
        raise


async def load_states(io: IoCtx, oid: str) -> bytearray | None:
    """The states stored in one map object, or None if it is missing or corrupt."""
    out = await _load_raw(io, oid)
    return None if out is None else unpack_states(int(out["size"]), bytes(out["bits"]))


def enabled(ictx: ImageCtx) -> bool:
    return bool(ictx.st.features & F.OBJECT_MAP)


async def load(ictx: ImageCtx, snap_id: int | None) -> ObjectMap | None:
    """The map of HEAD (None) or a snapshot if it is present and matches the version's size."""
    if not enabled(ictx):
        return None
    flags = ictx.st.flags if snap_id is None else ictx.snap_info(snap_id).flags
    if flags & FLAG_OBJECT_MAP_INVALID:
        return None
    states = await load_states(ictx.io, map_oid(ictx, snap_id))
    if states is None or len(states) != ictx.layout.object_count(ictx.size_at(snap_id)):
        await _invalidate(ictx, snap_id)
        return None
    return ObjectMap(states)


async def _invalidate(ictx: ImageCtx, snap_id: int | None) -> None:
    if ictx.read_only:
        return
    mask = FLAG_OBJECT_MAP_INVALID | FLAG_FAST_DIFF_INVALID
    await ictx.header.set_flags(mask, mask, CEPH_NOSNAP if snap_id is None else snap_id)
    await ictx.refresh()


async def for_reads(ictx: ImageCtx) -> ObjectMap | None:
    """The map reads of the selected version may trust (see the module doc), loading it once.

    HEAD's only while this handle owns the exclusive lock: without the lock another
    handle may create objects this handle's copy of the map doesn't know about."""
    if not enabled(ictx) or (ictx.snap_id is None and not (ictx.lock is not None and ictx.exclusive_owner)):
        return None
    return await _cached(ictx, ictx.snap_id)


async def for_writes(ictx: ImageCtx) -> ObjectMap | None:
    """HEAD's map, loaded by the first write of this handle (where librbd takes the lock)."""
    if not enabled(ictx):
        return None
    return await _cached(ictx, None)


# One load at a time per handle: callers that find the map missing while another loads it
# wait for that load. Two concurrent loads could otherwise each install their own copy, and
# the later one (read before the earlier one's updates reached disk) would hide objects that
# were just written: reads through this handle would then return zeros for them.
_loading: weakref.WeakKeyDictionary[ImageCtx, asyncio.Future[None]] = weakref.WeakKeyDictionary()


async def _cached(ictx: ImageCtx, snap_id: int | None) -> ObjectMap | None:
    version = CEPH_NOSNAP if snap_id is None else snap_id
    while ictx.object_map_for != version:
        pending = _loading.get(ictx)
        if pending is not None:
            await asyncio.shield(pending)
            continue
        done = asyncio.get_running_loop().create_future()
        _loading[ictx] = done
        try:
            om = await load(ictx, snap_id)
            ictx.object_map, ictx.object_map_for = om, version
        finally:
            del _loading[ictx]
            done.set_result(None)
    return ictx.object_map


def head_map(ictx: ImageCtx) -> ObjectMap | None:
    """HEAD's map if this handle holds it in memory (to keep it in step with whole-map changes)."""
    return ictx.object_map if ictx.object_map_for == CEPH_NOSNAP else None


def _runs(objnos: list[int]) -> list[tuple[int, int]]:
    """Sorted object numbers as [start, end) runs, so each run is one cls update."""
    runs: list[tuple[int, int]] = []
    for n in sorted(set(objnos)):
        if runs and runs[-1][1] == n:
            runs[-1] = (runs[-1][0], n + 1)
        else:
            runs.append((n, n + 1))
    return runs


async def _update(ictx: ImageCtx, om: ObjectMap, objnos: list[int], state: int) -> None:
    oid = map_oid(ictx, None)
    loop = asyncio.get_running_loop()
    mine: dict[int, asyncio.Future[None]] = {}
    for n in objnos:
        if n not in om._updating:
            mine[n] = om._updating[n] = loop.create_future()
    try:
        async def one(run: tuple[int, int]) -> None:
            await ictx.io.call(oid, RBD, "object_map_update", {
                "start_object_no": run[0], "end_object_no": run[1], "new_object_state": state},
                what=f"updating the object map of image {ictx.spec_text()}")

        await asyncio.gather(*(one(r) for r in _runs(list(mine))))
        for n in mine:
            om.states[n] = state
    finally:
        for n, fut in mine.items():
            del om._updating[n]
            fut.set_result(None)


async def before_write(ictx: ImageCtx, objnos: list[int]) -> None:
    """Mark objects EXISTS on disk before data is written to them (skipped when already so)."""
    om = await for_writes(ictx)
    if om is None:
        return
    waits = [om._updating[n] for n in objnos if n in om._updating]
    if waits:
        await asyncio.gather(*waits)
    todo = [n for n in objnos if n < len(om) and om.states[n] != EXISTS]
    if todo:
        await _update(ictx, om, todo, EXISTS)


async def after_remove(ictx: ImageCtx, objnos: list[int]) -> None:
    """Mark removed objects NONEXISTENT (after the removal: a crash in between is harmless)."""
    om = await for_writes(ictx)
    if om is None:
        return
    todo = [n for n in objnos if n < len(om) and om.states[n] != NONEXISTENT]
    if todo:
        await _update(ictx, om, todo, NONEXISTENT)


async def after_deep_copyup(ictx: ImageCtx, objno: int, snaps: list[int]) -> None:
    """A copy-up that the snapshots share (see io.copyup) makes the object exist in them too:
    the oldest sees it appear (EXISTS), the newer ones see no change (EXISTS_CLEAN)."""
    if not enabled(ictx):
        return

    async def mark(snap: int, state: int) -> None:
        b = OpBuilder()
        b.add("assert_exists")  # a snapshot without a map (invalid): nothing to keep in step
        add_call(b, RBD, "object_map_update", {"start_object_no": objno, "end_object_no": objno + 1,
                                                "new_object_state": state})
        reply = await ictx.io.operate(map_oid(ictx, snap), b)
        if reply.result < 0 and reply.result not in (-errno.ENOENT, -errno.ERANGE):
            raise from_errno(reply.result, f"updating the object map of snapshot {snap} of image {ictx.spec_text()}")

    ordered = sorted(snaps)
    await asyncio.gather(*(mark(s, EXISTS if i == 0 else EXISTS_CLEAN) for i, s in enumerate(ordered)))
    if ictx.object_map_for in ordered and ictx.object_map is not None and objno < len(ictx.object_map):
        ictx.object_map.states[objno] = EXISTS if ictx.object_map_for == ordered[0] else EXISTS_CLEAN


# -- whole-map operations (create, resize, snapshots, rollback, rebuild) ----------------------------
def resize_ops(b: OpBuilder, old_count: int, new_count: int) -> None:
    """Ops for a map object: drop objects past `new_count` (they were removed) and resize."""
    if new_count < old_count:
        add_call(b, RBD, "object_map_update", {"start_object_no": new_count, "end_object_no": old_count,
                                                "new_object_state": NONEXISTENT})
    add_call(b, RBD, "object_map_resize", {"object_count": new_count, "default_state": NONEXISTENT})


async def create(io: IoCtx, image_id: str, object_count: int) -> None:
    b = OpBuilder()
    add_call(b, RBD, "object_map_resize", {"object_count": object_count, "default_state": NONEXISTENT})
    await io.checked(naming.object_map_object(image_id), b, f"creating the object map of image id {image_id}")


async def resize(ictx: ImageCtx, new_size: int) -> None:
    if not enabled(ictx):
        return
    old_count = ictx.layout.object_count(ictx.st.size)
    new_count = ictx.layout.object_count(new_size)
    if old_count == new_count:
        return
    b = OpBuilder()
    b.add("assert_exists")
    resize_ops(b, old_count, new_count)
    reply = await ictx.io.operate(map_oid(ictx, None), b)
    if reply.result < 0:
        await _invalidate(ictx, None)  # a missing map: rebuild it later, as librbd's invalid flag says
    om = head_map(ictx)
    if om is not None:
        del om.states[new_count:]
        om.states.extend(bytes(new_count - len(om.states)) if new_count > len(om.states) else b"")


async def snapshot_add(ictx: ImageCtx, snap_id: int) -> None:
    """Copy HEAD's map to the snapshot's, then mark HEAD's existing objects clean."""
    if not enabled(ictx) or ictx.st.flags & FLAG_OBJECT_MAP_INVALID:
        return
    head = map_oid(ictx, None)
    out = await _load_raw(ictx.io, head)
    if out is None:
        await _invalidate(ictx, None)
        return
    await ictx.io.call(map_oid(ictx, snap_id), RBD, "object_map_save", {"size": out["size"], "bits": out["bits"]})
    await ictx.io.call(head, RBD, "object_map_snap_add")
    om = head_map(ictx)
    if om is not None:
        om.states = bytearray(s if s != EXISTS else EXISTS_CLEAN for s in om.states)


async def snapshot_remove(ictx: ImageCtx, snap_id: int) -> None:
    """Fold a removed snapshot's dirty marks into the next newer map, then delete its map."""
    if not enabled(ictx):
        return
    oid = map_oid(ictx, snap_id)
    out = await _load_raw(ictx.io, oid)
    if out is not None:
        newer = [s for s in ictx.st.snaps if s > snap_id]
        target = map_oid(ictx, min(newer) if newer else None)
        b = OpBuilder()
        b.add("assert_exists")
        add_call(b, RBD, "object_map_snap_remove", {"size": out["size"], "bits": out["bits"]})
        await ictx.io.operate(target, b)  # a missing newer map has nothing to fold into
    await remove_object(ictx.io, oid)


async def rollback(ictx: ImageCtx, snap_id: int) -> None:
    """HEAD's map after a rollback to `snap_id`: the snapshot's objects, each clean unless it
    differs from the newest snapshot (what fast-diff against that snapshot must report);
    all dirty when the maps can't tell."""
    if not enabled(ictx):
        return
    states = await load_states(ictx.io, map_oid(ictx, snap_id))
    if states is None:
        await _invalidate(ictx, None)
        return
    newest = max(ictx.st.snaps)
    changed = await diff_states(ictx, snap_id, newest)
    head = bytearray(len(states))
    for i, st in enumerate(states):
        if st != NONEXISTENT:
            same = changed is not None and i < len(changed) and changed[i] == DIFF_DATA
            head[i] = EXISTS_CLEAN if same else EXISTS
    await save(ictx, bytes(head))


async def save(ictx: ImageCtx, states: bytes) -> None:
    await ictx.io.call(map_oid(ictx, None), RBD, "object_map_save",
                       {"size": len(states), "bits": pack_states(states)})
    om = head_map(ictx)
    if om is not None:
        om.states = bytearray(states)


async def rebuild(ictx: ImageCtx, concurrency: int) -> None:
    """Rebuild HEAD's map by asking the OSDs which objects exist (feature enable, `rbd object-map rebuild`)."""
    count = ictx.layout.object_count(ictx.st.size)
    states = bytearray(count)

    async def probe(n: int) -> None:
        b = OpBuilder()
        b.add("stat")
        reply = await ictx.data_io.operate(ictx.data_object(n), b)
        if reply.result == 0:
            states[n] = EXISTS
        elif reply.result != -errno.ENOENT:
            raise from_errno(reply.result, f"rebuilding the object map of image {ictx.spec_text()}")

    await bounded_each(range(count), concurrency, probe)
    await save(ictx, bytes(states))
    mask = FLAG_OBJECT_MAP_INVALID | FLAG_FAST_DIFF_INVALID
    if ictx.st.flags & mask:
        await ictx.header.set_flags(0, mask)


async def remove_all(ictx: ImageCtx) -> None:
    oids = [map_oid(ictx, None)] + [map_oid(ictx, s) for s in ictx.st.snaps]
    await asyncio.gather(*(remove_object(ictx.io, oid) for oid in oids))


# -- fast diff -----------------------------------------------------------------------------------
DIFF_HOLE, DIFF_HOLE_UPDATED, DIFF_DATA, DIFF_DATA_UPDATED = 0, 1, 2, 3


async def diff_states(ictx: ImageCtx, from_snap: int, end_snap: int) -> bytearray | None:
    """Per object, what changed between `from_snap` (0 = the beginning) and `end_snap`.

    Walks the maps of every snapshot after `from_snap` up to `end_snap` (HEAD last): an
    object changed if it appeared, disappeared, or is EXISTS (dirty) in one of them.
    None when a needed map is missing or invalid (callers fall back to list_snaps).
    """
    if not enabled(ictx) or not ictx.st.features & F.FAST_DIFF:
        return None
    versions = sorted(s for s in ictx.st.snaps if from_snap < s <= end_snap and s != CEPH_NOSNAP)
    if end_snap == CEPH_NOSNAP:
        versions.append(CEPH_NOSNAP)
    for v in ([from_snap] if from_snap else []) + versions:
        flags = ictx.st.flags if v == CEPH_NOSNAP else ictx.snap_info(v).flags
        if flags & (FLAG_OBJECT_MAP_INVALID | FLAG_FAST_DIFF_INVALID):
            return None
    maps = await asyncio.gather(*(load_states(ictx.io, map_oid(ictx, None if v == CEPH_NOSNAP else v))
                                  for v in ([from_snap] if from_snap else []) + versions))
    if any(m is None for m in maps):
        return None
    prev: bytes = bytes(maps[0]) if from_snap else b""
    walk = maps[1:] if from_snap else maps
    end_count = len(walk[-1]) if walk else len(prev)
    out = bytearray(end_count)
    changed = bytearray(end_count)
    exists = bytearray(1 if (i < len(prev) and prev[i] != NONEXISTENT) else 0 for i in range(end_count))
    for m in walk:
        for i in range(end_count):
            st = m[i] if i < len(m) else NONEXISTENT
            now = st != NONEXISTENT
            if now != bool(exists[i]) or st in (EXISTS, PENDING):
                changed[i] = 1
            exists[i] = now
    for i in range(end_count):
        if changed[i]:
            out[i] = DIFF_DATA_UPDATED if exists[i] else DIFF_HOLE_UPDATED
        else:
            out[i] = DIFF_DATA if exists[i] else DIFF_HOLE
    return out

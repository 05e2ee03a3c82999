"""Image snapshots: create, remove, rename, rollback, protect/unprotect, limits.

A snapshot is a RADOS self-managed snap id (allocated by the monitor for the data pool)
recorded in the header by cls `snapshot_add`; writes then carry the new SnapContext and
the OSDs preserve each object as it was on its first write after it (ceph-facts §3).
Creating one is therefore O(1) in the image size: one monitor round trip, one header
update (plus copying the object map when the image has one).
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any

from shoal.errors import ShoalError, from_errno
from shoal.rbd import features as F
from shoal.rbd import object_map
from shoal.rbd.children import detach_from_parent, purge_snapshot, v1_children
from shoal.rbd.header import (
    PROTECTION_PROTECTED,
    PROTECTION_UNPROTECTED,
    PROTECTION_UNPROTECTING,
    USER_NAMESPACE,
    SnapInfo,
)
from shoal.rbd.image import ImageCtx
from shoal.rbd.ioctx import bounded_each
from shoal.rbd.resize import resize_locked
from shoal.wire.osd_op import OpBuilder

Progress = Callable[[int, int], Any] | None
ESTALE_RETRIES = 5  # snapshot_add lost the race to a newer snap id this many times: give up


def _require_not_read_only(ictx: ImageCtx, what: str) -> None:
    # A handle opened at a snapshot may still create snapshots of HEAD (python-rbd does);
    # one opened read_only may not.
    if ictx.read_only:
        raise from_errno(errno.EROFS, f"{what}: image {ictx.spec_text()} was opened read-only")


def list_snaps(ictx: ImageCtx) -> list[SnapInfo]:
    return [ictx.st.snaps[s] for s in sorted(ictx.st.snaps)]


async def create(ictx: ImageCtx, name: str, namespace: dict[str, Any] | None = None) -> int:
    """Snapshot HEAD as `name`; returns the snap id. EEXIST for a taken name, EDQUOT past the limit."""
    what = f"creating snapshot {name!r} of image {ictx.name}"
    _require_not_read_only(ictx, what)
    if not name:
        raise from_errno(errno.EINVAL, f"{what}: empty snapshot name")
    ns = namespace or USER_NAMESPACE
    async with ictx.op_guard(), ictx.gate.exclusive():
        await ictx.refresh()
        if any(s.name == name and s.namespace == ns for s in ictx.st.snaps.values()):
            raise from_errno(errno.EEXIST, f"{what}: it exists")
        client, pool_id = ictx.client, ictx.data_io.pool_id
        for _ in range(ESTALE_RETRIES):
            snap_id = await client.selfmanaged_snap_create(pool_id)
            try:
                await ictx.header.snapshot_add(snap_id, name, ns)
            except ShoalError as exc:
                await client.selfmanaged_snap_remove(pool_id, snap_id)
                if exc.errno != errno.ESTALE:
                    raise from_errno(exc.errno, f"{what}: {exc}") from exc
                continue
            break
        else:
            raise from_errno(errno.ESTALE, f"{what}: snap ids kept moving")
        await object_map.snapshot_add(ictx, snap_id)
        await ictx.header_updated()
    return snap_id


async def remove(ictx: ImageCtx, name: str | None = None, snap_id: int | None = None) -> None:
    """Remove a snapshot (by name in the user namespace, or by id).

    EBUSY when protected. A snapshot that clone-v2 children still use moves to the trash
    namespace instead and goes once its last child detaches (librbd's behaviour).
    """
    _require_not_read_only(ictx, f"removing snapshot {name!r} of image {ictx.name}")
    async with ictx.op_lock:
        await ictx.refresh()
        info = ictx.snap_info(snap_id) if snap_id is not None else ictx.snap_by_name(name or "")
        what = f"removing snapshot {info.name!r} of image {ictx.name}"
        if info.protection != PROTECTION_UNPROTECTED:
            raise from_errno(errno.EBUSY, f"{what}: it is protected")
        if info.child_count > 0:
            if info.namespace.get("type") != "trash":
                await ictx.header.snapshot_trash_add(info.id)
            await ictx.header_updated()
            return
        old_parent, was_v2 = ictx.st.parent, bool(ictx.st.op_features & F.OP_CLONE_CHILD)
        await purge_snapshot(ictx, info)
        if ictx.snap_id == info.id:
            await ictx.set_snap_id(None)
        await ictx.header_updated()
        if old_parent is not None and ictx.st.parent is None:
            # That snapshot was the last user of the parent link: unregister from the parent.
            await detach_from_parent(ictx, old_parent, was_v2)


async def rename(ictx: ImageCtx, src: str, dst: str) -> None:
    _require_not_read_only(ictx, f"renaming snapshot {src!r} of image {ictx.name}")
    async with ictx.op_lock:
        await ictx.refresh()
        info = ictx.snap_by_name(src)
        if any(s.name == dst and s.is_user for s in ictx.st.snaps.values()):
            raise from_errno(errno.EEXIST, f"renaming snapshot {src!r} of image {ictx.name}: {dst!r} exists")
        await ictx.header.snapshot_rename(info.id, dst)
        await ictx.header_updated()


async def rollback(ictx: ImageCtx, name: str, progress: Progress = None, concurrency: int = 10) -> None:
    """Make HEAD what it was at snapshot `name`: size, data (object by object), parent overlap, object map."""
    ictx.require_writable(f"rolling back image {ictx.name} to snapshot {name!r}")
    async with ictx.op_guard(), ictx.gate.exclusive():
        await ictx.refresh()
        info = ictx.snap_by_name(name)
        if info.size != ictx.st.size:
            await resize_locked(ictx, info.size, None, concurrency)
        count = ictx.layout.object_count(info.size)
        snapc = ictx.snapc
        done = 0

        async def one(objno: int) -> None:
            nonlocal done
            b = OpBuilder()
            b.add("rollback", snapid=info.id)
            reply = await ictx.data_io.operate(ictx.data_object(objno), b, snapc=snapc)
            if reply.result < 0 and reply.result != -errno.ENOENT:
                raise from_errno(reply.result, f"rolling back object {objno} of image {ictx.name}")
            done += 1
            if progress is not None:
                progress(done, count)

        await bounded_each(range(count), concurrency, one)
        st = ictx.st
        if st.parent is not None and st.head_overlap and info.parent_overlap and \
                info.parent_overlap != st.head_overlap:
            await ictx.header.parent_attach(st.parent, int(info.parent_overlap), reattach=True)
        await object_map.rollback(ictx, info.id)
        await ictx.header_updated()


async def _layered_snap(ictx: ImageCtx, name: str, what: str) -> SnapInfo:
    """Snapshot `name` from a fresh header, for (un)protection: ENOSYS without layering."""
    await ictx.refresh()
    if not ictx.st.features & F.LAYERING:
        raise from_errno(errno.ENOSYS, f"{what}: the image does not support layering")
    return ictx.snap_by_name(name)


async def protect(ictx: ImageCtx, name: str) -> None:
    what = f"protecting snapshot {name!r} of image {ictx.name}"
    _require_not_read_only(ictx, what)
    async with ictx.op_lock:
        info = await _layered_snap(ictx, name, what)
        if info.protection == PROTECTION_PROTECTED:
            raise from_errno(errno.EBUSY, f"{what}: it is already protected")
        await ictx.header.set_protection(info.id, PROTECTION_PROTECTED)
        await ictx.header_updated()


async def unprotect(ictx: ImageCtx, name: str, concurrency: int = 10) -> None:
    """EINVAL when not protected; EBUSY while clones (v1 in any pool, or v2) still use it."""
    what = f"unprotecting snapshot {name!r} of image {ictx.name}"
    _require_not_read_only(ictx, what)
    async with ictx.op_lock:
        info = await _layered_snap(ictx, name, what)
        if info.protection == PROTECTION_UNPROTECTED:
            raise from_errno(errno.EINVAL, f"{what}: it is not protected")
        if info.child_count > 0:
            raise from_errno(errno.EBUSY, f"{what}: it has clone children")
        await ictx.header.set_protection(info.id, PROTECTION_UNPROTECTING)
        try:
            if await v1_children(ictx, info.id, concurrency):
                raise from_errno(errno.EBUSY, f"{what}: it has clone children")
        except BaseException:
            await ictx.header.set_protection(info.id, PROTECTION_PROTECTED)
            raise
        await ictx.header.set_protection(info.id, PROTECTION_UNPROTECTED)
        await ictx.header_updated()


def is_protected(ictx: ImageCtx, name: str) -> bool:
    return ictx.snap_by_name(name).protection == PROTECTION_PROTECTED


async def get_limit(ictx: ImageCtx) -> int:
    return await ictx.header.get_snap_limit()


async def set_limit(ictx: ImageCtx, limit: int) -> None:
    _require_not_read_only(ictx, f"setting the snapshot limit of image {ictx.name}")
    await ictx.header.set_snap_limit(limit)

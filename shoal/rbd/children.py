"""Parent/child registrations of clones, and dropping a snapshot's records.

Clone v1 children are registered in `rbd_children` of the child's pool (so finding the
children of a snapshot scans every pool); clone v2 children in the parent header
(`snap_children_<id>`, with a child count on the snapshot). A parent snapshot removed
while v2 children use it waits in the trash namespace and goes with its last child.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from shoal.errors import ShoalError
from shoal.rbd import object_map
from shoal.rbd.header import ParentSpec, SnapInfo, dir_get_name, get_children, remove_child, trash_get
from shoal.rbd.image import ImageCtx
from shoal.rbd.ioctx import IoCtx, gather_bounded, is_errno


@dataclass(frozen=True)
class Child:
    pool_id: int
    pool_name: str
    pool_namespace: str
    image_id: str
    image_name: str
    trash: bool


async def purge_snapshot(ictx: ImageCtx, info: SnapInfo) -> None:
    """Drop a snapshot: fold its object map, remove its header record, release its snap id."""
    await object_map.snapshot_remove(ictx, info.id)
    await ictx.header.snapshot_remove(info.id)
    await ictx.client.selfmanaged_snap_remove(ictx.data_io.pool_id, info.id)


async def v1_children(ictx: ImageCtx, snap_id: int, concurrency: int = 10) -> list[tuple[int, str]]:
    """(pool id, child image id) registered in every pool's rbd_children for one snapshot."""
    pools = ictx.client.pools()
    found = await gather_bounded((get_children(ictx.io.with_pool(p.id, ""), ictx.io.pool_id, ictx.id, snap_id)
                                  for p in pools), concurrency)
    return [(p.id, child) for p, children in zip(pools, found, strict=True) for child in children]


async def detach_from_parent(ictx: ImageCtx, spec: ParentSpec, v2: bool) -> None:
    """Unregister a child from its parent snapshot (after a flatten, or when it goes away).

    A registration already gone (ENOENT) is fine: the operation that removed it may have
    been interrupted after that step.
    """
    if not v2:
        try:
            await remove_child(ictx.io, spec, ictx.id)
        except ShoalError as exc:
            if exc.errno != errno.ENOENT:
                raise
        return
    parent = ImageCtx(ictx.io.with_pool(spec.pool_id, spec.pool_namespace), spec.image_id, None, False)
    try:
        await parent.header.child_detach(spec.snap_id, ictx.io.pool_id, ictx.io.nspace, ictx.id)
    except ShoalError as exc:
        if exc.errno != errno.ENOENT:
            raise
    try:
        await parent.refresh()
    except ShoalError as exc:
        if exc.errno == errno.ENOENT:
            return  # the parent image itself is gone
        raise
    info = parent.st.snaps.get(spec.snap_id)
    if info is not None and info.namespace.get("type") == "trash" and info.child_count == 0:
        await purge_snapshot(parent, info)
    await parent.close()


async def _child_name(io: IoCtx, image_id: str) -> tuple[str, bool]:
    """(name, in the trash) of an image id."""
    try:
        return await dir_get_name(io, image_id), False
    except ShoalError as exc:
        if exc.errno != errno.ENOENT:
            raise
    try:
        return str((await trash_get(io, image_id)).get("name", "")), True
    except ShoalError as exc:
        if exc.errno != errno.ENOENT:
            raise
    return "", False


async def list_children(ictx: ImageCtx, concurrency: int = 10) -> list[Child]:
    """Children of the selected snapshot, or of every snapshot when HEAD is selected (librbd)."""
    snaps = [ictx.snap_id] if ictx.snap_id is not None else sorted(ictx.st.snaps)
    refs: list[tuple[int, str, str]] = []
    for snap in snaps:
        refs.extend((pool_id, "", child) for pool_id, child in await v1_children(ictx, snap, concurrency))
        refs.extend(await ictx.header.children_list(snap))
    out: list[Child] = []
    osdmap = ictx.client.osdmap
    for pool_id, nspace, child_id in sorted(set(refs)):
        pool = osdmap.pools.get(pool_id) if osdmap is not None else None
        if pool is None:
            continue
        try:
            name, trash = await _child_name(ictx.io.with_pool(pool_id, nspace), child_id)
        except ShoalError as exc:
            if is_errno(exc, errno.EPERM, errno.EACCES):
                continue  # a pool we may not read: librbd skips it too
            raise
        out.append(Child(pool_id, pool.name, nspace, child_id, name, trash))
    return sorted(out, key=lambda c: (c.pool_name, c.pool_namespace, c.image_name))

"""Clones (copy-on-write children of a parent snapshot), flatten and parent lookups.

Clone v1 needs a protected parent snapshot and registers the child in `rbd_children`
of the child's pool; clone v2 needs no protection: the parent header counts the child
(cls child_attach) and the child carries op feature CLONE_CHILD. Either way the child's
header links the parent (cls parent_attach) with the parent snapshot's size as overlap,
so a clone is O(1) in the image size: no data is copied until a child object is written.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shoal.errors import ShoalError, from_errno
from shoal.rbd import features as F
from shoal.rbd import io as rbd_io
from shoal.rbd import object_map
from shoal.rbd.children import detach_from_parent
from shoal.rbd.create import CreateOptions, create_image
from shoal.rbd.header import (
    PROTECTION_PROTECTED,
    ParentSpec,
    add_child,
    dir_get_name,
    metadata_list,
    remove_child,
    trash_get,
)
from shoal.rbd.image import ImageCtx, open_image
from shoal.rbd.ioctx import IoCtx, bounded_each
from shoal.rbd.pool_ops import remove_image
from shoal.wire.osd_op import OpBuilder

Progress = Callable[[int, int], Any] | None


def _clone_format(io: IoCtx, requested: int | None) -> int:
    """1 or 2. "auto" means 1 here: our clusters report no minimum client release of
    mimic or later, which librbd's auto needs to pick 2 (python-rbd's default behaves so)."""
    if requested in (1, 2):
        return int(requested)
    if requested is not None:
        raise from_errno(errno.EINVAL, f"invalid clone format {requested}")
    try:
        configured = str(io.client.conf.get("rbd_default_clone_format"))
    except Exception:  # noqa: BLE001 - no such option: librbd's default
        configured = "auto"
    return 2 if configured == "2" else 1


async def clone(p_io: IoCtx, p_name: str, p_snap: str, c_io: IoCtx, c_name: str, opts: CreateOptions,
                clone_format: int | None = None) -> str:
    """Clone parent snapshot `p_name@p_snap` as `c_name`; returns the child's id.

    ENOENT missing parent or snapshot; EINVAL unprotected snapshot (v1) or an empty one
    (nothing to overlap: cls parent_attach refuses it, as Ceph's does); ENOSYS parent or
    child without layering; EEXIST taken child name; EXDEV v1 across namespaces.
    """
    fmt = _clone_format(c_io, clone_format)
    parent = await open_image(p_io, name=p_name, snapshot=p_snap, read_only=True)
    try:
        if fmt == 1 and p_io.nspace != c_io.nspace:
            raise from_errno(errno.EXDEV, "clone v2 is required to clone across namespaces")
        if not parent.st.features & F.LAYERING:
            raise from_errno(errno.ENOSYS, f"parent image {p_name} does not support layering")
        snap = parent.snap_by_name(p_snap)
        if fmt == 1 and snap.protection != PROTECTION_PROTECTED:
            raise from_errno(errno.EINVAL, f"parent snapshot {p_name}@{p_snap} must be protected")
        # librbd's CloneRequest: unset options come from the parent (features without the
        # ones librbd sets itself, order, striping).
        features = opts.features if opts.features is not None else parent.st.features & ~(F.INTERNAL | F.DATA_POOL)
        if not features & F.LAYERING:
            raise from_errno(errno.ENOSYS, "the clone must support layering")
        st = parent.st
        child_opts = CreateOptions(
            order=opts.order or st.order, features=features,
            stripe_unit=st.stripe_unit if opts.stripe_unit is None else opts.stripe_unit,
            stripe_count=st.stripe_count if opts.stripe_count is None else opts.stripe_count,
            data_pool=opts.data_pool)
        child_id = await create_image(c_io, c_name, snap.size, child_opts)
        try:
            await _link(parent, snap.id, c_io, child_id, snap.size, fmt)
            meta = await metadata_list(parent.io, parent.header.oid)
            if meta:
                child = ImageCtx(c_io, child_id, c_name, False)
                await child.header.metadata_set(meta)
        except ShoalError:
            await _undo_clone(c_io, c_name)
            raise
        return child_id
    finally:
        await parent.close()


async def _link(parent: ImageCtx, snap_id: int, c_io: IoCtx, child_id: str, overlap: int, fmt: int) -> None:
    spec = ParentSpec(parent.io.pool_id, parent.io.nspace, parent.id, snap_id)
    child = ImageCtx(c_io, child_id, None, False)
    await child.header.parent_attach(spec, overlap)
    if fmt == 2:
        await parent.header.child_attach(snap_id, c_io.pool_id, c_io.nspace, child_id)
        await child.header.set_op_features(F.OP_CLONE_CHILD, F.OP_CLONE_CHILD)
        return
    await add_child(c_io, spec, child_id)
    # An unprotect may have raced with us: librbd checks the protection again afterwards.
    await parent.refresh()
    if parent.snap_info(snap_id).protection != PROTECTION_PROTECTED:
        await remove_child(c_io, spec, child_id)
        raise from_errno(errno.EINVAL, f"parent snapshot of image {parent.id} was unprotected during the clone")


async def _undo_clone(c_io: IoCtx, c_name: str) -> None:
    try:
        await remove_image(c_io, c_name)
    except ShoalError:
        pass  # best effort: the clone's own failure is what the caller sees


async def flatten(ictx: ImageCtx, progress: Progress = None, concurrency: int = 10) -> None:
    """Copy every parent-backed object into the child, then unlink the parent.

    EINVAL when the image has no parent. Without DEEP_FLATTEN, snapshots that still read
    through the parent keep the link (and the registration with the parent).
    """
    what = f"flattening image {ictx.spec_text()}"
    ictx.require_writable(what)
    await ictx.flush_cache()  # cached writes land before the copy-ups decide what is missing
    async with ictx.op_lock:
        await ictx.refresh()
        st = ictx.st
        if st.parent is None or st.head_overlap is None:
            raise from_errno(errno.EINVAL, f"{what}: it has no parent")
        overlap = ictx.parent_overlap_at(None)
        objects = ictx.layout.objects_in_range(0, overlap)
        total, done = len(objects), 0
        om = await object_map.for_writes(ictx)
        snapc = ictx.snapc

        async def one(objno: int) -> None:
            nonlocal done
            if om is None or not om.may_exist(objno) or om.states[objno] == object_map.PENDING:
                b = OpBuilder()
                b.add("stat")
                reply = await ictx.data_io.operate(ictx.data_object(objno), b)
                if reply.result == -errno.ENOENT:
                    await object_map.before_write(ictx, [objno])
                    await rbd_io.copyup(ictx, objno, snapc, None)
                elif reply.result < 0:
                    raise from_errno(reply.result, f"{what}: object {objno}")
            done += 1
            if progress is not None:
                progress(done, total)

        await bounded_each(objects, concurrency, one)
        spec, v2 = st.parent, bool(st.op_features & F.OP_CLONE_CHILD)
        snaps_use_parent = any(s.parent_overlap is not None for s in st.snaps.values())
        await ictx.header.parent_detach()
        if st.features & F.DEEP_FLATTEN or not snaps_use_parent:
            await detach_from_parent(ictx, spec, v2)
        await ictx.header_updated()


@dataclass(frozen=True)
class ParentInfo:
    pool_id: int
    pool_name: str
    pool_namespace: str
    image_id: str
    image_name: str
    snap_id: int
    snap_name: str
    overlap: int
    trash: bool


async def parent_info(ictx: ImageCtx) -> ParentInfo:
    """The parent of the selected version; ENOENT when it has none."""
    await ictx.refresh_if_needed()
    st = ictx.st
    linked = st.head_overlap is not None if ictx.snap_id is None else \
        ictx.snap_info(ictx.snap_id).parent_overlap is not None
    if st.parent is None or not linked:
        raise from_errno(errno.ENOENT, f"image {ictx.spec_text()} has no parent")
    spec = st.parent
    pio = ictx.io.with_pool(spec.pool_id, spec.pool_namespace)
    trash = False
    try:
        name = await dir_get_name(pio, spec.image_id)
    except ShoalError as exc:
        if exc.errno != errno.ENOENT:
            raise
        name, trash = str((await trash_get(pio, spec.image_id)).get("name", "")), True
    parent = await ictx.get_parent()
    return ParentInfo(spec.pool_id, pio.pool_name(), spec.pool_namespace, spec.image_id, name, spec.snap_id,
                      parent.snap_info(spec.snap_id).name, ictx.parent_overlap_at(ictx.snap_id), trash)

"""Pool-level image operations: list, remove, rename, trash, pool init and stats.

Removal follows librbd's RemoveRequest: refuse an image with snapshots (ENOTEMPTY) or
one open elsewhere (EBUSY, from the header's watchers once the client can list them),
unregister a clone from its parent, delete the data objects (bounded parallelism,
rbd_concurrent_management_ops), then the object maps, the header, the id object and the
directory entry. Moving to the trash keeps the header and data: only the name goes.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shoal.errors import ShoalError, from_errno
from shoal.rbd import features as F
from shoal.rbd import naming, object_map
from shoal.rbd.children import detach_from_parent
from shoal.rbd.header import (
    create_id_object,
    dir_add,
    dir_list,
    dir_remove,
    dir_rename,
    get_image_id,
    remove_object,
    trash_add,
    trash_get,
    trash_list,
    trash_remove,
    trash_state_set,
)
from shoal.rbd.image import ImageCtx
from shoal.rbd.ioctx import IoCtx, bounded_each, errno_text
from shoal.wire.osd_op import OpBuilder

Progress = Callable[[int, int], Any] | None

TRASH_SOURCES = ("USER", "MIRRORING", "MIGRATION", "REMOVING")
TRASH_SOURCE_USER = 0
TRASH_STATE_NORMAL, TRASH_STATE_REMOVING = 0, 2
RBD_INFO_VALIDATED = b"overwrite validated"


async def image_watchers(io: IoCtx, oid: str) -> list[dict[str, Any]]:
    """Watchers of a header (every open handle of the image watches it): remove refuses an
    image that has any, `rbd status` and Image.watchers_list show them."""
    return await io.client.list_watchers(io.pool_id, oid, io.nspace)


async def list_images(io: IoCtx) -> list[tuple[str, str]]:
    """(name, id) of every image in the pool's directory, by name."""
    return sorted((await dir_list(io)).items())


# -- remove -----------------------------------------------------------------------------------
async def remove_image(io: IoCtx, name: str, progress: Progress = None, concurrency: int = 10) -> None:
    """Remove image `name`: ENOENT, ENOTEMPTY (snapshots), EBUSY (in use)."""
    image_id = await _lookup_id(io, name)
    ictx = ImageCtx(io, image_id, name, False)
    try:
        await ictx.refresh()
    except ShoalError as exc:
        if exc.errno != errno.ENOENT:
            raise
        ictx = None  # a half-created image without a header: only its name objects remain
    if ictx is not None:
        await remove_opened(ictx, progress, concurrency)
    await remove_object(io, naming.id_object(name))
    try:
        await dir_remove(io, name, image_id)
    except ShoalError as exc:
        if exc.errno != errno.ENOENT:
            raise


async def _lookup_id(io: IoCtx, name: str) -> str:
    try:
        return await get_image_id(io, name)
    except ShoalError as exc:
        if exc.errno != errno.ENOENT:
            raise
    # The id object may be gone while the directory still lists the name (an interrupted removal).
    directory = await dir_list(io)
    if name not in directory:
        raise from_errno(errno.ENOENT, f"image {name!r} does not exist")
    return directory[name]


async def remove_opened(ictx: ImageCtx, progress: Progress, concurrency: int) -> None:
    """Delete an image's data and header (not its name entries)."""
    what = f"removing image {ictx.name or ictx.id}"
    st = ictx.st
    # snapshots before watchers, as librbd validates: an open image with snapshots is
    # ENOTEMPTY (glance and cinder fall back to the trash on that, not on EBUSY)
    if st.snaps:
        raise from_errno(errno.ENOTEMPTY, f"{what}: it has {len(st.snaps)} snapshot(s)")
    watchers = await image_watchers(ictx.io, ictx.header.oid)
    if watchers:
        raise from_errno(errno.EBUSY, f"{what}: it is open by {len(watchers)} client(s)")
    if st.parent is not None:
        await detach_from_parent(ictx, st.parent, bool(st.op_features & F.OP_CLONE_CHILD))
    await trim_all(ictx, progress, concurrency)
    await object_map.remove_all(ictx)
    await remove_object(ictx.io, ictx.header.oid)
    await ictx.close()


async def trim_all(ictx: ImageCtx, progress: Progress, concurrency: int) -> None:
    count = ictx.layout.object_count(ictx.st.size)
    om = await object_map.load(ictx, None) if object_map.enabled(ictx) else None
    objects = [n for n in range(count) if om is None or om.may_exist(n)]
    done = 0

    async def one(objno: int) -> None:
        nonlocal done
        b = OpBuilder()
        b.add("delete")
        reply = await ictx.data_io.operate(ictx.data_object(objno), b)
        if reply.result < 0 and reply.result != -errno.ENOENT:
            raise from_errno(reply.result, f"removing object {objno} of image {ictx.name}: {errno_text(reply.result)}")
        done += 1
        if progress is not None:
            progress(done, len(objects))

    await bounded_each(objects, concurrency, one)


# -- rename --------------------------------------------------------------------------------
async def rename_image(io: IoCtx, src: str, dest: str) -> None:
    """ENOENT missing source; EEXIST taken destination."""
    if not dest:
        raise from_errno(errno.EINVAL, "the new image name must not be empty")
    image_id = await get_image_id(io, src)
    if src == dest:
        raise from_errno(errno.EEXIST, f"image {dest!r} exists")
    await create_id_object(io, dest, image_id)
    try:
        await dir_rename(io, src, dest, image_id)
    except ShoalError:
        await remove_object(io, naming.id_object(dest))
        raise
    await remove_object(io, naming.id_object(src))


# -- trash ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrashEntry:
    id: str
    name: str
    source: str
    deletion_time: int
    deferment_end_time: int

    @classmethod
    def from_spec(cls, image_id: str, spec: dict[str, Any]) -> TrashEntry:
        source = int(spec.get("source", 0))
        return cls(image_id, str(spec.get("name", "")),
                   TRASH_SOURCES[source] if 0 <= source < len(TRASH_SOURCES) else str(source),
                   int(spec.get("deletion_time", 0)), int(spec.get("deferment_end_time", 0)))


async def trash_move(io: IoCtx, name: str, delay: int = 0) -> str:
    """Move image `name` to the trash (its snapshots and data stay); returns its id."""
    image_id = await get_image_id(io, name)
    ictx = ImageCtx(io, image_id, name, True)
    await ictx.refresh()  # ENOENT for a name without a header
    now = int(time.time())
    await trash_add(io, image_id, {"source": TRASH_SOURCE_USER, "name": name, "deletion_time": now,
                                   "deferment_end_time": now + max(0, int(delay)), "state": TRASH_STATE_NORMAL})
    await remove_object(io, naming.id_object(name))
    await dir_remove(io, name, image_id)
    return image_id


async def trash_entries(io: IoCtx) -> list[TrashEntry]:
    return [TrashEntry.from_spec(i, spec) for i, spec in sorted((await trash_list(io)).items())]


async def trash_entry(io: IoCtx, image_id: str) -> TrashEntry:
    return TrashEntry.from_spec(image_id, await trash_get(io, image_id))


async def trash_restore(io: IoCtx, image_id: str, name: str = "") -> None:
    """Give a trashed image a name again (its old one by default). ENOENT, EEXIST."""
    spec = await trash_get(io, image_id)
    if int(spec.get("source", 0)) != TRASH_SOURCE_USER:
        raise from_errno(errno.EINVAL, f"image id {image_id!r} was not moved to the trash by a user")
    name = name or str(spec.get("name", ""))
    await create_id_object(io, name, image_id)
    try:
        await dir_add(io, name, image_id)
    except ShoalError:
        await remove_object(io, naming.id_object(name))
        raise
    await trash_remove(io, image_id)


async def trash_remove_image(io: IoCtx, image_id: str, force: bool = False, progress: Progress = None,
                             concurrency: int = 10) -> None:
    """Delete a trashed image: EPERM before its deferment ends (unless forced), ENOTEMPTY
    with snapshots, ENOENT unknown id."""
    entry = await trash_entry(io, image_id)
    if not force and entry.deferment_end_time > time.time():
        raise from_errno(errno.EPERM, f"image id {image_id!r} is deferred in the trash until "
                                      f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(entry.deferment_end_time))}")
    await trash_state_set(io, image_id, TRASH_STATE_REMOVING, TRASH_STATE_NORMAL)
    ictx = ImageCtx(io, image_id, entry.name, False)
    try:
        try:
            await ictx.refresh()
        except ShoalError as exc:
            if exc.errno != errno.ENOENT:
                raise
        else:
            await remove_opened(ictx, progress, concurrency)
    except ShoalError:
        await trash_state_set(io, image_id, TRASH_STATE_NORMAL, TRASH_STATE_REMOVING)
        raise
    await trash_remove(io, image_id)


# -- pool ---------------------------------------------------------------------------------------
async def pool_init(io: IoCtx, force: bool = False) -> None:
    """`rbd pool init`: enable application rbd, then prove self-managed snapshots work and
    mark the pool validated in `rbd_info` (ceph-facts §1)."""
    cmd: dict[str, Any] = {"prefix": "osd pool application enable", "pool": io.pool_name(), "app": "rbd"}
    if force:
        cmd["yes_i_really_mean_it"] = True
    ret, _, outs = await io.client.mon_command(cmd)
    if ret < 0:
        raise from_errno(ret, f"enabling application rbd on pool {io.pool_name()}: {outs}")
    b = OpBuilder()
    b.add("read", off=0, len=0)
    reply = await io.operate(naming.RBD_INFO, b)
    if reply.result == 0 and reply.out_data(0) == RBD_INFO_VALIDATED:
        return
    if reply.result < 0 and reply.result != -errno.ENOENT:
        raise from_errno(reply.result, f"reading {naming.RBD_INFO}")
    if reply.result == -errno.ENOENT or reply.out_data(0) != b"validate":
        try:
            snap_id = await io.client.selfmanaged_snap_create(io.pool_id)
        except ShoalError as exc:
            if exc.errno == errno.EINVAL:
                raise from_errno(errno.EINVAL, "pool not configured for self-managed RBD snapshot support") from exc
            raise
        b = OpBuilder()
        b.add("create", excl=True)
        b.add("writefull", b"validate")
        reply = await io.operate(naming.RBD_INFO, b)
        await io.client.selfmanaged_snap_remove(io.pool_id, snap_id)
        if reply.result < 0 and reply.result != -errno.EEXIST:
            raise from_errno(reply.result, f"writing {naming.RBD_INFO}")
    b = OpBuilder()
    b.add("writefull", RBD_INFO_VALIDATED)
    await io.checked(naming.RBD_INFO, b, f"writing {naming.RBD_INFO}")


async def pool_stats(io: IoCtx) -> dict[str, int]:
    """python-rbd's pool_stats_get: images, provisioned bytes, snapshots; the same for the trash."""
    stats = dict.fromkeys(("image_count", "image_provisioned_bytes", "image_max_provisioned_bytes",
                           "image_snap_count", "trash_count", "trash_provisioned_bytes",
                           "trash_max_provisioned_bytes", "trash_snap_count"), 0)
    ids = [(i, "image") for _, i in await list_images(io)] + [(e.id, "trash") for e in await trash_entries(io)]
    for image_id, kind in ids:
        ictx = ImageCtx(io, image_id, None, True)
        try:
            await ictx.refresh()
        except ShoalError as exc:
            if exc.errno == errno.ENOENT:
                continue
            raise
        sizes = [ictx.st.size] + [s.size for s in ictx.st.snaps.values()]
        stats[f"{kind}_count"] += 1
        stats[f"{kind}_provisioned_bytes"] += ictx.st.size
        stats[f"{kind}_max_provisioned_bytes"] += sum(sizes)
        stats[f"{kind}_snap_count"] += len(ictx.st.snaps)
    return stats

"""Advisory image locks (cls_lock `rbd_lock` on the header), feature changes, object-map rebuild.

The advisory locks are librbd's old `rbd lock add/remove/ls` API: plain cls_lock locks
the client takes and breaks explicitly, named by the client's entity (`client.<global
id>`). The managed exclusive lock (automatic hand-off over watch/notify,
exclusive_lock.py) is the same cls lock with tag "internal"; python-rbd's lock_acquire /
lock_release drive the handle's lock manager.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from shoal.errors import ShoalError, from_errno
from shoal.rbd import features as F
from shoal.rbd import object_map
from shoal.rbd.exclusive_lock import fence_locker
from shoal.rbd.image import ImageCtx


def entity(ictx: ImageCtx) -> str:
    return f"client.{ictx.client.instance_id}"


async def lock(ictx: ImageCtx, cookie: str, exclusive: bool, tag: str = "") -> None:
    """EBUSY held by someone else (or with another tag); EEXIST already held with this cookie."""
    if ictx.read_only:
        raise from_errno(errno.EROFS, f"locking image {ictx.spec_text()}: opened read-only")
    await ictx.header.lock(entity(ictx), cookie, exclusive, tag)


async def unlock(ictx: ImageCtx, cookie: str) -> None:
    """ENOENT when this client holds no lock with `cookie`."""
    await ictx.header.unlock(entity(ictx), cookie)


async def break_lock(ictx: ImageCtx, client: str, cookie: str) -> None:
    """Break another client's lock, fencing it first as librbd does (rbd_blocklist_on_break_lock):
    ENOENT when `client` holds no lock with `cookie`."""
    held = [addr for who, ck, addr in (await list_lockers(ictx)).lockers if who == client and ck == cookie]
    if not held:
        raise from_errno(errno.ENOENT, f"image {ictx.spec_text()}: {client} holds no lock {cookie!r}")
    if client != entity(ictx):
        await fence_locker(ictx, client, held[0], "cannot break the lock of")
    await ictx.header.break_lock(client, cookie)


@dataclass(frozen=True)
class Lockers:
    tag: str
    exclusive: bool
    lockers: list[tuple[str, str, str]]  # (entity, cookie, address)


async def list_lockers(ictx: ImageCtx) -> Lockers:
    try:
        info = await ictx.header.lock_info()
    except ShoalError as exc:
        if exc.errno != errno.ENOENT:
            raise
        return Lockers("", False, [])
    lockers = [(str(lk["locker"]), str(lk["cookie"]), str(lk.get("address", ""))) for lk in info["lockers"]]
    return Lockers(str(info.get("tag", "")), int(info.get("type", 0)) == 1, lockers)


MANAGED_LOCK_TAG = "internal"  # librbd's managed exclusive lock: cls lock `rbd_lock` with this tag


async def lock_owners(ictx: ImageCtx) -> list[str]:
    """Clients holding the managed exclusive lock (`rbd lock ls` shows them too)."""
    info = await list_lockers(ictx)
    return [entity for entity, _, _ in info.lockers] if info.tag == MANAGED_LOCK_TAG else []


async def managed_lock(ictx: ImageCtx, acquire: bool) -> None:
    """Take or give up the managed exclusive lock: EINVAL without the feature, EOPNOTSUPP
    while no lock manager is attached to the handle (it needs the header watch)."""
    if not ictx.st.features & F.EXCLUSIVE_LOCK:
        raise from_errno(errno.EINVAL, f"image {ictx.spec_text()} has no exclusive-lock feature")
    if ictx.lock is None:
        raise from_errno(errno.EOPNOTSUPP, f"image {ictx.spec_text()}: no exclusive-lock manager on this handle")
    if acquire:
        await ictx.lock.acquire()
    else:
        await ictx.lock.release()


async def update_features(ictx: ImageCtx, mask: int, enabled: bool) -> None:
    """Enable or disable mutable features (EINVAL for others or broken dependencies).

    Enabling object-map creates an empty map flagged invalid, as librbd does: `rebuild`
    (rbd object-map rebuild) makes it trustworthy. Disabling removes the maps.
    """
    what = f"updating the features of image {ictx.spec_text()}"
    ictx.require_writable(what)
    async with ictx.op_lock:
        await ictx.refresh()
        current = ictx.st.features
        new = F.update_features(current, mask, enabled)
        changed = new ^ current
        if enabled and changed & F.OBJECT_MAP:
            await object_map.create(ictx.io, ictx.id, ictx.layout.object_count(ictx.st.size))
            invalid = object_map.FLAG_OBJECT_MAP_INVALID | object_map.FLAG_FAST_DIFF_INVALID
            await ictx.header.set_flags(invalid, invalid)
        elif enabled and changed & F.FAST_DIFF:
            await ictx.header.set_flags(object_map.FLAG_FAST_DIFF_INVALID, object_map.FLAG_FAST_DIFF_INVALID)
        await ictx.header.set_features(new, changed)
        if not enabled and changed & F.OBJECT_MAP:
            await object_map.remove_all(ictx)
            mask_flags = object_map.FLAG_OBJECT_MAP_INVALID | object_map.FLAG_FAST_DIFF_INVALID
            await ictx.header.set_flags(0, mask_flags)
        await ictx.header_updated()


async def rebuild_object_map(ictx: ImageCtx, concurrency: int = 10) -> None:
    """Rebuild HEAD's object map from the objects that exist, and mark it valid."""
    ictx.require_writable(f"rebuilding the object map of image {ictx.spec_text()}")
    async with ictx.op_lock, ictx.gate.exclusive():
        await ictx.refresh()
        if not ictx.st.features & F.OBJECT_MAP:
            raise from_errno(errno.EINVAL, f"image {ictx.spec_text()} has no object map")
        await object_map.rebuild(ictx, concurrency)
        await ictx.header_updated()

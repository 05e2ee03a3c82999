"""`rbd image-meta ...`, `rbd lock ...` and `rbd watch`: what other clients see of an image
besides its data (Ceph 16's action/ImageMeta.cc, Lock.cc, Watch.cc)."""

from __future__ import annotations

import struct
import sys

from shoal.cli import rbd_render as render
from shoal.cli.rados_cmd import err, strerror
from shoal.cli.rbd_args import SNAP_NONE, Args, formatter, image_spec, required
from shoal.cli.rbd_session import API_ERRORS, Exit, Session, emit, errno_of, fail, out
from shoal.compat import rbd
from shoal.rbd.naming import header_object

# librbd's watch_notify::NotifyOp names (librbd/WatchNotifyTypes.cc), as `rbd watch` prints them.
NOTIFY_OPS = ("AcquiredLock", "ReleasedLock", "RequestLock", "HeaderUpdate", "AsyncProgress", "AsyncComplete",
              "Flatten", "Resize", "SnapCreate", "SnapRemove", "RebuildObjectMap", "SnapRename", "SnapProtect",
              "SnapUnprotect", "Rename", "UpdateFeatures", "Migrate", "Sparsify", "Quiesce", "Unquiesce",
              "MetadataUpdate")


def cmd_meta_list(s: Session, a: Args) -> int:
    spec = image_spec(a, snap=SNAP_NONE)
    fmt, _ = formatter(a)
    with s.image(spec, True, "rbd: listing metadata failed") as image:
        pairs = [(str(k), str(v)) for k, v in image.metadata_list()]
    if fmt and not pairs:
        return 0  # rbd prints nothing at all for an empty list in JSON/XML
    emit(a, dict(pairs), render.metadata_plain(pairs), "metadatas")
    return 0


def cmd_meta_get(s: Session, a: Args) -> int:
    spec = image_spec(a, snap=SNAP_NONE)
    key = required(a, "metadata key")
    with s.image(spec, True, "rbd: getting metadata failed", errors=(KeyError,),
                 detail=f"failed to get metadata {key} of image ") as image:
        value = image.metadata_get(key)
    out(f"{value}\n")
    return 0


def cmd_meta_set(s: Session, a: Args) -> int:
    spec = image_spec(a, snap=SNAP_NONE)
    key = required(a, "metadata key")
    value = required(a, "metadata value")
    with s.image(spec, False, "rbd: setting metadata failed", detail=f"failed to set metadata {key} of image ") as image:
        image.metadata_set(key, value)
    return 0


def cmd_meta_remove(s: Session, a: Args) -> int:
    spec = image_spec(a, snap=SNAP_NONE)
    key = required(a, "metadata key")
    with s.image(spec, False, "rbd: removing metadata failed", errors=(KeyError,),
                 detail=f"rbd: no existing metadata key {key} of image ") as image:
        image.metadata_remove(key)
    return 0


def cmd_lock_ls(s: Session, a: Args) -> int:
    spec = image_spec(a, snap=SNAP_NONE)
    formatter(a)
    with s.image(spec, True, "rbd: listing locks failed") as image:
        info = image.list_lockers()
    info = info or {}  # python-rbd returns [] when nobody holds a lock
    lockers = [{"id": cookie, "locker": client, "address": addr} for client, cookie, addr in info.get("lockers", [])]
    emit(a, lockers, render.locks_plain(lockers, bool(info.get("exclusive")), info.get("tag", "")), "locks",
         {"locks": "lock"})
    return 0


def cmd_lock_add(s: Session, a: Args) -> int:
    spec = image_spec(a, snap=SNAP_NONE)
    cookie = required(a, "lock id")
    tag = a.get("shared")
    with s.image(spec, False, "rbd: taking lock failed") as image:
        try:
            if tag:
                image.lock_shared(cookie, tag)
            else:
                image.lock_exclusive(cookie)
        except (rbd.ImageBusy, rbd.ImageExists) as exc:
            err("rbd: lock is already held by someone else" + (" with a different tag" if tag else ""))
            raise Exit(errno_of(exc)) from None
    return 0


def cmd_lock_rm(s: Session, a: Args) -> int:
    spec = image_spec(a, snap=SNAP_NONE)
    cookie = required(a, "lock id")
    client = required(a, "locker")
    with s.image(spec, False, "rbd: releasing lock failed") as image:
        image.break_lock(client, cookie)  # blocklists the locker first (rbd_blocklist_on_break_lock)
    return 0


def notify_op(payload: bytes) -> str:
    """", notify_op=Name" for a librbd notification (ENCODE_START header, then a u32 op), or ""."""
    if len(payload) >= 10:
        (op,) = struct.unpack_from("<I", payload, 6)
        if op < len(NOTIFY_OPS):
            return f", notify_op={NOTIFY_OPS[op]}"
    return ""


def cmd_watch(s: Session, a: Args) -> int:
    spec = image_spec(a, snap=SNAP_NONE)
    ioctx = s.open_pool(spec.pool, spec.namespace)
    image = s.open_image(ioctx, spec.image, True)
    try:
        header = f"{spec.image}.rbd" if image.old_format() else header_object(image.id())
    finally:
        image.close()

    def notified(notify_id: int, notifier_id: int, watch_id: int, data: bytes) -> None:
        out(f"{spec.image} received notification: notify_id={notify_id}, cookie={watch_id}, "
            f"notifier_id={notifier_id}, bl.length={len(data or b'')}{notify_op(data or b'')}\n")

    def failed(watch_id: int, error: int) -> None:
        err(f"{spec.image} received error: cookie={watch_id}, err={strerror(error)}")

    try:
        watch = ioctx.watch(header, notified, failed)
    except API_ERRORS as exc:
        err("rbd: watch failed")
        raise fail("rbd: watch failed", exc) from None
    out("press enter to exit...\n")
    sys.stdin.readline()
    try:
        watch.close()
    except API_ERRORS as exc:
        err("rbd: unwatch failed")
        raise fail("rbd: watch failed", exc) from None
    return 0

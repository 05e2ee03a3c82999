"""`rbd trash ...`: move, list, remove, restore, purge (Ceph 16's action/Trash.cc).

Dates given to `--expires-at` / `--expired-before` are read by `date -d`, as Ceph's
utime_t::invoke_date does, so the same phrases ("2099-01-01", "next week") work.
"""

from __future__ import annotations

import errno
import subprocess
import time
from datetime import datetime
from typing import Any

from shoal.cli import rbd_render as render
from shoal.cli.rados_cmd import err, strerror
from shoal.cli.rbd_args import (
    SNAP_NONE,
    VALIDATE_FULL,
    Args,
    ImageSpec,
    extract_spec,
    formatter,
    image_spec,
    invalid,
    pool_spec,
)
from shoal.cli.rbd_session import API_ERRORS, Exit, Progress, Session, emit, errno_of, fail, parent_of
from shoal.compat import rbd


def parse_date(text: str) -> float:
    """Epoch seconds of a date phrase, by `date -d` (rbd runs /bin/date the same way)."""
    try:
        # date's own complaint ("/bin/date: invalid date ...") goes to our stderr, as with rbd.
        proc = subprocess.run(["/bin/date", "-d", text, "+%s.%N"], stdout=subprocess.PIPE, text=True,
                              timeout=10, check=False)
    except OSError as exc:
        raise fail("rbd: error calling /bin/date", exc.errno or errno.EINVAL) from None
    if proc.returncode != 0:
        raise fail("rbd: error calling /bin/date", errno.EINVAL)
    return float(proc.stdout.strip())


def cmd_trash_mv(s: Session, a: Args) -> int:
    spec = image_spec(a, snap=SNAP_NONE)
    ioctx = s.open_pool(spec.pool, spec.namespace)
    now = time.time()
    expires = parse_date(a.get("expires-at")) if a.has("expires-at") else now
    delay = int(expires - now)  # whole seconds, truncated like utime_t::sec()
    if delay < 0:
        raise invalid("rbd: cannot use a date in the past as an expiration date")
    try:
        rbd.RBD().trash_move(ioctx, spec.image, delay)
    except API_ERRORS as exc:
        raise fail("rbd: deferred delete error", exc) from None
    return 0


def _trash_entry(ioctx: Any, entry: dict[str, Any], now: float) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": entry["id"], "name": entry["name"], "source": entry["source"],
                           "deleted_at": render.ctime(entry["deletion_time"]),
                           "status": render.trash_status(render.epoch(entry["deferment_end_time"]), now)}
    try:
        image = rbd.Image(ioctx, image_id=entry["id"], read_only=True)
    except API_ERRORS:
        return doc  # listed without its parent rather than hidden
    try:
        parent = parent_of(image)
    finally:
        image.close()
    if parent:
        doc["parent"] = {"pool": parent["pool_name"], "pool_namespace": parent.get("pool_namespace", ""),
                         "image": parent["image_name"], "snapshot": parent["snap_name"]}
    return doc


def cmd_trash_ls(s: Session, a: Args) -> int:
    pool, namespace = pool_spec(a)
    formatter(a)
    ioctx = s.open_pool(pool, namespace)
    try:
        entries = [e for e in rbd.RBD().trash_list(ioctx) if a.flag("all") or e["source"] == "USER"]
        now = time.time()
        docs = ([_trash_entry(ioctx, e, now) for e in entries] if a.flag("long")
                else [{"id": e["id"], "name": e["name"]} for e in entries])
    except API_ERRORS as exc:
        raise fail("rbd: trash list", exc) from None
    emit(a, docs, render.trash_plain(docs, a.flag("long")), "trash", {"trash": "image"})
    return 0


def _image_id(a: Args) -> ImageSpec:
    """`[pool/[namespace/]]image-id` or --image-id: the id lands in `.image`."""
    spec = ImageSpec(pool=a.get("pool", ""), namespace=a.get("namespace", ""), image=a.get("image-id", ""))
    if not spec.image:
        text = a.next_positional()
        if text:
            extract_spec(text, VALIDATE_FULL, spec)
    if not spec.image:
        raise invalid("rbd: image id was not specified")
    return spec


def cmd_trash_rm(s: Session, a: Args) -> int:
    spec = _image_id(a)
    ioctx = s.open_pool(spec.pool, spec.namespace)
    pc = Progress("Removing image", not a.flag("no-progress"))
    try:
        rbd.RBD().trash_remove(ioctx, spec.image, a.flag("force"), on_progress=pc.update)
    except API_ERRORS as exc:
        code = errno_of(exc)
        messages = {
            errno.ENOTEMPTY: "rbd: image has snapshots - these must be deleted with 'rbd snap purge' before the"
                             " image can be removed.",
            errno.EUCLEAN: "rbd: error: image not fully moved to trash.",
            errno.EBUSY: "rbd: error: image still has watchers\nThis means the image is still open or the client"
                         " using it crashed. Try again after closing/unmapping it or waiting 30s for the crashed"
                         " client to timeout.",
            errno.EMLINK: "\nRemove the image from the group and try again.",
            errno.EPERM: "\nDeferment time has not expired, please use --force if you really want to remove"
                         " the image",
        }
        err(messages.get(code, f"rbd: remove error: {strerror(code)}"))
        pc.fail()
        raise Exit(code) from None
    pc.finish()
    return 0


def cmd_trash_restore(s: Session, a: Args) -> int:
    spec = _image_id(a)
    ioctx = s.open_pool(spec.pool, spec.namespace)
    try:
        name = a.get("image") or rbd.RBD().trash_get(ioctx, spec.image)["name"]
        rbd.RBD().trash_restore(ioctx, spec.image, name)
    except API_ERRORS as exc:
        code = errno_of(exc)
        if code == errno.ENOENT:
            err("rbd: error: image does not exist in trash")
        elif code == errno.EEXIST:
            err("rbd: error: an image with the same name already exists, try again with with a different name")
        else:
            err(f"rbd: restore error: {strerror(code)}")
        raise Exit(code) from None
    return 0


def cmd_trash_purge(s: Session, a: Args) -> int:
    pool, namespace = pool_spec(a)
    ioctx = s.open_pool(pool, namespace)
    expire = None
    if not a.has("threshold") and a.has("expired-before"):
        # python-rbd reads the datetime back with time.mktime, i.e. as local time.
        expire = datetime.fromtimestamp(parse_date(a.get("expired-before")))
    pc = Progress("Removing images", not a.flag("no-progress"))
    try:
        rbd.RBD().trash_purge(ioctx, expire, a.get("threshold", -1))
    except API_ERRORS as exc:
        pc.fail()
        raise Exit(errno_of(exc)) from None
    pc.finish()
    return 0

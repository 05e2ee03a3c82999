"""`rbd snap ...`: list, create, remove, purge, rename, rollback, protect, unprotect, limits.

Texts and exit codes as Ceph 16's `src/tools/rbd/action/Snap.cc`.
"""

from __future__ import annotations

import errno

from shoal.cli import rbd_render as render
from shoal.cli.rados_cmd import err
from shoal.cli.rbd_args import (
    SNAP_NONE,
    SNAP_REQUIRED,
    VALIDATE_SNAP,
    Args,
    ImageSpec,
    formatter,
    image_spec,
    invalid,
)
from shoal.cli.rbd_session import API_ERRORS, Exit, Progress, Session, emit, errno_of, fail, out, user_snaps
from shoal.compat import rbd


def cmd_snap_ls(s: Session, a: Args) -> int:
    spec = image_spec(a, snap=SNAP_NONE)
    formatter(a)
    with s.image(spec, True, "rbd: failed to list snapshots") as image:
        snaps = [{"id": sn["id"], "name": sn["name"], "size": sn["size"],
                  "protected": "true" if image.is_protected_snap(sn["name"]) else "false",
                  "timestamp": render.ctime(image.get_snap_timestamp(sn["id"]))} for sn in user_snaps(image)]
    emit(a, snaps, render.snap_ls_plain(snaps), "snapshots", {"snapshots": "snapshot"})
    return 0


def cmd_snap_create(s: Session, a: Args) -> int:
    spec = image_spec(a, snap=SNAP_REQUIRED, validation=VALIDATE_SNAP)
    pc = Progress("Creating snap", not a.flag("no-progress"))
    with s.image(spec, False, "rbd: failed to create snapshot", pc) as image:
        # librbd checks the name, then reports 10% once it has quiesced the image's users.
        if not image.snap_exists(spec.snap):
            pc.update(1, 10)
        image.create_snap(spec.snap)
    pc.finish()
    return 0


def cmd_snap_rm(s: Session, a: Args) -> int:
    spec = image_spec(a, snap=SNAP_REQUIRED)
    pc = Progress("Removing snap", not a.flag("no-progress"))
    with s.image(spec, False, "rbd: failed to remove snapshot", pc) as image:
        try:
            if a.flag("force"):  # flatten the children and unprotect, as librbd's force flag does
                image.remove_snap2(spec.snap, rbd.RBD_SNAP_REMOVE_FORCE)
            else:
                image.remove_snap(spec.snap)
        except rbd.ImageBusy:
            pc.fail()
            err(f"rbd: snapshot '{spec.snap}' is protected from removal.")
            raise Exit(errno.EBUSY) from None
    pc.finish()
    return 0


def cmd_snap_purge(s: Session, a: Args) -> int:
    spec = image_spec(a, snap=SNAP_NONE)
    image = s.open_image(s.open_pool(spec.pool, spec.namespace), spec.image, False)
    pc = Progress("Removing all snapshots", not a.flag("no-progress"))
    try:
        snaps = user_snaps(image)
        protected = [sn["name"] for sn in snaps if image.is_protected_snap(sn["name"])]
        doomed = [sn["name"] for sn in snaps if sn["name"] not in protected]
        if protected:
            # rbd prints this on stdout and still exits 0 (Snap.cc do_purge_snaps).
            out(f"rbd: error removing snapshot(s) '{','.join(protected)}', which "
                f"{'is' if len(protected) == 1 else 'are'} protected - these must be unprotected with"
                " `rbd snap unprotect`.\n")
        for i, name in enumerate(doomed):
            image.remove_snap(name)
            pc.update(i + 1, len(snaps))
    except API_ERRORS as exc:
        pc.fail()
        if errno_of(exc) == errno.EBUSY:
            raise Exit(errno.EBUSY) from None
        raise fail("rbd: removing snaps failed", exc) from None
    finally:
        image.close()
    if protected:
        pc.fail()
    elif doomed:
        pc.finish()
    return 0


def cmd_snap_rename(s: Session, a: Args) -> int:
    src = image_spec(a, snap=SNAP_REQUIRED)
    dest = image_spec(a, dest=True, snap=SNAP_REQUIRED, validation=VALIDATE_SNAP,
                      preset=ImageSpec(pool=src.pool, namespace=src.namespace))
    if src.pool != dest.pool:
        raise invalid("rbd: source and destination pool must be the same")
    if src.namespace != dest.namespace:
        raise invalid("rbd: source and destination namespace must be the same")
    if src.image != dest.image:
        raise invalid("rbd: source and destination image name must be the same")
    with s.image(src, False, "rbd: renaming snap failed") as image:
        image.rename_snap(src.snap, dest.snap)
    return 0


def cmd_snap_rollback(s: Session, a: Args) -> int:
    spec = image_spec(a, snap=SNAP_REQUIRED)
    pc = Progress("Rolling back to snapshot", not a.flag("no-progress"))
    with s.image(spec, False, "rbd: rollback failed", pc) as image:
        image.rollback_to_snap(spec.snap)
    pc.finish()
    return 0


def _protection(s: Session, a: Args, protect: bool) -> int:
    spec = image_spec(a, snap=SNAP_REQUIRED)
    with s.image(spec, False, f"rbd: {'protecting' if protect else 'unprotecting'} snap failed") as image:
        if image.is_protected_snap(spec.snap) == protect:
            err(f"rbd: snap is already {'protected' if protect else 'unprotected'}")
            raise Exit(errno.EBUSY if protect else errno.EINVAL)
        if protect:
            image.protect_snap(spec.snap)
        else:
            image.unprotect_snap(spec.snap)
    return 0


def cmd_snap_protect(s: Session, a: Args) -> int:
    return _protection(s, a, True)


def cmd_snap_unprotect(s: Session, a: Args) -> int:
    return _protection(s, a, False)


def cmd_snap_limit_set(s: Session, a: Args) -> int:
    spec = image_spec(a, snap=SNAP_NONE)
    if not a.has("limit"):
        err("rbd: must specify --limit <num>")
        raise Exit(errno.ERANGE)
    with s.image(spec, False, "rbd: setting snapshot limit failed") as image:
        image.set_snap_limit(a.get("limit"))
    return 0


def cmd_snap_limit_clear(s: Session, a: Args) -> int:
    with s.image(image_spec(a, snap=SNAP_NONE), False, "rbd: clearing snapshot limit failed") as image:
        image.remove_snap_limit()
    return 0

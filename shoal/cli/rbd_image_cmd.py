"""`rbd` commands on whole images: pool init, create, info, ls, status, rm, mv, resize, cp,
clone, children, flatten, du, diff, feature.

Each handler takes the session and the parsed arguments, prints what Ceph 16's rbd prints
(`src/tools/rbd/action/*.cc`) and returns 0, or reports the failure and raises `Exit`.
"""

from __future__ import annotations

import errno
from typing import Any

from shoal.cli import rbd_render as render
from shoal.cli.rados_cmd import err, strerror
from shoal.cli.rbd_args import (
    SNAP_NONE,
    SNAP_REQUIRED,
    VALIDATE_FULL,
    ArgError,
    Args,
    CreateOptions,
    ImageSpec,
    create_options,
    formatter,
    image_spec,
    invalid,
    parse_feature_names,
    pool_spec,
)
from shoal.cli.rbd_session import (
    API_ERRORS,
    Exit,
    Progress,
    Session,
    emit,
    errno_of,
    fail,
    parent_of,
    user_snaps,
)
from shoal.compat import rbd
from shoal.rbd import features as feat


def create_image(s: Session, ioctx: Any, name: str, size: int, o: CreateOptions) -> None:
    """RBD.create with the create options; --image-shared clears the single-client features
    from whatever the features end up being (librbd's RBD_IMAGE_OPTION_FEATURES_CLEAR)."""
    if o.image_format == 1:
        # librbd refuses to create format 1 images (the python call would still make one).
        raise rbd.InvalidArgument("Format 1 image creation unsupported", errno.EINVAL)
    features = o.features
    if o.features_clear:
        if features is None:
            features = feat.parse_features(s.cluster.conf_get("rbd_default_features") or str(feat.DEFAULT))
        features &= ~o.features_clear
    rbd.RBD().create(ioctx, name, size, order=o.order, old_format=False, features=features,
                     stripe_unit=o.stripe_unit, stripe_count=o.stripe_count, data_pool=o.data_pool)


def cmd_pool_init(s: Session, a: Args) -> int:
    pool, _ = pool_spec(a)
    ioctx = s.open_pool(pool)
    try:
        rbd.RBD().pool_init(ioctx, a.flag("force"))
    except API_ERRORS as exc:
        code = errno_of(exc)
        if code == errno.EOPNOTSUPP:
            err("rbd: luminous or later release required.")
        elif code == errno.EPERM:
            err("rbd: pool already registered to a different application.")
        else:
            err(f"rbd: error registered application: {strerror(code)}")
        raise Exit(code) from None
    return 0


def cmd_create(s: Session, a: Args) -> int:
    spec = image_spec(a, snap=SNAP_NONE, validation=VALIDATE_FULL)
    opts, warnings = create_options(a, with_format=True)
    if not a.has("size"):
        raise invalid("rbd: must specify --size <M/G/T>")
    for warning in warnings:
        err(warning)
    ioctx = s.open_pool(spec.pool, spec.namespace)
    try:
        create_image(s, ioctx, spec.image, a.get("size"), opts)
    except API_ERRORS as exc:
        raise fail("rbd: create error", exc) from None
    return 0


def image_info(s: Session, ioctx: Any, image: Any, spec: ImageSpec) -> dict[str, Any]:
    """The facts `rbd info` shows, gathered through python-rbd."""
    st = image.stat()
    features = image.features()
    info: dict[str, Any] = {
        "name": spec.image, "id": image.id(), "size": st["size"], "objects": st["num_objs"], "order": st["order"],
        "object_size": st["obj_size"], "snapshot_count": len(list(image.list_snaps())),
        "block_name_prefix": image.block_name_prefix(), "format": 1 if image.old_format() else 2,
        "features": features, "op_features": image.op_features(), "flags": image.flags(),
        "create_timestamp": image.create_timestamp(), "access_timestamp": image.access_timestamp(),
        "modify_timestamp": image.modify_timestamp(), "snapshot_limit": image.get_snap_limit(),
        "parent": parent_of(image),
    }
    data_pool_id = image.data_pool_id()
    if data_pool_id != ioctx.get_pool_id():
        info["data_pool"] = s.cluster.pool_reverse_lookup(data_pool_id) or f"<missing data pool {data_pool_id}>"
    if spec.snap:
        info["protected"] = image.is_protected_snap(spec.snap)
    if info["parent"]:
        info["overlap"] = image.overlap()
        info["parent"].update(image_id=image.parent_id(), trash=_in_trash(s, info["parent"], image.parent_id()))
    if features & feat.STRIPINGV2:
        info["stripe_unit"] = image.stripe_unit()
        info["stripe_count"] = image.stripe_count()
    return info


def _in_trash(s: Session, parent: dict[str, Any], parent_id: str) -> bool:
    """Whether the parent image sits in the trash (rbd info then says "(trash <id>)")."""
    ioctx = s.cluster.open_ioctx(parent["pool_name"])
    try:
        ioctx.set_namespace(parent.get("pool_namespace", ""))
        rbd.RBD().trash_get(ioctx, parent_id)
    except rbd.ImageNotFound:
        return False
    finally:
        ioctx.close()
    return True


def cmd_info(s: Session, a: Args) -> int:
    spec = image_spec(a)
    formatter(a)
    ioctx = s.open_pool(spec.pool, spec.namespace)
    image = s.open_image(ioctx, spec.image, True, spec.snap)
    try:
        d = render.info_data(image_info(s, ioctx, image, spec))
    except API_ERRORS as exc:
        raise fail("rbd: info", exc) from None
    finally:
        image.close()
    emit(a, d, render.info_plain(d), "image", render.INFO_ITEMS)
    return 0


def _lock_type(image: Any) -> str | None:
    lockers = image.list_lockers()
    if not lockers or not lockers.get("lockers"):
        return None
    return "exclusive" if lockers.get("exclusive") else "shared"


def _parent_entry(parent: dict[str, Any]) -> dict[str, str]:
    return {"pool": parent["pool_name"], "pool_namespace": parent.get("pool_namespace", ""),
            "image": parent["image_name"], "snapshot": parent["snap_name"]}


def long_entries(image: Any, name: str) -> list[dict[str, Any]]:
    """The `ls -l` entries of one image: itself, then each of its snapshots."""
    image_id = image.id()
    old = 1 if image.old_format() else 2
    head: dict[str, Any] = {"image": name, "id": image_id, "size": image.size()}
    parent = parent_of(image)
    if parent:
        head["parent"] = _parent_entry(parent)
    head["format"] = old
    lock = _lock_type(image)
    if lock:
        head["lock_type"] = lock
    entries = [head]
    for snap in user_snaps(image):
        image.set_snap(snap["name"])
        entry: dict[str, Any] = {"image": name, "id": image_id, "snapshot": snap["name"], "snapshot_id": snap["id"],
                                 "size": snap["size"]}
        parent = parent_of(image)
        if parent:
            entry["parent"] = _parent_entry(parent)
        entry["format"] = old
        entry["protected"] = "true" if image.is_protected_snap(snap["name"]) else "false"
        entries.append(entry)
    image.set_snap(None)
    return entries


def cmd_ls(s: Session, a: Args) -> int:
    pool, namespace = pool_spec(a)
    formatter(a)
    try:
        ioctx = s.open_pool(pool, namespace)
        names = rbd.RBD().list(ioctx)
    except Exit as exc:
        err(f"rbd: listing images failed: {strerror(exc.code)}")
        raise
    except API_ERRORS as exc:
        raise fail("rbd: listing images failed", exc) from None
    if not a.flag("long"):
        emit(a, list(names), "".join(f"{n}\n" for n in names), "images", {"images": "name"})
        return 0
    entries: list[dict[str, Any]] = []
    for name in names:
        try:
            image = rbd.Image(ioctx, name, read_only=True)
        except API_ERRORS as exc:
            # The image may vanish between list and open; Ceph warns and goes on.
            err(f"rbd: error opening {name}: {strerror(errno_of(exc))}")
            continue
        try:
            entries += long_entries(image, name)
        except API_ERRORS as exc:
            err(f"rbd: error processing image {name}: {strerror(errno_of(exc))}")
        finally:
            image.close()
    emit(a, entries, render.ls_long_plain(entries), "images", {"images": render.ls_long_item_name})
    return 0


def cmd_status(s: Session, a: Args) -> int:
    spec = image_spec(a, snap=SNAP_NONE)
    formatter(a)
    with s.image(spec, True, "rbd: show status failed") as image:
        watchers = [{"address": w["addr"], "client": w["id"], "cookie": w["cookie"]} for w in image.watchers_list()]
    emit(a, {"watchers": watchers}, render.status_plain(watchers), "status", {"watchers": "watcher"})
    return 0


def cmd_remove(s: Session, a: Args) -> int:
    spec = image_spec(a, snap=SNAP_NONE)
    ioctx = s.open_pool(spec.pool, spec.namespace)
    pc = Progress("Removing image", not a.flag("no-progress"))
    try:
        rbd.RBD().remove(ioctx, spec.image, on_progress=pc.update)
    except API_ERRORS as exc:
        pc.fail()
        code = errno_of(exc)
        if code == errno.ENOTEMPTY:
            err("rbd: image has snapshots - these must be deleted with 'rbd snap purge' before the image"
                " can be removed.")
        elif code == errno.EBUSY:
            err("rbd: error: image still has watchers\nThis means the image is still open or the client using it"
                " crashed. Try again after closing/unmapping it or waiting 30s for the crashed client to timeout.")
        elif code == errno.EMLINK:
            err("rbd: error: image belongs to a group\nRemove the image from the group and try again.")
        else:
            err(f"rbd: delete error: {strerror(code)}")
        raise Exit(code) from None
    pc.finish()
    return 0


def _same_pool_dest(a: Args, src: ImageSpec, validation: str = VALIDATE_FULL) -> ImageSpec:
    """The destination spec, whose pool and namespace default to the source's."""
    return image_spec(a, dest=True, snap=SNAP_NONE, validation=validation,
                      preset=ImageSpec(pool=src.pool, namespace=src.namespace))


def cmd_rename(s: Session, a: Args) -> int:
    src = image_spec(a, snap=SNAP_NONE)
    dest = _same_pool_dest(a, src)
    if src.pool != dest.pool:
        raise invalid(f"rbd: mv/rename across pools not supported\nsource pool: {src.pool} dest pool: {dest.pool}")
    if src.namespace != dest.namespace:
        raise invalid("rbd: mv/rename across namespaces not supported\n"
                      f"source namespace: {src.namespace} dest namespace: {dest.namespace}")
    ioctx = s.open_pool(src.pool, src.namespace)
    try:
        rbd.RBD().rename(ioctx, src.image, dest.image)
    except API_ERRORS as exc:
        raise fail("rbd: rename error", exc) from None
    return 0


def cmd_resize(s: Session, a: Args) -> int:
    spec = image_spec(a, snap=SNAP_NONE)
    if not a.has("size"):
        raise invalid("rbd: must specify --size <M/G/T>")
    size = a.get("size")
    pc = Progress("Resizing image", not a.flag("no-progress"))
    with s.image(spec, False, "rbd: resize error", pc) as image:
        current = image.size()
        if current == size:
            raise invalid("rbd: new size is equal to original size ")
        if size < current and not a.flag("allow-shrink"):
            raise invalid("rbd: shrinking an image is only allowed with the --allow-shrink flag")
        image.resize(size, allow_shrink=True)
    pc.finish()
    return 0


def cmd_copy(s: Session, a: Args) -> int:
    src = image_spec(a)
    dest = _same_pool_dest(a, src)
    opts, _ = create_options(a, with_format=False)
    pc = Progress("Image copy", not a.flag("no-progress"))
    with s.image(src, True, "rbd: copy failed", pc, at_snap=True) as image:
        image.copy(s.open_pool(dest.pool, dest.namespace), dest.image, features=opts.features, order=opts.order,
                   stripe_unit=opts.stripe_unit, stripe_count=opts.stripe_count, data_pool=opts.data_pool)
    pc.finish()
    return 0


def cmd_clone(s: Session, a: Args) -> int:
    src = image_spec(a, snap=SNAP_REQUIRED)
    dest = _same_pool_dest(a, src)
    opts, _ = create_options(a, with_format=False)
    p_ioctx = s.open_pool(src.pool, src.namespace)
    c_ioctx = s.open_pool(dest.pool, dest.namespace)
    try:
        rbd.RBD().clone(p_ioctx, src.image, src.snap, c_ioctx, dest.image, features=opts.features,
                        order=opts.order, stripe_unit=opts.stripe_unit, stripe_count=opts.stripe_count,
                        data_pool=opts.data_pool)
    except API_ERRORS as exc:
        raise fail("rbd: clone error", exc) from None
    return 0


def _children_of(image: Any, with_trash: bool) -> list[dict[str, Any]]:
    out_list = []
    for c in image.list_children2():
        if c.get("trash") and not with_trash:
            continue
        entry: dict[str, Any] = {"pool": c["pool"], "pool_namespace": c.get("pool_namespace", ""),
                                 "image": c["image"]}
        if with_trash:
            entry.update(id=c.get("id", ""), trash=bool(c.get("trash")))
        out_list.append(entry)
    return out_list


def cmd_children(s: Session, a: Args) -> int:
    spec = image_spec(a)
    formatter(a)
    with s.image(spec, True, "rbd: listing children failed") as image:
        # No snapshot named: the children of every snapshot.
        snaps = [spec.snap] if spec.snap else [snap["name"] for snap in user_snaps(image)]
        children: list[dict[str, Any]] = []
        for name in snaps:
            try:
                image.set_snap(name)
            except rbd.ImageNotFound:
                err("rbd: snapshot does not exist.")
                raise Exit(errno.ENOENT) from None
            children += _children_of(image, a.flag("all"))
    emit(a, children, render.children_plain(children), "children", {"children": "child"})
    return 0


def cmd_flatten(s: Session, a: Args) -> int:
    spec = image_spec(a, snap=SNAP_NONE)
    pc = Progress("Image flatten", not a.flag("no-progress"))
    with s.image(spec, False, "rbd: flatten error", pc) as image:
        image.flatten(on_progress=pc.update)
    pc.finish()
    return 0


def _used(image: Any, label: str, size: int, from_snap: str | None, exact: bool) -> int:
    """Bytes of `size` that exist in the selected snapshot (since `from_snap`)."""
    if image.flags() & render.FLAG_FAST_DIFF_INVALID:
        err(f"warning: fast-diff map is invalid for {label}. operation may be slow.")
    used = 0

    def count(_offset: int, length: int, exists: bool) -> int:
        nonlocal used
        if exists:
            used += length
        return 0

    image.diff_iterate(0, size, from_snap, count, include_parent=False, whole_object=not exact)
    return used


def _du_image(image: Any, name: str, image_id: str, spec: ImageSpec, from_snap: str, a: Args,
              rows: list[dict[str, Any]]) -> tuple[int, int]:
    """The rows of one image (snapshots up to `snap`, then HEAD unless a snapshot was named)
    and its (provisioned, used) contribution to the totals (DiskUsage.cc's walk). With
    --from-snap only the snapshots after it count, unless the whole pool is listed."""
    snap = spec.snap
    if not image.features() & feat.FAST_DIFF:
        err(f"warning: fast-diff map is not enabled for {name}. operation may be slow.")
    snaps = user_snaps(image)
    names = [sn["name"] for sn in snaps]
    if (snap and snap not in names) or (from_snap and from_snap not in names):
        err("specified snapshot is not found.")
        raise Exit(errno.ENOENT)
    if snap and from_snap and names.index(from_snap) >= names.index(snap):
        raise Exit(0 if from_snap == snap else errno.EINVAL)
    prov = used_total = 0
    merged = 0
    last: str | None = None
    counting = not from_snap or not spec.image
    for sn in snaps:
        if counting:
            image.set_snap(sn["name"])
            used = _used(image, f"{name}@{sn['name']}", sn["size"], last, a.flag("exact"))
            merged += used
            if not a.flag("merge-snapshots"):
                rows.append({"name": name, "id": image_id, "snapshot": sn["name"], "snapshot_id": sn["id"],
                             "provisioned_size": sn["size"], "used_size": used})
            if snap:
                prov += sn["size"]
            used_total += used
        if sn["name"] == from_snap:
            counting = True
        if sn["name"] == snap:
            break
        last = sn["name"]
    if not snap:
        image.set_snap(None)
        size = image.size()
        used = _used(image, name, size, last, a.flag("exact"))
        rows.append({"name": name, "id": image_id, "provisioned_size": size,
                     "used_size": merged + used if a.flag("merge-snapshots") else used})
        prov += size
        used_total += used
    return prov, used_total


def cmd_du(s: Session, a: Args) -> int:
    spec = image_spec(a, image_required=False)
    from_snap = a.get("from-snap", "")
    formatter(a)
    ioctx = s.open_pool(spec.pool, spec.namespace)
    rows: list[dict[str, Any]] = []
    total_prov = total_used = 0
    found = False
    try:
        for entry in rbd.RBD().list2(ioctx):
            if spec.image and entry["name"] != spec.image:
                continue
            try:
                image = rbd.Image(ioctx, entry["name"], read_only=True)
            except rbd.ImageNotFound:
                continue  # removed since the listing
            found = True
            try:
                prov, used = _du_image(image, entry["name"], entry["id"], spec, from_snap, a, rows)
            finally:
                image.close()
            total_prov += prov
            total_used += used
    except Exit as exc:
        if exc.code:
            err(f"rbd: du failed: {strerror(exc.code)}")
        raise
    except API_ERRORS as exc:
        raise fail("rbd: du failed", exc) from None
    if spec.image and not found:
        err(f"specified image {spec.image} is not found.")
        raise fail("rbd: du failed", errno.ENOENT)
    doc: dict[str, Any] = {"images": rows}
    if not spec.image:
        doc.update(total_provisioned_size=total_prov, total_used_size=total_used)
    emit(a, doc, render.du_plain(rows, (total_prov, total_used)) if rows else "", "stats", {"images": "image"})
    return 0


def cmd_diff(s: Session, a: Args) -> int:
    spec = image_spec(a)
    formatter(a)
    extents: list[dict[str, Any]] = []

    def collect(offset: int, length: int, exists: bool) -> int:
        extents.append({"offset": offset, "length": length, "exists": "true" if exists else "false"})
        return 0

    with s.image(spec, True, "rbd: diff error", at_snap=True) as image:
        image.diff_iterate(0, image.size(), a.get("from-snap") or None, collect, include_parent=True,
                           whole_object=a.flag("whole-object"))
    emit(a, extents, render.diff_plain(extents), "extents", {"extents": "extent"})
    return 0


def _feature_command(s: Session, a: Args, enable: bool) -> int:
    spec = image_spec(a, snap=SNAP_NONE)
    words = a.positional[a.pos:]
    try:
        mask = parse_feature_names(words)
    except ValueError:
        raise ArgError("rbd: the argument for option is invalid") from None
    if not words:
        raise invalid("rbd: at least one feature name must be specified")
    with s.image(spec, False, "rbd: failed to update image features") as image:
        image.update_features(mask, enable)
    return 0


def cmd_feature_enable(s: Session, a: Args) -> int:
    return _feature_command(s, a, True)


def cmd_feature_disable(s: Session, a: Args) -> int:
    return _feature_command(s, a, False)

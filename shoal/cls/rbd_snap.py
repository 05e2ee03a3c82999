"""cls_rbd snapshot, protection, parent (layering) and clone-v2 children methods on a header.

Stored as msgpack (Ceph's cls_rbd_snap / cls_rbd_parent byte layouts are not reproduced):
`snapshot_<%016x id>` = {id, name, namespace, image_size, flags, protection_status,
parent_overlap (None = no parent), timestamp [sec, nsec], child_count}; the header's
`parent` = {pool_id, pool_namespace, image_id, snap_id, head_overlap (None = head detached)}
is shared by the snapshots (Ceph's "normalized" parent format); `snap_children_<%016x id>`
= sorted list of [pool_id, pool_namespace, image_id]. `snap_seq` is Ceph's u64.
Behaviour and errno follow ceph:src/cls/rbd/cls_rbd.cc.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from shoal.cls import rbd_common as c
from shoal.cls.rbd_header import load_snap, require_feature, set_op_features
from shoal.cls.registry import RD, WR, MethodContext, method
from shoal.errors import Busy, Exists, InvalidArgument, NotFound, RangeError
from shoal.rbd import features as F

NAMESPACE_TYPES = ("user", "group", "trash", "mirror")


def _namespace(a: dict[str, Any]) -> dict[str, Any]:
    ns = a.get("namespace", {"type": "user"})
    if not isinstance(ns, dict) or ns.get("type") not in NAMESPACE_TYPES:
        raise InvalidArgument("bad snapshot namespace")
    return ns


def _snaps(ctx: MethodContext) -> list[dict[str, Any]]:
    return [c.unpack_record(raw) for _, raw in c.all_vals(ctx, c.SNAP_KEY_PREFIX)]


def _put_snap(ctx: MethodContext, rec: dict[str, Any]) -> None:
    ctx.omap_set({c.snap_key(int(rec["id"])): c.pack_record(rec)})


def _parent(ctx: MethodContext) -> dict[str, Any] | None:
    raw = c.read_key(ctx, "parent")
    return None if raw is None else c.unpack_record(raw)


@method("rbd", "get_snapcontext", RD)
def get_snapcontext(ctx: MethodContext, data: bytes) -> bytes:
    """In: nothing. Out: {seq, snaps} with snaps in descending id order (§3)."""
    seq = c.read_u64(ctx, "snap_seq")
    ids = [int(k[len(c.SNAP_KEY_PREFIX):], 16) for k, _ in c.all_vals(ctx, c.SNAP_KEY_PREFIX)]
    return c.out({"seq": seq, "snaps": sorted(ids, reverse=True)})


@method("rbd", "snapshot_add", RD | WR)
def snapshot_add(ctx: MethodContext, data: bytes) -> bytes:
    """In: {snap_id, name, namespace={"type": "user"}}. Out: nil.

    EINVAL bad namespace or reserved id (> CEPH_MAXSNAP); ENOENT not a header; ESTALE
    if snap_id < snap_seq (lost a race); then, walking existing snapshots in id order,
    EDQUOT once their count reaches snap_limit and EEXIST for the same name in the same
    namespace or the same id. Records the head's size, flags and parent overlap;
    snap_seq becomes snap_id. A trash-namespace snapshot sets op feature SNAP_TRASH.
    """
    a = c.args(data)
    snap_id = c.get_int(a, "snap_id")
    name = c.get_str(a, "name")
    ns = _namespace(a)
    if snap_id > c.CEPH_MAXSNAP:
        raise InvalidArgument(f"snap id {snap_id} is reserved")
    seq = c.read_u64(ctx, "snap_seq")
    if snap_id < seq:
        raise c.Stale(f"snap id {snap_id} older than snap_seq {seq}")
    size = c.read_u64(ctx, "size")
    limit = c.read_u64(ctx, "snap_limit", c.U64_MAX)
    for count, rec in enumerate(_snaps(ctx), start=1):
        if count >= limit:
            raise c.QuotaExceeded(f"snapshot limit {limit} reached")
        if (rec["name"] == name and rec["namespace"] == ns) or int(rec["id"]) == snap_id:
            raise Exists(f"snapshot {name!r} / id {snap_id} exists")
    parent = _parent(ctx)
    now = time.time()
    rec = {
        "id": snap_id,
        "name": name,
        "namespace": ns,
        "image_size": size,
        "flags": c.read_u64(ctx, "flags", 0),
        "protection_status": c.PROTECTION_UNPROTECTED,
        "parent_overlap": parent.get("head_overlap") if parent is not None else None,
        "timestamp": [int(now), int((now % 1) * 1e9)],
        "child_count": 0,
    }
    if ns["type"] == "trash":
        set_op_features(ctx, F.OP_SNAP_TRASH, F.OP_SNAP_TRASH)
    c.write_u64(ctx, "snap_seq", snap_id)
    _put_snap(ctx, rec)
    return b""


@method("rbd", "snapshot_remove", RD | WR)
def snapshot_remove(ctx: MethodContext, data: bytes) -> bytes:
    """In: {snap_id}. Out: nil. ENOENT missing; EBUSY protected, unprotecting, or with v2 children.

    Afterwards drops a parent spec nothing uses any more, and the CLONE_CHILD / SNAP_TRASH
    op features when no remaining snapshot needs them.
    """
    snap_id = c.get_int(c.args(data), "snap_id")
    rec = load_snap(ctx, snap_id)
    if rec["protection_status"] != c.PROTECTION_UNPROTECTED:
        raise Busy("snapshot is protected")
    if int(rec.get("child_count", 0)) > 0:
        raise Busy("snapshot has clone children")
    ctx.omap_rm([c.snap_key(snap_id)])
    others = [r for r in _snaps(ctx) if int(r["id"]) != snap_id]
    has_child_snaps = any(r.get("parent_overlap") is not None for r in others)
    has_trash_snaps = any(r["namespace"].get("type") == "trash" for r in others)
    parent = _parent(ctx)
    is_head_child = parent is not None and bool(parent.get("head_overlap"))
    if parent is not None and not is_head_child and not has_child_snaps:
        ctx.omap_rm(["parent"])
    mask = 0
    if not has_child_snaps and not is_head_child:
        mask |= F.OP_CLONE_CHILD
    if not has_trash_snaps:
        mask |= F.OP_SNAP_TRASH
    set_op_features(ctx, 0, mask)
    return b""


@method("rbd", "snapshot_rename", RD | WR)
def snapshot_rename(ctx: MethodContext, data: bytes) -> bytes:
    """In: {src_snap_id, dst_name}. Out: nil.

    EEXIST a user snapshot already has dst_name; ENOENT missing source; EINVAL the source
    is not a user snapshot (only those can be renamed).
    """
    a = c.args(data)
    snap_id = c.get_int(a, "src_snap_id")
    dst = c.get_str(a, "dst_name")
    for other in _snaps(ctx):
        if other["namespace"].get("type") == "user" and other["name"] == dst:
            raise Exists(f"snapshot {dst!r} exists")
    rec = load_snap(ctx, snap_id)
    if rec["namespace"].get("type") != "user":
        raise InvalidArgument("only user snapshots can be renamed")
    rec["name"] = dst
    _put_snap(ctx, rec)
    return b""


@method("rbd", "snapshot_trash_add", RD | WR)
def snapshot_trash_add(ctx: MethodContext, data: bytes) -> bytes:
    """In: {snap_id}. Out: nil. ENOENT; EBUSY protected; EEXIST already in the trash.

    The record moves to the trash namespace (remembering its original namespace type and
    name) under a random uuid name, and the header gains op feature SNAP_TRASH.
    """
    snap_id = c.get_int(c.args(data), "snap_id")
    rec = load_snap(ctx, snap_id)
    if rec["protection_status"] != c.PROTECTION_UNPROTECTED:
        raise Busy("snapshot is protected")
    if rec["namespace"].get("type") == "trash":
        raise Exists("snapshot already in the trash")
    set_op_features(ctx, F.OP_SNAP_TRASH, F.OP_SNAP_TRASH)
    rec["namespace"] = {"type": "trash", "original_type": rec["namespace"]["type"], "original_name": rec["name"]}
    rec["name"] = str(uuid.uuid4())
    _put_snap(ctx, rec)
    return b""


@method("rbd", "snapshot_get", RD)
def snapshot_get(ctx: MethodContext, data: bytes) -> bytes:
    """In: {snap_id}. Out: the snapshot record (see module doc). ENOENT missing."""
    return c.out(load_snap(ctx, c.get_int(c.args(data), "snap_id")))


@method("rbd", "snapshot_list", RD)
def snapshot_list(ctx: MethodContext, data: bytes) -> bytes:
    """In: nothing. Out: every snapshot record, ascending id (Shoal convenience method)."""
    c.read_u64(ctx, "snap_seq")
    return c.out(_snaps(ctx))


def _snap_not_head(data: bytes) -> Any:
    snap_id = c.get_int(c.args(data), "snap_id")
    if snap_id == c.CEPH_NOSNAP:
        raise InvalidArgument("HEAD is not a snapshot")
    return lambda ctx: load_snap(ctx, snap_id)


@method("rbd", "get_snapshot_name", RD)
def get_snapshot_name(ctx: MethodContext, data: bytes) -> bytes:
    """In: {snap_id}. Out: the name. EINVAL for HEAD; ENOENT."""
    return c.out(_snap_not_head(data)(ctx)["name"])


@method("rbd", "get_snapshot_timestamp", RD)
def get_snapshot_timestamp(ctx: MethodContext, data: bytes) -> bytes:
    """In: {snap_id}. Out: [sec, nsec]. EINVAL for HEAD; ENOENT."""
    return c.out(_snap_not_head(data)(ctx)["timestamp"])


@method("rbd", "get_protection_status", RD)
def get_protection_status(ctx: MethodContext, data: bytes) -> bytes:
    """In: {snap_id}. Out: 0 unprotected, 1 unprotecting, 2 protected. ENOENT; EINVAL for HEAD."""
    snap_id = c.get_int(c.args(data), "snap_id")
    c.require_object(ctx)
    if snap_id == c.CEPH_NOSNAP:
        raise InvalidArgument("HEAD has no protection status")
    return c.out(load_snap(ctx, snap_id)["protection_status"])


@method("rbd", "set_protection_status", RD | WR)
def set_protection_status(ctx: MethodContext, data: bytes) -> bytes:
    """In: {snap_id, status}. Out: nil.

    ENOENT missing header; ENOEXEC without LAYERING; EINVAL for HEAD or a status > 2;
    ENOENT missing snapshot.
    """
    a = c.args(data)
    snap_id = c.get_int(a, "snap_id")
    status = c.get_int(a, "status")
    c.require_object(ctx)
    require_feature(ctx, F.LAYERING)
    if snap_id == c.CEPH_NOSNAP or status > c.PROTECTION_PROTECTED:
        raise InvalidArgument(f"bad snapshot {snap_id} or protection status {status}")
    rec = load_snap(ctx, snap_id)
    rec["protection_status"] = status
    _put_snap(ctx, rec)
    return b""


@method("rbd", "snapshot_get_limit", RD)
def snapshot_get_limit(ctx: MethodContext, data: bytes) -> bytes:
    """In: nothing. Out: the limit (2**64-1 = unlimited)."""
    return c.out(c.read_u64(ctx, "snap_limit", c.U64_MAX))


@method("rbd", "snapshot_set_limit", RD | WR)
def snapshot_set_limit(ctx: MethodContext, data: bytes) -> bytes:
    """In: {limit}. Out: nil. 2**64-1 removes the limit; ERANGE below the number of snapshots."""
    limit = c.get_int(c.args(data), "limit")
    c.require_object(ctx)
    if limit == c.U64_MAX:
        if c.read_key(ctx, "snap_limit") is not None:
            ctx.omap_rm(["snap_limit"])
        return b""
    count = len(c.all_vals(ctx, c.SNAP_KEY_PREFIX))
    if limit < count:
        raise RangeError(f"limit {limit} below {count} existing snapshots")
    c.write_u64(ctx, "snap_limit", limit)
    return b""


# -- parent (layering) ------------------------------------------------------------------
NO_PARENT = {"pool_id": -1, "pool_namespace": "", "image_id": "", "snap_id": c.CEPH_NOSNAP}


def _parent_spec_arg(a: dict[str, Any]) -> dict[str, Any]:
    return {
        "pool_id": c.get_int(a, "pool_id", lo=-1, hi=(1 << 63) - 1),
        "pool_namespace": c.get_str(a, "pool_namespace", ""),
        "image_id": c.get_str(a, "image_id"),
        "snap_id": c.get_int(a, "snap_id"),
    }


def _spec_exists(spec: dict[str, Any]) -> bool:
    return spec["pool_id"] >= 0 and bool(spec["image_id"]) and spec["snap_id"] != c.CEPH_NOSNAP


def _layering(ctx: MethodContext) -> bool:
    return bool(c.read_u64(ctx, "features", 0) & F.LAYERING)


def _attach(ctx: MethodContext, spec: dict[str, Any], overlap: int, reattach: bool) -> None:
    c.require_object(ctx)
    require_feature(ctx, F.LAYERING)
    if not _spec_exists(spec) or overlap == 0:
        raise InvalidArgument("parent needs a pool, image id, snapshot and a non-zero overlap")
    old = _parent(ctx)
    if old is not None and not reattach:
        same_spec = {k: old[k] for k in NO_PARENT} == spec
        # Re-linking the same spec to a detached head is fine; anything else needs reattach.
        if old.get("head_overlap") is not None or not same_spec:
            raise Exists("image already has a parent")
    spec["head_overlap"] = min(overlap, c.read_u64(ctx, "size"))  # never beyond the child (§4)
    ctx.omap_set({"parent": c.pack_record(spec)})


def _detach(ctx: MethodContext, legacy_api: bool) -> None:
    c.require_object(ctx)
    features = c.read_u64(ctx, "features", 0)
    if not features & F.LAYERING:
        raise c.NoExec("image lacks feature layering")
    parent = _parent(ctx)
    if parent is None:
        raise NotFound("image has no parent")
    if legacy_api and parent["pool_namespace"]:
        raise c.CrossDevice("the old parent API can't express a pool namespace")
    if parent.get("head_overlap") is None:
        raise NotFound("image head has no parent")
    has_child_snaps = False
    for rec in _snaps(ctx):
        if rec.get("parent_overlap") is not None:
            if features & F.DEEP_FLATTEN:
                # Deep-flatten copied the data into the snapshots too: they drop the parent.
                rec["parent_overlap"] = None
                _put_snap(ctx, rec)
            else:
                has_child_snaps = True
    if has_child_snaps:
        # Snapshots still read through the parent: keep the spec, unlink the head.
        parent["head_overlap"] = None
        ctx.omap_set({"parent": c.pack_record(parent)})
    else:
        ctx.omap_rm(["parent"])
        set_op_features(ctx, 0, F.OP_CLONE_CHILD)


@method("rbd", "set_parent", RD | WR)
def set_parent(ctx: MethodContext, data: bytes) -> bytes:
    """In: {pool_id, image_id, snap_id, size} (old API; size = overlap). Out: nil.

    ENOENT missing header; ENOEXEC without LAYERING; EINVAL incomplete spec or zero
    overlap; EEXIST already has a parent. The overlap is clamped to the image size.
    """
    a = c.args(data)
    spec = _parent_spec_arg({**a, "pool_namespace": ""})
    _attach(ctx, spec, c.get_int(a, "size"), False)
    return b""


@method("rbd", "parent_attach", RD | WR)
def parent_attach(ctx: MethodContext, data: bytes) -> bytes:
    """In: {pool_id, pool_namespace="", image_id, snap_id, parent_overlap, reattach=False}. Out: nil.

    As set_parent; `reattach` replaces an existing parent link (used by migration).
    """
    a = c.args(data)
    reattach = a.get("reattach", False)
    if not isinstance(reattach, bool):
        raise InvalidArgument("reattach must be a bool")
    _attach(ctx, _parent_spec_arg(a), c.get_int(a, "parent_overlap"), reattach)
    return b""


@method("rbd", "remove_parent", RD | WR)
def remove_parent(ctx: MethodContext, data: bytes) -> bytes:
    """In: nothing. Out: nil (old API). ENOEXEC no LAYERING; ENOENT no parent; EXDEV namespaced parent."""
    _detach(ctx, legacy_api=True)
    return b""


@method("rbd", "parent_detach", RD | WR)
def parent_detach(ctx: MethodContext, data: bytes) -> bytes:
    """In: nothing. Out: nil. ENOEXEC no LAYERING; ENOENT no parent.

    Snapshots keep their parent link unless the image has DEEP_FLATTEN (§4).
    """
    _detach(ctx, legacy_api=False)
    return b""


@method("rbd", "get_parent", RD)
def get_parent(ctx: MethodContext, data: bytes) -> bytes:
    """In: {snap_id=HEAD}. Out: {pool_id, image_id, snap_id, overlap} (old API).

    No parent (or no LAYERING, or an unknown snapshot) reads as pool_id -1, image_id "",
    snap_id HEAD, overlap 0. ENOENT missing header; EXDEV for a namespaced parent.
    """
    snap_id = c.get_int(c.args(data), "snap_id", c.CEPH_NOSNAP)
    c.require_object(ctx)
    spec: dict[str, Any] = dict(NO_PARENT)
    overlap = None
    if _layering(ctx):
        parent = _parent(ctx)
        if parent is not None:
            if parent["pool_namespace"]:
                raise c.CrossDevice("the old parent API can't express a pool namespace")
            spec = {k: parent[k] for k in NO_PARENT}
            overlap = parent.get("head_overlap")
        if snap_id != c.CEPH_NOSNAP:
            raw = c.read_key(ctx, c.snap_key(snap_id))
            overlap = c.unpack_record(raw).get("parent_overlap") if raw is not None else None
            if overlap is None:
                spec = dict(NO_PARENT)
    return c.out({"pool_id": spec["pool_id"], "image_id": spec["image_id"], "snap_id": spec["snap_id"],
                  "overlap": overlap or 0})


@method("rbd", "parent_get", RD)
def parent_get(ctx: MethodContext, data: bytes) -> bytes:
    """In: nothing. Out: {pool_id, pool_namespace, image_id, snap_id}; pool_id -1 when none.

    The spec stays while snapshots still use it even after the head was detached.
    """
    c.require_object(ctx)
    parent = _parent(ctx) if _layering(ctx) else None
    return c.out(dict(NO_PARENT) if parent is None else {k: parent[k] for k in NO_PARENT})


@method("rbd", "parent_overlap_get", RD)
def parent_overlap_get(ctx: MethodContext, data: bytes) -> bytes:
    """In: {snap_id=HEAD}. Out: the overlap, or nil when that version has no parent. ENOENT missing snapshot."""
    snap_id = c.get_int(c.args(data), "snap_id", c.CEPH_NOSNAP)
    c.require_object(ctx)
    if not _layering(ctx):
        return c.out(None)
    if snap_id == c.CEPH_NOSNAP:
        parent = _parent(ctx)
        return c.out(parent.get("head_overlap") if parent else None)
    return c.out(load_snap(ctx, snap_id).get("parent_overlap"))


# -- clone v2 children, recorded in the parent header --------------------------------------
def _child_arg(a: dict[str, Any]) -> list[Any]:
    pool_id = c.get_int(a, "pool_id", lo=0, hi=(1 << 63) - 1)
    image_id = c.get_str(a, "image_id")
    if not image_id:
        raise InvalidArgument("empty child image id")
    return [pool_id, c.get_str(a, "pool_namespace", ""), image_id]


def _children(ctx: MethodContext, snap_id: int) -> list[list[Any]]:
    raw = c.read_key(ctx, c.snap_children_key(snap_id))
    return [] if raw is None else [list(x) for x in c.unpack_record(raw)]


@method("rbd", "child_attach", RD | WR)
def child_attach(ctx: MethodContext, data: bytes) -> bytes:
    """In: {snap_id, pool_id, pool_namespace="", image_id}. Out: nil.

    ENOENT missing (or trashed) snapshot; EEXIST already attached. Bumps the snapshot's
    child_count and sets op feature CLONE_PARENT.
    """
    a = c.args(data)
    snap_id = c.get_int(a, "snap_id")
    child = _child_arg(a)
    rec = load_snap(ctx, snap_id)
    if rec["namespace"].get("type") == "trash":
        raise NotFound("can't attach a clone to a deleted snapshot")
    children = _children(ctx, snap_id)
    if child in children:
        raise Exists("child already attached")
    children.append(child)
    children.sort()
    rec["child_count"] = int(rec.get("child_count", 0)) + 1
    _put_snap(ctx, rec)
    ctx.omap_set({c.snap_children_key(snap_id): c.pack_record(children)})
    set_op_features(ctx, F.OP_CLONE_PARENT, F.OP_CLONE_PARENT)
    return b""


@method("rbd", "child_detach", RD | WR)
def child_detach(ctx: MethodContext, data: bytes) -> bytes:
    """In: {snap_id, pool_id, pool_namespace="", image_id}. Out: nil.

    ENOENT missing snapshot or child not attached; EINVAL child_count disagrees with the
    list. Clears op feature CLONE_PARENT when no snapshot has children any more.
    """
    a = c.args(data)
    snap_id = c.get_int(a, "snap_id")
    child = _child_arg(a)
    rec = load_snap(ctx, snap_id)
    children = _children(ctx, snap_id)
    if int(rec.get("child_count", 0)) != len(children):
        raise InvalidArgument("children reference count mismatch")
    if child not in children:
        raise NotFound("child not attached")
    children.remove(child)
    rec["child_count"] = len(children)
    _put_snap(ctx, rec)
    key = c.snap_children_key(snap_id)
    if children:
        ctx.omap_set({key: c.pack_record(children)})
    else:
        ctx.omap_rm([key])
        if not any(int(r.get("child_count", 0)) for r in _snaps(ctx)):
            set_op_features(ctx, 0, F.OP_CLONE_PARENT)
    return b""


@method("rbd", "children_list", RD)
def children_list(ctx: MethodContext, data: bytes) -> bytes:
    """In: {snap_id}. Out: [[pool_id, pool_namespace, image_id], ...]. ENOENT missing snapshot or no children."""
    snap_id = c.get_int(c.args(data), "snap_id")
    load_snap(ctx, snap_id)
    if c.read_key(ctx, c.snap_children_key(snap_id)) is None:
        raise NotFound("snapshot has no children")
    return c.out(_children(ctx, snap_id))

"""Async wrappers over the cls_rbd and cls_lock methods an image uses.

The methods run in the OSD (shoal/cls/rbd_*.py, lock.py) through the `call` op; their
inputs are msgpack maps and their outputs msgpack values, as documented there. Errors
come back as the method's errno (`shoal.errors` classes), which callers translate into
librbd's answer where the two differ.

`Header` binds the calls on one `rbd_header.<id>`; pool-level objects (rbd_directory,
rbd_id.<name>, rbd_children, rbd_trash, rbd_info) have module functions.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Any

from shoal.errors import from_errno
from shoal.rbd import naming
from shoal.rbd.ioctx import CEPH_NOSNAP, IoCtx, SnapContext, add_call, call_output, is_errno
from shoal.wire.osd_op import FLAG_FAILOK, OpBuilder

RBD = "rbd"
LOCK = "lock"
RBD_LOCK_NAME = "rbd_lock"  # librbd's advisory-lock name on the header (RBD_LOCK_NAME)

PROTECTION_UNPROTECTED, PROTECTION_UNPROTECTING, PROTECTION_PROTECTED = 0, 1, 2
NAMESPACE_TYPES = {"user": 0, "group": 1, "trash": 2, "mirror": 3}
USER_NAMESPACE: dict[str, Any] = {"type": "user"}


@dataclass
class SnapInfo:
    id: int
    name: str
    namespace: dict[str, Any]
    size: int
    flags: int
    protection: int
    parent_overlap: int | None
    timestamp: tuple[int, int]
    child_count: int

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> SnapInfo:
        ts = rec.get("timestamp") or [0, 0]
        return cls(int(rec["id"]), str(rec["name"]), dict(rec.get("namespace") or USER_NAMESPACE),
                   int(rec["image_size"]), int(rec.get("flags", 0)), int(rec.get("protection_status", 0)),
                   rec.get("parent_overlap"), (int(ts[0]), int(ts[1])), int(rec.get("child_count", 0)))

    @property
    def namespace_type(self) -> int:
        return NAMESPACE_TYPES.get(str(self.namespace.get("type")), 0)

    @property
    def is_user(self) -> bool:
        return self.namespace.get("type") == "user"


@dataclass(frozen=True)
class ParentSpec:
    pool_id: int
    pool_namespace: str
    image_id: str
    snap_id: int

    def child_args(self) -> dict[str, Any]:
        return {"pool_id": self.pool_id, "pool_namespace": self.pool_namespace,
                "image_id": self.image_id, "snap_id": self.snap_id}


@dataclass
class HeaderState:
    """Everything an open image needs from its header, read in one op vector."""

    size: int
    order: int
    features: int
    incompatible: int
    object_prefix: str
    snap_seq: int
    snaps: dict[int, SnapInfo] = field(default_factory=dict)
    parent: ParentSpec | None = None
    head_overlap: int | None = None
    flags: int = 0
    op_features: int = 0
    stripe_unit: int = 0
    stripe_count: int = 0
    data_pool_id: int = -1

    @property
    def snapc(self) -> SnapContext:
        return self.snap_seq, sorted(self.snaps, reverse=True)


class Header:
    """cls calls on one image header object."""

    def __init__(self, io: IoCtx, image_id: str) -> None:
        self.io = io
        self.image_id = image_id
        self.oid = naming.header_object(image_id)

    async def call(self, method: str, args: dict[str, Any] | None = None, what: str = "") -> Any:
        return await self.io.call(self.oid, RBD, method, args, what=what or f"rbd.{method} on image {self.image_id}")

    # -- whole-header read -------------------------------------------------------------------
    async def load(self, read_only: bool) -> HeaderState:
        """One round trip: size, features, prefix, snapshots, parent, flags, striping."""
        b = OpBuilder()
        add_call(b, RBD, "get_size", {})
        add_call(b, RBD, "get_features", {"read_only": read_only})
        add_call(b, RBD, "get_object_prefix")
        add_call(b, RBD, "get_snapcontext")
        add_call(b, RBD, "snapshot_list")
        add_call(b, RBD, "parent_get")
        add_call(b, RBD, "parent_overlap_get", {})
        add_call(b, RBD, "get_flags", {})
        add_call(b, RBD, "op_features_get")
        add_call(b, RBD, "get_stripe_unit_count", flags=FLAG_FAILOK)  # ENOEXEC without STRIPINGV2
        add_call(b, RBD, "get_data_pool")
        reply = await self.io.checked(self.oid, b, f"reading the header of image {self.image_id}")
        size = call_output(reply, 0)
        feats = call_output(reply, 1)
        snapc = call_output(reply, 3)
        parent = call_output(reply, 5)
        try:
            striping = call_output(reply, 9)
        except Exception as exc:  # noqa: BLE001 - only ENOEXEC (no STRIPINGV2) is expected
            if not is_errno(exc, errno.ENOEXEC):
                raise
            striping = {"stripe_unit": 1 << int(size["order"]), "stripe_count": 1}
        spec = None
        if int(parent["pool_id"]) >= 0:
            spec = ParentSpec(int(parent["pool_id"]), str(parent["pool_namespace"]), str(parent["image_id"]),
                              int(parent["snap_id"]))
        snaps = {int(r["id"]): SnapInfo.from_record(r) for r in call_output(reply, 4)}
        return HeaderState(
            size=int(size["size"]), order=int(size["order"]), features=int(feats["features"]),
            incompatible=int(feats["incompatible"]), object_prefix=str(call_output(reply, 2)),
            snap_seq=int(snapc["seq"]), snaps=snaps, parent=spec, head_overlap=call_output(reply, 6),
            flags=int(call_output(reply, 7)), op_features=int(call_output(reply, 8)),
            stripe_unit=int(striping["stripe_unit"]), stripe_count=int(striping["stripe_count"]),
            data_pool_id=int(call_output(reply, 10)))

    # -- basics ----------------------------------------------------------------------------------
    async def set_size(self, size: int) -> None:
        await self.call("set_size", {"size": size})

    async def set_features(self, features: int, mask: int) -> None:
        await self.call("set_features", {"features": features, "mask": mask})

    async def set_flags(self, flags: int, mask: int, snap_id: int = CEPH_NOSNAP) -> None:
        await self.call("set_flags", {"flags": flags, "mask": mask, "snap_id": snap_id})

    async def set_op_features(self, op_features: int, mask: int) -> None:
        await self.call("op_features_set", {"op_features": op_features, "mask": mask})

    async def timestamp(self, which: str) -> tuple[int, int]:
        sec, nsec = await self.call(f"get_{which}_timestamp")
        return int(sec), int(nsec)

    # -- snapshots -------------------------------------------------------------------------------
    async def snapshot_add(self, snap_id: int, name: str, namespace: dict[str, Any]) -> None:
        await self.call("snapshot_add", {"snap_id": snap_id, "name": name, "namespace": namespace})

    async def snapshot_remove(self, snap_id: int) -> None:
        await self.call("snapshot_remove", {"snap_id": snap_id})

    async def snapshot_rename(self, snap_id: int, dst: str) -> None:
        await self.call("snapshot_rename", {"src_snap_id": snap_id, "dst_name": dst})

    async def snapshot_trash_add(self, snap_id: int) -> None:
        await self.call("snapshot_trash_add", {"snap_id": snap_id})

    async def set_protection(self, snap_id: int, status: int) -> None:
        await self.call("set_protection_status", {"snap_id": snap_id, "status": status})

    async def get_snap_limit(self) -> int:
        return int(await self.call("snapshot_get_limit"))

    async def set_snap_limit(self, limit: int) -> None:
        await self.call("snapshot_set_limit", {"limit": limit})

    # -- layering -----------------------------------------------------------------------------
    async def parent_attach(self, spec: ParentSpec, overlap: int, reattach: bool = False) -> None:
        await self.call("parent_attach", {**spec.child_args(), "parent_overlap": overlap, "reattach": reattach})

    async def parent_detach(self) -> None:
        await self.call("parent_detach")

    async def child_attach(self, snap_id: int, child_pool: int, child_nspace: str, child_id: str) -> None:
        await self.call("child_attach", {"snap_id": snap_id, "pool_id": child_pool,
                                         "pool_namespace": child_nspace, "image_id": child_id})

    async def child_detach(self, snap_id: int, child_pool: int, child_nspace: str, child_id: str) -> None:
        await self.call("child_detach", {"snap_id": snap_id, "pool_id": child_pool,
                                         "pool_namespace": child_nspace, "image_id": child_id})

    async def children_list(self, snap_id: int) -> list[tuple[int, str, str]]:
        try:
            out = await self.call("children_list", {"snap_id": snap_id})
        except Exception as exc:
            if is_errno(exc, errno.ENOENT):
                return []
            raise
        return [(int(p), str(ns), str(i)) for p, ns, i in out]

    # -- image-meta ----------------------------------------------------------------------------
    async def metadata_get(self, key: str) -> bytes:
        return bytes(await self.call("metadata_get", {"key": key}))

    async def metadata_set(self, items: dict[str, bytes]) -> None:
        await self.call("metadata_set", {"data": items})

    async def metadata_remove(self, key: str) -> None:
        await self.call("metadata_remove", {"key": key})

    async def metadata_list(self, start_after: str = "", max_return: int = 0) -> dict[str, bytes]:
        """Every pair after `start_after` (paged; max_return 0 = all)."""
        return await metadata_list(self.io, self.oid, start_after, max_return)

    # -- advisory locks (cls_lock on the header) -------------------------------------------------
    async def lock(self, entity: str, cookie: str, exclusive: bool, tag: str = "", description: str = "") -> None:
        await self.io.call(self.oid, LOCK, "lock", {
            "name": RBD_LOCK_NAME, "type": 1 if exclusive else 2, "cookie": cookie, "tag": tag,
            "description": description, "duration": 0, "flags": 0, "caller": entity})

    async def unlock(self, entity: str, cookie: str) -> None:
        await self.io.call(self.oid, LOCK, "unlock", {"name": RBD_LOCK_NAME, "cookie": cookie, "caller": entity})

    async def break_lock(self, locker: str, cookie: str) -> None:
        await self.io.call(self.oid, LOCK, "break_lock", {"name": RBD_LOCK_NAME, "locker": locker, "cookie": cookie})

    async def lock_info(self) -> dict[str, Any]:
        return dict(await self.io.call(self.oid, LOCK, "get_info", {"name": RBD_LOCK_NAME}))


async def metadata_list(io: IoCtx, oid: str, start_after: str = "", max_return: int = 0) -> dict[str, bytes]:
    """image-meta (or pool-meta on rbd_info) pairs in key order; max_return 0 = all."""
    out: dict[str, bytes] = {}
    after = start_after
    while True:
        page = await io.call(oid, RBD, "metadata_list", {"start_after": after, "max_return": 1024})
        for k, v in page.items():
            out[str(k)] = bytes(v)
            if max_return and len(out) >= max_return:
                return out
        if len(page) < 1024:
            return out
        after = max(page)


# -- rbd_id.<name> and rbd_directory ------------------------------------------------------------
async def get_image_id(io: IoCtx, name: str) -> str:
    """The id stored in rbd_id.<name>; ENOENT when there is no such image."""
    return str(await io.call(naming.id_object(name), RBD, "get_id", what=f"looking up image {name!r}"))


async def create_id_object(io: IoCtx, name: str, image_id: str) -> None:
    """Exclusive-create rbd_id.<name> holding the id: EEXIST when the name is taken."""
    b = OpBuilder()
    b.add("create", excl=True)
    add_call(b, RBD, "set_id", {"id": image_id})
    await io.checked(naming.id_object(name), b, f"creating the id object of image {name!r}")


async def remove_object(io: IoCtx, oid: str, missing_ok: bool = True) -> None:
    b = OpBuilder()
    b.add("delete")
    reply = await io.operate(oid, b)
    if reply.result < 0 and not (missing_ok and reply.result == -errno.ENOENT):
        raise from_errno(reply.result, f"removing {oid}")


async def dir_add(io: IoCtx, name: str, image_id: str) -> None:
    await io.call(naming.RBD_DIRECTORY, RBD, "dir_add_image", {"name": name, "id": image_id},
                  what=f"adding image {name!r} to the directory")


async def dir_remove(io: IoCtx, name: str, image_id: str) -> None:
    await io.call(naming.RBD_DIRECTORY, RBD, "dir_remove_image", {"name": name, "id": image_id},
                  what=f"removing image {name!r} from the directory")


async def dir_rename(io: IoCtx, src: str, dest: str, image_id: str) -> None:
    await io.call(naming.RBD_DIRECTORY, RBD, "dir_rename_image", {"src": src, "dest": dest, "id": image_id},
                  what=f"renaming image {src!r} to {dest!r}")


async def dir_get_name(io: IoCtx, image_id: str) -> str:
    return str(await io.call(naming.RBD_DIRECTORY, RBD, "dir_get_name", {"id": image_id},
                             what=f"looking up the name of image id {image_id!r}"))


async def dir_list(io: IoCtx) -> dict[str, str]:
    """{name: id} of every image in the pool's directory (empty if there is none)."""
    page = await _list_all(io, naming.RBD_DIRECTORY, "dir_list", "listing images")
    return {str(k): str(v) for k, v in page.items()}


PAGE = 1024  # entries per cls list call


async def _list_all(io: IoCtx, oid: str, method: str, what: str) -> dict[Any, Any]:
    """Every entry of a paged cls_rbd list method (`start_after`/`max_return`); an absent
    object lists nothing."""
    out: dict[Any, Any] = {}
    after = ""
    while True:
        try:
            page = await io.call(oid, RBD, method, {"start_after": after, "max_return": PAGE}, what=what)
        except Exception as exc:
            if is_errno(exc, errno.ENOENT):
                return out
            raise
        out.update(page)
        if len(page) < PAGE:
            return out
        after = max(page)


# -- rbd_children (clone v1) ---------------------------------------------------------------------
async def add_child(io: IoCtx, parent: ParentSpec, child_id: str) -> None:
    await io.call(naming.RBD_CHILDREN, RBD, "add_child", {
        "pool_id": parent.pool_id, "image_id": parent.image_id, "snap_id": parent.snap_id, "child_id": child_id})


async def remove_child(io: IoCtx, parent: ParentSpec, child_id: str) -> None:
    await io.call(naming.RBD_CHILDREN, RBD, "remove_child", {
        "pool_id": parent.pool_id, "image_id": parent.image_id, "snap_id": parent.snap_id, "child_id": child_id})


async def get_children(io: IoCtx, pool_id: int, image_id: str, snap_id: int) -> list[str]:
    """Clone-v1 children of a parent snapshot registered in `io`'s pool."""
    try:
        out = await io.call(naming.RBD_CHILDREN, RBD, "get_children",
                            {"pool_id": pool_id, "image_id": image_id, "snap_id": snap_id})
    except Exception as exc:
        if is_errno(exc, errno.ENOENT):
            return []
        raise
    return [str(c) for c in out]


# -- rbd_trash ------------------------------------------------------------------------------------
async def trash_add(io: IoCtx, image_id: str, spec: dict[str, Any]) -> None:
    await io.call(naming.RBD_TRASH, RBD, "trash_add", {"id": image_id, "spec": spec},
                  what=f"moving image id {image_id!r} to the trash")


async def trash_remove(io: IoCtx, image_id: str) -> None:
    await io.call(naming.RBD_TRASH, RBD, "trash_remove", {"id": image_id},
                  what=f"removing image id {image_id!r} from the trash")


async def trash_get(io: IoCtx, image_id: str) -> dict[str, Any]:
    return dict(await io.call(naming.RBD_TRASH, RBD, "trash_get", {"id": image_id},
                              what=f"looking up image id {image_id!r} in the trash"))


async def trash_state_set(io: IoCtx, image_id: str, state: int, expect: int) -> None:
    await io.call(naming.RBD_TRASH, RBD, "trash_state_set", {"id": image_id, "state": state, "expect_state": expect})


async def trash_list(io: IoCtx) -> dict[str, dict[str, Any]]:
    page = await _list_all(io, naming.RBD_TRASH, "trash_list", "listing the trash")
    return {str(k): dict(v) for k, v in page.items()}

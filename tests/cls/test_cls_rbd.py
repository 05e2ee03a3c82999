"""cls_rbd header, snapshot, parent and children methods over MemoryStore + ObjectContext.

Every call is its own op vector; it is committed only when it succeeded, as the OSD does.
"""

from __future__ import annotations

import errno
from typing import Any

import msgpack
import pytest

from shoal.cls.encoding import enc_string, enc_u64
from shoal.osd.object_context import ObjectContext
from shoal.osd.ops import execute
from shoal.osd.store.base import ObjectId
from shoal.osd.store.memory import MemoryStore
from shoal.osd.store.transaction import Transaction
from shoal.rbd import features as F

HEAD = (1 << 64) - 2
COLL = "1.0"


class CallError(Exception):
    def __init__(self, err: int) -> None:
        super().__init__(errno.errorcode.get(err, str(err)))
        self.errno = err


class Cluster:
    """One MemoryStore collection; `call` runs one committed method call on one object."""

    def __init__(self) -> None:
        self.store = MemoryStore()
        self.store.mount()
        txn = Transaction()
        txn.create_collection(COLL)
        self.store.apply([txn])

    def ctx(self, obj: str) -> ObjectContext:
        return ObjectContext(self.store, COLL, ObjectId(obj))

    def call(self, obj: str, method: str, args: Any = None, cls: str = "rbd", raw: bytes | None = None) -> Any:
        data = raw if raw is not None else (msgpack.packb(args) if args is not None else b"")
        ctx = self.ctx(obj)
        res = execute(ctx, [{"op": "call", "cls": cls, "method": method, "d": [0, len(data)]}], memoryview(data))
        if res.result < 0:
            return_code = -res.result
            raise CallError(return_code)
        self.store.apply([ctx.txn])
        out = res.data()
        return msgpack.unpackb(out, strict_map_key=False) if out else None

    def state(self, obj: str) -> Any:
        """Everything stored for an object, to prove a refused call changed nothing."""
        oid = ObjectId(obj)
        if not self.store.exists(COLL, oid):
            return None
        st = self.store.stat(COLL, oid)
        return (st.size, self.store.read(COLL, oid, 0, st.size), self.store.getattrs(COLL, oid),
                self.store.omap_get_vals(COLL, oid, "", "", 1 << 30))

    def omap(self, obj: str) -> dict[str, bytes]:
        return dict(self.store.omap_get_vals(COLL, ObjectId(obj), "", "", 1 << 30)[0])

    def refuse(self, err: int, obj: str, method: str, args: Any = None, cls: str = "rbd") -> None:
        before = self.state(obj)
        with pytest.raises(CallError) as info:
            self.call(obj, method, args, cls=cls)
        assert info.value.errno == err, (method, args, info.value)
        assert self.state(obj) == before


H = "rbd_header.abc123"


@pytest.fixture
def cl() -> Cluster:
    return Cluster()


def make(cl: Cluster, features: int = F.DEFAULT, size: int = 1 << 30, order: int = 22, obj: str = H) -> None:
    cl.call(obj, "create", {"size": size, "order": order, "features": features, "object_prefix": "rbd_data.abc123"})


# -- create and header basics ----------------------------------------------------------------
def test_create_stores_ceph_encodings(cl: Cluster) -> None:
    make(cl, size=16 << 20)
    omap = cl.omap(H)
    assert omap["size"] == (16 << 20).to_bytes(8, "little")
    assert omap["order"] == bytes([22])
    assert omap["features"] == F.DEFAULT.to_bytes(8, "little")
    assert omap["object_prefix"] == len(b"rbd_data.abc123").to_bytes(4, "little") + b"rbd_data.abc123"
    assert omap["snap_seq"] == bytes(8)
    for key in ("create_timestamp", "access_timestamp", "modify_timestamp"):
        assert len(omap[key]) == 8
    assert "data_pool_id" not in omap
    assert cl.call(H, "get_size") == {"size": 16 << 20, "order": 22}
    assert cl.call(H, "get_features") == {"features": F.DEFAULT, "incompatible": F.DEFAULT}
    assert cl.call(H, "get_features", {"read_only": True}) == {"features": F.DEFAULT, "incompatible": F.LAYERING}
    assert cl.call(H, "get_object_prefix") == "rbd_data.abc123"
    assert cl.call(H, "get_data_pool") == -1
    cl.refuse(errno.ENOEXEC, H, "get_stripe_unit_count")  # needs STRIPINGV2, as in Ceph
    sec, nsec = cl.call(H, "get_create_timestamp")
    assert sec > 1_600_000_000 and 0 <= nsec < 10**9
    assert cl.call(H, "get_all_features") == F.ALL


def test_create_refusals(cl: Cluster) -> None:
    base = {"size": 1, "order": 22, "features": 1, "object_prefix": "rbd_data.x"}
    cl.refuse(errno.ENOSYS, H, "create", {**base, "features": 1 << 40})
    cl.refuse(errno.EINVAL, H, "create", {**base, "features": F.OPERATIONS | 1})
    cl.refuse(errno.EINVAL, H, "create", {**base, "features": F.DATA_POOL})
    cl.refuse(errno.EINVAL, H, "create", {**base, "data_pool_id": 3})
    cl.refuse(errno.EINVAL, H, "create", {**base, "object_prefix": ""})
    cl.refuse(errno.EINVAL, H, "create", {"size": -1, "order": 22, "features": 1, "object_prefix": "p"})
    cl.call(H, "create", {**base, "features": 1 | F.DATA_POOL, "data_pool_id": 7})
    assert cl.omap(H)["data_pool_id"] == (7).to_bytes(8, "little")
    assert cl.call(H, "get_data_pool") == 7
    cl.refuse(errno.EEXIST, H, "create", base)
    cl.refuse(errno.EEXIST, H, "create", {**base, "features": F.OPERATIONS | 1})  # EEXIST is checked first
    cl.refuse(errno.ENOSYS, H, "create", {**base, "features": 1 << 40})


def test_garbage_input_is_einval(cl: Cluster) -> None:
    make(cl)
    for raw in (b"\xc1", b"\x93\x01\x02\x03", b"\xff" * 3):
        before = cl.state(H)
        with pytest.raises(CallError) as info:
            cl.call(H, "set_size", raw=raw)
        assert info.value.errno == errno.EINVAL
        assert cl.state(H) == before


def test_missing_header_is_enoent(cl: Cluster) -> None:
    for m in ("get_size", "get_features", "get_object_prefix", "get_snapcontext", "get_stripe_unit_count",
              "get_parent", "parent_get", "op_features_get", "snapshot_list", "set_modify_timestamp"):
        cl.refuse(errno.ENOENT, H, m)
    assert cl.call(H, "get_create_timestamp") == [0, 0]  # Ceph reads a missing stamp as zero
    assert cl.call(H, "get_data_pool") == -1
    cl.refuse(errno.ENOENT, H, "set_size", {"size": 5})
    cl.refuse(errno.ENOENT, H, "snapshot_add", {"snap_id": 1, "name": "s"})


def test_set_size_and_overlap_shrink(cl: Cluster) -> None:
    make(cl, size=100 << 20)
    cl.call(H, "parent_attach", {"pool_id": 2, "pool_namespace": "", "image_id": "p1", "snap_id": 4,
                                 "parent_overlap": 200 << 20})
    assert cl.call(H, "parent_overlap_get") == 100 << 20  # clamped to the child size
    cl.call(H, "set_size", {"size": 10 << 20})
    assert cl.omap(H)["size"] == enc_u64(10 << 20)
    assert cl.call(H, "parent_overlap_get") == 10 << 20
    cl.call(H, "set_size", {"size": 50 << 20})  # growing never grows the overlap back
    assert cl.call(H, "parent_overlap_get") == 10 << 20
    assert cl.call(H, "get_size")["size"] == 50 << 20


def test_set_features(cl: Cluster) -> None:
    make(cl)
    cl.call(H, "set_features", {"features": 0, "mask": F.FAST_DIFF | F.OBJECT_MAP})
    assert cl.call(H, "get_features")["features"] == F.DEFAULT & ~(F.FAST_DIFF | F.OBJECT_MAP)
    cl.call(H, "set_features", {"features": F.JOURNALING, "mask": F.JOURNALING})
    assert cl.call(H, "get_features")["features"] & F.JOURNALING
    cl.refuse(errno.EINVAL, H, "set_features", {"features": F.LAYERING, "mask": F.LAYERING})  # not mutable
    cl.refuse(errno.EINVAL, H, "set_features", {"features": F.DEEP_FLATTEN, "mask": F.DEEP_FLATTEN})
    cl.refuse(errno.EINVAL, H, "set_features", {"features": 0, "mask": F.LAYERING})
    cl.refuse(errno.EINVAL, H, "set_features", {"features": 0, "mask": F.OPERATIONS})
    cl.call(H, "set_features", {"features": 0, "mask": F.DEEP_FLATTEN})  # disable-only is allowed
    cl.call(H, "set_features", {"features": 0, "mask": 1 << 50})  # unknown mask bits are ignored


def test_striping(cl: Cluster) -> None:
    make(cl, features=F.LAYERING)
    cl.refuse(errno.ENOEXEC, H, "set_stripe_unit_count", {"stripe_unit": 65536, "stripe_count": 4})
    h2 = "rbd_header.s"
    make(cl, features=F.LAYERING | F.STRIPINGV2, order=20, obj=h2)
    for unit, count in ((0, 4), (65536, 0), (2 << 20, 1), (3000, 2)):
        cl.refuse(errno.EINVAL, h2, "set_stripe_unit_count", {"stripe_unit": unit, "stripe_count": count})
    cl.call(h2, "set_stripe_unit_count", {"stripe_unit": 65536, "stripe_count": 4})
    assert cl.omap(h2)["stripe_unit"] == enc_u64(65536)
    assert cl.omap(h2)["stripe_count"] == enc_u64(4)
    assert cl.call(h2, "get_stripe_unit_count") == {"stripe_unit": 65536, "stripe_count": 4}


def test_flags_op_features_timestamps(cl: Cluster) -> None:
    make(cl)
    assert cl.call(H, "get_flags") == 0
    cl.call(H, "set_flags", {"flags": 3, "mask": 1})
    assert cl.call(H, "get_flags") == 1
    assert cl.omap(H)["flags"] == enc_u64(1)
    cl.call(H, "op_features_set", {"op_features": F.OP_CLONE_CHILD, "mask": F.OP_CLONE_CHILD})
    assert cl.call(H, "op_features_get") == F.OP_CLONE_CHILD
    assert cl.omap(H)["op_features"] == enc_u64(F.OP_CLONE_CHILD)
    assert cl.call(H, "get_features")["features"] & F.OPERATIONS
    cl.call(H, "op_features_set", {"op_features": 0, "mask": F.OP_CLONE_CHILD})
    assert not cl.call(H, "get_features")["features"] & F.OPERATIONS
    assert "op_features" not in cl.omap(H)
    cl.refuse(errno.EINVAL, H, "op_features_set", {"op_features": 1 << 20, "mask": 1 << 20})
    cl.call(H, "set_modify_timestamp")
    cl.call(H, "set_access_timestamp")
    assert cl.call(H, "get_modify_timestamp")[0] >= cl.call(H, "get_create_timestamp")[0]
    assert len(cl.call(H, "get_access_timestamp")) == 2


def test_metadata(cl: Cluster) -> None:
    make(cl)
    cl.call(H, "metadata_set", {"data": {"conf_rbd_cache": b"false", "b": b"2"}})
    assert cl.omap(H)["metadata_conf_rbd_cache"] == b"false"  # raw value, as cls_rbd stores it
    assert cl.call(H, "metadata_get", {"key": "conf_rbd_cache"}) == b"false"
    assert cl.call(H, "metadata_list") == {"b": b"2", "conf_rbd_cache": b"false"}
    assert cl.call(H, "metadata_list", {"start_after": "b"}) == {"conf_rbd_cache": b"false"}
    assert cl.call(H, "metadata_list", {"max_return": 1}) == {"b": b"2"}
    cl.call(H, "metadata_remove", {"key": "b"})
    cl.refuse(errno.ENOENT, H, "metadata_remove", {"key": "b"})
    cl.refuse(errno.ENOENT, H, "metadata_get", {"key": "b"})
    cl.refuse(errno.EINVAL, H, "metadata_set", {"data": [1]})
    cl.refuse(errno.ENOENT, "rbd_header.none", "metadata_list")
    assert cl.call(H, "metadata_list", {"max_return": 0}) == {"conf_rbd_cache": b"false"}


# -- snapshots -------------------------------------------------------------------------------
def test_snapshots(cl: Cluster) -> None:
    make(cl, size=8 << 20)
    cl.call(H, "snapshot_add", {"snap_id": 4, "name": "a"})
    cl.call(H, "set_size", {"size": 16 << 20})
    cl.call(H, "snapshot_add", {"snap_id": 9, "name": "b"})
    assert cl.omap(H)["snap_seq"] == enc_u64(9)
    assert cl.call(H, "get_snapcontext") == {"seq": 9, "snaps": [9, 4]}
    assert cl.call(H, "get_size", {"snap_id": 4}) == {"size": 8 << 20, "order": 22}
    assert cl.call(H, "get_snapshot_name", {"snap_id": 9}) == "b"
    rec = cl.call(H, "snapshot_get", {"snap_id": 4})
    assert rec["name"] == "a" and rec["image_size"] == 8 << 20 and rec["protection_status"] == 0
    assert rec["namespace"] == {"type": "user"} and rec["child_count"] == 0
    assert [r["id"] for r in cl.call(H, "snapshot_list")] == [4, 9]
    assert len(cl.call(H, "get_snapshot_timestamp", {"snap_id": 4})) == 2
    cl.refuse(errno.ESTALE, H, "snapshot_add", {"snap_id": 5, "name": "c"})
    cl.refuse(errno.EEXIST, H, "snapshot_add", {"snap_id": 10, "name": "a"})
    cl.refuse(errno.EEXIST, H, "snapshot_add", {"snap_id": 9, "name": "z"})
    cl.refuse(errno.EINVAL, H, "snapshot_add", {"snap_id": HEAD, "name": "h"})
    cl.refuse(errno.ENOENT, H, "get_size", {"snap_id": 5})
    cl.refuse(errno.EINVAL, H, "get_snapshot_name", {"snap_id": HEAD})
    cl.call(H, "snapshot_rename", {"src_snap_id": 4, "dst_name": "a2"})
    cl.refuse(errno.EEXIST, H, "snapshot_rename", {"src_snap_id": 4, "dst_name": "b"})
    cl.refuse(errno.ENOENT, H, "snapshot_rename", {"src_snap_id": 5, "dst_name": "q"})
    assert cl.call(H, "get_snapshot_name", {"snap_id": 4}) == "a2"
    cl.call(H, "snapshot_remove", {"snap_id": 4})
    cl.refuse(errno.ENOENT, H, "snapshot_remove", {"snap_id": 4})
    assert cl.call(H, "get_snapcontext") == {"seq": 9, "snaps": [9]}
    # A snapshot taken in another namespace may reuse a user name, but can't be renamed.
    cl.call(H, "snapshot_add", {"snap_id": 12, "name": "b", "namespace": {"type": "group", "group": "g"}})
    cl.refuse(errno.EINVAL, H, "snapshot_rename", {"src_snap_id": 12, "dst_name": "q"})
    cl.refuse(errno.EINVAL, H, "snapshot_add", {"snap_id": 13, "name": "x", "namespace": {"type": "nope"}})


def test_snap_limit(cl: Cluster) -> None:
    make(cl)
    assert cl.call(H, "snapshot_get_limit") == (1 << 64) - 1
    cl.call(H, "snapshot_add", {"snap_id": 1, "name": "a"})
    cl.call(H, "snapshot_add", {"snap_id": 2, "name": "b"})
    cl.refuse(errno.ERANGE, H, "snapshot_set_limit", {"limit": 1})
    cl.call(H, "snapshot_set_limit", {"limit": 2})
    assert cl.omap(H)["snap_limit"] == enc_u64(2)
    cl.refuse(errno.EDQUOT, H, "snapshot_add", {"snap_id": 3, "name": "c"})
    cl.refuse(errno.EDQUOT, H, "snapshot_add", {"snap_id": 3, "name": "b"})  # the limit is checked first
    cl.call(H, "snapshot_remove", {"snap_id": 1})
    cl.call(H, "snapshot_add", {"snap_id": 3, "name": "c"})
    cl.call(H, "snapshot_set_limit", {"limit": (1 << 64) - 1})
    assert "snap_limit" not in cl.omap(H)


def test_protection(cl: Cluster) -> None:
    make(cl, features=F.EXCLUSIVE_LOCK, obj="rbd_header.nolayer")
    cl.call("rbd_header.nolayer", "snapshot_add", {"snap_id": 1, "name": "s"})
    cl.refuse(errno.ENOEXEC, "rbd_header.nolayer", "set_protection_status", {"snap_id": 1, "status": 2})
    make(cl)
    cl.call(H, "snapshot_add", {"snap_id": 1, "name": "s"})
    cl.refuse(errno.ENOENT, H, "set_protection_status", {"snap_id": 2, "status": 2})
    cl.refuse(errno.EINVAL, H, "set_protection_status", {"snap_id": 1, "status": 3})
    cl.refuse(errno.EINVAL, H, "get_protection_status", {"snap_id": HEAD})
    cl.refuse(errno.EINVAL, H, "set_protection_status", {"snap_id": HEAD, "status": 2})
    cl.call(H, "set_protection_status", {"snap_id": 1, "status": 2})
    assert cl.call(H, "get_protection_status", {"snap_id": 1}) == 2
    cl.refuse(errno.EBUSY, H, "snapshot_remove", {"snap_id": 1})
    cl.call(H, "set_protection_status", {"snap_id": 1, "status": 1})
    cl.refuse(errno.EBUSY, H, "snapshot_remove", {"snap_id": 1})
    cl.call(H, "set_protection_status", {"snap_id": 1, "status": 0})
    cl.call(H, "snapshot_remove", {"snap_id": 1})


# -- parent and clone v2 -----------------------------------------------------------------------
PARENT = {"pool_id": 3, "pool_namespace": "", "image_id": "parent1", "snap_id": 7}
NONE = {"pool_id": -1, "pool_namespace": "", "image_id": "", "snap_id": HEAD}
OLD = {"pool_id": 3, "image_id": "parent1", "snap_id": 7}


def test_parent_old_and_new_api(cl: Cluster) -> None:
    make(cl, size=8 << 20)
    assert cl.call(H, "get_parent") == {"pool_id": -1, "image_id": "", "snap_id": HEAD, "overlap": 0}
    assert cl.call(H, "parent_get") == NONE
    cl.refuse(errno.ENOENT, H, "remove_parent")
    cl.refuse(errno.EINVAL, H, "set_parent", {**OLD, "image_id": "", "size": 1})
    cl.refuse(errno.EINVAL, H, "set_parent", {**OLD, "size": 0})
    cl.call(H, "set_parent", {**OLD, "size": 4 << 20})
    cl.refuse(errno.EEXIST, H, "set_parent", {**OLD, "size": 4 << 20})
    cl.refuse(errno.EEXIST, H, "parent_attach", {**PARENT, "parent_overlap": 1})
    assert cl.call(H, "get_parent") == {**OLD, "overlap": 4 << 20}
    assert cl.call(H, "parent_get") == PARENT
    cl.call(H, "parent_attach", {**PARENT, "parent_overlap": 1 << 40, "reattach": True})
    assert cl.call(H, "parent_overlap_get") == 8 << 20
    cl.call(H, "remove_parent")
    assert cl.call(H, "parent_get") == NONE
    assert cl.call(H, "parent_overlap_get") is None
    make(cl, features=F.EXCLUSIVE_LOCK, obj="rbd_header.nl")
    cl.refuse(errno.ENOEXEC, "rbd_header.nl", "set_parent", {**OLD, "size": 1})
    cl.refuse(errno.ENOEXEC, "rbd_header.nl", "parent_detach")
    assert cl.call("rbd_header.nl", "get_parent")["pool_id"] == -1  # no layering reads as no parent


def test_namespaced_parent_is_exdev_for_old_api(cl: Cluster) -> None:
    make(cl)
    cl.call(H, "parent_attach", {**PARENT, "pool_namespace": "ns1", "parent_overlap": 1 << 20})
    cl.refuse(errno.EXDEV, H, "get_parent")
    cl.refuse(errno.EXDEV, H, "remove_parent")
    assert cl.call(H, "parent_get")["pool_namespace"] == "ns1"
    cl.call(H, "parent_detach")


def test_snapshot_keeps_parent_and_detach_keeps_it_without_deep_flatten(cl: Cluster) -> None:
    make(cl, features=F.LAYERING, size=8 << 20)
    cl.call(H, "parent_attach", {**PARENT, "parent_overlap": 8 << 20})
    cl.call(H, "op_features_set", {"op_features": F.OP_CLONE_CHILD, "mask": F.OP_CLONE_CHILD})
    cl.call(H, "set_flags", {"flags": 2, "mask": 2})
    cl.call(H, "snapshot_add", {"snap_id": 1, "name": "s"})
    assert cl.call(H, "get_parent", {"snap_id": 1}) == {**OLD, "overlap": 8 << 20}
    assert cl.call(H, "get_flags", {"snap_id": 1}) == 2
    cl.call(H, "parent_detach")
    # As in Ceph, the old API shows the kept spec with a zero head overlap.
    assert cl.call(H, "get_parent") == {**OLD, "overlap": 0}
    assert cl.call(H, "parent_overlap_get") is None
    assert cl.call(H, "parent_get") == PARENT  # pinned by the snapshot
    assert cl.call(H, "parent_overlap_get", {"snap_id": 1}) == 8 << 20
    assert cl.call(H, "op_features_get") == F.OP_CLONE_CHILD  # still a child through the snapshot
    cl.refuse(errno.ENOENT, H, "parent_detach")
    # A snapshot of a detached head has no parent.
    cl.call(H, "snapshot_add", {"snap_id": 2, "name": "t"})
    assert cl.call(H, "get_parent", {"snap_id": 2})["pool_id"] == -1
    assert cl.call(H, "get_parent", {"snap_id": 99})["pool_id"] == -1
    cl.refuse(errno.ENOENT, H, "parent_overlap_get", {"snap_id": 99})
    # Removing the last snapshot using the parent drops the spec and the clone-child op feature.
    cl.call(H, "snapshot_remove", {"snap_id": 1})
    assert cl.call(H, "parent_get") == NONE
    assert cl.call(H, "op_features_get") == 0
    assert not cl.call(H, "get_features")["features"] & F.OPERATIONS


def test_detach_with_deep_flatten_strips_snapshots(cl: Cluster) -> None:
    make(cl, features=F.LAYERING | F.DEEP_FLATTEN, size=8 << 20)
    cl.call(H, "parent_attach", {**PARENT, "parent_overlap": 8 << 20})
    cl.call(H, "snapshot_add", {"snap_id": 1, "name": "s"})
    cl.call(H, "parent_detach")
    assert cl.call(H, "parent_get") == NONE
    assert cl.call(H, "get_parent", {"snap_id": 1})["pool_id"] == -1


def test_clone_v2_children(cl: Cluster) -> None:
    make(cl)
    child = {"pool_id": 2, "pool_namespace": "", "image_id": "c1"}
    cl.refuse(errno.ENOENT, H, "child_attach", {"snap_id": 1, **child})
    cl.call(H, "snapshot_add", {"snap_id": 1, "name": "s"})
    cl.call(H, "child_attach", {"snap_id": 1, **child})
    cl.refuse(errno.EEXIST, H, "child_attach", {"snap_id": 1, **child})
    assert cl.call(H, "op_features_get") == F.OP_CLONE_PARENT
    cl.call(H, "child_attach", {"snap_id": 1, **child, "image_id": "c0"})
    assert cl.call(H, "children_list", {"snap_id": 1}) == [[2, "", "c0"], [2, "", "c1"]]
    assert cl.call(H, "snapshot_get", {"snap_id": 1})["child_count"] == 2
    cl.refuse(errno.EBUSY, H, "snapshot_remove", {"snap_id": 1})
    cl.call(H, "snapshot_trash_add", {"snap_id": 1})
    rec = cl.call(H, "snapshot_get", {"snap_id": 1})
    assert rec["namespace"] == {"type": "trash", "original_type": "user", "original_name": "s"}
    assert cl.call(H, "op_features_get") == F.OP_CLONE_PARENT | F.OP_SNAP_TRASH
    cl.refuse(errno.EEXIST, H, "snapshot_trash_add", {"snap_id": 1})
    cl.refuse(errno.ENOENT, H, "child_attach", {"snap_id": 1, **child, "image_id": "c9"})
    cl.call(H, "child_detach", {"snap_id": 1, **child})
    cl.call(H, "child_detach", {"snap_id": 1, **child, "image_id": "c0"})
    cl.refuse(errno.ENOENT, H, "child_detach", {"snap_id": 1, **child})
    cl.refuse(errno.ENOENT, H, "children_list", {"snap_id": 1})  # no children key: ENOENT, as Ceph
    assert not any(k.startswith("snap_children_") for k in cl.omap(H))
    assert cl.call(H, "op_features_get") == F.OP_SNAP_TRASH
    cl.call(H, "snapshot_remove", {"snap_id": 1})
    assert cl.call(H, "op_features_get") == 0
    cl.refuse(errno.ENOENT, H, "children_list", {"snap_id": 1})


def test_trash_add_refuses_protected(cl: Cluster) -> None:
    make(cl)
    cl.call(H, "snapshot_add", {"snap_id": 1, "name": "s"})
    cl.call(H, "set_protection_status", {"snap_id": 1, "status": 2})
    cl.refuse(errno.EBUSY, H, "snapshot_trash_add", {"snap_id": 1})
    cl.refuse(errno.ENOENT, H, "snapshot_trash_add", {"snap_id": 2})


# -- racing clients -------------------------------------------------------------------------
def test_interleaved_snapshot_add_same_name(cl: Cluster) -> None:
    """Two clients build their op vectors against the same state; the OSD serialises them per object."""
    make(cl)
    results = []
    for snap_id in (5, 6):
        try:
            cl.call(H, "snapshot_add", {"snap_id": snap_id, "name": "same"})
            results.append(0)
        except CallError as exc:
            results.append(exc.errno)
    assert results == [0, errno.EEXIST]
    assert cl.call(H, "get_snapcontext") == {"seq": 5, "snaps": [5]}


def test_racing_creates_one_wins(cl: Cluster) -> None:
    make(cl)
    with pytest.raises(CallError) as info:
        make(cl)
    assert info.value.errno == errno.EEXIST


def test_failed_call_leaves_no_pending_changes(cl: Cluster) -> None:
    make(cl)
    cl.call(H, "snapshot_add", {"snap_id": 3, "name": "a"})
    ctx = cl.ctx(H)
    data = msgpack.packb({"snap_id": 4, "name": "a"})
    res = execute(ctx, [{"op": "call", "cls": "rbd", "method": "snapshot_add", "d": [0, len(data)]}],
                  memoryview(data))
    assert res.result == -errno.EEXIST
    assert ctx.txn.empty()


def test_rbd_id_object_bytes(cl: Cluster) -> None:
    cl.refuse(errno.ENOENT, "rbd_id.img", "get_id")
    cl.refuse(errno.ENOENT, "rbd_id.img", "set_id", {"id": "10226b8b4567"})  # must exist first
    # librbd sends create(exclusive) + set_id as one op vector.
    data = msgpack.packb({"id": "10226b8b4567"})
    ctx = cl.ctx("rbd_id.img")
    res = execute(ctx, [{"op": "create", "excl": True},
                        {"op": "call", "cls": "rbd", "method": "set_id", "d": [0, len(data)]}], memoryview(data))
    assert res.result == 0
    cl.store.apply([ctx.txn])
    cl.refuse(errno.EINVAL, "rbd_id.img", "set_id", {"id": "ab-c"})
    assert cl.state("rbd_id.img")[1] == enc_string("10226b8b4567")
    assert cl.call("rbd_id.img", "get_id") == "10226b8b4567"
    cl.refuse(errno.EEXIST, "rbd_id.img", "set_id", {"id": "ffff"})

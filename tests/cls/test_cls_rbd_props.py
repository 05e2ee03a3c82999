"""Property tests: random sequences of cls_rbd / cls_lock calls only ever fail with an errno.

Each call runs as its own committed op vector; a refused call must leave the object
exactly as it was, and the header's invariants must hold after every step.
"""

from __future__ import annotations

import errno
import importlib.util
import pathlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

_spec = importlib.util.spec_from_file_location("cls_rbd_tests_p", pathlib.Path(__file__).with_name("test_cls_rbd.py"))
assert _spec and _spec.loader
_base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_base)
Cluster, CallError = _base.Cluster, _base.CallError

OBJECTS = ["rbd_header.a", "rbd_header.a", "rbd_header.a", "rbd_directory", "rbd_children", "rbd_trash", "rbd_id.x", "rbd_object_map.a"]
METHODS = [
    "create", "get_size", "set_size", "get_features", "set_features", "get_object_prefix", "get_data_pool",
    "get_stripe_unit_count", "set_stripe_unit_count", "get_flags", "set_flags", "op_features_get",
    "op_features_set", "metadata_set", "metadata_get", "metadata_remove", "metadata_list", "get_snapcontext",
    "snapshot_add", "snapshot_remove", "snapshot_rename", "snapshot_trash_add", "snapshot_get", "snapshot_list",
    "get_protection_status", "set_protection_status", "snapshot_set_limit", "snapshot_get_limit", "set_parent",
    "parent_attach", "parent_detach", "remove_parent", "get_parent", "parent_get", "parent_overlap_get",
    "child_attach", "child_detach", "children_list", "dir_add_image", "dir_remove_image", "dir_rename_image",
    "dir_list", "dir_get_id", "dir_get_name", "get_id", "set_id", "add_child", "remove_child", "get_children",
    "trash_add", "trash_remove", "trash_get", "trash_list", "trash_state_set", "copyup",
    "get_create_timestamp", "set_modify_timestamp", "object_map_load", "object_map_resize", "object_map_update", "object_map_snap_add", "object_map_snap_remove",
]
LOCK_METHODS = ["lock", "unlock", "break_lock", "get_info", "list_locks", "assert_locked", "set_cookie"]

small = st.integers(0, 12)
value = st.one_of(
    small, st.sampled_from([-1, 1 << 22, (1 << 64) - 2, (1 << 64) - 1, -(1 << 63)]), st.sampled_from(["", "a", "b", "ab1", "x-y"]),
    st.booleans(), st.none(), st.binary(max_size=4),
)
ARG_KEYS = ["size", "order", "features", "object_prefix", "snap_id", "name", "src_snap_id", "dst_name", "status",
            "limit", "pool_id", "image_id", "parent_overlap", "reattach", "id", "src", "dest", "child_id", "mask",
            "flags", "stripe_unit", "stripe_count", "key", "state", "expect_state", "type", "cookie", "tag",
            "caller", "locker", "new_cookie", "op_features", "max_return", "start_after", "duration",
            "object_count", "default_state", "start_object_no", "end_object_no", "new_object_state"]
args = st.one_of(
    st.dictionaries(st.sampled_from(ARG_KEYS), value, max_size=8),
    st.builds(lambda f, s: {"size": s, "order": 22, "features": f, "object_prefix": "rbd_data.a"},
              st.sampled_from([1, 3, 61, 63]), st.integers(0, 1 << 30)),
    st.builds(lambda i, n: {"snap_id": i, "name": n}, small, st.sampled_from(["s", "t"])),
    st.builds(lambda i, p, o: {"snap_id": i, "pool_id": p, "image_id": "c", "parent_overlap": o, "size": o,
                               "status": p % 3},
              small, st.integers(0, 3), st.integers(0, 1 << 25)),
)
call = st.tuples(st.sampled_from(OBJECTS), st.sampled_from(METHODS + LOCK_METHODS), args)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(call, max_size=30))
def test_random_call_sequences(calls: list) -> None:
    cl = Cluster()
    # Start from a real image so snapshot/parent/children paths are reachable.
    cl.call("rbd_header.a", "create", {"size": 1 << 24, "order": 22, "features": 63, "object_prefix": "rbd_data.a"})
    for obj, meth, a in calls:
        cls = "lock" if meth in LOCK_METHODS else "rbd"
        raw = a.get("key") if meth == "copyup" and isinstance(a.get("key"), bytes) else None
        before = cl.state(obj)
        try:
            cl.call(obj, meth, a if raw is None else None, cls=cls, raw=raw)
        except CallError:
            assert cl.state(obj) == before
        if obj == "rbd_header.a" and cl.state(obj) is not None and "snap_seq" in cl.omap(obj):
            ctx = cl.call(obj, "get_snapcontext")
            assert ctx["snaps"] == sorted(ctx["snaps"], reverse=True)
            assert all(s <= ctx["seq"] for s in ctx["snaps"])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=24), st.sampled_from(METHODS + LOCK_METHODS))
def test_garbage_input_never_crashes(data: bytes, meth: str) -> None:
    cl = Cluster()
    cl.call("rbd_header.a", "create", {"size": 1 << 20, "order": 22, "features": 61, "object_prefix": "rbd_data.a"})
    before = cl.state("rbd_header.a")
    try:
        cl.call("rbd_header.a", meth, raw=data, cls="lock" if meth in LOCK_METHODS else "rbd")
    except CallError:
        assert cl.state("rbd_header.a") == before


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["A", "B"]), st.sampled_from(["add", "rm", "dir"]),
                          st.sampled_from(["s1", "s2", "s3"])), max_size=25))
def test_two_clients_interleaved_keep_invariants(steps: list) -> None:
    """Two clients share a mon-like id allocator; each acts on what it last saw (maybe stale)."""
    cl = Cluster()
    h = "rbd_header.a"
    cl.call(h, "create", {"size": 1 << 24, "order": 22, "features": 1, "object_prefix": "rbd_data.a"})
    next_id = 1
    for client, action, name in steps:
        try:
            if action == "add":
                # Allocate then (maybe much later, after the other client) add: a stale id gets ESTALE.
                cl.call(h, "snapshot_add", {"snap_id": next_id if client == "A" else max(1, next_id - 1),
                                            "name": name})
                next_id += 1
            elif action == "rm":
                ids = [r["id"] for r in cl.call(h, "snapshot_list") if r["name"] == name]
                cl.call(h, "snapshot_remove", {"snap_id": ids[0] if ids else 999})
            else:
                cl.call("rbd_directory", "dir_add_image", {"name": name, "id": client.lower() + name[-1]})
        except CallError as exc:
            assert exc.errno in (errno.EEXIST, errno.ESTALE, errno.ENOENT, errno.EBADF)
        snaps = cl.call(h, "snapshot_list")
        names = [r["name"] for r in snaps]
        assert len(names) == len(set(names))
        ctx = cl.call(h, "get_snapcontext")
        assert ctx["snaps"] == sorted({r["id"] for r in snaps}, reverse=True)
        assert all(i <= ctx["seq"] for i in ctx["snaps"])
        if cl.state("rbd_directory") is not None:
            listing = cl.call("rbd_directory", "dir_list")
            assert len(set(listing.values())) == len(listing)
            for n, i in listing.items():
                assert cl.call("rbd_directory", "dir_get_name", {"id": i}) == n

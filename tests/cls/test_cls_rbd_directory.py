"""cls_rbd pool-object methods: rbd_directory, rbd_children (v1), rbd_trash and copyup."""

from __future__ import annotations

import errno
import importlib.util
import pathlib

import pytest

from shoal.cls.encoding import enc_string, enc_string_set, enc_u64

_spec = importlib.util.spec_from_file_location("cls_rbd_tests", pathlib.Path(__file__).with_name("test_cls_rbd.py"))
assert _spec and _spec.loader
_base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_base)
Cluster, CallError = _base.Cluster, _base.CallError

D = "rbd_directory"


@pytest.fixture
def cl() -> Cluster:
    return Cluster()


def test_directory(cl: Cluster) -> None:
    cl.refuse(errno.ENOENT, D, "dir_list")
    cl.refuse(errno.EINVAL, D, "dir_add_image", {"name": "", "id": "abc"})
    cl.refuse(errno.EINVAL, D, "dir_add_image", {"name": "x", "id": "a/b"})
    cl.call(D, "dir_add_image", {"name": "img1", "id": "1234abcd"})
    omap = cl.omap(D)
    assert omap["name_img1"] == (8).to_bytes(4, "little") + b"1234abcd"
    assert omap["id_1234abcd"] == enc_string("img1")
    cl.refuse(errno.EEXIST, D, "dir_add_image", {"name": "img1", "id": "ffff"})
    cl.refuse(errno.EBADF, D, "dir_add_image", {"name": "img2", "id": "1234abcd"})
    cl.call(D, "dir_add_image", {"name": "a", "id": "99"})
    assert cl.call(D, "dir_list") == {"a": "99", "img1": "1234abcd"}
    assert cl.call(D, "dir_list", {"max_return": 1}) == {"a": "99"}
    assert cl.call(D, "dir_list", {"start_after": "a"}) == {"img1": "1234abcd"}
    assert cl.call(D, "dir_get_id", {"name": "img1"}) == "1234abcd"
    assert cl.call(D, "dir_get_name", {"id": "99"}) == "a"
    cl.refuse(errno.ENOENT, D, "dir_get_id", {"name": "nope"})
    cl.refuse(errno.ENOENT, D, "dir_get_name", {"id": "77"})
    cl.refuse(errno.EEXIST, D, "dir_rename_image", {"src": "a", "dest": "img1", "id": "99"})
    cl.refuse(errno.ENOENT, D, "dir_rename_image", {"src": "zz", "dest": "q", "id": "99"})
    cl.refuse(errno.ESTALE, D, "dir_rename_image", {"src": "a", "dest": "q", "id": "1234abcd"})
    cl.call(D, "dir_rename_image", {"src": "a", "dest": "b", "id": "99"})
    assert cl.call(D, "dir_list") == {"b": "99", "img1": "1234abcd"}
    assert cl.call(D, "dir_get_name", {"id": "99"}) == "b"
    cl.refuse(errno.ENOENT, D, "dir_remove_image", {"name": "a", "id": "99"})
    cl.refuse(errno.ESTALE, D, "dir_remove_image", {"name": "b", "id": "1234abcd"})
    cl.refuse(errno.ENOENT, D, "dir_remove_image", {"name": "b", "id": "4321"})
    cl.call(D, "dir_remove_image", {"name": "b", "id": "99"})
    assert cl.call(D, "dir_list") == {"img1": "1234abcd"}
    assert "id_99" not in cl.omap(D)


def test_children_v1_key_and_value_bytes(cl: Cluster) -> None:
    spec = {"pool_id": 2, "image_id": "parent1", "snap_id": 5}
    cl.refuse(errno.ENOENT, "rbd_children", "get_children", spec)
    cl.call("rbd_children", "add_child", {**spec, "child_id": "c2"})
    cl.call("rbd_children", "add_child", {**spec, "child_id": "c1"})
    cl.refuse(errno.EEXIST, "rbd_children", "add_child", {**spec, "child_id": "c1"})
    omap = cl.omap("rbd_children")
    raw_key = enc_u64(2) + enc_string("parent1") + enc_u64(5)
    assert list(omap) == [raw_key.decode("latin-1")]
    assert omap[raw_key.decode("latin-1")] == enc_string_set({"c1", "c2"})
    assert omap[raw_key.decode("latin-1")] == (2).to_bytes(4, "little") + enc_string("c1") + enc_string("c2")
    assert cl.call("rbd_children", "get_children", spec) == ["c1", "c2"]
    cl.call("rbd_children", "remove_child", {**spec, "child_id": "c1"})
    cl.refuse(errno.ENOENT, "rbd_children", "remove_child", {**spec, "child_id": "c1"})
    cl.call("rbd_children", "remove_child", {**spec, "child_id": "c2"})
    assert cl.omap("rbd_children") == {}
    # Snap ids near HEAD give key bytes above 0x7f: they must still round-trip.
    big = {**spec, "snap_id": (1 << 64) - 3}
    cl.call("rbd_children", "add_child", {**big, "child_id": "x"})
    assert cl.call("rbd_children", "get_children", big) == ["x"]


def test_trash(cl: Cluster) -> None:
    t = "rbd_trash"
    spec = {"source": "user", "name": "img", "deletion_time": [1, 0], "deferment_end_time": [1, 0]}
    cl.refuse(errno.ENOENT, t, "trash_list")
    cl.call(t, "trash_add", {"id": "abc", "spec": spec})
    cl.refuse(errno.EEXIST, t, "trash_add", {"id": "abc", "spec": spec})
    cl.refuse(errno.EINVAL, t, "trash_add", {"id": "a-b", "spec": spec})
    assert cl.call(t, "trash_get", {"id": "abc"}) == {**spec, "state": 0}
    assert list(cl.call(t, "trash_list")) == ["abc"]
    assert "id_abc" in cl.omap(t)
    cl.refuse(errno.ESTALE, t, "trash_state_set", {"id": "abc", "state": 2, "expect_state": 1})
    cl.call(t, "trash_state_set", {"id": "abc", "state": 2, "expect_state": 0})
    assert cl.call(t, "trash_get", {"id": "abc"})["state"] == 2
    cl.refuse(errno.ENOENT, t, "trash_state_set", {"id": "zz", "state": 2, "expect_state": 0})
    cl.call(t, "trash_remove", {"id": "abc"})
    cl.refuse(errno.ENOENT, t, "trash_remove", {"id": "abc"})
    cl.refuse(errno.ENOENT, t, "trash_get", {"id": "abc"})


def test_copyup_writes_only_missing_objects(cl: Cluster) -> None:
    obj = "rbd_data.abc.0000000000000000"
    cl.call(obj, "copyup", raw=b"parentdata")
    assert cl.state(obj)[1] == b"parentdata"
    cl.call(obj, "copyup", raw=b"OTHER")
    assert cl.state(obj)[1] == b"parentdata"
    empty = "rbd_data.abc.0000000000000001"
    cl.call(empty, "copyup", raw=b"")
    assert cl.state(empty)[0] == 0  # an empty copyup still creates the object (it masks the parent)


def test_object_map(cl: Cluster) -> None:
    m = "rbd_object_map.abc"
    cl.refuse(errno.ENOENT, m, "object_map_load")
    cl.refuse(errno.ENOENT, m, "object_map_update", {"start_object_no": 0, "end_object_no": 1, "new_object_state": 1})
    cl.call(m, "object_map_resize", {"object_count": 6, "default_state": 0})
    assert cl.call(m, "object_map_load") == {"size": 6, "bits": b"\x00\x00"}
    cl.call(m, "object_map_update", {"start_object_no": 1, "end_object_no": 3, "new_object_state": 1})
    assert cl.call(m, "object_map_load")["bits"] == b"\x14\x00"  # objects 1,2 EXISTS, MSB first
    cl.call(m, "object_map_update", {"start_object_no": 0, "end_object_no": 6, "new_object_state": 3,
                                     "current_object_state": 1})
    assert cl.call(m, "object_map_load")["bits"] == b"\x3c\x00"
    cl.refuse(errno.ERANGE, m, "object_map_update", {"start_object_no": 0, "end_object_no": 7, "new_object_state": 1})
    cl.refuse(errno.ERANGE, m, "object_map_update", {"start_object_no": 2, "end_object_no": 2, "new_object_state": 1})
    cl.refuse(errno.ESTALE, m, "object_map_resize", {"object_count": 2, "default_state": 0})
    cl.call(m, "object_map_resize", {"object_count": 9, "default_state": 2})
    assert cl.call(m, "object_map_load") == {"size": 9, "bits": b"\x3c\x0a\x80"}
    cl.call(m, "object_map_update", {"start_object_no": 3, "end_object_no": 9, "new_object_state": 0})
    cl.call(m, "object_map_resize", {"object_count": 3, "default_state": 0})
    assert cl.call(m, "object_map_load") == {"size": 3, "bits": b"\x3c"}
    cl.refuse(errno.EINVAL, m, "object_map_save", {"size": 8, "bits": b"\x00"})
    cl.call(m, "object_map_save", {"size": 4, "bits": b"\xff"})
    assert cl.call(m, "object_map_load") == {"size": 4, "bits": b"\xff"}


def test_object_map_fill_matches_per_object_model(cl: Cluster) -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from shoal.cls import rbd_object_map as om

    @settings(max_examples=200, deadline=None)
    @given(st.integers(0, 40), st.integers(0, 40), st.integers(0, 40), st.integers(0, 3), st.binary(min_size=10, max_size=10))
    def check(n: int, a: int, b: int, state: int, init: bytes) -> None:
        bits = bytearray(init[:(n + 3) // 4].ljust((n + 3) // 4, b"\x00"))
        start, end = sorted((min(a, n), min(b, n)))
        model = [om.get_state(bits, i) for i in range(n)]
        om.fill(bits, start, end, state)
        model[start:end] = [state] * (end - start)
        assert [om.get_state(bits, i) for i in range(n)] == model
        assert om.all_in_state(bits, start, end, state)

    check()


def test_object_map_limit(cl: Cluster) -> None:
    cl.refuse(errno.EINVAL, "rbd_object_map.big", "object_map_resize", {"object_count": 256_000_001, "default_state": 0})


def test_object_map_snapshots_and_clean_state(cl: Cluster) -> None:
    m = "rbd_object_map.snap"
    cl.call(m, "object_map_save", {"size": 4, "bits": bytes([0b01_11_01_00])})
    cl.call(m, "object_map_snap_add")
    assert cl.call(m, "object_map_load")["bits"] == bytes([0b11_11_11_00])
    # current_object_state EXISTS also matches EXISTS_CLEAN (as in Ceph).
    cl.call(m, "object_map_update", {"start_object_no": 0, "end_object_no": 1, "new_object_state": 2,
                                     "current_object_state": 1})
    assert cl.call(m, "object_map_load")["bits"] == bytes([0b10_11_11_00])
    cl.call(m, "object_map_snap_remove", {"size": 2, "bits": bytes([0b00_01_00_00])})
    assert cl.call(m, "object_map_load")["bits"] == bytes([0b10_01_01_00])
    cl.refuse(errno.ENOENT, "rbd_object_map.none", "object_map_snap_add")

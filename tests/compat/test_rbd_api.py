"""python-rbd API (`import rbd`) against a real cluster (1 monitor + 3 OSD processes).

Expected exception types, errno and messages are those python3-rbd 16.2.15 gave on real
Ceph (fixtures/python-errors.json), as are the diff_iterate extents of the fixture's
img1/img2 scenario. Pools of this module are `rbd_api_*`; every test uses images of its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import rados
import rbd
from shoal.testing.cluster import TestCluster
from tests.conftest import FIXTURES

POOL, POOL2 = "rbd_api_main", "rbd_api_other"
M = 1 << 20
ERRORS = json.loads((FIXTURES / "python-errors.json").read_text())


def recorded(call: str) -> dict[str, Any]:
    """The python3-rbd record of `call` in python-errors.json."""
    for entry in ERRORS["negative"]:
        if entry["call"] == call:
            return entry
    raise KeyError(call)


def assert_like(exc: BaseException, call: str, **subst: str) -> None:
    """`exc` is what python3-rbd raised for `call`: class, errno, mro and str (names substituted)."""
    rec = recorded(call)
    assert f"{type(exc).__module__}.{type(exc).__name__}" == rec["raised"]
    assert getattr(exc, "errno", None) == rec["errno"]
    assert [f"{c.__module__}.{c.__name__}" for c in type(exc).__mro__[1:-2]] == rec["mro"]
    expected = rec["str"]
    for old, new in subst.items():
        expected = expected.replace(old, new)
    assert str(exc) == expected


@pytest.fixture(scope="module")
def cluster_rados(cluster: TestCluster) -> Iterator[rados.Rados]:
    r = rados.Rados(conffile=cluster.conf_path)
    r.connect()
    for pool in (POOL, POOL2):
        ret, _, outs = r.mon_command(json.dumps({"prefix": "osd pool create", "pool": pool, "pg_num": 8}), b"")
        assert ret == 0, outs
    try:
        yield r
    finally:
        for pool in (POOL, POOL2):
            r.delete_pool(pool)
        r.shutdown()


@pytest.fixture(scope="module")
def ioctx(cluster_rados: rados.Rados) -> Iterator[rados.Ioctx]:
    io = cluster_rados.open_ioctx(POOL)
    rbd.RBD().pool_init(io, False)
    yield io
    io.close()


@pytest.fixture(scope="module")
def ioctx2(cluster_rados: rados.Rados) -> Iterator[rados.Ioctx]:
    io = cluster_rados.open_ioctx(POOL2)
    rbd.RBD().pool_init(io, False)
    yield io
    io.close()


def fixture_scenario(io: rados.Ioctx, name: str, striped: bool) -> None:
    """The fixture images: img1 (default layout) or img2 (1 MiB objects, 64 KiB x 4 stripes)."""
    r = rbd.RBD()
    if striped:
        r.create(io, name, 4 * M, order=20, stripe_unit=64 << 10, stripe_count=4)
    else:
        r.create(io, name, 8 * M)
    size = 4 * M if striped else 8 * M
    with rbd.Image(io, name) as img:
        img.write(b"\x11" * 4096, 0)
        img.write(b"\x22" * 65536, M + 512)
        img.write(b"\x33" * 16, (3 if striped else 6) * M - 8)
        img.create_snap("s1")
        img.write(b"\x44" * 4096, 2 * M)
        img.discard(M, 65536)
        img.resize(size + size // 2)
        img.create_snap("s2")


def diffs(img: rbd.Image, from_snap: str | None, **kw: Any) -> list[list[Any]]:
    out: list[list[Any]] = []
    img.diff_iterate(0, img.size(), from_snap, lambda o, n, e: out.append([o, n, e]), **kw)
    return out


# -- module surface ---------------------------------------------------------------------------------
def test_module_surface() -> None:
    assert "Image" in rbd.__all__ and "RBD" in rbd.__all__
    assert rbd.RBD_FEATURE_LAYERING == 1 and rbd.RBD_FEATURE_FAST_DIFF == 16 and rbd.RBD_FEATURES_DEFAULT == 61
    assert rbd.RBD_OPERATION_FEATURE_CLONE_PARENT == 1 and rbd.RBD_SNAP_NAMESPACE_TYPE_TRASH == 2
    assert rbd.RBD().version() == (1, 16, 0)
    assert issubclass(rbd.ImageNotFound, rbd.OSError) and issubclass(rbd.OSError, rbd.Error)
    exc = rbd.ImageNotFound("cinder says", errno=2)
    assert str(exc) == "[errno 2] RBD image not found (cinder says)"


# -- create / open / list / rename / remove -------------------------------------------------------
def test_create_open_stat_list_rename_remove(ioctx: rados.Ioctx) -> None:
    r = rbd.RBD()
    r.create(ioctx, "basic", 12 * M)
    with pytest.raises(rbd.ImageExists) as ei:
        r.create(ioctx, "basic", M)
    assert_like(ei.value, "rbd.RBD().create(ioctx_rbd, 'img1', 1 << 20)  # exists")
    assert "basic" in r.list(ioctx)
    with rbd.Image(ioctx, "basic") as img:
        st = img.stat()
        assert st == {"size": 12 * M, "obj_size": 4 * M, "num_objs": 3, "order": 22,
                      "block_name_prefix": f"rbd_data.{img.id()}", "parent_pool": (1 << 64) - 1,
                      "parent_name": b""}
        assert img.features() == 61 and img.stripe_unit() == 4 * M and img.stripe_count() == 1
        assert img.block_name_prefix() == f"rbd_data.{img.id()}" and not img.old_format()
        assert img.name == b"basic" and img.data_pool_id() == ioctx.get_pool_id()
        image_id = img.id()
    assert {"id": image_id, "name": "basic"} in list(r.list2(ioctx))
    with rbd.Image(ioctx, image_id=image_id, read_only=True) as img:
        assert img.name == "basic" and img.size() == 12 * M
    r.rename(ioctx, "basic", "basic2")
    assert "basic2" in r.list(ioctx) and "basic" not in r.list(ioctx)
    with pytest.raises(rbd.ImageNotFound) as ei:
        r.rename(ioctx, "basic", "x")
    assert_like(ei.value, "rbd.RBD().rename(ioctx_rbd, 'nosuch', 'x')")
    r.create(ioctx, "basic3", M)
    with pytest.raises(rbd.ImageExists) as ei:
        r.rename(ioctx, "basic2", "basic3")
    assert_like(ei.value, "rbd.RBD().rename(ioctx_rbd, 'img1', 'img2')  # target exists")
    r.remove(ioctx, "basic2")
    r.remove(ioctx, "basic3")
    assert "basic2" not in r.list(ioctx)
    with pytest.raises(rbd.ImageNotFound) as ei:
        r.remove(ioctx, "basic2")
    assert_like(ei.value, "rbd.RBD().remove(ioctx_rbd, 'nosuch')")
    with pytest.raises(rbd.ImageNotFound) as ei:
        rbd.Image(ioctx, "nosuch")
    assert_like(ei.value, "rbd.Image(ioctx_rbd, 'nosuch')")


def test_remove_refuses_a_watched_image(ioctx: rados.Ioctx) -> None:
    r = rbd.RBD()
    r.create(ioctx, "py-busy", M)
    with rbd.Image(ioctx, "py-busy") as img:
        header = f"rbd_header.{img.id()}"
    watch = ioctx.watch(header, lambda *args: None)  # as an image open in another client would
    try:
        with pytest.raises(rbd.ImageBusy) as ei:
            r.remove(ioctx, "py-busy")
        assert_like(ei.value, "rbd.RBD().remove(ioctx_rbd, 'py-busy')  # py-busy open via rbd.Image in another "
                              "Rados handle")
        with rbd.Image(ioctx, "py-busy") as img:  # a writable handle watches the header too
            watchers = list(img.watchers_list())
            assert len(watchers) == 2 and all(set(w) == {"addr", "id", "cookie"} for w in watchers)
            assert {w["id"] for w in watchers} == {ioctx.rados.get_instance_id()}
    finally:
        watch.close()
    r.remove(ioctx, "py-busy")


def test_data_pool(ioctx: rados.Ioctx, ioctx2: rados.Ioctx) -> None:
    r = rbd.RBD()
    r.create(ioctx, "dp", 8 * M, data_pool=POOL2)
    with rbd.Image(ioctx, "dp") as img:
        assert img.features() & rbd.RBD_FEATURE_DATA_POOL and img.data_pool_id() == ioctx2.get_pool_id()
        assert img.block_name_prefix() == f"rbd_data.{ioctx.get_pool_id()}.{img.id()}"
        img.write(b"d" * 100, 5 * M)
        img.create_snap("s")
        img.write(b"e" * 100, 5 * M)
        prefix = img.block_name_prefix()
    assert ioctx2.read(f"{prefix}.0000000000000001", 3, M) == b"eee"  # data lives in the data pool
    with rbd.Image(ioctx, "dp", snapshot="s") as snap:
        assert snap.read(5 * M, 3) == b"ddd"
    with rbd.Image(ioctx, "dp") as img:
        img.remove_snap("s")
    r.remove(ioctx, "dp")
    with pytest.raises(rados.ObjectNotFound):
        ioctx2.stat(f"{prefix}.0000000000000001")


def test_create_argument_errors(ioctx: rados.Ioctx) -> None:
    r = rbd.RBD()
    with pytest.raises(OverflowError, match="can't convert negative value to uint64_t"):
        r.create(ioctx, "neg", -1)
    for order in (5, 30):
        with pytest.raises(rbd.ArgumentOutOfRange) as ei:
            r.create(ioctx, "badorder", M, order=order)
        assert_like(ei.value, f"rbd.RBD().create(ioctx_rbd, 'badorder', 1 << 20, order={order})")
    with pytest.raises(rbd.InvalidArgument) as ei:
        r.create(ioctx, "badstripe", M, stripe_unit=65536, stripe_count=0)
    assert_like(ei.value, "rbd.RBD().create(ioctx_rbd, 'badstripe', 1 << 20, stripe_unit=65536, stripe_count=0)")
    assert "badorder" not in r.list(ioctx) and "badstripe" not in r.list(ioctx)
    # cinder backup: features with STRIPINGV2 and 0/0 striping is the default layout.
    feats = rbd.RBD_FEATURE_LAYERING | rbd.RBD_FEATURE_STRIPINGV2 | rbd.RBD_FEATURE_EXCLUSIVE_LOCK
    r.create(ioctx=ioctx, name="bk", size=0, old_format=False, features=feats, stripe_unit=0, stripe_count=0)
    with rbd.Image(ioctx, "bk") as img:
        assert img.features() == feats & ~rbd.RBD_FEATURE_STRIPINGV2 and img.size() == 0
    r.remove(ioctx, "bk")


# -- I/O semantics -----------------------------------------------------------------------------------
def test_io_errors_and_short_ops(ioctx: rados.Ioctx) -> None:
    r = rbd.RBD()
    r.create(ioctx, "py-small", 4 * M)
    with rbd.Image(ioctx, "py-small") as img:
        with pytest.raises(rbd.IncompleteWriteError) as ei:
            img.write(b"x" * 10, 4 * M - 4)
        assert_like(ei.value, "Image(rbd/py-small).write(b'x' * 10, (4 << 20) - 4)  # size 4 MiB, straddles the end")
        assert img.read(4 * M - 4, 10) == b"xxxx"
        with pytest.raises(rbd.InvalidArgument) as ei:
            img.write(b"x", 4 * M)
        assert_like(ei.value, "Image(rbd/py-small).write(b'x', 4 << 20)  # at end")
        with pytest.raises(TypeError, match="data must be a byte string"):
            img.write("abc", 0)  # type: ignore[arg-type]
        with pytest.raises(rbd.InvalidArgument) as ei:
            img.read(4 * M, 10)
        assert_like(ei.value, "Image(rbd/img1).read(12 << 20, 10)  # offset == size",
                    **{"b'img1' 12582912": "b'py-small' 4194304"})
        assert img.read(4 * M - 4, 0) == b""
        img.write(b"\x01" * 300, 0)
        img.discard(100, 200)  # not 64 KiB aligned: nothing is freed (rbd_skip_partial_discard)
        assert img.read(0, 300) == b"\x01" * 300
        img.write_zeroes(100, 100)  # write_zeroes zeroes every byte
        assert img.read(0, 300) == b"\x01" * 100 + bytes(100) + b"\x01" * 100
        with pytest.raises(rbd.InvalidArgument) as ei:
            img.resize(M, allow_shrink=False)
        assert str(ei.value) == "RBD invalid argument (error allow_shrink is False but old_size > new_size)"
        assert ei.value.errno is None
    img.close()  # closing again is fine
    for call in (lambda: img.size(), lambda: img.read(0, 10), lambda: img.write(b"x", 0)):
        with pytest.raises(rbd.InvalidArgument) as ei:
            call()
        assert str(ei.value) == "RBD invalid argument (image is closed)" and ei.value.errno is None
    r.remove(ioctx, "py-small")


@pytest.mark.parametrize("order,stripe_unit,stripe_count", [
    (12, 0, 0), (16, 4096, 4), (20, 65536, 3), (22, 0, 0),
])
def test_io_across_objects_and_layouts(ioctx: rados.Ioctx, order: int, stripe_unit: int, stripe_count: int) -> None:
    name = f"layout-{order}-{stripe_unit}-{stripe_count}"
    obj = 1 << order
    size = 6 * obj * max(stripe_count, 1) + 12345
    rbd.RBD().create(ioctx, name, size, order=order, stripe_unit=stripe_unit, stripe_count=stripe_count)
    model = bytearray(size)
    with rbd.Image(ioctx, name) as img:
        if stripe_unit:
            assert img.stripe_unit() == stripe_unit and img.stripe_count() == stripe_count
            assert img.features() & rbd.RBD_FEATURE_STRIPINGV2
        assert img.read(0, size) == bytes(size)  # never written: zeros
        spans = [(0, 100), (obj - 7, 20), (3 * obj - 1000, 2 * obj + 5000), (size - 300, 300), (obj // 2, obj * 3)]
        for i, (off, n) in enumerate(spans):
            data = bytes([(i * 37 + j) % 251 + 1 for j in range(256)]) * (n // 256 + 1)
            img.write(data[:n], off)
            model[off:off + n] = data[:n]
        assert img.read(0, size) == bytes(model)
        img.discard(obj, 2 * obj)  # whole objects of the default layout, partial stripes otherwise
        img.write_zeroes(5, 11)
        model[5:16] = bytes(11)
        got = img.read(0, size)
        assert got[:obj] == bytes(model[:obj]) and got[3 * obj:] == bytes(model[3 * obj:])
        img.write_zeroes(obj, 2 * obj)
        model[obj:3 * obj] = bytes(2 * obj)
        assert img.read(0, size) == bytes(model)
        img.resize(size // 3)
        assert img.read(0, size // 3) == bytes(model[:size // 3])
        img.resize(size)
        assert img.read(0, size) == bytes(model[:size // 3]) + bytes(size - size // 3)
    rbd.RBD().remove(ioctx, name)


# -- snapshots ---------------------------------------------------------------------------------------
def test_snapshots(ioctx: rados.Ioctx) -> None:
    r = rbd.RBD()
    r.create(ioctx, "snapimg", 8 * M)
    with rbd.Image(ioctx, "snapimg") as img:
        img.write(b"a" * 4096, 0)
        img.create_snap("s1")
        with pytest.raises(rbd.ImageExists) as ei:
            img.create_snap("s1")
        assert_like(ei.value, "Image(rbd/img1).create_snap('s1')  # exists", img1="snapimg")
        img.write(b"b" * 4096, 0)
        img.write(b"c" * 10, 5 * M)
        img.resize(12 * M)
        img.create_snap("s2")
        img.write(b"d" * 4096, 0)
        snaps = list(img.list_snaps())
        assert [(s["name"], s["size"], s["namespace"]) for s in snaps] == [("s1", 8 * M, 0), ("s2", 12 * M, 0)]
        assert snaps[0]["id"] < snaps[1]["id"]
        assert img.get_snap_timestamp(snaps[0]["id"]).year >= 2024
        assert not img.is_protected_snap("s1")
        with pytest.raises(rbd.InvalidArgument) as ei:
            img.unprotect_snap("s1")
        assert_like(ei.value, "Image(rbd/img1).unprotect_snap('s1')  # not protected", img1="snapimg")
        img.protect_snap("s1")
        assert img.is_protected_snap("s1")
        with pytest.raises(rbd.ImageBusy) as ei:
            img.protect_snap("s1")
        assert_like(ei.value, "Image(images/base).protect_snap('snap')  # already protected",
                    base="snapimg", **{"'snap'": "'s1'"})
        with pytest.raises(rbd.ImageBusy) as ei:
            img.remove_snap("s1")
        assert_like(ei.value, "Image(images/base).remove_snap('snap')  # protected",
                    **{"b'snap'": "b's1'", "b'base'": "b'snapimg'"})
        img.unprotect_snap("s1")
        for call, rec in ((lambda: img.remove_snap("nosnap"), "Image(rbd/img1).remove_snap('nosnap')"),
                          (lambda: img.set_snap("nosnap"), "Image(rbd/img1).set_snap('nosnap')"),
                          (lambda: img.protect_snap("nosnap"), "Image(rbd/img1).protect_snap('nosnap')")):
            with pytest.raises(rbd.ImageNotFound) as ei:
                call()
            assert_like(ei.value, rec, img1="snapimg")
        # Reading at a snapshot (set_snap and opening at one).
        img.set_snap("s1")
        assert img.size() == 8 * M and img.read(0, 4096) == b"a" * 4096 and img.read(5 * M, 10) == bytes(10)
        with pytest.raises(rbd.ReadOnlyImage):
            img.write(b"x", 0)
        img.set_snap(None)
        assert img.read(0, 4) == b"dddd"
        img.rename_snap("s2", "s2b")
        with pytest.raises(rbd.ImageExists):
            img.rename_snap("s1", "s2b")
    with rbd.Image(ioctx, "snapimg", snapshot="s2b") as snap:
        assert snap.size() == 12 * M and snap.read(0, 4) == b"bbbb" and snap.read(5 * M, 10) == b"c" * 10
        with pytest.raises(rbd.ReadOnlyImage) as ei:
            snap.write(b"x", 0)
        assert_like(ei.value, "Image(rbd/img1, snapshot='s1').write(b'x', 0)", img1="snapimg")
        with pytest.raises(rbd.ReadOnlyImage) as ei:
            snap.discard(0, 4096)
        assert_like(ei.value, "Image(rbd/img1, snapshot='s1').discard(0, 4096)")
        with pytest.raises(rbd.ReadOnlyImage) as ei:
            snap.resize(M)
        assert_like(ei.value, "Image(rbd/img1, snapshot='s1').resize(1 << 20)", img1="snapimg")
    with pytest.raises(rbd.ImageNotFound) as ei:
        rbd.Image(ioctx, "snapimg", snapshot="nosnap")
    assert_like(ei.value, "rbd.Image(ioctx_rbd, 'img1', snapshot='nosnap')", img1="snapimg")
    with rbd.Image(ioctx, "snapimg", read_only=True) as ro:
        with pytest.raises(rbd.ReadOnlyImage) as ei:
            ro.create_snap("x")
        assert_like(ei.value, "Image(rbd/img1, read_only=True).create_snap('x')", img1="snapimg")
    with rbd.Image(ioctx, "snapimg") as img:
        img.rollback_to_snap("s1")
        assert img.size() == 8 * M and img.read(0, 4) == b"aaaa" and img.read(5 * M, 10) == bytes(10)
        img.set_snap_limit(2)
        assert img.get_snap_limit() == 2
        with pytest.raises(rbd.DiskQuotaExceeded):
            img.create_snap("s3")
        img.remove_snap_limit()
    with pytest.raises(rbd.ImageHasSnapshots) as ei:
        r.remove(ioctx, "snapimg")
    assert_like(ei.value, "rbd.RBD().remove(ioctx_rbd, 'img1')  # has snapshots")
    with rbd.Image(ioctx, "snapimg") as img:
        img.remove_snap("s1")
        img.remove_snap("s2b")
        assert list(img.list_snaps()) == []
    r.remove(ioctx, "snapimg")


def test_diff_iterate_matches_ceph(ioctx: rados.Ioctx) -> None:
    """The python3-rbd callbacks recorded on Ceph for the fixture's img1 and img2."""
    positive = {e["call"]: e["value"] for e in ERRORS["positive"]}
    fixture_scenario(ioctx, "d-img1", striped=False)
    fixture_scenario(ioctx, "d-img2", striped=True)
    with rbd.Image(ioctx, "d-img1") as img:
        assert diffs(img, "s1") == positive["cb args of Image(rbd/img1).diff_iterate(0, size, 's1', cb)  # HEAD vs s1"]
        assert diffs(img, "s1", whole_object=True) == \
            positive["cb args of Image(rbd/img1).diff_iterate(0, size, 's1', cb, whole_object=True)"]
        assert diffs(img, None) == positive["cb args of Image(rbd/img1).diff_iterate(0, size, None, cb)  # full, HEAD"]
        assert diffs(img, "s2") == []
        with pytest.raises(rbd.ImageNotFound) as ei:
            diffs(img, "nosnap")
        assert_like(ei.value, "Image(rbd/img1).diff_iterate(0, 12 << 20, 'nosnap', cb)")
        img.update_features(rbd.RBD_FEATURE_FAST_DIFF | rbd.RBD_FEATURE_OBJECT_MAP, False)
        assert diffs(img, "s1", whole_object=True) == [[0, 4 * M, True]]  # list_snaps instead of object maps
    with rbd.Image(ioctx, "d-img1", snapshot="s2") as img:
        assert diffs(img, "s1") == \
            positive["cb args of Image(rbd/img1, snapshot='s2').diff_iterate(0, size, 's1', cb)"]
        with pytest.raises(rbd.InvalidArgument):
            img.set_snap("s1")
            diffs(img, "s2")
    with rbd.Image(ioctx, "d-img2") as img:
        assert img.stat()["num_objs"] == 8
        assert diffs(img, "s1") == positive["cb args of Image(rbd/img2).diff_iterate(0, size, 's1', cb)  # striped"]
    for name in ("d-img1", "d-img2"):
        with rbd.Image(ioctx, name) as img:
            for s in ("s1", "s2"):
                img.remove_snap(s)
        rbd.RBD().remove(ioctx, name)


# -- layering ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("clone_format", [1, 2])
def test_clone_copyup_flatten(ioctx: rados.Ioctx, ioctx2: rados.Ioctx, clone_format: int) -> None:
    r = rbd.RBD()
    base, child = f"base{clone_format}", f"child{clone_format}"
    r.create(ioctx, base, 16 * M, features=rbd.RBD_FEATURES_DEFAULT)
    with rbd.Image(ioctx, base) as img:
        img.write(b"P" * (6 * M), M)
        img.create_snap("snap")
        if clone_format == 1:
            with pytest.raises(rbd.InvalidArgument) as ei:
                r.clone(ioctx, base, "snap", ioctx2, child)
            assert_like(ei.value, "rbd.RBD().clone(ioctx_rbd, 'img1', 's1', ioctx_rbd, 'badclone')  # s1 not protected")
            img.protect_snap("snap")
        img.write(b"N" * M, 0)  # after the snapshot: not in the clone
    with pytest.raises(rbd.ImageNotFound) as ei:
        r.clone(ioctx, base, "nosnap", ioctx2, child)
    assert_like(ei.value, "rbd.RBD().clone(ioctx_images, 'base', 'nosnap', ioctx_rbd, 'badclone')")
    r.clone(ioctx, base, "snap", ioctx2, child, clone_format=clone_format)
    with pytest.raises(rbd.ImageExists) as ei:
        r.clone(ioctx, base, "snap", ioctx2, child, clone_format=clone_format)
    assert_like(ei.value, "rbd.RBD().clone(ioctx_images, 'base', 'snap', ioctx_volumes, 'clone1')  # dest exists")
    with rbd.Image(ioctx, base, snapshot="snap") as snap:
        assert list(snap.list_children()) == [(POOL2, child)]
        kids = list(snap.list_children2())
        assert kids[0]["pool"] == POOL2 and kids[0]["image"] == child and kids[0]["trash"] is False
    with rbd.Image(ioctx, base) as img:
        with pytest.raises(rbd.ImageBusy):
            if clone_format == 1:
                img.unprotect_snap("snap")
            else:
                img.protect_snap("snap")
                img.unprotect_snap("snap")
        assert img.op_features() & rbd.RBD_OPERATION_FEATURE_CLONE_PARENT == (clone_format == 2)
    with rbd.Image(ioctx2, child) as c:
        assert c.parent_info() == (POOL, base, "snap")
        assert c.get_parent_image_spec() == {"pool_name": POOL, "pool_namespace": "", "image_name": base,
                                             "snap_name": "snap"}
        assert c.overlap() == 16 * M and c.size() == 16 * M
        assert c.read(0, M) == bytes(M) and c.read(M, 4) == b"PPPP" and c.read(7 * M - 4, 8) == b"PPPP" + bytes(4)
        c.write(b"C" * 10, M + 100)  # copy-up of object 0 from the parent, then the write
        assert c.read(M + 96, 18) == b"PPPP" + b"C" * 10 + b"PPPP"
        assert c.read(2 * M, 4) == b"PPPP"
        c.create_snap("csnap")
        c.write(b"D" * 10, 4 * M)  # object 1: copy-up with snapshots (deep copy-up)
        c.discard(5 * M, M)  # partial discard inside the overlap: zeros, not the parent
        assert c.read(5 * M, M) == bytes(M) and c.read(4 * M, 12) == b"D" * 10 + b"PP"
        c.resize(3 * M)  # shrinking clamps the overlap
        assert c.overlap() == 3 * M
        c.resize(16 * M)
        assert c.read(3 * M, 10) == bytes(10)
        progress: list[tuple[int, int]] = []
        c.flatten(on_progress=lambda off, total: progress.append((off, total)))
        assert progress and progress[-1][0] == progress[-1][1]
        with pytest.raises(rbd.ImageNotFound):
            c.parent_info()
        assert c.read(M, 4) == b"PPPP" and c.read(3 * M, 10) == bytes(10)
        with pytest.raises(rbd.InvalidArgument):
            c.flatten()
        c.set_snap("csnap")  # deep-flatten: the snapshot reads the copied data, not the parent
        assert c.read(4 * M, 4) == b"PPPP" and c.read(2 * M, 4) == b"PPPP"
        with pytest.raises(rbd.ImageNotFound):
            c.parent_info()
        c.set_snap(None)
        c.remove_snap("csnap")
    with rbd.Image(ioctx, base) as img:
        img.set_snap("snap")
        assert img.list_children() == []
        img.set_snap(None)
        img.unprotect_snap("snap")  # no children left (v2: protected above to test the refusal)
        img.remove_snap("snap")
    r.remove(ioctx2, child)
    r.remove(ioctx, base)


def test_clone_v2_parent_snapshot_goes_to_trash(ioctx: rados.Ioctx) -> None:
    r = rbd.RBD()
    r.create(ioctx, "t-base", 4 * M)
    with rbd.Image(ioctx, "t-base") as img:
        img.write(b"x" * 100, 0)
        img.create_snap("snap")
    r.clone(ioctx, "t-base", "snap", ioctx, "t-child", clone_format=2)
    with rbd.Image(ioctx, "t-base") as img:
        img.remove_snap("snap")  # children still use it: it moves to the trash namespace
        snaps = list(img.list_snaps())
        assert len(snaps) == 1 and snaps[0]["namespace"] == rbd.RBD_SNAP_NAMESPACE_TYPE_TRASH
        assert snaps[0]["trash"] == {"original_name": "snap"}
    with rbd.Image(ioctx, "t-child") as c:
        assert c.read(0, 3) == b"xxx"
    r.remove(ioctx, "t-child")  # the last child: the trashed snapshot goes with it
    with rbd.Image(ioctx, "t-base") as img:
        assert list(img.list_snaps()) == []
        assert img.op_features() == 0
    r.remove(ioctx, "t-base")


def test_copy(ioctx: rados.Ioctx, ioctx2: rados.Ioctx) -> None:
    r = rbd.RBD()
    r.create(ioctx, "cp-src", 9 * M, order=20)
    with rbd.Image(ioctx, "cp-src") as img:
        img.write(b"q" * 5000, M - 100)
        img.metadata_set("k", "v")
        img.copy(ioctx2, "cp-dst")
        with pytest.raises(rbd.ImageExists):
            img.copy(ioctx2, "cp-dst")
    with rbd.Image(ioctx2, "cp-dst") as dst:
        assert dst.size() == 9 * M and dst.stat()["order"] == 20 and dst.features() == 61
        assert dst.read(M - 100, 5000) == b"q" * 5000 and dst.read(0, 100) == bytes(100)
        assert dst.metadata_get("k") == "v"
    r.remove(ioctx2, "cp-dst")
    r.remove(ioctx, "cp-src")


# -- trash -------------------------------------------------------------------------------------------
def test_trash(ioctx: rados.Ioctx) -> None:
    r = rbd.RBD()
    r.create(ioctx, "trash-now", M)
    r.create(ioctx, "trash-deferred", M)
    with rbd.Image(ioctx, "trash-now") as img:
        img.write(b"t" * 10, 0)
        img.create_snap("s")  # trash_move works with snapshots (glance's fallback)
    r.trash_move(ioctx, "trash-now")
    r.trash_move(ioctx, "trash-deferred", 3600)
    assert "trash-now" not in r.list(ioctx)
    entries = {e["name"]: e for e in r.trash_list(ioctx)}
    assert entries["trash-now"]["source"] == "USER"
    assert entries["trash-deferred"]["deferment_end_time"] > entries["trash-deferred"]["deletion_time"]
    deferred = entries["trash-deferred"]["id"]
    assert r.trash_get(ioctx, deferred)["name"] == "trash-deferred"
    with pytest.raises(rbd.PermissionError) as ei:
        r.trash_remove(ioctx, deferred)
    assert_like(ei.value, "rbd.RBD().trash_remove(ioctx_images, <id of trash-deferred>)  # expires 2099")
    for call, rec in ((lambda: r.trash_remove(ioctx, "nosuchid"), "rbd.RBD().trash_remove(ioctx_images, 'nosuchid')"),
                      (lambda: r.trash_get(ioctx, "nosuchid"), "rbd.RBD().trash_get(ioctx_images, 'nosuchid')"),
                      (lambda: r.trash_restore(ioctx, "nosuchid", "x"),
                       "rbd.RBD().trash_restore(ioctx_images, 'nosuchid', 'x')"),
                      (lambda: r.trash_move(ioctx, "nosuch"), "rbd.RBD().trash_move(ioctx_rbd, 'nosuch')")):
        with pytest.raises(rbd.ImageNotFound) as ei:
            call()
        assert_like(ei.value, rec)
    r.trash_remove(ioctx, deferred, force=True)
    now_id = entries["trash-now"]["id"]
    r.trash_restore(ioctx, now_id, "restored")
    with rbd.Image(ioctx, "restored") as img:
        assert img.read(0, 10) == b"t" * 10
        img.remove_snap("s")
    r.remove(ioctx, "restored")
    assert list(r.trash_list(ioctx)) == []


# -- metadata, config, locks, features -------------------------------------------------------------------
def test_metadata_config_locks_features(ioctx: rados.Ioctx) -> None:
    r = rbd.RBD()
    r.create(ioctx, "meta", M)
    with rbd.Image(ioctx, "meta") as img:
        img.metadata_set("a", "1")
        img.metadata_set("b", "2")
        assert img.metadata_get("a") == "1" and list(img.metadata_list()) == [("a", "1"), ("b", "2")]
        img.metadata_remove("a")
        with pytest.raises(KeyError):
            img.metadata_get("a")
        with pytest.raises(KeyError):
            img.metadata_remove("a")
        conf = {c["name"]: c for c in img.config_list()}
        for key in ("rbd_qos_iops_limit", "rbd_qos_bps_limit", "rbd_qos_read_bps_limit"):
            assert int(conf[key]["value"]) == 0 and conf[key]["source"] == rbd.RBD_CONFIG_SOURCE_CONFIG
        img.config_set("rbd_qos_iops_limit", "100")
        assert img.config_get("rbd_qos_iops_limit") == "100"
        conf = {c["name"]: c for c in img.config_list()}
        assert conf["rbd_qos_iops_limit"] == {"name": "rbd_qos_iops_limit", "value": "100",
                                              "source": rbd.RBD_CONFIG_SOURCE_IMAGE}
        img.config_remove("rbd_qos_iops_limit")
        with pytest.raises(KeyError):
            img.config_get("rbd_qos_iops_limit")
        assert img.list_lockers() == []
        img.lock_exclusive("c1")
        with pytest.raises(rbd.ImageExists):
            img.lock_exclusive("c1")
        lockers = img.list_lockers()
        assert lockers["exclusive"] is True and lockers["lockers"][0][1] == "c1"
        img.unlock("c1")
        with pytest.raises(rbd.ImageNotFound):
            img.unlock("c1")
        img.lock_shared("c2", "tag")
        client = img.list_lockers()["lockers"][0][0]
        img.break_lock(client, "c2")
        assert img.list_lockers() == []
        assert not img.is_exclusive_lock_owner()
        # Features: multiattach types in cinder turn these off and on again.
        mask = rbd.RBD_FEATURE_EXCLUSIVE_LOCK | rbd.RBD_FEATURE_OBJECT_MAP | rbd.RBD_FEATURE_FAST_DIFF
        img.update_features(mask & img.features(), False)
        assert img.features() == rbd.RBD_FEATURE_LAYERING | rbd.RBD_FEATURE_DEEP_FLATTEN
        with pytest.raises(rbd.InvalidArgument):
            img.lock_acquire(rbd.RBD_LOCK_MODE_EXCLUSIVE)  # no exclusive-lock feature
        assert list(img.lock_get_owners()) == []
        with pytest.raises(rbd.InvalidArgument):
            img.update_features(rbd.RBD_FEATURE_OBJECT_MAP, True)  # needs exclusive-lock
        img.update_features(rbd.RBD_FEATURE_EXCLUSIVE_LOCK, True)
        img.update_features(rbd.RBD_FEATURE_OBJECT_MAP, True)
        assert img.features() == 61 and img.flags() == rbd.RBD_FLAG_OBJECT_MAP_INVALID | rbd.RBD_FLAG_FAST_DIFF_INVALID
        img.write(b"w" * 10, 0)
        img.rebuild_object_map()
        assert img.flags() == 0
    r.remove(ioctx, "meta")


def test_aio(ioctx: rados.Ioctx) -> None:
    rbd.RBD().create(ioctx, "aio", M)
    with rbd.Image(ioctx, "aio") as img:
        got: list[Any] = []
        comp = img.aio_write(b"z" * 1000, 10, lambda c: got.append(("w", c.get_return_value())))
        comp.wait_for_complete_and_cb()
        img.aio_flush(lambda c: got.append(("f", c.get_return_value()))).wait_for_complete_and_cb()
        img.aio_read(5, 20, lambda c, data: got.append(("r", c.get_return_value(), data))).wait_for_complete_and_cb()
        img.aio_read(2 * M, 20, lambda c, data: got.append(("e", c.get_return_value(), data))).wait_for_complete_and_cb()
        assert got == [("w", 0), ("f", 0), ("r", 20, bytes(5) + b"z" * 15), ("e", -22, None)]
    rbd.RBD().remove(ioctx, "aio")

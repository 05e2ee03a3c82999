"""The RBD core (shoal/rbd): pure parts without a cluster, then behaviour only visible inside it.

Against the cluster: reads of objects the object map says are absent cost no OSD round
trip, du/fast-diff answer from the maps, parents chain through grandchildren, copy-up
follows striping, and rollback keeps the object map right.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import rados
import rbd
from shoal.rbd import copy as rbd_copy
from shoal.rbd import object_map
from shoal.rbd.snap_diff import CEPH_NOSNAP, SnapSetInfo, calc_snap_set_diff, intersect, normalize, subtract
from shoal.testing.cluster import TestCluster

M = 1 << 20
POOL = "rbd_core"


# -- pure ----------------------------------------------------------------------------------------
def test_interval_arithmetic() -> None:
    assert normalize([(10, 5), (0, 3), (3, 2), (20, 0)]) == [(0, 5), (10, 5)]
    assert subtract([(0, 100)], [(10, 10), (50, 60)]) == [(0, 10), (20, 30)]
    assert intersect([(0, 10), (20, 10)], [(5, 20)]) == [(5, 5), (20, 5)]


def _ss(seq: int, clones: list[tuple[int, list[int], int, list[list[int]]]]) -> SnapSetInfo:
    return SnapSetInfo.from_wire({"seq": seq, "clones": [
        {"id": cid, "snaps": snaps, "size": size, "overlap": overlap} for cid, snaps, size, overlap in clones]})


def test_calc_snap_set_diff_as_librados() -> None:
    # Object 0 of the fixture's img1: written, snapshot 4, written past its end, part zeroed.
    ss = _ss(4, [(4, [4], 1114624, [[0, M], [M + 65536, 1114624 - M - 65536]]), (-2, [], 2101248, [])])
    d = calc_snap_set_diff(ss, 4, CEPH_NOSNAP)
    assert d.extents == [(M, 65536), (1114624, 2101248 - 1114624)] and d.end_exists and d.end_size == 2101248
    d = calc_snap_set_diff(ss, 0, CEPH_NOSNAP)
    assert d.extents == [(0, 2101248)] and d.end_exists
    d = calc_snap_set_diff(ss, 0, 4)
    assert d.extents == [(0, 1114624)] and d.end_exists and d.end_size == 1114624
    # Removed after snapshot 4 (no head): gone at HEAD, all of it changed.
    gone = _ss(4, [(4, [4], 5000, [])])
    d = calc_snap_set_diff(gone, 4, CEPH_NOSNAP)
    assert d.extents == [(0, 5000)] and not d.end_exists
    # Created after snapshot 4: absent there, all of it new.
    new = _ss(4, [(-2, [], 300, [])])
    assert calc_snap_set_diff(new, 4, CEPH_NOSNAP).extents == [(0, 300)]
    assert calc_snap_set_diff(new, 0, 4).extents == [] and not calc_snap_set_diff(new, 0, 4).end_exists
    # A clone whose snaps were all trimmed: the caller must take the whole object.
    assert calc_snap_set_diff(_ss(5, [(3, [], 10, []), (-2, [], 10, [])]), 4, CEPH_NOSNAP).whole_object


def test_object_map_packing_and_sparse_runs() -> None:
    states = bytearray([0, 1, 2, 3, 3, 1, 0])
    packed = object_map.pack_states(states)
    assert packed == bytes([0b00011011, 0b11010000])  # object i at shift 6 - 2*(i % 4), as cls packs it
    assert object_map.unpack_states(len(states), packed) == states
    buf = bytearray(5 * 4096)
    buf[4096 + 7] = 1
    buf[3 * 4096] = 2
    buf[4 * 4096 + 4095] = 3
    assert rbd_copy.nonzero_runs(memoryview(buf)) == [(4096, 4096), (3 * 4096, 2 * 4096)]


# -- against a cluster ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ioctx(cluster: TestCluster) -> Iterator[rados.Ioctx]:
    r = rados.Rados(conffile=cluster.conf_path)
    r.connect()
    ret, _, outs = r.mon_command(json.dumps({"prefix": "osd pool create", "pool": POOL, "pg_num": 8}), b"")
    assert ret == 0, outs
    io = r.open_ioctx(POOL)
    try:
        yield io
    finally:
        io.close()
        r.delete_pool(POOL)
        r.shutdown()


class OpCounter:
    """Counts the op vectors the client sends to objects whose name starts with a prefix."""

    def __init__(self, ioctx: rados.Ioctx, monkeypatch: pytest.MonkeyPatch) -> None:
        client = ioctx.rados._client
        real = client.operate
        self.prefix = ""
        self.ops: list[list[str]] = []

        async def counting(pool_id: int, oid: str, builder: Any, *args: Any, **kwargs: Any) -> Any:
            if self.prefix and oid.startswith(self.prefix):
                self.ops.append([op["op"] for op in builder.ops])
            return await real(pool_id, oid, builder, *args, **kwargs)

        monkeypatch.setattr(client, "operate", counting)


def test_object_map_spares_round_trips(ioctx: rados.Ioctx, monkeypatch: pytest.MonkeyPatch) -> None:
    rbd.RBD().create(ioctx, "om", 16 * M)
    counter = OpCounter(ioctx, monkeypatch)
    with rbd.Image(ioctx, "om") as img:
        counter.prefix = img.block_name_prefix()
        img.write(b"x" * 100, 5 * M)  # object 1
        img.write(b"y" * 100, 5 * M + 200)  # object 1 again: already EXISTS in the map
        img.create_snap("s")
        assert counter.ops == [["write"], ["write"]]
        counter.ops.clear()
        assert img.read(0, 16 * M)[5 * M:5 * M + 300] == b"x" * 100 + bytes(100) + b"y" * 100
        assert img.is_exclusive_lock_owner()  # taken by the first write
        assert counter.ops == [["read"]]  # the lock owner trusts HEAD's map: absent objects cost nothing
    with rbd.Image(ioctx, "om", snapshot="s") as snap:
        counter.ops.clear()
        assert snap.read(0, 16 * M).count(0) == 16 * M - 200
        assert counter.ops == [["read"]]  # the snapshot's map: only object 1 may exist
        counter.ops.clear()
        changed: list[Any] = []
        snap.diff_iterate(0, 16 * M, None, lambda *a: changed.append(a), whole_object=True)
        assert changed == [(4 * M, 4 * M, True)] and counter.ops == []  # fast-diff: no data object touched
    with rbd.Image(ioctx, "om") as img:
        img.write(b"z", 0)
        usage = rbd_copy_usage(img)
        assert usage == [("s", 16 * M, 4 * M), (None, 16 * M, 4 * M)]
        img.discard(4 * M, 4 * M)  # object 1 removed: NONEXISTENT again
        assert rbd_copy_usage(img)[-1] == (None, 16 * M, 4 * M)  # object 0 written, object 1 removed
        img.remove_snap("s")
    rbd.RBD().remove(ioctx, "om")


def rbd_copy_usage(img: rbd.Image) -> list[tuple[str | None, int, int]]:
    """`rbd du` through the core (the CLI's du uses the same function)."""
    usage = img._loop.run(rbd_copy.disk_usage(img._ictx))
    return [(u.name, u.provisioned, u.used) for u in usage]


def test_grandchild_reads_through_two_parents(ioctx: rados.Ioctx) -> None:
    r = rbd.RBD()
    r.create(ioctx, "g0", 8 * M, order=20)
    with rbd.Image(ioctx, "g0") as img:
        img.write(b"0" * 10, 0)
        img.write(b"0" * 10, 3 * M)
        img.create_snap("s")
    r.clone(ioctx, "g0", "s", ioctx, "g1", clone_format=2)
    with rbd.Image(ioctx, "g1") as img:
        img.write(b"1" * 5, 3 * M)  # copy-up from g0, then the write
        img.resize(6 * M)
        img.create_snap("s")
    r.clone(ioctx, "g1", "s", ioctx, "g2", clone_format=2, order=21)
    with rbd.Image(ioctx, "g2") as img:
        assert img.read(0, 12) == b"0" * 10 + bytes(2)
        assert img.read(3 * M, 12) == b"1" * 5 + b"0" * 5 + bytes(2)
        assert img.size() == 6 * M and img.overlap() == 6 * M
        full: list[Any] = []
        img.diff_iterate(0, img.size(), None, lambda *a: full.append(a))
        assert full == [(0, 10, True), (3 * M, 10, True)]  # the parents' data, from their diffs
        img.flatten()
        assert img.read(3 * M, 12) == b"1" * 5 + b"0" * 5 + bytes(2)
    r.remove(ioctx, "g2")
    for name in ("g1", "g0"):
        with rbd.Image(ioctx, name) as img:
            img.remove_snap("s")
        r.remove(ioctx, name)


def test_striped_copyup_and_rollback(ioctx: rados.Ioctx) -> None:
    r = rbd.RBD()
    r.create(ioctx, "sp", 4 * M, order=20, stripe_unit=64 << 10, stripe_count=4)
    pattern = bytes(range(256)) * 4096  # 1 MiB
    with rbd.Image(ioctx, "sp") as img:
        img.write(pattern * 3, 0)
        img.create_snap("s")
    r.clone(ioctx, "sp", "s", ioctx, "sp-c", clone_format=2)
    with rbd.Image(ioctx, "sp-c") as c:
        assert c.stripe_unit() == 64 << 10 and c.stripe_count() == 4  # the parent's layout
        c.write(b"!" * 10, 70000)  # object 1 (stripe 1): copy-up of its four stripes units in the parent
        expect = bytearray(pattern * 3 + bytes(M))
        expect[70000:70010] = b"!" * 10
        assert c.read(0, 4 * M) == bytes(expect)
        c.create_snap("cs")
        c.write(b"?" * (2 * M), M)
        c.rollback_to_snap("cs")
        assert c.read(0, 4 * M) == bytes(expect)
        changed: list[Any] = []
        c.diff_iterate(0, 4 * M, "cs", lambda *a: changed.append(a), whole_object=True)
        assert changed == []  # the object map after rollback: nothing changed since cs
        c.remove_snap("cs")
    r.remove(ioctx, "sp-c")
    with rbd.Image(ioctx, "sp") as img:
        img.remove_snap("s")
    r.remove(ioctx, "sp")

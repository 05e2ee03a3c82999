"""RADOS self-managed snapshots end to end (decision record 0005): snap ids from the
monitor, clone-on-write in the OSD, reads at a snap, rollback, list_snaps overlaps,
trimming after removal, and clones surviving recovery."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

import rados
from shoal.testing.cluster import TestCluster
from shoal.wire.osd_op import OpBuilder
from tests.pool_helpers import admin_with_pool, namespaced_ioctx

POOL = "rados_snaps"
HEAD = rados.LIBRADOS_SNAP_HEAD


@pytest.fixture(scope="module")
def cluster_rados(cluster: TestCluster) -> Iterator[rados.Rados]:
    with admin_with_pool(cluster, POOL) as r:
        yield r


@pytest.fixture
def ioctx(cluster_rados: rados.Rados, request: pytest.FixtureRequest) -> Iterator[rados.Ioctx]:
    with namespaced_ioctx(cluster_rados, POOL, request) as io:
        yield io


def list_snaps(ioctx: rados.Ioctx, oid: str) -> dict[str, Any]:
    b = OpBuilder()
    b.add("list_snaps")
    r = ioctx.rados
    reply = r._loop.run(r._client.operate(ioctx.pool_id, oid, b, ioctx.nspace))
    if reply.result < 0:
        raise rados.make_ex(reply.result, f"list_snaps {oid}")
    return reply.outs[0]


def read_at(ioctx: rados.Ioctx, oid: str, snap: int, length: int = 1 << 20) -> bytes:
    ioctx.set_read(snap)
    try:
        return ioctx.read(oid, length)
    finally:
        ioctx.set_read(HEAD)


def test_snap_ids_come_from_the_pool_in_order(ioctx: rados.Ioctx) -> None:
    a = ioctx.create_self_managed_snap()
    b = ioctx.create_self_managed_snap()
    assert b == a + 1
    ioctx.remove_self_managed_snap(a)
    ioctx.remove_self_managed_snap(a)  # removing twice is not an error (as in Ceph)
    with pytest.raises(rados.ObjectNotFound):
        ioctx.remove_self_managed_snap(b + 1000)
    ret, out, _ = ioctx.rados.mon_command(json.dumps({"prefix": "osd pool ls", "detail": "detail",
                                                      "format": "json"}), b"")
    pool = next(p for p in json.loads(out) if p["pool_name"] == POOL)
    assert "selfmanaged_snaps" in pool["flags_names"]


def test_clone_on_write_and_reads_at_snaps(ioctx: rados.Ioctx) -> None:
    ioctx.write_full("obj", b"A" * 8192)
    s1 = ioctx.create_self_managed_snap()
    ioctx.set_self_managed_snap_write([s1])
    ioctx.write("obj", b"B" * 100, 10)
    s2 = ioctx.create_self_managed_snap()
    s3 = ioctx.create_self_managed_snap()  # two snaps, no write between: one clone serves both
    ioctx.set_self_managed_snap_write([s3, s2, s1])
    ioctx.write("obj", b"C" * 10, 8190)
    head = ioctx.read("obj", 1 << 20)
    assert len(head) == 8200 and head[8190:] == b"C" * 10
    assert read_at(ioctx, "obj", s1) == b"A" * 8192
    at_s2 = b"A" * 10 + b"B" * 100 + b"A" * (8192 - 110)
    assert read_at(ioctx, "obj", s2) == at_s2
    assert read_at(ioctx, "obj", s3) == at_s2
    listed = list_snaps(ioctx, "obj")
    clones = listed["clones"]
    assert [c["id"] for c in clones] == [s1, s3, rados.LIBRADOS_SNAP_HEAD - (1 << 64)]
    assert clones[0]["snaps"] == [s1] and clones[1]["snaps"] == [s2, s3]
    assert clones[0]["overlap"] == [[0, 10], [110, 8082]]  # bytes unchanged in the next version
    assert clones[1]["overlap"] == [[0, 8190]] and clones[1]["size"] == 8192
    assert clones[2]["size"] == 8200


def test_object_created_after_snap_is_absent_there(ioctx: rados.Ioctx) -> None:
    s1 = ioctx.create_self_managed_snap()
    ioctx.set_self_managed_snap_write([s1])
    ioctx.write_full("late", b"x")
    ioctx.set_read(s1)
    with pytest.raises(rados.ObjectNotFound):
        ioctx.read("late")
    with pytest.raises(rados.ObjectNotFound):  # writes through a snap-reading ioctx: EROFS
        ioctx.stat("late")
    ioctx.set_read(HEAD)
    assert ioctx.read("late") == b"x"


def test_write_through_snap_context_reader_is_read_only(ioctx: rados.Ioctx) -> None:
    ioctx.write_full("ro", b"1")
    s1 = ioctx.create_self_managed_snap()
    ioctx.set_read(s1)
    with pytest.raises(rados.OSError) as err:
        ioctx.write_full("ro", b"2")
    assert err.value.errno == 30
    ioctx.set_read(HEAD)
    assert ioctx.read("ro") == b"1"


def test_delete_keeps_clones_and_listing_hides_them(ioctx: rados.Ioctx) -> None:
    ioctx.write_full("gone", b"old")
    s1 = ioctx.create_self_managed_snap()
    ioctx.set_self_managed_snap_write([s1])
    ioctx.remove_object("gone")
    with pytest.raises(rados.ObjectNotFound):
        ioctx.read("gone")
    assert read_at(ioctx, "gone", s1) == b"old"
    assert "gone" not in {o.key for o in ioctx.list_objects()}
    assert [c["id"] for c in list_snaps(ioctx, "gone")["clones"]] == [s1]


def test_stale_writer_makes_no_extra_clone(ioctx: rados.Ioctx) -> None:
    ioctx.write_full("stale", b"v1")
    s1 = ioctx.create_self_managed_snap()
    ioctx.set_self_managed_snap_write([s1])
    ioctx.write_full("stale", b"v2")
    ioctx.set_self_managed_snap_write([])  # a writer that never heard of s1
    ioctx.write_full("stale", b"v3")
    assert [c["id"] for c in list_snaps(ioctx, "stale")["clones"]][:-1] == [s1]
    assert read_at(ioctx, "stale", s1) == b"v1"


def test_rollback(ioctx: rados.Ioctx) -> None:
    ioctx.write_full("rb", b"first")
    ioctx.set_xattr("rb", "k", b"v1")
    s1 = ioctx.create_self_managed_snap()
    ioctx.set_self_managed_snap_write([s1])
    ioctx.write_full("rb", b"second version")
    ioctx.set_xattr("rb", "k", b"v2")
    ioctx.rollback_self_managed_snap("rb", s1)
    assert ioctx.read("rb") == b"first"
    assert ioctx.get_xattr("rb", "k") == b"v1"
    assert read_at(ioctx, "rb", s1) == b"first"
    # rolling back to a snap the object did not exist at removes the head
    s2 = ioctx.create_self_managed_snap()
    ioctx.set_self_managed_snap_write([s2, s1])
    ioctx.write_full("new-after-s2", b"n")
    ioctx.rollback_self_managed_snap("new-after-s2", s2)
    with pytest.raises(rados.ObjectNotFound):
        ioctx.read("new-after-s2")


def _wait(cond: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_removed_snap_is_trimmed(ioctx: rados.Ioctx) -> None:
    ioctx.write_full("trim", b"a" * 100)
    s1 = ioctx.create_self_managed_snap()
    ioctx.set_self_managed_snap_write([s1])
    ioctx.write_full("trim", b"b" * 100)
    s2 = ioctx.create_self_managed_snap()
    ioctx.set_self_managed_snap_write([s2, s1])
    ioctx.write_full("trim", b"c" * 100)
    assert [c["id"] for c in list_snaps(ioctx, "trim")["clones"]][:-1] == [s1, s2]
    ioctx.remove_self_managed_snap(s1)
    _wait(lambda: [c["id"] for c in list_snaps(ioctx, "trim")["clones"]][:-1] == [s2], "clone s1 trimmed")
    assert read_at(ioctx, "trim", s2) == b"b" * 100
    # a deleted head whose last clone goes leaves nothing behind
    ioctx.set_self_managed_snap_write([s2])
    ioctx.remove_object("trim")
    ioctx.remove_self_managed_snap(s2)

    def gone() -> bool:
        try:
            list_snaps(ioctx, "trim")
        except rados.ObjectNotFound:
            return True
        return False

    _wait(gone, "every version of 'trim' trimmed")


def _up_set(c: TestCluster, pool: str, oid: str) -> list[int]:
    out = c.cli("ceph", "osd", "map", pool, oid, "--format", "json", check=True).stdout
    return [int(o) for o in json.loads(out)["up"]]


def test_clones_survive_recovery(fresh_cluster: TestCluster) -> None:
    c = fresh_cluster
    c.cli("ceph", "osd", "pool", "create", "snaprec", "8", check=True)
    with rados.Rados(conffile=c.conf_path) as r, r.open_ioctx("snaprec") as io:
        io.write_full("o", b"v1" * 1000)
        s1 = io.create_self_managed_snap()
        io.set_self_managed_snap_write([s1])
        victim = _up_set(c, "snaprec", "o")[1]
        c.kill(f"osd.{victim}")
        io.write_full("o", b"v2")  # the clone is made while the victim is down
        c.restart(f"osd.{victim}")
        c.wait_healthy(c.osds, 60)
        # The two that saw the write go; the recovered one must serve head and clone.
        for other in [o for o in _up_set(c, "snaprec", "o") if o != victim]:
            c.kill(f"osd.{other}")
        c.cli("ceph", "osd", "pool", "set", "snaprec", "min_size", "1", check=True)
        io.set_read(s1)
        assert io.read("o", 1 << 20) == b"v1" * 1000
        io.set_read(HEAD)
        assert io.read("o") == b"v2"

"""python-rados API against a real cluster (1 monitor + 3 OSD processes).

Pools of this module are named `rados_api_*` and created with 8 PGs. Expected messages are
those of real python3-rados 16.2.15 (fixtures/python-errors.json) where recorded.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
from collections.abc import Iterator

import pytest

import rados
from shoal.client.loop_thread import LoopThread
from shoal.testing.cluster import TestCluster
from tests.pool_helpers import admin_with_pool, namespaced_ioctx

POOL = "rados_api_main"


@pytest.fixture(scope="module")
def cluster_rados(cluster: TestCluster) -> Iterator[rados.Rados]:
    with admin_with_pool(cluster, POOL) as r:
        yield r


@pytest.fixture
def ioctx(cluster_rados: rados.Rados, request: pytest.FixtureRequest) -> Iterator[rados.Ioctx]:
    """An Ioctx on the module's pool, in a namespace of its own so tests never see each other's objects."""
    with namespaced_ioctx(cluster_rados, POOL, request) as io:
        yield io


# -- cluster handle -------------------------------------------------------------------------------------

def test_connected_handle(cluster_rados: rados.Rados) -> None:
    r = cluster_rados
    assert r.state == "connected"
    assert re.fullmatch(r"[0-9a-f-]{36}", r.get_fsid())
    assert isinstance(r.get_instance_id(), int)
    assert r.wait_for_latest_osdmap() == 0
    assert r.conf_get("rbd_default_features") == "61"
    with pytest.raises(rados.RadosStateError):
        r.connect()
    stats = r.get_cluster_stats()
    assert set(stats) == {"kb", "kb_used", "kb_avail", "num_objects"}
    assert stats["kb"] > 0 and stats["kb_used"] + stats["kb_avail"] == stats["kb"]


def test_context_manager_and_conffile_search(cluster: TestCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CEPH_CONF", cluster.conf_path)
    with rados.Rados(conffile="", rados_id="admin") as r:
        assert r.state == "connected"
        with r.open_ioctx(POOL) as io:
            assert io.name == POOL
        assert io.state == "closed"
        io.close()  # closing again is fine
    assert r.state == "shutdown"


def test_pool_calls(cluster_rados: rados.Rados) -> None:
    r = cluster_rados
    assert POOL in r.list_pools()
    assert r.pool_exists(POOL) and not r.pool_exists("rados_api_nosuch")
    pool_id = r.pool_lookup(POOL)
    assert isinstance(pool_id, int)
    assert r.pool_lookup("rados_api_nosuch") is None
    assert r.pool_reverse_lookup(pool_id) == POOL
    assert r.pool_reverse_lookup(10_000) is None
    assert r.get_pool_base_tier(pool_id) == pool_id
    io = r.open_ioctx2(pool_id)
    assert io.name == str(pool_id) and io.get_pool_id() == pool_id and io.get_pool_name() == POOL
    with pytest.raises(rados.ObjectNotFound) as info:
        r.open_ioctx("nosuchpool")
    assert str(info.value) == "[errno 2] RADOS object not found (error opening pool 'nosuchpool')"
    with pytest.raises(TypeError):
        r.open_ioctx(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        r.create_pool(0xF00)  # type: ignore[arg-type]


def test_create_and_delete_pool(cluster_rados: rados.Rados) -> None:
    r = cluster_rados
    name = "rados_api_created"
    r.create_pool(name)
    try:
        assert r.pool_exists(name)
        with pytest.raises(rados.ObjectExists) as info:
            r.create_pool(name)
        assert str(info.value) == f"[errno 17] RADOS object exists (error creating pool '{name}')"
        with r.open_ioctx(name) as io:
            io.write_full("x", b"y")
            assert io.read("x") == b"y"
    finally:
        r.delete_pool(name)
    assert not r.pool_exists(name)
    with pytest.raises(rados.ObjectNotFound) as info:
        r.delete_pool("nosuchpool")
    assert str(info.value) == "[errno 2] RADOS object not found (error deleting pool 'nosuchpool')"


def test_mon_command_never_raises_for_command_errors(cluster_rados: rados.Rados) -> None:
    r = cluster_rados
    ret, outbuf, outs = r.mon_command(json.dumps({"prefix": "df", "format": "json"}), b"")
    assert ret == 0 and isinstance(outbuf, bytes) and isinstance(outs, str)
    assert any(p["name"] == POOL for p in json.loads(outbuf)["pools"])
    ret, outbuf, outs = r.mon_command(json.dumps({"prefix": "no such command"}), b"")
    assert (ret, outbuf) == (-22, b"") and isinstance(outs, str)
    assert r.mon_command("not json", b"") == (-22, b"", "unparseable JSON not json")
    ret, outbuf, outs = r.mon_command(json.dumps({"prefix": "osd pool get", "pool": "nosuchpool", "var": "size"}),
                                      b"")
    assert ret == -2 and outbuf == b""
    ret, outbuf, _ = r.mon_command(['{"prefix": "osd pool get", ', f'"pool": "{POOL}", "var": "size", '
                                    '"format": "json"}'], b"", timeout=30, target="a")
    assert ret == 0 and json.loads(outbuf)["size"] == 3


# -- object data -----------------------------------------------------------------------------------------

# Single writes stay below 16 MiB: the OSD replicates a write's data inside the frame's meta,
# which is capped at 16 MiB (see the report), so a 16 MiB object is written in two halves.
@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 65537, (1 << 20) + 3, 4 << 20, (16 << 20) - (64 << 10),
                                  16 << 20])
def test_objects_are_byte_exact(ioctx: rados.Ioctx, size: int) -> None:
    data = random.Random(size).randbytes(size)
    if size < 16 << 20:
        assert ioctx.write_full(f"obj{size}", data) == 0
    else:
        half = size // 2
        assert ioctx.write_full(f"obj{size}", data[:half]) == 0
        assert ioctx.write(f"obj{size}", data[half:], half) == 0
    assert ioctx.read(f"obj{size}", size + 10) == data
    assert ioctx.stat(f"obj{size}")[0] == size
    if size > 10:
        assert ioctx.read(f"obj{size}", 7, size - 9) == data[-9:-2]
        assert ioctx.read(f"obj{size}", 100, size) == b""


def test_data_calls(ioctx: rados.Ioctx) -> None:
    assert ioctx.write("abc", b"abc") == 0
    assert ioctx.read("abc") == b"abc"
    ioctx.write("abc", b"XY", 1)
    assert ioctx.read("abc") == b"aXY"
    ioctx.write("abc", b"!", 5)
    assert ioctx.read("abc") == b"aXY\0\0!"
    assert ioctx.append("abc", b"++") == 0
    assert ioctx.trunc("abc", 2) == 0
    assert ioctx.read("abc") == b"aX"
    ioctx.writesame("same", b"rzx", 9)
    assert ioctx.read("same") == b"rzxrzxrzx"
    assert ioctx.cmpext("same", b"rzxr", 0) == 0
    assert ioctx.cmpext("same", b"rzxX", 0) == -rados.MAX_ERRNO - 3
    size, mtime = ioctx.stat("abc")
    assert size == 2 and isinstance(mtime, time.struct_time)
    assert abs(time.mktime(mtime) - time.time()) < 60
    with pytest.raises(TypeError) as info:
        ioctx.write("abc", "str not bytes")  # type: ignore[arg-type]
    assert str(info.value) == "Argument 'data' has incorrect type (expected bytes, got str)"
    assert ioctx.remove_object("abc") is True
    with pytest.raises(rados.ObjectNotFound) as info2:
        ioctx.stat("abc")
    assert str(info2.value) == "[errno 2] RADOS object not found (Failed to stat 'abc')"
    with pytest.raises(rados.ObjectNotFound) as info2:
        ioctx.read("abc")
    assert str(info2.value) == f"[errno 2] RADOS object not found (Ioctx.read({POOL}): failed to read abc)"
    with pytest.raises(rados.ObjectNotFound) as info2:
        ioctx.remove_object("abc")
    assert str(info2.value) == "[errno 2] RADOS object not found (Failed to remove 'abc')"


def test_xattrs(ioctx: rados.Ioctx) -> None:
    xattrs = {"a": b"1", "b": b"2", "d": b"a\0b", "e": b"\0", "f": b""}
    ioctx.write("x", b"")
    for key, value in xattrs.items():
        assert ioctx.set_xattr("x", key, value) is True
        assert ioctx.get_xattr("x", key) == value
    assert dict(ioctx.get_xattrs("x")) == xattrs
    assert ioctx.rm_xattr("x", "a") is True
    with pytest.raises(rados.NoData) as info:
        ioctx.get_xattr("x", "a")
    assert str(info.value) == "[errno 61] RADOS no data (Failed to get xattr 'a')"
    with pytest.raises(rados.ObjectNotFound) as info2:
        ioctx.get_xattr("nosuchobj", "a")
    assert str(info2.value) == "[errno 2] RADOS object not found (Failed to get xattr 'a')"


def test_namespaces_and_listing(cluster_rados: rados.Rados) -> None:
    io = cluster_rados.open_ioctx(POOL)
    io.set_namespace("rados_api_ns_a")
    assert io.get_namespace() == "rados_api_ns_a"
    io.write_full("same", b"in a")
    io.write_full("only_a", b"x")
    io.set_namespace("rados_api_ns_b")
    io.write_full("same", b"in b")
    assert io.read("same") == b"in b"
    assert sorted(o.key for o in io.list_objects()) == ["same"]
    io.set_namespace("rados_api_ns_a")
    assert io.read("same") == b"in a"
    listed = sorted((o.nspace, o.key) for o in io.list_objects())
    assert listed == [("rados_api_ns_a", "only_a"), ("rados_api_ns_a", "same")]
    io.set_namespace(rados.LIBRADOS_ALL_NSPACES)
    everything = {(o.nspace, o.key) for o in io.list_objects()}
    assert {("rados_api_ns_a", "same"), ("rados_api_ns_b", "same"), ("rados_api_ns_a", "only_a")} <= everything
    obj = next(o for o in io.list_objects() if (o.nspace, o.key) == ("rados_api_ns_b", "same"))
    assert obj.locator_key == "" and obj.read() == b"in b"
    io.set_namespace(None)  # type: ignore[arg-type]
    assert io.get_namespace() == ""
    for ns, key in [("rados_api_ns_a", "same"), ("rados_api_ns_a", "only_a"), ("rados_api_ns_b", "same")]:
        rados.Object(io, key, nspace=ns).remove()
    io.close()


def test_object_file_interface(ioctx: rados.Ioctx) -> None:
    ioctx.write("foo", b"bar")
    obj = rados.Object(ioctx, "foo", nspace=ioctx.get_namespace())
    assert obj.read(3) == b"bar" and obj.read(100) == b""
    obj.write(b"baz")
    obj.seek(0)
    assert obj.read() == b"barbaz"
    obj.seek(1)
    assert obj.read(3) == b"arb"
    assert obj.stat()[0] == 6
    obj.set_xattr("k", b"v")
    assert obj.get_xattr("k") == b"v" and dict(obj.get_xattrs()) == {"k": b"v"}
    obj.remove()
    with pytest.raises(rados.ObjectStateError):
        obj.read()
    missing = rados.Object(ioctx, "nope", nspace=ioctx.get_namespace())
    with pytest.raises(rados.ObjectNotFound):
        missing.stat()
    with pytest.raises(rados.ObjectNotFound):
        missing.remove()


def test_execute(ioctx: rados.Ioctx) -> None:
    ioctx.write("foo", b"")
    assert ioctx.execute("foo", "hello", "say_hello", b"") == (13, b"Hello, world!")
    assert ioctx.execute("foo", "hello", "say_hello", b"nose") == (12, b"Hello, nose!")
    with pytest.raises(rados.OSError) as info:
        ioctx.execute("foo", "hello", "say_hello", b"", length=5)
    assert info.value.errno == 34  # ERANGE: the output does not fit
    with pytest.raises(rados.OSError) as info:
        ioctx.execute("foo", "nosuchclass", "m", b"")
    assert info.value.errno == 95


# -- omap and compound operations ------------------------------------------------------------------------

def _omap(io: rados.Ioctx, oid: str, start: str = "", prefix: str = "", n: int = 10_000) -> list[tuple[str, bytes]]:
    with rados.ReadOpCtx() as op:
        it, ret = io.get_omap_vals(op, start, prefix, n)
        assert ret == 0
        io.operate_read_op(op, oid)
        return list(it)  # type: ignore[arg-type]


def test_omap_paging(ioctx: rados.Ioctx) -> None:
    keys = tuple(f"k{i:03d}" for i in range(100)) + ("other",)
    values = tuple(f"v{i}".encode() for i in range(101))
    with rados.WriteOpCtx() as op:
        ioctx.set_omap(op, keys, values)
        op.set_flags(rados.LIBRADOS_OPERATION_SKIPRWLOCKS)
        ioctx.operate_write_op(op, "hw")
    assert _omap(ioctx, "hw") == sorted(zip(keys, values, strict=True))
    page, collected, start = None, [], ""
    while page != []:
        page = _omap(ioctx, "hw", start, "k", 30)
        assert len(page) <= 30
        collected += page
        start = page[-1][0] if page else start
    assert [k for k, _ in collected] == list(keys[:100])
    assert _omap(ioctx, "hw", "k097", "", 10) == [("k098", b"v98"), ("k099", b"v99"), ("other", b"v100")]
    assert _omap(ioctx, "hw", "", "oth") == [("other", b"v100")]
    with rados.ReadOpCtx() as op:
        it, _ = ioctx.get_omap_keys(op, "k095", 3)
        ioctx.operate_read_op(op, "hw")
        assert list(it) == [("k096", None), ("k097", None), ("k098", None)]
    with rados.ReadOpCtx() as op:
        it, _ = ioctx.get_omap_vals_by_keys(op, ("k050", "missing", "k001"))
        ioctx.operate_read_op(op, "hw")
        assert list(it) == [("k001", b"v1"), ("k050", b"v50")]
    with rados.ReadOpCtx() as op:
        ioctx.get_omap_keys(op, "", 2)
        with pytest.raises(rados.ObjectNotFound):
            ioctx.operate_read_op(op, "no_such")


def test_omap_removal(ioctx: rados.Ioctx) -> None:
    with rados.WriteOpCtx() as op:
        ioctx.set_omap(op, ("1", "2", "3", "4"), (b"a", b"bb", "ccc", b"dddd"))
        ioctx.operate_write_op(op, "o")
    with rados.WriteOpCtx() as op:
        ioctx.remove_omap_keys(op, ("2",))
        ioctx.operate_write_op(op, "o")
    assert [k for k, _ in _omap(ioctx, "o")] == ["1", "3", "4"]
    with rados.WriteOpCtx() as op:
        ioctx.set_omap(op, ("2",), (b"again",))
        ioctx.remove_omap_range2(op, "1", "4")  # also removes "2", set earlier in this same op
        ioctx.operate_write_op(op, "o")
    assert _omap(ioctx, "o") == [("4", b"dddd")]
    with rados.WriteOpCtx() as op:
        ioctx.clear_omap(op)
        ioctx.operate_write_op(op, "o")
    assert _omap(ioctx, "o") == []


def test_write_op_sequence(ioctx: rados.Ioctx) -> None:
    with rados.WriteOpCtx() as op:
        op.new(0)
        ioctx.operate_write_op(op, "write_ops")
        assert ioctx.read("write_ops") == b""
        op.write_full(b"1")
        op.append(b"2")
        ioctx.operate_write_op(op, "write_ops")
        assert ioctx.read("write_ops") == b"12"
        op.write_full(b"12345")
        op.write(b"x", 2)
        ioctx.operate_write_op(op, "write_ops")
        assert ioctx.read("write_ops") == b"12x45"
        op.write_full(b"12345")
        op.zero(2, 2)
        ioctx.operate_write_op(op, "write_ops")
        assert ioctx.read("write_ops") == b"12\0\x005"
        op.write_full(b"12345")
        op.truncate(2)
        ioctx.operate_write_op(op, "write_ops")
        assert ioctx.read("write_ops") == b"12"
        op.remove()
        ioctx.operate_write_op(op, "write_ops")
        with pytest.raises(rados.ObjectNotFound):
            ioctx.read("write_ops")
    with rados.WriteOpCtx() as op:
        op.execute("hello", "record_hello", b"ebs")
        ioctx.operate_write_op(op, "object")
    assert ioctx.read("object") == b"Hello, ebs!"
    op2 = ioctx.create_write_op()
    ioctx.operate_write_op(op2, "empty-op-does-nothing")
    ioctx.release_write_op(op2)
    with pytest.raises(rados.ObjectNotFound):
        ioctx.stat("empty-op-does-nothing")


def test_failed_compound_write_changes_nothing(ioctx: rados.Ioctx) -> None:
    ioctx.write_full("obj1", b"original")
    ioctx.set_xattr("obj1", "x", b"old")
    with rados.WriteOpCtx() as op:
        op.write_full(b"replaced")
        ioctx.set_omap(op, ("k",), (b"v",))
        op.set_xattr("x", b"new")
        op.new(rados.LIBRADOS_CREATE_EXCLUSIVE)  # fails: the object exists
        with pytest.raises(rados.ObjectExists) as info:
            ioctx.operate_write_op(op, "obj1")
    assert str(info.value) == "[errno 17] RADOS object exists (Failed to operate write op for oid obj1)"
    assert ioctx.read("obj1") == b"original"
    assert ioctx.get_xattr("obj1", "x") == b"old"
    assert _omap(ioctx, "obj1") == []
    # With FAILOK the failing op is skipped and the rest applies.
    with rados.WriteOpCtx() as op:
        op.rm_xattr("never-set")
        op.set_flags(rados.LIBRADOS_OP_FLAG_FAILOK)
        op.write_full(b"applied")
        ioctx.operate_write_op(op, "obj1")
    assert ioctx.read("obj1") == b"applied"
    # An op the OSD cannot do fails the whole operation before anything is sent.
    with rados.WriteOpCtx() as op:
        op.write_full(b"never")
        op.cmpext(b"app", 0)
        with pytest.raises(rados.OSError):
            ioctx.operate_write_op(op, "obj1")
    assert ioctx.read("obj1") == b"applied"


# -- asynchronous I/O ------------------------------------------------------------------------------------------

def test_aio_callbacks(ioctx: rados.Ioctx) -> None:
    lock = threading.Condition()
    calls: list[tuple[str, object]] = []
    loop_thread = LoopThread.shared().thread

    def cb(comp: rados.Completion, *extra: object) -> None:
        assert threading.current_thread() is not loop_thread  # callbacks run on the finisher
        with lock:
            calls.append(("cb", extra))
            lock.notify_all()

    comp = ioctx.aio_write("foo", b"bar", 0, cb, cb)
    comp.wait_for_complete_and_cb()
    assert comp.is_complete() and comp.is_safe() and comp.get_return_value() == 0
    assert len(calls) == 2
    comp2 = ioctx.aio_append("foo", b"baz", cb)
    comp2.wait_for_complete()
    assert ioctx.read("foo") == b"barbaz"
    got: list[object] = []

    def on_read(comp: rados.Completion, data: bytes | None) -> None:
        got.append(data)
        # A callback may make blocking calls: it does not run on the client's loop thread.
        got.append(ioctx.read("foo", 3))

    rc = ioctx.aio_read("foo", 100, 0, on_read)
    rc.wait_for_complete_and_cb()
    assert rc.get_return_value() == 6 and got == [b"barbaz", b"bar"]
    got.clear()
    rc = ioctx.aio_read("nope", 3, 0, lambda c, d: got.append(d))
    rc.wait_for_complete_and_cb()
    assert got == [None] and rc.get_return_value() == -2
    stats: list[object] = []
    sc = ioctx.aio_stat("foo", lambda c, size, mtime: stats.append((size, type(mtime))))
    sc.wait_for_complete_and_cb()
    assert stats == [(6, time.struct_time)]
    ec = ioctx.aio_execute("foo", "hello", "say_hello", b"", 32, lambda c, d: got.append(d))
    ec.wait_for_complete_and_cb()
    assert ec.get_return_value() == 13 and got[-1] == b"Hello, world!"
    wc = ioctx.aio_write_full("foo", b"x")
    wc.wait_for_complete()
    assert ioctx.read("foo") == b"x"
    with rados.WriteOpCtx() as op:
        ioctx.set_omap(op, ("1", "2"), (b"a", b"b"))
        c = ioctx.operate_aio_write_op(op, "foo", cb, cb)
        c.wait_for_complete_and_cb()
        assert c.get_return_value() == 0
    with rados.ReadOpCtx() as op:
        it, _ = ioctx.get_omap_vals(op, "", "", 4)
        c = ioctx.aio_operate_read_op(op, "foo")
        c.wait_for_complete()
        assert list(it) == [("1", b"a"), ("2", b"b")]
    dc = ioctx.aio_remove("foo")
    dc.wait_for_complete()
    assert dc.get_return_value() == 0
    dc = ioctx.aio_remove("foo")
    dc.wait_for_complete()
    assert dc.get_return_value() == -2


def test_aio_from_many_threads(ioctx: rados.Ioctx) -> None:
    n_threads, per_thread = 8, 25
    done = threading.Semaphore(0)
    counts = {"cb": 0}
    lock = threading.Lock()

    def cb(comp: rados.Completion) -> None:
        with lock:
            counts["cb"] += 1
        done.release()

    def worker(t: int) -> None:
        for i in range(per_thread):
            ioctx.aio_write_full(f"t{t}-{i}", f"payload {t} {i}".encode() * 10, oncomplete=cb)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    ioctx.aio_flush()
    for _ in range(n_threads * per_thread):
        assert done.acquire(timeout=60)
    assert counts["cb"] == n_threads * per_thread
    for t in range(n_threads):
        for i in range(0, per_thread, 7):
            assert ioctx.read(f"t{t}-{i}", 1000) == f"payload {t} {i}".encode() * 10


def test_concurrent_writers_from_threads(ioctx: rados.Ioctx) -> None:
    chunk = 4096
    errors: list[BaseException] = []

    def writer(t: int) -> None:
        try:
            data = bytes([t]) * chunk
            for i in range(4):
                ioctx.write_full(f"own-{t}", hashlib.sha256(f"{t}/{i}".encode()).digest() * 100)
            ioctx.write("shared", data, t * chunk)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert ioctx.read("shared", 16 * chunk) == b"".join(bytes([t]) * chunk for t in range(16))
    for t in range(16):
        assert ioctx.read(f"own-{t}", 10_000) == hashlib.sha256(f"{t}/3".encode()).digest() * 100


# -- pool applications, stats and states ------------------------------------------------------------------------

def test_applications_and_stats(ioctx: rados.Ioctx) -> None:
    assert ioctx.application_list() == []
    ioctx.application_enable("rbd")
    assert ioctx.application_list() == ["rbd"]
    with pytest.raises(rados.Error):
        ioctx.application_enable("rgw")  # a second application needs force
    ioctx.application_metadata_set("rbd", "key1", "val1")
    assert ioctx.application_metadata_get("rbd", "key1") == "val1"
    assert ioctx.application_metadata_list("rbd") == [("key1", "val1")]
    ioctx.application_metadata_remove("rbd", "key1")
    assert ioctx.application_metadata_list("rbd") == []
    stats = ioctx.get_stats()
    assert set(stats) == {"num_bytes", "num_kb", "num_objects", "num_object_clones", "num_object_copies",
                          "num_objects_missing_on_primary", "num_objects_unfound", "num_objects_degraded",
                          "num_rd", "num_rd_kb", "num_wr", "num_wr_kb"}
    assert ioctx.get_last_version() >= 0
    assert ioctx.alignment() is None


def test_closed_ioctx_and_shut_down_handle(cluster: TestCluster) -> None:
    r = rados.Rados(conffile=cluster.conf_path)
    r.connect()
    io = r.open_ioctx(POOL)
    io.close()
    with pytest.raises(rados.IoctxStateError, match="The pool is closed"):
        io.read("x")
    io2 = r.open_ioctx(POOL)
    r.shutdown()
    r.shutdown()
    with pytest.raises(rados.RadosStateError):
        io2.read("x")
    with pytest.raises(rados.RadosStateError):
        r.mon_command("{}", b"")


def test_unsupported_calls_fail_clearly(ioctx: rados.Ioctx) -> None:
    # Pool snapshots are not offered (pools hold self-managed snapshots, as RBD needs).
    with pytest.raises(rados.OSError) as info:
        ioctx.create_snap("poolsnap")
    assert info.value.errno == 95
    ioctx.set_self_managed_snap_write([])  # an empty snap context is fine
    with pytest.raises(rados.InvalidArgumentError):
        ioctx.set_self_managed_snap_write([3, 3])


EVENTLET_SCRIPT = """
import sys
import eventlet
eventlet.monkey_patch()
from eventlet import tpool
import rados

conf, pool = sys.argv[1], sys.argv[2]
r = rados.Rados(conffile=conf)            # made and connected on a green thread, as Nova does
r.connect()
io = r.open_ioctx(pool)
io.set_namespace("eventlet")
io.write_full("green", b"from a green thread")
tio = tpool.Proxy(io)                      # and used from eventlet's native tpool threads, as Cinder does

def job(i):
    tio.write_full("obj%d" % i, b"x" * i)
    return tio.read("obj%d" % i)

assert list(eventlet.GreenPool(8).imap(job, range(1, 25))) == [b"x" * i for i in range(1, 25)]
got = []
c = io.aio_read("green", 100, 0, lambda comp, data: got.append(data))
c.wait_for_complete_and_cb()
assert got == [b"from a green thread"], got
for o in list(io.list_objects()):
    io.remove_object(o.key)
r.shutdown()
print("ok")
"""


def test_works_under_eventlet(cluster: TestCluster, cluster_rados: rados.Rados) -> None:
    pytest.importorskip("eventlet")
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-W", "ignore", "-c", EVENTLET_SCRIPT, cluster.conf_path, POOL],
                          capture_output=True, timeout=60, env=cluster.env())
    assert (proc.returncode, proc.stdout) == (0, b"ok\n"), proc.stderr.decode()


def test_auth_failures_map_to_python_rados_errors(cluster: TestCluster) -> None:
    """As recorded from python3-rados 16.2.15 (fixtures/python-errors.json)."""
    with pytest.raises(rados.InvalidArgumentError) as info:
        rados.Rados(conffile=cluster.conf_path, rados_id="admin", conf={"key": "not-base64!"}).connect(timeout=20)
    assert str(info.value) == "[errno 22] RADOS invalid argument (error connecting to the cluster)"
    with pytest.raises(rados.ObjectNotFound) as info2:
        rados.Rados(conffile=cluster.conf_path, rados_id="nosuchuser").connect(timeout=20)
    assert str(info2.value) == "[errno 2] RADOS object not found (error connecting to the cluster)"


def test_wrong_key_is_permission_denied(cluster: TestCluster) -> None:
    other_key = "AQCprgRrhkyrMxAAfAzj5EJRkILSaeS44kiBgA=="  # well-formed, but not admin's key
    with pytest.raises(rados.PermissionDeniedError) as info:
        rados.Rados(conffile=cluster.conf_path, rados_id="admin", conf={"key": other_key}).connect(timeout=3)
    assert str(info.value) == "[errno 13] RADOS permission denied (error connecting to the cluster)"

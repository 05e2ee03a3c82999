"""Watch/notify end to end on a real cluster (python-rados API and the client core).

Semantics checked are librados': notify returns once every watcher acked (with their
reply data) or raises TimedOut naming none of them; a watcher whose client goes away is
no longer waited for; watches follow their object to a new primary; `r` on the pool is
enough to watch and notify, and a client without it is refused (EPERM).
"""

from __future__ import annotations

import errno
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import rados
from shoal.testing.cluster import TestCluster
from tests.conftest import FIXTURES
from tests.pool_helpers import admin_with_pool

pytestmark = pytest.mark.integration

POOL = "watch_notify"


def wait_for(cond: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


def connect(conf_path: str, **kwargs: Any) -> rados.Rados:
    r = rados.Rados(conffile=conf_path, **kwargs)
    r.connect()
    return r


@pytest.fixture(scope="module")
def admin(cluster: TestCluster) -> Iterator[rados.Rados]:
    with admin_with_pool(cluster, POOL, connect(cluster.conf_path)) as r:
        yield r


@pytest.fixture
def handles(cluster: TestCluster, admin: rados.Rados) -> Iterator[Callable[[], rados.Rados]]:
    """Extra client instances (each its own global id and sessions), shut down after the test."""
    made: list[rados.Rados] = []

    def make() -> rados.Rados:
        r = connect(cluster.conf_path)
        made.append(r)
        return r

    try:
        yield make
    finally:
        for r in made:
            r.shutdown()


@pytest.fixture
def obj(admin: rados.Rados, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"wn-{request.node.name}"[:80]
    with admin.open_ioctx(POOL) as io:
        io.write_full(name, b"watched")
    yield name


class Recorder:
    """A watch callback recording what it got, on which thread, replying `reply`."""

    def __init__(self, reply: bytes | str | None = None, block: threading.Event | None = None) -> None:
        self.reply = reply
        self.block = block
        self.calls: list[tuple[int, int, int, bytes]] = []
        self.threads: set[str] = set()
        self.errors: list[tuple[int, int]] = []
        self.got = threading.Event()

    def __call__(self, notify_id: int, notifier_id: int, watch_id: int, data: bytes) -> bytes | str | None:
        self.threads.add(threading.current_thread().name)
        self.calls.append((notify_id, notifier_id, watch_id, data))
        self.got.set()
        if self.block is not None:
            self.block.wait(30)
        return self.reply

    def on_error(self, watch_id: int, err: int) -> None:
        self.errors.append((watch_id, err))


def aio_notify(io: rados.Ioctx, name: str, msg: str | bytes, timeout_ms: int) -> tuple[int, Any, Any]:
    got: list[tuple[int, Any, Any]] = []
    comp = io.aio_notify(name, lambda c, r, acks, timeouts: got.append((r, acks, timeouts)), msg=msg,
                         timeout_ms=timeout_ms)
    comp.wait_for_complete_and_cb()
    return got[0]


def watchers(r: rados.Rados, name: str) -> list[dict[str, Any]]:
    pool_id = r.pool_lookup(POOL)
    return r._loop.run(r._client.list_watchers(pool_id, name, ""))


# -- basics ------------------------------------------------------------------------------------------

def test_watch_notify_with_reply(admin: rados.Rados, handles: Callable[[], rados.Rados], obj: str) -> None:
    watcher = handles()
    rec = Recorder(reply="pong")
    with watcher.open_ioctx(POOL) as wio, wio.watch(obj, rec, rec.on_error) as watch:
        assert watch.get_id() > 0
        assert watch.check().total_seconds() >= 0
        with admin.open_ioctx(POOL) as io:
            assert io.notify(obj, "ping", timeout_ms=5000) is True
            assert rec.calls and rec.calls[-1][1:] == (admin.get_instance_id(), watch.get_id(), b"ping")
            r, acks, timeouts = aio_notify(io, obj, b"\x00binary", 5000)
        assert r == 0 and timeouts == []
        assert acks == [(watcher.get_instance_id(), watch.get_id(), b"pong")]
        assert rec.calls[-1][3] == b"\x00binary"
        assert rec.calls[0][0] != rec.calls[1][0]  # every notify has its own id
        # Callbacks run on the client's callback thread, never on the loop thread.
        assert rec.threads == {"shoal-watch-cb"}
    assert rec.errors == []
    with admin.open_ioctx(POOL) as io:  # after close: nobody to notify, nothing delivered
        assert io.notify(obj, "again", timeout_ms=2000) is True
    assert len(rec.calls) == 2


def test_two_watchers_both_ack(admin: rados.Rados, handles: Callable[[], rados.Rados], obj: str) -> None:
    a, b = handles(), handles()
    ra, rb = Recorder(reply=b"from-a"), Recorder(reply=None)
    with a.open_ioctx(POOL) as aio_, b.open_ioctx(POOL) as bio:
        wa, wb = aio_.watch(obj, ra), bio.watch(obj, rb)
        try:
            listed = watchers(admin, obj)
            assert sorted((w["watcher_id"], w["cookie"]) for w in listed) == sorted(
                [(a.get_instance_id(), wa.get_id()), (b.get_instance_id(), wb.get_id())])
            with admin.open_ioctx(POOL) as io:
                r, acks, timeouts = aio_notify(io, obj, "hello", 5000)
            assert r == 0 and timeouts == []
            assert sorted(acks) == sorted([(a.get_instance_id(), wa.get_id(), b"from-a"),
                                           (b.get_instance_id(), wb.get_id(), "")])
            assert [c[3] for c in ra.calls] == [b"hello"] and [c[3] for c in rb.calls] == [b"hello"]
        finally:
            wa.close()
            wb.close()


def test_notify_times_out_when_a_watcher_does_not_ack(admin: rados.Rados, handles: Callable[[], rados.Rados],
                                                       obj: str) -> None:
    fast, slow = handles(), handles()
    release = threading.Event()
    rfast, rslow = Recorder(reply=b"ok"), Recorder(block=release)
    with fast.open_ioctx(POOL) as fio, slow.open_ioctx(POOL) as sio:
        wfast, wslow = fio.watch(obj, rfast), sio.watch(obj, rslow)
        try:
            with admin.open_ioctx(POOL) as io:
                t0 = time.monotonic()
                with pytest.raises(rados.TimedOut) as exc:
                    io.notify(obj, "wake", timeout_ms=1000)
                assert exc.value.errno == errno.ETIMEDOUT
                assert 0.9 <= time.monotonic() - t0 < 5
                r, acks, timeouts = aio_notify(io, obj, "wake", 500)
                assert (r, acks, timeouts) == (-errno.ETIMEDOUT, None, None)
            # The client core lists who acked and who missed it.
            acks_d, missed = admin._loop.run(admin._client.notify(admin.pool_lookup(POOL), obj, "", b"x", 0.5))
            assert acks_d == {(fast.get_instance_id(), wfast.get_id()): b"ok"}
            assert missed == [(slow.get_instance_id(), wslow.get_id())]
        finally:
            release.set()
            wfast.close()
            wslow.close()
    assert rslow.got.is_set()


def test_watcher_of_a_closed_client_is_dropped(admin: rados.Rados, cluster: TestCluster, obj: str) -> None:
    gone = connect(cluster.conf_path)
    rec = Recorder()
    io = gone.open_ioctx(POOL)
    io.watch(obj, rec)  # never closed: the client's shutdown ends the session
    assert [w["watcher_id"] for w in watchers(admin, obj)] == [gone.get_instance_id()]
    gone.shutdown()
    wait_for(lambda: watchers(admin, obj) == [], 10, "the watcher to be dropped")
    with admin.open_ioctx(POOL) as aio_:
        t0 = time.monotonic()
        assert aio_.notify(obj, "anyone?", timeout_ms=10000) is True
        assert time.monotonic() - t0 < 2  # not waiting for the closed client


def test_notify_stops_waiting_for_a_client_that_closes(admin: rados.Rados, cluster: TestCluster,
                                                        obj: str) -> None:
    stuck = connect(cluster.conf_path)
    release = threading.Event()
    rec = Recorder(block=release)
    stuck.open_ioctx(POOL).watch(obj, rec)
    result: list[tuple[int, Any, Any]] = []
    try:
        with admin.open_ioctx(POOL) as io:
            t0 = time.monotonic()
            notifier = threading.Thread(target=lambda: result.append(aio_notify(io, obj, "x", 20000)))
            notifier.start()
            rec.got.wait(10)  # delivered, and the callback never returns
            stuck.shutdown()
            notifier.join(15)
        assert result == [(0, [], [])]  # a watcher that went away is neither an ack nor a timeout
        assert time.monotonic() - t0 < 10
    finally:
        release.set()


def test_list_watchers_entries(admin: rados.Rados, handles: Callable[[], rados.Rados], obj: str) -> None:
    r = handles()
    with r.open_ioctx(POOL) as io, io.watch(obj, Recorder(), timeout=17) as watch:
        (entry,) = watchers(admin, obj)
        assert entry["name"] == f"client.{r.get_instance_id()}"
        assert entry["watcher_id"] == r.get_instance_id() and entry["cookie"] == watch.get_id()
        assert entry["timeout"] == 17
        assert re.fullmatch(r"127\.0\.0\.1:0/\d+", entry["addr"])
        # What `rbd status` prints is this entry under Ceph's keys (fixture from real Ceph).
        fixture = json.loads((FIXTURES / "json" / "rbd-status-watched.json").read_text())["watchers"][0]
        mine = {"address": entry["addr"], "client": entry["watcher_id"], "cookie": entry["cookie"]}
        assert {k: type(v) for k, v in mine.items()} == {k: type(v) for k, v in fixture.items()}
        assert re.fullmatch(r"[\d.]+:0/\d+", fixture["address"])
    assert watchers(admin, obj) == []


def test_missing_object(admin: rados.Rados) -> None:
    with admin.open_ioctx(POOL) as io:
        with pytest.raises(rados.ObjectNotFound):
            io.watch("wn-no-such-object", Recorder())
        with pytest.raises(rados.ObjectNotFound):
            io.notify("wn-no-such-object", "x")
        r, acks, timeouts = aio_notify(io, "wn-no-such-object", "x", 1000)
        assert (r, acks, timeouts) == (-errno.ENOENT, None, None)


def test_lost_watch_reaches_the_error_callback(admin: rados.Rados, handles: Callable[[], rados.Rados],
                                               obj: str) -> None:
    """The object is deleted under the watch: the next ping fails, error_callback gets -ENOTCONN."""
    r = handles()
    rec = Recorder()
    with r.open_ioctx(POOL) as io:
        watch = io.watch(obj, rec, rec.on_error, timeout=2)
        with admin.open_ioctx(POOL) as aio_:
            aio_.remove_object(obj)
        wait_for(lambda: rec.errors, 10, "the watch error callback")
        assert rec.errors == [(watch.get_id(), -errno.ENOTCONN)]
        with pytest.raises(rados.NotConnected):
            watch.check()
        watch.close()  # the OSD has forgotten it: closing still succeeds


def test_osd_drops_a_watch_that_stops_pinging(admin: rados.Rados, handles: Callable[[], rados.Rados],
                                              obj: str) -> None:
    r = handles()
    rec = Recorder()
    with r.open_ioctx(POOL) as io:
        watch = io.watch(obj, rec, rec.on_error, timeout=1)
        lingers = r._client.objecter.lingers
        linger = lingers._lingers[watch.get_id()]
        assert linger.task is not None
        r._loop.loop.call_soon_threadsafe(linger.task.cancel)  # the client stops pinging (white box)
        wait_for(lambda: rec.errors, 10, "the OSD's disconnect")
        assert rec.errors == [(watch.get_id(), -errno.ENOTCONN)]
        assert watchers(admin, obj) == []
        watch.close()


def test_caps(admin: rados.Rados, cluster: TestCluster, tmp_path: Path, obj: str) -> None:
    """`osd 'allow r pool=P'` may watch and notify; a client without `r` on P is refused."""
    def user(name: str, osd_caps: str) -> rados.Rados:
        path = str(tmp_path / f"{name}.keyring")
        res = cluster.cli("ceph", "auth", "get-or-create", f"client.{name}", "mon", "allow r", "osd", osd_caps,
                          "-o", path)
        assert res.returncode == 0, res.stderr
        return connect(cluster.conf_path, rados_id=name, conf={"keyring": path})

    reader = user("wn-reader", f"allow r pool={POOL}")
    outsider = user("wn-outsider", "allow rw pool=wn-elsewhere")
    try:
        rec = Recorder(reply=b"seen")
        with reader.open_ioctx(POOL) as rio, rio.watch(obj, rec) as watch:
            r, acks, _ = aio_notify(rio, obj, "self", 5000)
            assert r == 0 and acks == [(reader.get_instance_id(), watch.get_id(), b"seen")]
            with outsider.open_ioctx(POOL) as oio:
                with pytest.raises(rados.PermissionError):
                    oio.watch(obj, Recorder())
                with pytest.raises(rados.PermissionError):
                    oio.notify(obj, "x")
            assert len(rec.calls) == 1  # the refused notify reached nobody
    finally:
        reader.shutdown()
        outsider.shutdown()
        for name in ("wn-reader", "wn-outsider"):
            admin.mon_command(json.dumps({"prefix": "auth del", "entity": f"client.{name}"}), b"")


# -- watches follow their object's primary ------------------------------------------------------------

def test_watch_follows_the_primary_across_a_restart(fresh_cluster: TestCluster) -> None:
    cluster = fresh_cluster
    admin = connect(cluster.conf_path)
    watcher = connect(cluster.conf_path)
    try:
        ret, _, outs = admin.mon_command(json.dumps({"prefix": "osd pool create", "pool": POOL, "pg_num": 8}), b"")
        assert ret == 0, outs
        cluster.wait_healthy(cluster.osds, 30)
        with admin.open_ioctx(POOL) as io:
            io.write_full("followed", b"x")
        ret, out, outs = admin.mon_command(json.dumps({"prefix": "osd map", "pool": POOL, "object": "followed",
                                                       "format": "json"}), b"")
        assert ret == 0, outs
        primary = int(json.loads(out)["acting_primary"])
        rec = Recorder(reply=b"still here")
        wio = watcher.open_ioctx(POOL)
        watch = wio.watch("followed", rec, rec.on_error, timeout=10)

        def listed() -> bool:
            try:
                return [w["cookie"] for w in watchers(admin, "followed")] == [watch.get_id()]
            except rados.Error:
                return False

        def delivered(msg: str) -> None:
            with admin.open_ioctx(POOL) as io:
                r, acks, timeouts = aio_notify(io, "followed", msg, 5000)
            assert r == 0 and acks == [(watcher.get_instance_id(), watch.get_id(), b"still here")], (r, acks)
            assert rec.calls[-1][3] == msg.encode()

        def registered_on() -> int:
            target = watcher._client.objecter.lingers._lingers[watch.get_id()].target  # white box
            return -1 if target is None else target.osd

        delivered("before")
        assert registered_on() == primary
        cluster.kill(f"osd.{primary}")  # its watch state dies with it
        wait_for(listed, 30, "the watch to be re-registered on the new primary")
        assert registered_on() not in (primary, -1)
        delivered("failed over")
        cluster.restart(f"osd.{primary}")
        cluster.wait_healthy(cluster.osds, 30)
        wait_for(listed, 30, "the watch to be re-registered on the restarted primary")
        assert registered_on() == primary
        delivered("back")
        assert rec.errors == []
        watch.check()
        watch.close()
        wio.close()
    finally:
        watcher.shutdown()
        admin.shutdown()

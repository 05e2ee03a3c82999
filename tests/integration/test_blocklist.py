"""The OSD map's blocklist (decision record 0007): `ceph osd blocklist …`, OSDs fencing a
listed client with ESHUTDOWN, expiry, caps, and exclusive-lock takeover from a hung owner.

The cluster is the shared session one and every client of this test run comes from
127.0.0.1, so the tests only ever list exact `ip:0/nonce` addresses (never a whole ip) and
clear the list after each test.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import rados
import rbd
from shoal.testing.cluster import TestCluster
from tests.rbd.rbd_helpers import rbd_ok, rbd_pool

POOL = "blocklist"
MB = 1 << 20
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+0000"
FAIL_FAST = 10.0  # a fenced client's op must fail within this (it must not hang)


def ceph(cluster: TestCluster, *args: str) -> subprocess.CompletedProcess[bytes]:
    return cluster.cli("ceph", *args, timeout=60)


def epoch(cluster: TestCluster) -> int:
    return int(json.loads(ceph(cluster, "osd", "stat", "--format", "json").stdout)["epoch"])


def listed(cluster: TestCluster) -> dict[str, str]:
    res = ceph(cluster, "osd", "blocklist", "ls", "--format", "json")
    assert res.returncode == 0, res.stderr
    return {e["addr"]: e["until"] for e in json.loads(res.stdout)}


@pytest.fixture(scope="module")
def pool(cluster: TestCluster) -> Iterator[str]:
    with rbd_pool(cluster, POOL):
        yield POOL


@pytest.fixture(autouse=True)
def clean_blocklist(cluster: TestCluster) -> Iterator[None]:
    # Other modules' `rbd lock rm` leave entries (of dead CLI processes) behind: start empty.
    ceph(cluster, "osd", "blocklist", "clear")
    yield
    ceph(cluster, "osd", "blocklist", "clear")


# -- monitor commands ---------------------------------------------------------------------------

def test_add_ls_rm_plain_and_json(cluster: TestCluster) -> None:
    before = epoch(cluster)
    res = ceph(cluster, "osd", "blocklist", "add", "10.1.2.3:0/1234", "600")
    assert res.returncode == 0, res.stderr
    assert re.fullmatch(rf"blocklisting 10\.1\.2\.3:0/1234 until {STAMP} \(600 sec\)\n", res.stderr.decode())
    assert epoch(cluster) == before + 1
    until = time.time() + 600

    plain = ceph(cluster, "osd", "blocklist", "ls")
    assert plain.returncode == 0
    assert re.fullmatch(rf"10\.1\.2\.3:0/1234 {STAMP}\n", plain.stdout.decode()), plain.stdout
    assert plain.stderr.decode() == "listed 1 entries\n"
    entries = json.loads(ceph(cluster, "osd", "blocklist", "ls", "--format", "json").stdout)
    assert [e["addr"] for e in entries] == ["10.1.2.3:0/1234"]
    assert set(entries[0]) == {"addr", "until"}
    assert re.fullmatch(STAMP, entries[0]["until"])
    dump = json.loads(ceph(cluster, "osd", "dump", "--format", "json").stdout)
    assert list(dump["blocklist"]) == ["10.1.2.3:0/1234"]
    assert f"blocklist 10.1.2.3:0/1234 expires {entries[0]['until']}" in ceph(cluster, "osd", "dump").stdout.decode()
    stamp_t = time.mktime(time.strptime(entries[0]["until"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    assert abs(stamp_t - until) < 30

    # the old spelling reads and writes the same list; the default expiry is an hour
    assert list(json.loads(ceph(cluster, "osd", "blacklist", "ls", "--format", "json").stdout)) != []
    res = ceph(cluster, "osd", "blacklist", "add", "v1:10.1.2.4:0/7")
    assert res.returncode == 0 and "(3600 sec)" in res.stderr.decode(), res.stderr
    assert set(listed(cluster)) == {"10.1.2.3:0/1234", "10.1.2.4:0/7"}

    before = epoch(cluster)
    res = ceph(cluster, "osd", "blocklist", "rm", "10.1.2.3:0/1234")
    assert (res.returncode, res.stderr.decode()) == (0, "un-blocklisting 10.1.2.3:0/1234\n")
    assert epoch(cluster) == before + 1
    res = ceph(cluster, "osd", "blocklist", "rm", "10.1.2.3:0/1234")
    assert (res.returncode, res.stderr.decode()) == (0, "10.1.2.3:0/1234 isn't blocklisted\n")
    assert epoch(cluster) == before + 1  # nothing to change: no new epoch
    assert set(listed(cluster)) == {"10.1.2.4:0/7"}


def test_clear(cluster: TestCluster) -> None:
    for addr in ("10.1.2.5:0/1", "10.1.2.6:0/2"):
        assert ceph(cluster, "osd", "blocklist", "add", addr).returncode == 0
    before = epoch(cluster)
    res = ceph(cluster, "osd", "blocklist", "clear")
    assert (res.returncode, res.stderr.decode()) == (0, " removed all blocklist entries\n")
    assert epoch(cluster) == before + 1
    res = ceph(cluster, "osd", "blocklist", "ls")
    assert (res.returncode, res.stdout, res.stderr.decode()) == (0, b"", "listed 0 entries\n")


@pytest.mark.parametrize("args, message", [
    (("add", "not-an-address"), "unable to parse address not-an-address"),
    (("add", "10.1.2.3:99999/1"), "unable to parse address 10.1.2.3:99999/1"),
    (("add", "10.1.2.3:0/1", "-5"), "expire -5"),
])
def test_bad_input_changes_nothing(cluster: TestCluster, args: tuple[str, ...], message: str) -> None:
    before = epoch(cluster)
    res = ceph(cluster, "osd", "blocklist", *args)
    assert res.returncode == 22, (res.returncode, res.stderr)
    assert message in res.stderr.decode()
    assert epoch(cluster) == before
    assert listed(cluster) == {}


def test_mon_command_errno(cluster: TestCluster) -> None:
    with cluster.admin() as admin:
        ret, _, outs = admin.command({"prefix": "osd blocklist", "blocklistop": "drop", "addr": "10.0.0.1:0/1"})
        assert ret == -22 and "add|rm" in outs
        ret, _, outs = admin.command({"prefix": "osd blocklist", "blocklistop": "add"})
        assert ret == -22 and "addr" in outs


# -- caps: the guide's `mon 'profile rbd'` may add an ip:port/nonce, nothing else -------------

def test_profile_rbd_may_only_add(cluster: TestCluster, pool: str, tmp_path: Path) -> None:
    keyring = str(tmp_path / "ceph.client.fencer.keyring")
    res = ceph(cluster, "auth", "get-or-create", "client.fencer", "mon", "profile rbd", "osd",
               f"profile rbd pool={pool}", "-o", keyring)
    assert res.returncode == 0, res.stderr
    who = ("--id", "fencer", "--keyring", keyring)
    try:
        res = ceph(cluster, *who, "osd", "blocklist", "add", "10.2.0.1:0/42")
        assert res.returncode == 0, res.stderr
        assert "10.2.0.1:0/42" in listed(cluster)
        assert ceph(cluster, *who, "osd", "blocklist", "ls").returncode == 0  # profile rbd reads the osd map
        for args in (("rm", "10.2.0.1:0/42"), ("add", "10.2.0.2")):  # no nonce: would fence a whole host
            res = ceph(cluster, *who, "osd", "blocklist", *args)
            assert res.returncode == 13, (args, res.stderr)
        assert ceph(cluster, *who, "osd", "blocklist", "clear").returncode == 13
        assert list(listed(cluster)) == ["10.2.0.1:0/42"]
    finally:
        ceph(cluster, "auth", "rm", "client.fencer")


# -- OSDs fence a listed client -------------------------------------------------------------------

def _watcher_addr(cluster: TestCluster, spec: str) -> str:
    status = json.loads(rbd_ok(cluster, "status", spec, "--format", "json"))
    addrs = [w["address"] for w in status["watchers"]]
    assert len(addrs) == 1, status
    return str(addrs[0])


def test_blocklisted_client_fails_fast_and_rm_restores(cluster: TestCluster, pool: str) -> None:
    rbd_ok(cluster, "create", "--size", "8M", f"{pool}/fenced")
    r = rados.Rados(conffile=cluster.conf_path)
    r.connect()
    try:
        io = r.open_ioctx(pool)
        img = rbd.Image(io, "fenced")
        img.write(b"a" * 4096, 0)
        io.write_full("plain-object", b"before")
        addr = _watcher_addr(cluster, f"{pool}/fenced")  # what `rbd status` shows is what gets listed
        assert re.fullmatch(r"127\.0\.0\.1:0/\d+", addr), addr
        assert ceph(cluster, "osd", "blocklist", "add", addr).returncode == 0
        r.wait_for_latest_osdmap()

        t0 = time.monotonic()
        with pytest.raises(rbd.ConnectionShutdown):
            img.write(b"b" * 4096, 0)
        with pytest.raises(rados.ConnectionShutdown):
            io.write_full("plain-object", b"after")
        with pytest.raises(rados.ConnectionShutdown):
            io.read("plain-object")
        assert time.monotonic() - t0 < FAIL_FAST
        # the OSD dropped its header watch
        deadline = time.monotonic() + FAIL_FAST
        while json.loads(rbd_ok(cluster, "status", f"{pool}/fenced", "--format", "json"))["watchers"]:
            assert time.monotonic() < deadline, "the fenced client's watch is still there"
            time.sleep(0.2)

        assert ceph(cluster, "osd", "blocklist", "rm", addr).returncode == 0
        r.wait_for_latest_osdmap()
        io.write_full("plain-object", b"again")
        assert io.read("plain-object") == b"again"
        img.close()
        io.close()
    finally:
        r.shutdown()
    # nothing the fenced client tried was applied
    assert _read(cluster, pool, "fenced", 0, 4096) == b"a" * 4096


def test_entry_expires(cluster: TestCluster, pool: str) -> None:
    r = rados.Rados(conffile=cluster.conf_path)
    r.connect()
    try:
        io = r.open_ioctx(pool)
        io.write_full("expiring", b"x")
        nonce = r._client.objecter.nonce  # this client's address, as the OSD computes it
        addr = f"127.0.0.1:0/{nonce}"
        assert ceph(cluster, "osd", "blocklist", "add", addr, "2").returncode == 0
        r.wait_for_latest_osdmap()
        with pytest.raises(rados.ConnectionShutdown):
            io.write_full("expiring", b"y")
        before = epoch(cluster)
        deadline = time.monotonic() + 15
        while addr in listed(cluster):
            assert time.monotonic() < deadline, "the entry did not expire"
            time.sleep(0.25)
        assert epoch(cluster) > before  # expiry is a map change like any other
        r.wait_for_latest_osdmap()
        io.write_full("expiring", b"z")
        assert io.read("expiring") == b"z"
        io.close()
    finally:
        r.shutdown()


def _read(cluster: TestCluster, pool: str, image: str, off: int, length: int) -> bytes:
    r = rados.Rados(conffile=cluster.conf_path)
    r.connect()
    try:
        io = r.open_ioctx(pool)
        with rbd.Image(io, image, read_only=True) as img:
            data = img.read(off, length)
        io.close()
        return bytes(data)
    finally:
        r.shutdown()


# -- exclusive lock: a hung owner is fenced, then its lock is broken ---------------------------------

OWNER = r'''
import json, os, sys, time
import rados, rbd
a = json.loads(sys.argv[1])
r = rados.Rados(conffile=a["conf"], conf={"osd_client_watch_timeout": str(a["watch_timeout"])})
r.connect()
io = r.open_ioctx(a["pool"])
img = rbd.Image(io, a["image"])
for b in range(a["blocks"]):
    img.write(bytes([65 + b]) * 4096, b * 4096)
print(json.dumps({"owner": img.is_exclusive_lock_owner()}), flush=True)
while not os.path.exists(a["go"]):
    time.sleep(0.05)
t0 = time.monotonic()
try:
    img.write(b"Z" * 4096, 0)
    outcome = "written"
except rbd.ConnectionShutdown:
    outcome = "ConnectionShutdown"
except Exception as exc:
    outcome = type(exc).__name__ + ": " + str(exc)
print(json.dumps({"late_write": outcome, "seconds": time.monotonic() - t0}), flush=True)
os._exit(0)  # a fenced client's close could only fail: leave
'''


def test_hung_lock_owner_is_fenced_then_its_lock_broken(cluster: TestCluster, pool: str, tmp_path: Path) -> None:
    image, blocks, watch_timeout = "hung-owner", 4, 3
    rbd_ok(cluster, "create", "--size", "8M", "--image-feature", "layering,exclusive-lock", f"{pool}/{image}")
    go = tmp_path / "go"
    args = {"conf": cluster.conf_path, "pool": pool, "image": image, "blocks": blocks, "go": str(go),
            "watch_timeout": watch_timeout}
    owner = subprocess.Popen([sys.executable, "-c", OWNER, json.dumps(args)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=cluster.env())
    try:
        assert owner.stdout is not None
        line = owner.stdout.readline()
        assert json.loads(line or b"null") == {"owner": True}, owner.stderr.read() if not line else line
        lockers = json.loads(rbd_ok(cluster, "lock", "ls", f"{pool}/{image}", "--format", "json"))
        assert len(lockers) == 1
        owner_addr = lockers[0]["address"]
        assert owner_addr == _watcher_addr(cluster, f"{pool}/{image}")  # one address for a client

        os.kill(owner.pid, signal.SIGSTOP)  # hung, not dead: its watch lapses after the timeout
        # The taker has the guide's caps only: `mon 'profile rbd'` is what lets it fence.
        keyring = str(tmp_path / "ceph.client.taker.keyring")
        assert ceph(cluster, "auth", "get-or-create", "client.taker", "mon", "profile rbd", "osd",
                    f"profile rbd pool={pool}", "-o", keyring).returncode == 0
        r = rados.Rados(conffile=cluster.conf_path, rados_id="taker", conf={"keyring": keyring})
        r.connect()
        try:
            io = r.open_ioctx(pool)
            with rbd.Image(io, image) as img:
                t0 = time.monotonic()
                img.write(b"N" * 4096, 4096)  # waits for the lapsed watch, fences, breaks, writes
                took = time.monotonic() - t0
                assert img.is_exclusive_lock_owner()
            io.close()
        finally:
            r.shutdown()
        assert watch_timeout - 1 < took < watch_timeout + 20, took
        assert owner_addr in listed(cluster)

        go.touch()
        os.kill(owner.pid, signal.SIGCONT)  # it wakes up believing it still owns the lock
        out, err = owner.communicate(timeout=60)
        late = json.loads(out.decode().strip().splitlines()[-1])
        assert late["late_write"] == "ConnectionShutdown", (late, err.decode()[-2000:])
        assert late["seconds"] < FAIL_FAST
    finally:
        ceph(cluster, "auth", "rm", "client.taker")
        if owner.poll() is None:
            os.kill(owner.pid, signal.SIGCONT)
            owner.kill()
            owner.wait()
    data = _read(cluster, pool, image, 0, blocks * 4096)
    assert data[:4096] == b"A" * 4096  # the fenced owner's late write never landed
    assert data[4096:8192] == b"N" * 4096
    assert data[8192:] == b"C" * 4096 + b"D" * 4096


# -- rbd lock rm blocklists the locker, as rbd does ----------------------------------------------------

def test_rbd_lock_rm_blocklists_the_locker(cluster: TestCluster, pool: str) -> None:
    spec = f"{pool}/locked"
    rbd_ok(cluster, "create", "--size", "4M", spec)
    rbd_ok(cluster, "lock", "add", spec, "my-lock")
    (locker,) = json.loads(rbd_ok(cluster, "lock", "ls", spec, "--format", "json"))
    assert re.fullmatch(r"127\.0\.0\.1:0/\d+", locker["address"]), locker
    rbd_ok(cluster, "lock", "rm", spec, "my-lock", locker["locker"])
    assert json.loads(rbd_ok(cluster, "lock", "ls", spec, "--format", "json") or b"[]") == []
    assert locker["address"] in listed(cluster)
    # a locker that does not hold the lock: ENOENT, nothing listed, as rbd
    res = cluster.cli("rbd", "lock", "rm", spec, "my-lock", "client.999999")
    assert res.returncode == 2, res.stderr
    assert "rbd: releasing lock failed: (2) No such file or directory" in res.stderr.decode()
    assert list(listed(cluster)) == [locker["address"]]


def test_python_bindings_fence(cluster: TestCluster, pool: str) -> None:
    """python-rados `Rados.blocklist_add` and python-rbd `Image.break_lock`, which fences the
    locker first as librbd does: the locker's later writes fail, nothing of them lands."""
    # advisory locks on an image without the managed exclusive lock (that one shares the cls lock)
    rbd_ok(cluster, "create", "--size", "4M", "--image-feature", "layering", f"{pool}/py-locked")
    holder, breaker = rados.Rados(conffile=cluster.conf_path), rados.Rados(conffile=cluster.conf_path)
    holder.connect()
    breaker.connect()
    try:
        hio, bio = holder.open_ioctx(pool), breaker.open_ioctx(pool)
        himg = rbd.Image(hio, "py-locked")
        himg.lock_exclusive("py-cookie")
        himg.write(b"h" * 4096, 0)
        with rbd.Image(bio, "py-locked") as bimg:
            info = bimg.list_lockers()
            ((locker, cookie, addr),) = info["lockers"]
            with pytest.raises(rbd.ImageNotFound):
                bimg.break_lock(locker, "not-the-cookie")
            assert addr not in listed(cluster)
            bimg.break_lock(locker, cookie)
            assert addr in listed(cluster)
            assert bimg.list_lockers() == []
        with pytest.raises(rbd.ConnectionShutdown):
            himg.write(b"x" * 4096, 0)
        # the plain python-rados call (an address no client has: nothing else is affected)
        breaker.blocklist_add("127.0.0.1:0/4242", 60)
        assert set(listed(cluster)) == {addr, "127.0.0.1:0/4242"}
        with pytest.raises(TypeError):
            breaker.blocklist_add(4242)  # type: ignore[arg-type]
        himg.close()
        hio.close()
        bio.close()
    finally:
        holder.shutdown()
        breaker.shutdown()
    assert _read(cluster, pool, "py-locked", 0, 4096) == b"h" * 4096


def test_taker_that_may_not_fence_breaks_nothing(cluster: TestCluster, pool: str, tmp_path: Path) -> None:
    image = "dead-owner"
    rbd_ok(cluster, "create", "--size", "8M", "--image-feature", "layering,exclusive-lock", f"{pool}/{image}")
    args = {"conf": cluster.conf_path, "pool": pool, "image": image, "blocks": 1, "go": str(tmp_path / "never"),
            "watch_timeout": 30}
    owner = subprocess.Popen([sys.executable, "-c", OWNER, json.dumps(args)], stdout=subprocess.PIPE,
                             env=cluster.env())
    assert owner.stdout is not None and json.loads(owner.stdout.readline() or b"null") == {"owner": True}
    owner.kill()  # dead: its watch goes with its session
    owner.wait()
    before = json.loads(rbd_ok(cluster, "lock", "ls", f"{pool}/{image}", "--format", "json"))
    keyring = str(tmp_path / "ceph.client.nofence.keyring")
    assert ceph(cluster, "auth", "get-or-create", "client.nofence", "mon", "allow r", "osd",
                f"profile rbd pool={pool}", "-o", keyring).returncode == 0
    r = rados.Rados(conffile=cluster.conf_path, rados_id="nofence", conf={"keyring": keyring})
    r.connect()
    try:
        io = r.open_ioctx(pool)
        with rbd.Image(io, image) as img:
            with pytest.raises(rbd.Error) as info:
                img.write(b"N" * 4096, 0)
            assert info.value.errno == 13, info.value  # EACCES, as librbd's failed blocklist_add
        io.close()
    finally:
        r.shutdown()
        ceph(cluster, "auth", "rm", "client.nofence")
    # the dead owner's lock is still there, nobody was fenced, the data is untouched
    assert json.loads(rbd_ok(cluster, "lock", "ls", f"{pool}/{image}", "--format", "json")) == before
    assert listed(cluster) == {}
    assert _read(cluster, pool, image, 0, 4096) == b"A" * 4096

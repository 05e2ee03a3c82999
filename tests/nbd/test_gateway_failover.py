"""Two NBD gateways on one image (issue 6, the live-migration / evacuate case): they share the
image through its exclusive lock; when one is killed the other takes over once the dead one's
lock is broken and its address blocklisted (decision record 0007).

Writes go through qemu-io (qemu-utils); a write counts as acknowledged when qemu-io's write
and its flush both succeeded (NBD's durability contract). Every acknowledged write of both
gateways must read back through the rbd module afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import rados
import rbd
from shoal.testing.cluster import TestCluster
from tests.nbd import nbd_helpers
from tests.nbd.nbd_helpers import tool

POOL = "nbd_failover"
IMAGE = "shared"
SPEC = f"{POOL}/{IMAGE}"
KiB = 1024
BLOCK = 64 * KiB
TAKEOVER_LIMIT = 30.0  # a killed gateway's session closes at once: no watch timeout to wait for


class Gateway(nbd_helpers.Gateway):
    """`shoal nbd serve --socket PATH pool/image` as a child process."""

    def __init__(self, cluster: TestCluster, sock: Path, *who: str) -> None:
        super().__init__(cluster, sock, *who, SPEC)

    def write(self, pattern: int, off: int, length: int = BLOCK) -> float:
        """Write and flush through this gateway; the seconds it took."""
        t0 = time.monotonic()
        done = subprocess.run([tool("qemu-io"), "-f", "raw", "-c", f"write -P {pattern:#x} {off} {length}",
                               "-c", "flush", self.uri(SPEC)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "wrote" in done.stdout, (
            f"qemu-io write through {self.sock.name} failed: {done.stdout}{done.stderr}\n{self.log.read_text()[-3000:]}")
        return time.monotonic() - t0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def rbd_json(cluster: TestCluster, *args: str) -> object:
    done = cluster.cli("rbd", *args, "--format", "json")
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout or b"null")


def lock_owner_addr(cluster: TestCluster) -> str:
    lockers = rbd_json(cluster, "lock", "ls", SPEC)
    assert isinstance(lockers, list) and len(lockers) == 1, lockers
    return str(lockers[0]["address"])


def blocklisted(cluster: TestCluster) -> list[str]:
    done = cluster.cli("ceph", "osd", "blocklist", "ls", "--format", "json")
    assert done.returncode == 0, done.stderr.decode()
    return [e["addr"] for e in json.loads(done.stdout)]


@pytest.fixture
def image(cluster: TestCluster) -> Iterator[TestCluster]:
    assert cluster.cli("ceph", "osd", "pool", "create", POOL, "8").returncode == 0
    cluster.cli("rbd", "pool", "init", POOL, check=True)
    cluster.cli("rbd", "create", "--size", "16M", "--image-feature", "layering,exclusive-lock", SPEC, check=True)
    try:
        yield cluster
    finally:
        cluster.cli("ceph", "osd", "blocklist", "clear")  # the killed gateway's entry would last an hour
        cluster.cli("ceph", "osd", "pool", "delete", POOL, POOL, "--yes-i-really-really-mean-it")


def gateway_user(cluster: TestCluster, directory: Path) -> tuple[str, ...]:
    """The guide's caps for a gateway user: `mon 'profile rbd' osd 'profile rbd pool=…'` (the
    mon profile is what lets it blocklist a dead peer)."""
    keyring = directory / "ceph.client.nbdgw.keyring"
    done = cluster.cli("ceph", "auth", "get-or-create", "client.nbdgw", "mon", "profile rbd",
                       "osd", f"profile rbd pool={POOL}", "-o", str(keyring))
    assert done.returncode == 0, done.stderr.decode()
    return ("--id", "nbdgw", "--keyring", str(keyring))


def test_gateway_takes_over_when_the_other_dies(image: TestCluster, tmp_path: Path) -> None:
    cluster = image
    who = gateway_user(cluster, tmp_path)
    gw1 = Gateway(cluster, tmp_path / "gw1.sock", *who)
    gw2 = Gateway(cluster, tmp_path / "gw2.sock", *who)
    ledger: dict[int, int] = {}  # block offset -> pattern of the last acknowledged write
    try:
        # both alive: the lock moves between them on request (cooperative hand-off)
        for gw, pattern, off in ((gw1, 0x11, 0), (gw2, 0x22, BLOCK), (gw1, 0x33, 2 * BLOCK), (gw2, 0x44, 0),
                                 (gw1, 0x55, 3 * BLOCK)):
            gw.write(pattern, off)
            ledger[off] = pattern
        dead_addr = lock_owner_addr(cluster)  # gw1 wrote last: it holds the lock
        assert blocklisted(cluster) == []

        os.kill(gw1.proc.pid, signal.SIGKILL)
        gw1.proc.wait()
        took = gw2.write(0x66, 2 * BLOCK)  # over one of gw1's blocks
        ledger[2 * BLOCK] = 0x66
        assert took < TAKEOVER_LIMIT, f"takeover took {took:.1f}s"
        assert dead_addr in blocklisted(cluster), "the dead gateway was not fenced"
        assert "event=blocklist_lock_owner image=" in gw2.log.read_text()
        assert lock_owner_addr(cluster) != dead_addr
        gw2.write(0x77, 4 * BLOCK)
        ledger[4 * BLOCK] = 0x77
    finally:
        for gw in (gw1, gw2):
            gw.stop()
        cluster.cli("ceph", "auth", "rm", "client.nbdgw")

    r = rados.Rados(conffile=cluster.conf_path)
    r.connect()
    try:
        io = r.open_ioctx(POOL)
        with rbd.Image(io, IMAGE, read_only=True) as img:
            for off, pattern in sorted(ledger.items()):
                assert img.read(off, BLOCK) == bytes([pattern]) * BLOCK, f"block at {off} lost write {pattern:#x}"
            assert img.read(5 * BLOCK, BLOCK) == bytes(BLOCK)  # nobody wrote there
        io.close()
    finally:
        r.shutdown()

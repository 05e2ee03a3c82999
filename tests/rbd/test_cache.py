"""`rbd cache` with `rbd cache writethrough until flush` on a real cluster (python-rbd API).

What the cluster holds is checked with a second, independent client (its own Rados
handle, `rbd_cache = false`) reading the data objects with plain RADOS reads, so a bug in
the cache cannot hide in the check.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest

import rados
import rbd
from shoal.testing.cluster import TestCluster
from tests.rbd.rbd_helpers import rbd_pool

POOL = "rbd_cache_test"
M = 1 << 20
ORDER = 22  # 4 MiB objects
# Large enough that nothing is written back behind the test's back.
HOLD = {"rbd_cache_max_dirty_age": "60", "rbd_cache_target_dirty": "16M", "rbd_cache_max_dirty": "24M"}


@pytest.fixture(scope="module")
def pool(cluster: TestCluster) -> Iterator[str]:
    with rbd_pool(cluster, POOL) as name:
        yield name


def connect(cluster: TestCluster, **conf: str) -> rados.Rados:
    r = rados.Rados(conffile=cluster.conf_path, conf={"rbd_cache": "true",
                                                     "rbd_cache_writethrough_until_flush": "true", **conf})
    r.connect()
    return r


@pytest.fixture
def clients(cluster: TestCluster, pool: str) -> Iterator[tuple[rados.Ioctx, rados.Ioctx]]:
    """(the cached client's ioctx, an independent uncached client's ioctx)."""
    a = connect(cluster, **HOLD)
    b = connect(cluster, rbd_cache="false")
    try:
        yield a.open_ioctx(pool), b.open_ioctx(pool)
    finally:
        a.shutdown()
        b.shutdown()


def new_image(ioctx: rados.Ioctx, name: str, size: int = 16 * M) -> str:
    rbd.RBD().create(ioctx, name, size, order=ORDER, old_format=False)
    return name


def cluster_bytes(ioctx: rados.Ioctx, image_id: str, off: int, length: int) -> bytes:
    """Image bytes as the cluster holds them: plain object reads (zeros where absent)."""
    osz = 1 << ORDER
    out = bytearray()
    while length:
        objno, ooff = divmod(off, osz)
        n = min(length, osz - ooff)
        try:
            data = ioctx.read(f"rbd_data.{image_id}.{objno:016x}", n, ooff)
        except rados.ObjectNotFound:
            data = b""
        out += data + bytes(n - len(data))
        off, length = off + n, length - n
    return bytes(out)


def test_write_through_until_the_first_flush(clients: tuple[rados.Ioctx, rados.Ioctx]) -> None:
    io_a, io_b = clients
    name = new_image(io_a, "wt")
    with rbd.Image(io_a, name) as img:
        data = os.urandom(64 << 10)
        img.write(data, 4096)
        # No flush yet: the write is in the cluster as soon as it returned.
        assert cluster_bytes(io_b, img.id(), 4096, len(data)) == data
        with rbd.Image(io_b, name, read_only=True) as other:
            assert other.read(4096, len(data)) == data


def test_write_back_after_the_first_flush(clients: tuple[rados.Ioctx, rados.Ioctx]) -> None:
    io_a, io_b = clients
    name = new_image(io_a, "wb")
    img = rbd.Image(io_a, name)
    image_id = img.id()
    img.write(b"a" * 8192, 0)
    img.flush()  # from now on, writes are acknowledged from the cache
    img.write(b"b" * 8192, 0)
    img.write(b"c" * 100, 4000)  # overlapping partial write, merged in the cache
    expected = b"b" * 4000 + b"c" * 100 + b"b" * (8192 - 4100)
    assert img.read(0, 8192) == expected  # read-your-writes
    assert img.read(4050, 100) == b"c" * 50 + b"b" * 50  # fully covered by cached bytes
    assert cluster_bytes(io_b, image_id, 0, 8192) == b"a" * 8192  # not written back yet
    img.flush()
    assert cluster_bytes(io_b, image_id, 0, 8192) == expected
    img.write(b"d" * 512, 1 * M)
    assert cluster_bytes(io_b, image_id, 1 * M, 512) == bytes(512)
    img.close()  # close writes back as well
    assert cluster_bytes(io_b, image_id, 1 * M, 512) == b"d" * 512


def test_reads_span_cached_and_cluster_bytes(clients: tuple[rados.Ioctx, rados.Ioctx]) -> None:
    io_a, _ = clients
    name = new_image(io_a, "mix")
    with rbd.Image(io_a, name) as img:
        base = os.urandom(12 * M)
        img.write(base, 0)
        img.flush()
        model = bytearray(base)
        for off, n in [(100, 10), (4 * M - 5, 10), (5 * M, 300000), (5 * M + 1000, 7), (11 * M, M)]:
            chunk = os.urandom(n)
            img.write(chunk, off)
            model[off:off + n] = chunk
        assert img.read(0, 12 * M) == bytes(model)
        img.flush()
        assert img.read(0, 12 * M) == bytes(model)


def test_management_operations_see_cached_writes(clients: tuple[rados.Ioctx, rados.Ioctx]) -> None:
    io_a, io_b = clients
    name = new_image(io_a, "mgmt")
    with rbd.Image(io_a, name) as img:
        image_id = img.id()
        img.write(b"x", 0)
        img.flush()
        img.write(b"s" * 4096, 0)
        img.create_snap("s1")  # the snapshot holds the cached write
        with rbd.Image(io_b, name, snapshot="s1", read_only=True) as snap:
            assert snap.read(0, 4096) == b"s" * 4096
        img.write(b"t" * 4096, 0)
        img.rollback_to_snap("s1")  # the rollback wins over the earlier cached write
        assert img.read(0, 4096) == b"s" * 4096
        assert cluster_bytes(io_b, image_id, 0, 4096) == b"s" * 4096
        img.write(b"z" * 8192, 2 * M)
        img.write_zeroes(2 * M, 4096)  # lands after the cached write of the range
        assert img.read(2 * M, 8192) == bytes(4096) + b"z" * 4096
        img.flush()
        assert cluster_bytes(io_b, image_id, 2 * M, 8192) == bytes(4096) + b"z" * 4096
        img.write(b"r" * 4096, 15 * M)
        img.resize(8 * M)  # the cached bytes past the new end are gone, not written later
        img.resize(16 * M)
        assert img.read(15 * M, 4096) == bytes(4096)
        img.remove_snap("s1")
    dst = "mgmt-copy"
    with rbd.Image(io_a, name) as img:
        img.flush()
        img.write(b"k" * 4096, 3 * M)
        img.copy(io_a, dst)  # the copy includes the cached write
    with rbd.Image(io_b, dst, read_only=True) as copy:
        assert copy.read(3 * M, 4096) == b"k" * 4096


def test_lock_handoff_writes_back_first(cluster: TestCluster, pool: str) -> None:
    a = connect(cluster, **HOLD)
    b = connect(cluster, **HOLD)
    try:
        io_a, io_b = a.open_ioctx(pool), b.open_ioctx(pool)
        name = new_image(io_a, "handoff")
        img_a = rbd.Image(io_a, name)
        img_a.write(b"1", 0)
        img_a.flush()
        img_a.write(b"A" * 4096, 8192)  # cached, the lock is a's
        img_b = rbd.Image(io_b, name)
        img_b.write(b"B" * 4096, 0)  # b takes the lock: a writes back before letting go
        assert img_b.read(8192, 4096) == b"A" * 4096
        img_b.close()
        img_a.close()
    finally:
        a.shutdown()
        b.shutdown()


def test_max_dirty_blocks_writers_and_nothing_is_lost(cluster: TestCluster, pool: str) -> None:
    r = connect(cluster, rbd_cache_max_dirty="64K", rbd_cache_target_dirty="32K", rbd_cache_max_dirty_age="60")
    try:
        io = r.open_ioctx(pool)
        name = new_image(io, "small")
        with rbd.Image(io, name) as img:
            img.flush()
            data = os.urandom(2 * M)
            for off in range(0, len(data), 16384):
                img.write(data[off:off + 16384], off)
            img.flush()
            assert cluster_bytes(io, img.id(), 0, len(data)) == data
    finally:
        r.shutdown()


def test_dirty_data_is_written_back_after_max_age(cluster: TestCluster, pool: str) -> None:
    r = connect(cluster, rbd_cache_max_dirty_age="0.2")
    try:
        io = r.open_ioctx(pool)
        name = new_image(io, "age")
        with rbd.Image(io, name) as img:
            img.flush()
            img.write(b"q" * 4096, 0)
            deadline = time.monotonic() + 10
            while cluster_bytes(io, img.id(), 0, 4096) != b"q" * 4096:
                assert time.monotonic() < deadline, "dirty data not written back after max age"
                time.sleep(0.05)
    finally:
        r.shutdown()


def test_rbd_cache_false_writes_through_after_flush(cluster: TestCluster, pool: str,
                                                    clients: tuple[rados.Ioctx, rados.Ioctx]) -> None:
    _, io_b = clients
    r = connect(cluster, rbd_cache="false")
    try:
        io = r.open_ioctx(pool)
        name = new_image(io, "nocache")
        with rbd.Image(io, name) as img:
            img.flush()
            img.write(b"n" * 4096, 0)
            assert cluster_bytes(io_b, img.id(), 0, 4096) == b"n" * 4096
    finally:
        r.shutdown()


CRASH_SCRIPT = textwrap.dedent("""
    import sys, time
    import rados, rbd
    conf, pool, name = sys.argv[1:4]
    r = rados.Rados(conffile=conf, conf={"rbd_cache": "true", "rbd_cache_writethrough_until_flush": "true",
                                         "rbd_cache_max_dirty_age": "60", "rbd_cache_target_dirty": "16M"})
    r.connect()
    img = rbd.Image(r.open_ioctx(pool), name)
    img.write(b"A" * (1 << 20), 0)
    img.flush()
    img.write(b"B" * (1 << 20), 4 << 20)
    print("ready", flush=True)
    time.sleep(600)
""")


def test_crash_before_flush_loses_only_unflushed_writes(cluster: TestCluster, pool: str,
                                                        clients: tuple[rados.Ioctx, rados.Ioctx]) -> None:
    _, io_b = clients
    name = new_image(io_b, "crash", 12 * M)
    proc = subprocess.Popen([sys.executable, "-c", CRASH_SCRIPT, cluster.conf_path, pool, name],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cluster.env())
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == b"ready", proc.stderr.read() if proc.stderr else line
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    with rbd.Image(io_b, name) as img:  # breaks the dead owner's lock
        image = img.read(0, 12 * M)
    assert image[:M] == b"A" * M
    b_region = image[4 * M:5 * M]
    assert b_region in (b"B" * M, bytes(M)), "the unflushed write is torn or corrupt"
    assert image[M:4 * M] == bytes(3 * M) and image[5 * M:] == bytes(7 * M)


def test_failed_writeback_is_reported_and_retried(cluster: TestCluster, pool: str,
                                                  clients: tuple[rados.Ioctx, rados.Ioctx]) -> None:
    """OSDs stopped (SIGSTOP) while dirty bytes are written back: the flush fails with the
    op timeout, the bytes stay cached (reads still see them), and once the OSDs run again
    the next flush writes them."""
    _, io_b = clients
    r = connect(cluster, rados_osd_op_timeout="2", **HOLD)
    osds = [f"osd.{i}" for i in range(cluster.osds)]
    try:
        io = r.open_ioctx(pool)
        name = new_image(io, "faulty")
        with rbd.Image(io, name) as img:
            image_id = img.id()
            img.write(b"0" * 4096, 0)
            img.flush()
            img.write(b"F" * 4096, 0)
            for osd in osds:
                cluster.kill(osd, signal.SIGSTOP)
            try:
                with pytest.raises(rbd.Error):
                    img.flush()
            finally:
                for osd in osds:
                    cluster.kill(osd, signal.SIGCONT)
            assert img.read(0, 4096) == b"F" * 4096
            img.flush()
            assert cluster_bytes(io_b, image_id, 0, 4096) == b"F" * 4096
    finally:
        r.shutdown()

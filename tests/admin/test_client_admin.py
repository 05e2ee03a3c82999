"""Client-side options from the Ceph OpenStack guide's `[client]` section, on a real cluster:
admin sockets per client instance, the client log file, `ceph daemon`, daemons' sockets,
and `rbd concurrent management ops` bounding management operations.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import rados
import rbd
from shoal.admin.asok_client import daemon_command
from shoal.cli.rbd_streams_cmd import export_raw
from shoal.testing.cluster import TestCluster
from tests.rbd.rbd_helpers import rbd_pool

POOL = "asok_test"
M = 1 << 20
REAL_CEPH = "/usr/bin/ceph"


@pytest.fixture(scope="module")
def pool(cluster: TestCluster) -> Iterator[str]:
    with rbd_pool(cluster, POOL) as name:
        yield name


@pytest.fixture
def guide_dir() -> Iterator[Path]:
    """Stand-ins for /var/run/ceph/guests and /var/log/qemu (short: sun_path is 107 bytes)."""
    d = Path(tempfile.mkdtemp(prefix="guide-", dir="/tmp"))
    (d / "guests").mkdir()
    (d / "qemu").mkdir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


def guide_conf(cluster: TestCluster, d: Path) -> str:
    """The cluster's ceph.conf plus the guide's [client] section, paths moved to `d`."""
    text = Path(cluster.conf_path).read_text()
    text += f"""
[client]
    rbd cache = true
    rbd cache writethrough until flush = true
    admin socket = {d}/guests/$cluster-$type.$id.$pid.$cctid.asok
    log file = {d}/qemu/qemu-guest-$pid.log
    rbd concurrent management ops = 20
"""
    path = d / "ceph.conf"
    path.write_text(text)
    return str(path)


def sockets(d: Path) -> list[Path]:
    return sorted((d / "guests").glob("*.asok"))


def perf(path: Path | str) -> dict[str, Any]:
    return json.loads(daemon_command(str(path), ["perf", "dump"]))


def librbd(dump: dict[str, Any]) -> dict[str, Any]:
    (group,) = [v for k, v in dump.items() if k.startswith("librbd-")]
    return group


def test_guide_client_section(cluster: TestCluster, pool: str, guide_dir: Path) -> None:
    conf = guide_conf(cluster, guide_dir)
    r1 = rados.Rados(conffile=conf)
    r2 = rados.Rados(conffile=conf)
    root_handlers = list(logging.getLogger().handlers)
    r1.connect()
    r2.connect()
    try:
        # One socket per client instance: same pid, different $cctid.
        socks = sockets(guide_dir)
        assert len(socks) == 2
        pat = re.compile(rf"ceph-client\.admin\.{os.getpid()}\.(\d+)\.asok")
        ids = [pat.fullmatch(s.name) for s in socks]
        assert all(ids) and ids[0].group(1) != ids[1].group(1)  # type: ignore[union-attr]
        assert r1.conf_get("rbd_concurrent_management_ops") == "20"
        assert r1.conf_get("rbd_cache_writethrough_until_flush") == "true"
        mine = str(guide_dir / "guests" / f"ceph-client.admin.{os.getpid()}.{r1._conf._cctid}.asok")
        assert json.loads(daemon_command(mine, ["config", "get", "rbd_concurrent_management_ops"])) == \
            {"rbd_concurrent_management_ops": "20"}

        io = r1.open_ioctx(pool)
        rbd.RBD().create(io, "guest-disk", 8 * M)
        with rbd.Image(io, "guest-disk") as img:
            img.write(b"a" * 4096, 0)
            img.flush()
            img.write(b"b" * 8192, 8192)
            img.read(0, 4096)
            # `ceph daemon SOCK perf dump`, our CLI: the image's counters are there and honest.
            proc = cluster.cli("ceph", "daemon", mine, "perf", "dump")
            assert proc.returncode == 0, proc.stderr
            counters = librbd(json.loads(proc.stdout))
            assert (counters["wr"], counters["wr_bytes"]) == (2, 4096 + 8192)
            assert (counters["rd"], counters["rd_bytes"], counters["flush"]) == (1, 4096, 1)
            assert counters["wr_latency"]["avgcount"] == 2
            assert json.loads(proc.stdout)["objecter"]["op"] > 0
            other = [s for s in socks if str(s) != mine][0]
            assert not any(k.startswith("librbd-") for k in perf(other))  # the other client has no image
        # The log file, with this process's pid, holds the client's events.
        log_file = guide_dir / "qemu" / f"qemu-guest-{os.getpid()}.log"
        assert log_file.exists()
        assert "event=client_connected" in log_file.read_text()
        assert logging.getLogger().handlers == root_handlers  # the host's root logger is untouched
        rbd.RBD().remove(io, "guest-disk")
        io.close()
    finally:
        r1.shutdown()
        r2.shutdown()
    assert sockets(guide_dir) == []  # removed on shutdown
    assert not any(isinstance(h, logging.FileHandler) for h in logging.getLogger("shoal").handlers)


def test_ceph_admin_daemon_cli(cluster: TestCluster, guide_dir: Path) -> None:
    conf = guide_conf(cluster, guide_dir)
    with rados.Rados(conffile=conf) as r:
        (sock,) = sockets(guide_dir)
        proc = cluster.cli("ceph", "--admin-daemon", str(sock), "config", "get", "rbd_cache")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == b'{\n    "rbd_cache": "true"\n}\n'
        proc = cluster.cli("ceph", "daemon", str(sock), "help")
        assert "perf dump [<logger>] [<counter>]" in json.loads(proc.stdout)
        proc = cluster.cli("ceph", "daemon", str(sock), "config", "set", "debug_rbd", "5")
        assert json.loads(proc.stdout) == {"success": ""}
        assert r.conf_get("debug_rbd") == "5/5"
        proc = cluster.cli("ceph", "daemon", str(sock), "no", "such", "command")
        assert proc.returncode == 22 and b"admin_socket:" in proc.stderr
    proc = cluster.cli("ceph", "daemon", str(sock), "help")
    assert proc.returncode == 22  # gone with the client


def test_daemons_serve_admin_sockets(cluster: TestCluster) -> None:
    run = Path(cluster.conf_path).parent / "run"
    assert (run / "ceph-osd.0.asok").exists() and (run / "ceph-mon.a.asok").exists()
    # By name: the path comes from the daemon's admin_socket option in ceph.conf.
    proc = cluster.cli("ceph", "-c", cluster.conf_path, "daemon", "osd.0", "config", "get", "osd_data")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["osd_data"].endswith("/osd.0")
    proc = cluster.cli("ceph", "daemon", str(run / "ceph-mon.a.asok"), "version")
    assert json.loads(proc.stdout)["version"] == "16.2.15"


@pytest.mark.ceph_oracle
@pytest.mark.skipif(not os.path.exists(REAL_CEPH), reason="Debian's ceph-common is not installed")
def test_real_ceph_daemon_talks_to_our_socket(cluster: TestCluster, guide_dir: Path) -> None:
    """Ceph's own `ceph --admin-daemon` (get_command_descriptions, validation, framing)."""
    import subprocess

    conf = guide_conf(cluster, guide_dir)
    # Debian's python3-rados, not ours: no PYTHONPATH (conftest points it at this checkout).
    env = {k: v for k, v in os.environ.items() if k not in ("CEPH_CONF", "CEPH_ARGS", "PYTHONPATH")}
    with rados.Rados(conffile=conf):
        (sock,) = sockets(guide_dir)

        def real(*words: str) -> bytes:
            proc = subprocess.run([REAL_CEPH, "--admin-daemon", str(sock), *words], capture_output=True,
                                  env=env, timeout=60)
            assert proc.returncode == 0, proc.stderr
            return proc.stdout

        assert "config get <var>" in json.loads(real("help"))
        assert json.loads(real("config", "get", "rbd_cache")) == {"rbd_cache": "true"}
        assert json.loads(real("version"))["release"] == "pacific"
        assert "objecter" in json.loads(real("perf", "dump"))
        assert real("config", "get", "rbd_cache") == daemon_command(str(sock), ["config", "get", "rbd_cache"])
        proc = subprocess.run([REAL_CEPH, "daemon", str(sock), "config", "set", "rbd_cache_max_dirty", "2M"],
                              capture_output=True, env=env, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(daemon_command(str(sock), ["config", "get", "rbd_cache_max_dirty"])) == \
            {"rbd_cache_max_dirty": "2097152"}


# -- rbd concurrent management ops ------------------------------------------------------------------
LIMIT = 3


class NoProgress:
    def update(self, *_: int) -> None:
        pass


def objecter(path: Path) -> dict[str, Any]:
    return perf(path)["objecter"]  # type: ignore[no-any-return]


def test_management_ops_are_bounded(cluster: TestCluster, pool: str, guide_dir: Path) -> None:
    """copy, export, flatten and remove keep at most rbd_concurrent_management_ops object ops in flight
    (the client's op_active_max high-water mark, reset before each operation)."""
    conf = guide_conf(cluster, guide_dir)
    r = rados.Rados(conffile=conf, conf={"rbd_concurrent_management_ops": str(LIMIT)})
    r.connect()
    try:
        (sock,) = sockets(guide_dir)
        io = r.open_ioctx(pool)
        objects = 24
        rbd.RBD().create(io, "mgmt-src", objects * 4 * M, order=22)
        with rbd.Image(io, "mgmt-src") as img:
            for n in range(objects):
                img.write(b"x" * 4096, n * 4 * M)
            img.create_snap("base")
            img.protect_snap("base")
        rbd.RBD().clone(io, "mgmt-src", "base", io, "mgmt-child", features=rbd.RBD_FEATURE_LAYERING)

        def bounded(what: str, fn: Any, parallel: bool = True) -> None:
            daemon_command(str(sock), ["perf", "reset", "all"])
            fn()
            peak = objecter(sock)["op_active_max"]
            assert peak <= LIMIT, f"{what}: {peak} object ops in flight (limit {LIMIT})"
            # The async operations do use the bound (export's reader threads may not overlap).
            assert peak > 1 or not parallel, f"{what}: ran one object op at a time"

        with rbd.Image(io, "mgmt-src", snapshot="base", read_only=True) as src:
            bounded("copy", lambda: src.copy(io, "mgmt-copy"))
        # `rbd export`'s reader (the CLI passes rbd_concurrent_management_ops as the window).
        with rbd.Image(io, "mgmt-src", read_only=True) as src, open(guide_dir / "export.raw", "wb") as f:
            bounded("export", lambda: export_raw(src, f.fileno(), True, LIMIT, NoProgress()), False)
        assert (guide_dir / "export.raw").stat().st_size == objects * 4 * M
        with rbd.Image(io, "mgmt-child") as child:
            bounded("flatten", child.flatten)
        bounded("remove", lambda: rbd.RBD().remove(io, "mgmt-copy"))
        rbd.RBD().remove(io, "mgmt-child")
        with rbd.Image(io, "mgmt-src") as img:
            img.unprotect_snap("base")
            img.remove_snap("base")
        rbd.RBD().remove(io, "mgmt-src")
        io.close()
    finally:
        r.shutdown()

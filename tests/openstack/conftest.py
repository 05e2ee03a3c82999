"""The guide's cluster for the OpenStack suite, and a runner for the real OpenStack code.

One cluster per session, set up with the commands of Ceph's "Block Devices and
OpenStack" guide as printed there: the four pools with 128 PGs, `rbd pool init`, the
glance/cinder/cinder-backup users with the guide's caps, their keyrings where the
guide puts them (next to ceph.conf, named `$cluster.$name.keyring`), and the guide's
`[client]` section in ceph.conf.

Cinder and Nova register the same global oslo.config options with different help
texts, so they cannot be imported into one process (DuplicateOptError), and eventlet
monkey-patching must happen before anything else is imported. Every flow therefore
runs in a fresh interpreter (`flow_runner.py`), which prints one JSON line with what it
checked; the summary table at the end of the run is built from those lines.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shoal.testing.cluster import TestCluster

HERE = Path(__file__).resolve().parent
POOLS = ("volumes", "images", "backups", "vms")
# The guide's users, caps as printed there.
USERS = {
    "client.glance": ["mon", "profile rbd", "osd", "profile rbd pool=images", "mgr", "profile rbd pool=images"],
    "client.cinder": ["mon", "profile rbd",
                      "osd", "profile rbd pool=volumes, profile rbd pool=vms, profile rbd-read-only pool=images",
                      "mgr", "profile rbd pool=volumes, profile rbd pool=vms"],
    "client.cinder-backup": ["mon", "profile rbd", "osd", "profile rbd pool=backups",
                             "mgr", "profile rbd pool=backups"],
}
CLIENT_SECTION = """
[client]
rbd cache = true
rbd cache writethrough until flush = true
admin socket = {dir}/guests/$cluster-$type.$id.$pid.$cctid.asok
log file = {dir}/qemu/qemu-guest-$pid.log
rbd concurrent management ops = 20
"""

_results: list[dict[str, object]] = []


@dataclass
class GuideCluster:
    cluster: TestCluster
    conf: str  # the ceph.conf every OpenStack service is pointed at
    fsid: str
    dir: str

    def env(self) -> dict[str, str]:
        env = self.cluster.env()
        env["SHOAL_OS_CONF"] = self.conf
        env["SHOAL_OS_FSID"] = self.fsid
        env["SHOAL_OS_DIR"] = self.dir
        env["PYTHONWARNINGS"] = "ignore::DeprecationWarning"  # eventlet's own deprecation banner
        return env


def _check(proc: subprocess.CompletedProcess[bytes], what: str) -> str:
    assert proc.returncode == 0, f"{what}: exit {proc.returncode}: {proc.stderr.decode()}"
    return proc.stdout.decode()


@pytest.fixture(scope="session")
def guide(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuideCluster]:
    directory = str(tmp_path_factory.mktemp("openstack"))
    c = TestCluster(os.path.join(directory, "cluster"), osds=3)
    c.start(extra_conf="mon allow pool delete = true")
    try:
        for pool in POOLS:
            _check(c.cli("ceph", "osd", "pool", "create", pool, "128"), f"pool create {pool}")
        for pool in POOLS:
            _check(c.cli("rbd", "pool", "init", pool), f"rbd pool init {pool}")
        etc = os.path.join(directory, "etc-ceph")
        os.makedirs(etc)
        for entity, caps in USERS.items():
            keyring = _check(c.cli("ceph", "auth", "get-or-create", entity, *caps), f"auth {entity}")
            with open(os.path.join(etc, f"ceph.{entity}.keyring"), "w") as f:
                f.write(keyring)
        # the admin node of the guide has the admin keyring next to ceph.conf too
        with open(c.keyring_path("client.admin")) as src, open(os.path.join(etc, "ceph.client.admin.keyring"), "w") as f:
            f.write(src.read())
        fsid = _check(c.cli("ceph", "fsid"), "fsid").strip()
        with open(c.conf_path) as f:
            conf_text = f.read()
        conf_text = conf_text.replace(f"keyring = {c.dir}/$cluster.$name.keyring",
                                      f"keyring = {etc}/$cluster.$name.keyring")
        conf = os.path.join(etc, "ceph.conf")
        with open(conf, "w") as f:
            f.write(conf_text + CLIENT_SECTION.format(dir=directory))
        yield GuideCluster(c, conf, fsid, directory)
    finally:
        c.down()


def run_flow(guide: GuideCluster, module: str, flow: str, *, eventlet: bool = False,
             timeout: float = 300.0) -> dict[str, object]:
    """Run FLOW of tests/openstack/MODULE.py in a fresh interpreter; return its report."""
    argv = [sys.executable, str(HERE / "flow_runner.py"), module, flow]
    if eventlet:
        argv.append("--eventlet")
    env = guide.env()
    env["SHOAL_FLOW_TIMEOUT"] = str(timeout - 30)
    proc = subprocess.run(argv, capture_output=True, env=env, timeout=timeout, cwd=guide.dir)
    out = proc.stdout.decode()
    assert proc.returncode == 0, (f"{module}.{flow} failed (exit {proc.returncode})\n--- stdout\n{out[-4000:]}"
                                  f"\n--- stderr\n{proc.stderr.decode()[-8000:]}")
    report = json.loads(out.strip().splitlines()[-1])
    _results.append(report)
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _results:
        return
    tr = terminalreporter
    tr.section("OpenStack flows on Shoal")
    tr.write_line(f"{'flow':<44} {'mode':<8} {'calls':>6} {'cli':>4} {'bytes verified':>15}")
    for r in _results:
        tr.write_line(f"{r['flow']:<44} {r['mode']:<8} {r['calls']:>6} {r['cli']:>4} {r['bytes']:>15,}")
    tr.write_line(f"{len(_results)} flows, {sum(int(r['calls']) for r in _results)} rados/rbd calls, "  # type: ignore[call-overload]
                  f"{sum(int(r['bytes']) for r in _results):,} bytes verified")  # type: ignore[call-overload]

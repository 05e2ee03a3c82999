"""A local cluster in one directory: `shoal up`, `shoal down`, `shoal status`.

Layout of DIR: `ceph.conf`, `mon.a/` and `osd.N/` (daemon data), `log/NAME.log`,
`pids/NAME.pid`, `run/`. `down` stops exactly the processes whose pid files it
finds, after checking that each pid still runs a Shoal daemon for this directory.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

from shoal.auth.keyring import Entry, write_keyring
from shoal.auth.keys import CryptoKey

CONF_TEMPLATE = """\
[global]
fsid = {fsid}
mon host = 127.0.0.1:{mon_port}
mon initial members = a
auth cluster required = {auth}
auth service required = {auth}
auth client required = {auth}
keyring = {dir}/$cluster.$name.keyring
osd crush chooseleaf type = 0
osd pool default size = {size}
osd pool default min size = {min_size}
run dir = {dir}/run

[mon]
mon data = {dir}/$name
log file = {dir}/log/$name.log

[osd]
osd data = {dir}/$name
log file = {dir}/log/$name.log
osd objectstore = {objectstore}
"""


@dataclass
class Daemon:
    name: str  # "mon.a", "osd.0"
    module: str  # "shoal.mon"
    daemon_id: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalCluster:
    def __init__(self, directory: str) -> None:
        self.dir = os.path.abspath(directory)
        self.conf_path = os.path.join(self.dir, "ceph.conf")

    # -- files -------------------------------------------------------------------------------
    def pid_path(self, name: str) -> str:
        return os.path.join(self.dir, "pids", f"{name}.pid")

    def daemons(self, osds: int) -> list[Daemon]:
        return [Daemon("mon.a", "shoal.mon", "a")] + [Daemon(f"osd.{i}", "shoal.osd", str(i)) for i in range(osds)]

    def existing_osds(self) -> int:
        if not os.path.isdir(self.dir):
            return 0
        return sum(1 for d in os.listdir(self.dir) if d.startswith("osd."))

    def write_conf(self, osds: int, objectstore: str, auth: str = "cephx") -> None:
        size = min(3, osds)
        self.write_keyrings(osds)
        text = CONF_TEMPLATE.format(fsid=uuid.uuid4(), mon_port=free_port(), dir=self.dir, size=size,
                                    min_size=max(1, size - size // 2), objectstore=objectstore, auth=auth)
        tmp = self.conf_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.conf_path)

    def keyring_path(self, entity: str) -> str:
        return os.path.join(self.dir, f"ceph.{entity}.keyring")

    def write_keyrings(self, osds: int) -> None:
        """Keys for the monitor, client.admin and every OSD; the monitor's keyring holds
        them all (its auth database starts from it), each other daemon gets its own."""
        admin = Entry("client.admin", CryptoKey.generate(),
                      {"mon": "allow *", "osd": "allow *", "mgr": "allow *"})
        daemons = [Entry(f"osd.{i}", CryptoKey.generate(),
                         {"mon": "allow profile osd", "osd": "allow *", "mgr": "allow profile osd"})
                   for i in range(osds)]
        mon = Entry("mon.", CryptoKey.generate(), {"mon": "allow *"})
        write_keyring(self.keyring_path("mon.a"), [mon, admin, *daemons])
        write_keyring(self.keyring_path("client.admin"), [admin])
        for entry in daemons:
            write_keyring(self.keyring_path(entry.name), [entry])

    # -- processes -----------------------------------------------------------------------------
    def running_pid(self, name: str) -> int | None:
        """The pid in NAME's pid file if that process is alive and is our daemon."""
        try:
            with open(self.pid_path(name)) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return None
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().split(b"\0")
        except OSError:
            return None
        if self.conf_path.encode() not in cmdline or not any(a.startswith(b"shoal.") for a in cmdline):
            return None  # the pid was reused by an unrelated process
        return pid

    def start_daemon(self, d: Daemon) -> int:
        pid = self.running_pid(d.name)
        if pid is not None:
            return pid
        os.makedirs(os.path.join(self.dir, d.name), exist_ok=True)
        out = open(os.path.join(self.dir, "log", f"{d.name}.out"), "ab")  # noqa: SIM115 - handed to the child
        proc = subprocess.Popen([sys.executable, "-m", d.module, "-i", d.daemon_id, "-c", self.conf_path],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
        out.close()
        tmp = self.pid_path(d.name) + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{proc.pid}\n")
        os.replace(tmp, self.pid_path(d.name))
        return proc.pid

    def stop_daemon(self, name: str, sig: int = signal.SIGTERM, wait: float = 10.0) -> bool:
        pid = self.running_pid(name)
        if pid is None:
            self._remove_pid(name)
            return False
        os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and self.running_pid(name) is not None:
            if _reaped(pid):
                break
            time.sleep(0.05)
        if self.running_pid(name) is not None:
            os.kill(pid, signal.SIGKILL)
            while self.running_pid(name) is not None and not _reaped(pid):
                time.sleep(0.05)
        self._remove_pid(name)
        return True

    def _remove_pid(self, name: str) -> None:
        try:
            os.unlink(self.pid_path(name))
        except FileNotFoundError:
            pass

    def pid_names(self) -> list[str]:
        try:
            return sorted(f[:-4] for f in os.listdir(os.path.join(self.dir, "pids")) if f.endswith(".pid"))
        except FileNotFoundError:
            return []

    # -- commands ---------------------------------------------------------------------------------
    def up(self, osds: int | None = None, timeout: float = 60.0, objectstore: str = "sqlite") -> float:
        started = time.monotonic()
        for sub in ("pids", "log", "run"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        if not os.path.exists(self.conf_path):
            osds = 3 if osds is None else osds
            self.write_conf(osds, objectstore)
        else:
            osds = osds if osds is not None else max(self.existing_osds(), 1)
        for d in self.daemons(osds):
            self.start_daemon(d)
        self.wait_healthy(osds, timeout)
        return time.monotonic() - started

    def down(self) -> list[str]:
        stopped = []
        names = self.pid_names()
        # OSDs first, so the monitor does not spend its last moments marking them down.
        for name in sorted(names, key=lambda n: n.startswith("mon.")):
            if self.stop_daemon(name):
                stopped.append(name)
        return stopped

    def wait_healthy(self, osds: int, timeout: float) -> dict[str, object]:
        """Until every OSD is up and every PG active+clean (or raise TimeoutError)."""
        from shoal.cluster.admin_client import admin_client

        deadline = time.monotonic() + timeout
        with admin_client(self.conf_path, timeout) as client:
            while True:
                status = client.command_json({"prefix": "status", "format": "json"})
                osdmap = status["osdmap"]
                pgmap = status["pgmap"]
                total = int(pgmap.get("num_pgs", 0))
                clean = sum(int(s["count"]) for s in pgmap.get("pgs_by_state", [])
                            if s["state_name"] == "active+clean")
                if int(osdmap.get("num_up_osds", 0)) >= osds and clean == total:
                    return status
                if time.monotonic() > deadline:
                    dead = [d.name for d in self.daemons(osds) if self.running_pid(d.name) is None]
                    raise TimeoutError(f"cluster in {self.dir} not healthy after {timeout:g}s: "
                                       f"{osdmap.get('num_up_osds')}/{osds} OSDs up, {clean}/{total} PGs "
                                       f"active+clean; not running: {dead or 'none'} (see {self.dir}/log)")
                time.sleep(0.05)

    def status(self) -> list[tuple[str, int | None]]:
        return [(name, self.running_pid(name)) for name in self.pid_names()]


def _reaped(pid: int) -> bool:
    """Reap `pid` if it is our exited child; True once it is gone."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == pid
    except ChildProcessError:
        return not os.path.exists(f"/proc/{pid}")


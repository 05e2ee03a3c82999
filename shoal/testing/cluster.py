"""Test harness: a real local cluster in a temp dir, plus fault injection.

Used by the test suite and benchmarks; it starts the same processes `shoal up` does
and stops exactly those (by pid file), even when a test fails.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from shoal.cluster.local import LocalCluster


class TestCluster(LocalCluster):
    __test__ = False  # a helper, not a test class
    def __init__(self, directory: str, osds: int = 3, auth: str = "cephx") -> None:
        super().__init__(directory)
        self.osds = osds
        self.auth = auth

    def start(self, timeout: float = 60.0, extra_conf: str = "") -> TestCluster:
        os.makedirs(self.dir, exist_ok=True)
        if not os.path.exists(self.conf_path):
            self.write_conf(self.osds, "sqlite", auth=self.auth)
            if extra_conf:
                with open(self.conf_path, "a") as f:
                    f.write("\n[global]\n" + extra_conf + "\n")
        self.up(self.osds, timeout=timeout)
        return self

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "CEPH_ARGS"}
        env["CEPH_CONF"] = self.conf_path
        return env

    def cli(self, *argv: str, input: bytes | None = None, check: bool = False,
            timeout: float = 120.0) -> subprocess.CompletedProcess[bytes]:
        """Run `ceph`/`rados`/`rbd`/`shoal` (as python -m entry points) against this cluster."""
        tool, args = argv[0], list(argv[1:])
        module = {"ceph": "shoal.cli.ceph_cmd", "rados": "shoal.cli.rados_cmd", "rbd": "shoal.cli.rbd_cmd",
                  "shoal": "shoal.cli.shoal_cmd"}[tool]
        return subprocess.run([sys.executable, "-m", module, *args], input=input, capture_output=True,
                              env=self.env(), check=check, timeout=timeout)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        pid = self.running_pid(name)
        assert pid is not None, f"{name} is not running"
        os.kill(pid, sig)
        if sig == signal.SIGKILL:
            while self.running_pid(name) is not None:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
                time.sleep(0.02)

    def restart(self, name: str) -> None:
        kind, daemon_id = name.split(".", 1)
        from shoal.cluster.local import Daemon

        self.start_daemon(Daemon(name, f"shoal.{kind}", daemon_id))

    def admin(self, timeout: float = 30.0) -> Any:
        from shoal.cluster.admin_client import admin_client

        return admin_client(self.conf_path, timeout)

"""What the NBD tests share: the real client tools (a missing one fails, it does not skip:
scripts/install.sh installs them) and a `shoal nbd serve` child process."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from shoal.testing.cluster import TestCluster


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed: run scripts/install.sh test (it installs qemu-utils, libnbd-bin, fio)"
    return path


def run(*argv: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([tool(argv[0]), *argv[1:]], capture_output=True, text=True, timeout=timeout)
    if check:
        assert done.returncode == 0, f"{' '.join(argv)} exited {done.returncode}: {done.stdout}{done.stderr}"
    return done


def nbd_pool(cluster: TestCluster, name: str) -> TestCluster:
    """An rbd pool for one NBD test module (left to the session cluster's teardown)."""
    cluster.cli("ceph", "osd", "pool", "create", name, "8")
    cluster.cli("rbd", "pool", "init", name, check=True)
    return cluster


class Gateway:
    """`shoal nbd serve --socket SOCK ARGS…` as a child process, started once it printed its URI."""

    def __init__(self, cluster: TestCluster, sock: Path, *args: str) -> None:
        self.sock = sock
        self.log = Path(f"{sock}.log")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shoal.cli.shoal_cmd", "nbd", "serve", "--socket", str(sock), *args],
            env=cluster.env(), stdout=subprocess.PIPE, stderr=self.log.open("wb"), text=True)
        assert self.proc.stdout is not None
        self.line = self.proc.stdout.readline().strip()
        assert self.line.endswith(f"+unix:///?socket={sock}"), (
            f"gateway did not start: {self.line!r}\n{self.log.read_text()}")

    def uri(self, name: str) -> str:
        return f"nbd+unix:///{name}?socket={self.sock}"

    def stop(self) -> None:
        """SIGTERM: the gateway must exit 0."""
        self.proc.terminate()
        assert self.proc.wait(30) == 0, self.log.read_text()

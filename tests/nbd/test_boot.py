"""Boot from volume (issue 6): a VM boots from an RBD clone served by `shoal nbd serve`.

A tiny bootable disk (tests/nbd/bootdisk.py: syslinux + Debian kernel + busybox initramfs)
is imported as an image, snapshotted and protected; a volume is cloned from the snapshot,
as OpenStack does for boot-from-volume. qemu boots the volume over NBD under TCG with
discard=unmap (hw_disk_discard=unmap). The guest writes a marker and a fill file, pauses
while the test measures what the volume stores, deletes the fill, runs fstrim and powers off.
The test then reads the marker and the guest's filesystem back through python-rbd and checks
that the trim freed the fill's objects in the cluster.
"""

from __future__ import annotations

import os
import re
import secrets
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

import rados
import rbd
from shoal.testing.cluster import TestCluster
from tests.nbd import bootdisk
from tests.nbd.bootdisk_qemu import boot_guest
from tests.rbd.rbd_helpers import rbd_ok, rbd_pool

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

POOL = "bootvol"
BASE, SNAP, VOLUME = "tiny-linux", "gold", "vm-disk"
FEATURES = (rbd.RBD_FEATURE_LAYERING | rbd.RBD_FEATURE_EXCLUSIVE_LOCK | rbd.RBD_FEATURE_OBJECT_MAP
            | rbd.RBD_FEATURE_FAST_DIFF)
BOOT_TIMEOUT = 300.0
READY_TIMEOUT = 60.0
MiB = bootdisk.MiB


def _unavailable(reason: str) -> NoReturn:
    # CI installs the boot packages (tests/nbd/boot-packages.txt): there a missing tool is a
    # broken install, not a reason to quietly skip the boot test.
    if os.environ.get("CI"):
        pytest.fail(f"boot-from-volume test cannot run in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def boot_disk() -> Path:
    if not shutil.which("qemu-system-x86_64"):
        _unavailable("qemu-system-x86_64 not found (apt-get install qemu-system-x86)")
    try:
        return bootdisk.ensure_disk()
    except bootdisk.BootDiskUnavailable as exc:
        _unavailable(str(exc))


@pytest.fixture(scope="module")
def pool(cluster: TestCluster) -> Iterator[str]:
    with rbd_pool(cluster, POOL) as name:
        rbd_ok(cluster, "pool", "init", name)
        yield name


@pytest.fixture(scope="module")
def ioctx(cluster: TestCluster, pool: str) -> Iterator[rados.Ioctx]:
    r = rados.Rados(conffile=cluster.conf_path)
    r.connect()
    try:
        with r.open_ioctx(pool) as io:
            yield io
    finally:
        r.shutdown()


class Gateway:
    """`shoal nbd serve --socket PATH EXPORT` as a child process, stopped by its own pid."""

    def __init__(self, cluster: TestCluster, sock: Path, export: str) -> None:
        self.log = sock.with_suffix(".log")
        self.logf = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shoal.cli.shoal_cmd", "nbd", "serve", "--socket", str(sock), export],
            stdout=subprocess.PIPE, stderr=self.logf, env=cluster.env())
        self.uri = self._first_line(READY_TIMEOUT)
        if not self.uri:
            self.stop()
            pytest.fail(f"shoal nbd serve did not listen within {READY_TIMEOUT:.0f}s "
                        f"(exit status {self.proc.returncode}):\n{self.log_text()}")

    def _first_line(self, timeout: float) -> str:
        """The gateway prints its URI once it listens: that line is the readiness signal.
        Read with a deadline, so a gateway stuck connecting to the cluster fails the test
        instead of hanging it."""
        assert self.proc.stdout is not None
        fd, buf = self.proc.stdout.fileno(), b""
        deadline = time.monotonic() + timeout
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return ""
            chunk = os.read(fd, 4096)
            if not chunk:
                return ""
            buf += chunk
        return buf.split(b"\n", 1)[0].decode().strip()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self.logf.close()
        return self.proc.returncode


def stored_bytes(io: rados.Ioctx, prefix: str) -> dict[str, int]:
    """Size of every data object of one image, as the OSDs store it."""
    return {o.key: io.stat(o.key)[0] for o in io.list_objects() if o.key.startswith(prefix + ".")}


def read_range(image: rbd.Image, off: int, length: int) -> bytes:
    return b"".join(image.read(o, min(MiB, off + length - o)) for o in range(off, off + length, MiB))


def test_boot_from_volume(cluster: TestCluster, boot_disk: Path, pool: str, ioctx: rados.Ioctx,
                          tmp_path: Path, record_property: pytest.RecordProperty) -> None:
    # The golden image: imported sparse, snapshotted, protected, cloned (a Glance image and a
    # Cinder volume made from it).
    rbd_ok(cluster, "import", "--no-progress", str(boot_disk), f"{pool}/{BASE}")
    rbd_ok(cluster, "snap", "create", f"{pool}/{BASE}@{SNAP}")
    rbd_ok(cluster, "snap", "protect", f"{pool}/{BASE}@{SNAP}")
    rbd.RBD().clone(ioctx, BASE, SNAP, ioctx, VOLUME, features=FEATURES)

    # The nonce makes the marker this run's; "pause" asks the guest to wait for the test
    # between writing its fill and trimming it.
    nonce = secrets.token_hex(8)
    with rbd.Image(ioctx, VOLUME) as vol:
        assert vol.features() & FEATURES == FEATURES
        assert vol.parent_info()[1:] == (BASE, SNAP)
        vol.write(f"SHOAL-NONCE {nonce} pause\n".encode().ljust(bootdisk.SECTOR, b"\0"), bootdisk.NONCE_OFFSET)
        st = vol.stat()
        prefix, obj_size = st["block_name_prefix"], st["obj_size"]

    sock = tmp_path / "nbd.sock"
    gateway = Gateway(cluster, sock, f"{pool}/{VOLUME}")
    paused: dict[str, int] = {}
    try:
        drive = f"nbd:unix:{sock}:exportname={pool}/{VOLUME}"

        def measure() -> None:
            # The guest synced before pausing: its NBD FLUSH means the fill is in the OSDs now.
            paused.update(stored_bytes(ioctx, prefix))

        run = boot_guest(drive, timeout=BOOT_TIMEOUT, on_pause=measure)
    finally:
        rc = gateway.stop()
    record_property("boot_seconds", round(run.seconds, 1))
    print(f"guest ran {run.seconds:.1f}s under TCG; events: {run.events()}")
    context = f"serial console:\n{run.tail()}\ngateway log:\n{gateway.log_text()}"

    events = run.events()
    assert run.returncode == 0, f"qemu did not power off cleanly (rc {run.returncode})\n{context}"
    assert not [e for e in events if e.startswith("FAIL")], context
    assert events[-1].startswith("done"), context
    assert rc == 0, f"shoal nbd serve exited {rc} on SIGTERM\n{context}"
    assert f"marker written nonce={nonce}" in events, context

    # fstrim went through: the kernel saw a discard-capable virtio disk and trimmed the fill.
    trim = next((e for e in events if e.startswith("/mnt: ")), "")
    m = re.fullmatch(r"/mnt: (\d+) bytes trimmed", trim)
    assert m and int(m.group(1)) >= bootdisk.FILL_MIB * MiB, f"fstrim: {trim!r}\n{context}"

    with rbd.Image(ioctx, VOLUME, read_only=True) as vol:
        marker = vol.read(bootdisk.MARKER_OFFSET, bootdisk.SECTOR)
        data = read_range(vol, bootdisk.DATA_START, bootdisk.DATA_SIZE)
    assert marker.startswith(bootdisk.MARKER_PREFIX + nonce.encode() + b" "), marker[:64]

    # Copy-on-write: the guest's writes went to the clone, the golden snapshot is untouched.
    with rbd.Image(ioctx, BASE, snapshot=SNAP, read_only=True) as base:
        assert base.read(bootdisk.MARKER_OFFSET, bootdisk.SECTOR) == bytes(bootdisk.SECTOR)

    # The guest's ext4, read back through python-rbd, is clean and holds its marker file.
    fs = tmp_path / "data.ext4"
    fs.write_bytes(data)
    fsck = subprocess.run(["e2fsck", "-fn", str(fs)], capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    cat = subprocess.run(["debugfs", "-R", "cat /marker.txt", str(fs)], capture_output=True, text=True)
    assert cat.stdout == f"SHOAL-BOOT-MARKER {nonce}\n", cat.stdout + cat.stderr
    ls = subprocess.run(["debugfs", "-R", "ls -p /", str(fs)], capture_output=True, text=True)
    assert "/fill/" not in ls.stdout, ls.stdout

    # The trim freed the fill in the cluster: whole objects the fill covered are removed, or,
    # inside the parent overlap, truncated to nothing so they still mask the parent. Partial
    # objects are only zeroed, so the bound is on whole objects.
    after = stored_bytes(ioctx, prefix)
    emptied = [k for k, size in paused.items() if size == obj_size and after.get(k, 0) == 0]
    freed = sum(paused.values()) - sum(after.values())
    summary = f"stored {sum(paused.values())} bytes while paused, {sum(after.values())} after; emptied {emptied}"
    print(summary)
    assert sum(paused.values()) >= bootdisk.FILL_MIB * MiB, summary
    assert len(emptied) >= bootdisk.FILL_MIB * MiB // obj_size - 1, summary
    assert freed >= (bootdisk.FILL_MIB - 4) * MiB, summary

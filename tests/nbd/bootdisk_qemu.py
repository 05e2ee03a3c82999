"""Booting the boot disk (tests/nbd/bootdisk.py) in qemu under TCG and following its serial console."""

from __future__ import annotations

import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from tests.nbd.bootdisk import BootDiskUnavailable


@dataclass
class GuestRun:
    returncode: int | None
    seconds: float
    lines: list[str]

    def events(self) -> list[str]:
        """The guest's own `SHOAL-BOOT: ...` lines, without the prefix."""
        return [ln.split("SHOAL-BOOT: ", 1)[1] for ln in self.lines if "SHOAL-BOOT: " in ln]

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.lines[-n:])


def qemu_command(drive: str, memory_mib: int = 256) -> list[str]:
    """qemu under TCG with the disk as the only device: the BIOS boots it as it would any disk.
    -nodefaults drops the NIC (no option ROM to find) and VGA; -no-reboot turns a guest panic
    (panic=-1) into an exit instead of a boot loop."""
    return ["qemu-system-x86_64", "-accel", "tcg", "-m", str(memory_mib), "-smp", "1",
            "-nodefaults", "-display", "none", "-no-reboot", "-serial", "stdio",
            "-drive", f"file={drive},format=raw,if=virtio,discard=unmap"]


def boot_guest(drive: str, timeout: float = 300.0,
               on_pause: Callable[[], None] | None = None) -> GuestRun:
    """Boot qemu on `drive` (a qemu -drive file=, e.g. nbd:unix:SOCK:exportname=NAME), feed
    the guest's pause with `on_pause()` then "go", and wait for it to power off.

    The guest pauses only when the disk's nonce sector asks it to. The serial console is read
    on a thread so a guest that stops printing cannot hang the caller past `timeout`."""
    if not shutil.which("qemu-system-x86_64"):
        raise BootDiskUnavailable("qemu-system-x86_64 not found (apt-get install qemu-system-x86)")
    lines: queue.Queue[str | None] = queue.Queue()
    t0 = time.monotonic()
    proc = subprocess.Popen(qemu_command(drive), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    assert proc.stdout is not None and proc.stdin is not None

    def reader() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            lines.put(raw.decode(errors="replace").rstrip("\r\n"))
        lines.put(None)

    thread = threading.Thread(target=reader, name="qemu-serial", daemon=True)
    thread.start()
    seen: list[str] = []
    try:
        while True:
            left = t0 + timeout - time.monotonic()
            if left <= 0:
                break
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            seen.append(line)
            if line.endswith("SHOAL-BOOT: paused"):
                if on_pause is not None:
                    on_pause()
                proc.stdin.write(b"go\n")
                proc.stdin.flush()
        try:
            rc: int | None = proc.wait(timeout=max(1.0, t0 + timeout - time.monotonic()))
        except subprocess.TimeoutExpired:
            rc = None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        thread.join(timeout=5)
        proc.stdin.close()
        proc.stdout.close()
    return GuestRun(rc, time.monotonic() - t0, seen)

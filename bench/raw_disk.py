"""Raw local-disk speed in a directory: the yardstick for the cluster benchmark.

With `fio` on PATH (or given), runs the same kinds of jobs as
`../shared/reference/real-ceph-baseline.md` ("local limits"): 4 KiB random writes with
psync and fsync after every write (queue depth 1), a 4 MiB sequential write with one
fsync at the end, 4 MiB sequential reads (cold: fio drops the file's page cache first)
and warm (page cache), 4 KiB random reads from the page cache, and for context 4 MiB
sequential O_DIRECT writes and reads (what BlueStore does; queue depth 1). Without fio, a
Python loop does the same with os.pwrite/os.fsync/os.preadv (no per-op allocation)
and posix_fadvise(DONTNEED) for the cold read.

Run alone: python bench/raw_disk.py [DIR] [--seconds S] [--python]
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import random
import shutil
import subprocess
import tempfile
import time
from typing import Any

KiB, MiB = 1024, 1024 * 1024


def _lat_stats(lat: list[float]) -> dict[str, float]:
    if not lat:
        return {"avg_ms": 0.0, "p99_ms": 0.0}
    lat.sort()
    return {"avg_ms": 1000 * sum(lat) / len(lat), "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))]}


# -- Python fallback ---------------------------------------------------------------------------
def _py_write4k_fsync(path: str, seconds: float, span: int) -> dict[str, Any]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.posix_fallocate(fd, 0, span)
        os.fsync(fd)
        buf = os.urandom(4 * KiB)
        blocks = span // (4 * KiB)
        rnd = random.Random(1)
        lat: list[float] = []
        start = time.perf_counter()
        deadline = start + seconds
        now = start
        while now < deadline:
            os.pwrite(fd, buf, rnd.randrange(blocks) * 4 * KiB)
            os.fsync(fd)
            t = time.perf_counter()
            lat.append(t - now)
            now = t
        elapsed = now - start
    finally:
        os.close(fd)
    return {"iops": len(lat) / elapsed, "mb_s": len(lat) * 4 * KiB / elapsed / 1e6, "ops": len(lat),
            **_lat_stats(lat)}


def _py_write4m_seq(path: str, size: int) -> dict[str, Any]:
    buf = os.urandom(4 * MiB)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        start = time.perf_counter()
        for off in range(0, size, len(buf)):
            os.pwrite(fd, buf, off)
        os.fsync(fd)
        elapsed = time.perf_counter() - start
    finally:
        os.close(fd)
    return {"mb_s": size / elapsed / 1e6, "bytes": size, "seconds": elapsed}


def _py_read4m_seq(path: str, cold: bool) -> dict[str, Any]:
    size = os.path.getsize(path)
    buf = bytearray(4 * MiB)
    fd = os.open(path, os.O_RDONLY)
    try:
        if cold:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        start = time.perf_counter()
        done = 0
        while done < size:
            n = os.preadv(fd, [buf], done)
            if n <= 0:
                break
            done += n
        elapsed = time.perf_counter() - start
    finally:
        os.close(fd)
    return {"mb_s": done / elapsed / 1e6, "bytes": done}


def _py_direct_4m(path: str, size: int) -> dict[str, Any]:
    """4 MiB sequential O_DIRECT write (then fsync) and read back, queue depth 1."""
    buf = mmap.mmap(-1, 4 * MiB)  # page-aligned, as O_DIRECT needs
    buf.write(os.urandom(4 * MiB))
    out: dict[str, Any] = {}
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o600)
    try:
        start = time.perf_counter()
        for off in range(0, size, 4 * MiB):
            os.pwrite(fd, buf, off)
        os.fsync(fd)
        out["write_mb_s"] = size / (time.perf_counter() - start) / 1e6
        start = time.perf_counter()
        for off in range(0, size, 4 * MiB):
            os.preadv(fd, [buf], off)
        out["read_mb_s"] = size / (time.perf_counter() - start) / 1e6
    finally:
        os.close(fd)
        buf.close()
    return out


def _py_read4k_rand(path: str, seconds: float) -> dict[str, Any]:
    blocks = os.path.getsize(path) // (4 * KiB)
    buf = bytearray(4 * KiB)
    rnd = random.Random(2)
    fd = os.open(path, os.O_RDONLY)
    try:
        n = 0
        start = time.perf_counter()
        deadline = start + seconds
        now = start
        while now < deadline:
            for _ in range(64):
                os.preadv(fd, [buf], rnd.randrange(blocks) * 4 * KiB)
            n += 64
            now = time.perf_counter()
        elapsed = now - start
    finally:
        os.close(fd)
    return {"iops": n / elapsed, "mb_s": n * 4 * KiB / elapsed / 1e6, "ops": n}


def measure_python(directory: str, seconds: float, seq_size: int) -> dict[str, Any]:
    a = os.path.join(directory, "rawdisk-4k.dat")
    b = os.path.join(directory, "rawdisk-4m.dat")
    try:
        out = {
            "tool": "python",
            "write_4k_fsync_qd1": _py_write4k_fsync(a, seconds, 64 * MiB),
            "write_4m_seq_fsync_end": _py_write4m_seq(b, seq_size),
            "read_4m_seq_cold": _py_read4m_seq(b, cold=True),
            "read_4m_seq_warm": _py_read4m_seq(b, cold=False),
            "read_4k_rand_warm_qd1": _py_read4k_rand(b, seconds),
            "direct_4m_seq_qd1": _py_direct_4m(b, seq_size),
        }
    finally:
        for p in (a, b):
            if os.path.exists(p):
                os.unlink(p)
    return out


# -- fio -------------------------------------------------------------------------------------------
def _fio(fio: str, directory: str, name: str, *args: str) -> dict[str, Any]:
    cmd = [fio, f"--name={name}", f"--directory={directory}", f"--filename={name}.dat",
           "--output-format=json", "--group_reporting=1", *args]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=600)
    job = json.loads(res.stdout[res.stdout.index("{"):])["jobs"][0]
    side = job["write"] if job["write"]["io_bytes"] else job["read"]
    clat = side.get("clat_ns") or {}
    pct = clat.get("percentile") or {}
    p99 = next((v for k, v in pct.items() if k.startswith("99.000")), 0)
    lat = side.get("lat_ns") or {}
    return {"iops": side["iops"], "mb_s": side["bw_bytes"] / 1e6, "bytes": side["io_bytes"],
            "avg_ms": lat.get("mean", 0) / 1e6, "p99_ms": p99 / 1e6}


def measure_fio(fio: str, directory: str, seconds: float, seq_size: int) -> dict[str, Any]:
    t = f"--runtime={seconds:g}"
    try:
        return {
            "tool": "fio",
            "write_4k_fsync_qd1": _fio(fio, directory, "rawdisk-4k", "--ioengine=psync", "--fsync=1", "--bs=4k",
                                       "--rw=randwrite", "--size=64M", "--time_based=1", t),
            "write_4m_seq_fsync_end": _fio(fio, directory, "rawdisk-4m", "--ioengine=psync", "--bs=4M",
                                           "--rw=write", f"--size={seq_size}", "--end_fsync=1"),
            "read_4m_seq_cold": _fio(fio, directory, "rawdisk-4m", "--ioengine=psync", "--bs=4M", "--rw=read",
                                     f"--size={seq_size}", "--invalidate=1"),
            "read_4m_seq_warm": _fio(fio, directory, "rawdisk-4m", "--ioengine=psync", "--bs=4M", "--rw=read",
                                     f"--size={seq_size}", "--invalidate=0"),
            "read_4k_rand_warm_qd1": _fio(fio, directory, "rawdisk-4m", "--ioengine=psync", "--bs=4k",
                                          "--rw=randread", f"--size={seq_size}", "--invalidate=0",
                                          "--time_based=1", t),
            "direct_4m_seq_qd1": {
                "write_mb_s": _fio(fio, directory, "rawdisk-4m", "--ioengine=psync", "--direct=1", "--bs=4M",
                                   "--rw=write", f"--size={seq_size}", "--end_fsync=1")["mb_s"],
                "read_mb_s": _fio(fio, directory, "rawdisk-4m", "--ioengine=psync", "--direct=1", "--bs=4M",
                                  "--rw=read", f"--size={seq_size}")["mb_s"]},
        }
    finally:
        for name in ("rawdisk-4k.dat", "rawdisk-4m.dat"):
            p = os.path.join(directory, name)
            if os.path.exists(p):
                os.unlink(p)


def measure(directory: str, seconds: float = 5.0, seq_size: int = 1024 * MiB,
            fio: str | None = None, force_python: bool = False) -> dict[str, Any]:
    """Raw disk numbers for `directory`: fio if available (or given), else the Python loops."""
    fio = fio or shutil.which("fio")
    if fio and not force_python:
        return measure_fio(fio, directory, seconds, seq_size)
    return measure_python(directory, seconds, seq_size)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", nargs="?", default=None)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--size-mib", type=int, default=1024)
    p.add_argument("--python", action="store_true", help="use the Python loops even if fio is installed")
    p.add_argument("--fio", default=None, help="path of the fio binary")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        print(json.dumps(measure(d, args.seconds, args.size_mib * MiB, args.fio, args.python), indent=1))


if __name__ == "__main__":
    main()

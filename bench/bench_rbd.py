"""RBD benchmark: python bench/bench_rbd.py [--quick] [--json OUT] [--dir DIR] [--keep] [--reps N]

In one run, on this machine:

1. starts a fresh 3-OSD Shoal cluster in a temp dir (`TestCluster`, as bench_cluster.py) and
   creates pool `rbdbench` (32 PGs);
2. **O(1) metadata operations**: on a 1 GiB and a 100 GiB sparse image (both with a little data
   at the start and the end), times snapshot create, snapshot protect, clone (format 1 from the
   protected snapshot, format 2 from an unprotected one) and snapshot remove, each repeated
   `--reps` times through python-rbd; prints the median of each on both sizes and the ratio
   100 GiB / 1 GiB - about 1 means the cost does not grow with the image (it must not: they
   are header updates and one monitor round trip, ../docs/decisions/0005-rados-snapshots.md);
3. **`rbd bench`** (the CLI, as real Ceph's baseline ran it, ../shared/reference/real-ceph-baseline.md):
   4 KiB random write and read with 16 threads, 4 MiB sequential write and read with 16 threads;
4. **`rados bench`** on the same pool for comparison: 4 KiB write (`-b 4096 -t 16`) and rand,
   4 MiB write and seq;
5. prints one table: workload | Shoal MB/s | IOPS | real Ceph 16 on this box; `--json OUT` keeps
   every number.

`--quick` shrinks the totals (rbd bench 16 MiB of 4 KiB, 256 MiB of 4 MiB; rados bench 3 s)
and the repetitions. Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

import rados  # noqa: E402
import rbd  # noqa: E402
from shoal.testing.cluster import TestCluster  # noqa: E402

KiB, MiB, GiB = 1024, 1024 * 1024, 1024 * 1024 * 1024
POOL = "rbdbench"
PG_NUM = 32
OSDS = 3

# Real Ceph 16.2.15 on this box (../shared/reference/real-ceph-baseline.md, runs 1 and 2): (MB/s, IOPS) ranges.
CEPH: dict[str, str] = {
    "rbd write 4K rand t16": "14.9-16.7 MB/s, 3633-4088 IOPS",
    "rbd read 4K rand t16": "55.4-59.0 MB/s, 13516-14414 IOPS",
    "rbd write 4M seq t16": "366.7-376.0 MB/s, 87-90 IOPS",
    "rbd read 4M seq t16": "1095.7-1275.2 MB/s, 261-304 IOPS",
    "rados write 4K t16": "1959 IOPS (run 2)",
    "rados rand 4K t16": "(not measured)",
    "rados write 4M t16": "383-429 MB/s, 91-102 IOPS",
    "rados seq 4M t16": "1606-1662 MB/s, 382-396 IOPS",
}


def log(msg: str) -> None:
    print(msg, flush=True)


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_metadata(io: Any, reps: int) -> dict[str, dict[str, Any]]:
    """Median seconds of snapshot/clone operations on a 1 GiB and a 100 GiB image."""
    r = rbd.RBD()
    out: dict[str, dict[str, Any]] = {}
    for label, size in (("1GiB", GiB), ("100GiB", 100 * GiB)):
        name = f"big-{label}"
        r.create(io, name, size)
        times: dict[str, list[float]] = {k: [] for k in
                                          ("snap_create", "snap_protect", "clone_v1", "clone_v2", "snap_remove")}
        with rbd.Image(io, name) as img:
            img.write(b"\xab" * (4 * MiB), 0)
            img.write(b"\xcd" * (4 * MiB), size - 4 * MiB)
            for i in range(reps):
                times["snap_create"].append(timed(lambda i=i: img.create_snap(f"p{i}")))
                times["snap_protect"].append(timed(lambda i=i: img.protect_snap(f"p{i}")))
                times["clone_v1"].append(timed(lambda i=i, n=name: r.clone(io, n, f"p{i}", io, f"{n}-c1-{i}",
                                                                   clone_format=1)))
                img.create_snap(f"u{i}")
                times["clone_v2"].append(timed(lambda i=i, n=name: r.clone(io, n, f"u{i}", io, f"{n}-c2-{i}",
                                                                   clone_format=2)))
                img.write(b"\xef" * 4096, 8 * MiB)  # a write between snapshots, as in real use
                img.create_snap(f"r{i}")
                times["snap_remove"].append(timed(lambda i=i: img.remove_snap(f"r{i}")))
        out[label] = {k: {"median_s": statistics.median(v), "all_s": v} for k, v in times.items()}
        log(f"  {label:>7}: " + "  ".join(f"{k} {1000 * statistics.median(v):.1f} ms" for k, v in times.items()))
    return out


RBD_BENCH_RE = re.compile(r"elapsed:\s*([\d.]+)\s+ops:\s*(\d+)\s+ops/sec:\s*([\d.]+)\s+bytes/sec:\s*([\d.]+)\s*(\S*)")


def run_rbd_bench(c: TestCluster, io_type: str, io_size: str, pattern: str, total: str, image: str) -> dict[str, Any]:
    args = ["bench", "--io-type", io_type, "--io-size", io_size, "--io-pattern", pattern, "--io-threads", "16",
            "--io-total", total, f"{POOL}/{image}"]
    t0 = time.perf_counter()
    proc = c.cli("rbd", *args, timeout=1800)
    wall = time.perf_counter() - t0
    text = proc.stdout.decode(errors="replace")
    res: dict[str, Any] = {"argv": "rbd " + " ".join(args), "exit": proc.returncode, "wall_s": wall}
    m = RBD_BENCH_RE.search(text)
    if proc.returncode != 0 or m is None:
        res["error"] = (proc.stderr.decode(errors="replace") or text)[-800:]
        return res
    ops, iops = int(m.group(2)), float(m.group(3))
    size = int(io_size[:-1]) * (KiB if io_size.endswith("K") else MiB)
    res.update(elapsed_s=float(m.group(1)), ops=ops, iops=iops, mb_s=iops * size / 1e6)
    return res


RADOS_RE = {"time": r"Total time run:\s*([\d.]+)", "mib_s": r"Bandwidth \(MB/sec\):\s*([\d.]+)",
            "iops": r"Average IOPS:\s*(\d+)", "lat_s": r"Average Latency\(s\):\s*([\d.]+)",
            "ops": r"Total (?:writes|reads) made:\s*(\d+)", "size": r"(?:Write|Read) size:\s*(\d+)"}


def run_rados_bench(c: TestCluster, seconds: float, mode: str, *extra: str) -> dict[str, Any]:
    args = ["-p", POOL, "bench", str(int(seconds)), mode, "-t", "16", *extra]
    proc = c.cli("rados", *args, timeout=1800)
    text = proc.stdout.decode(errors="replace")
    res: dict[str, Any] = {"argv": "rados " + " ".join(args), "exit": proc.returncode}
    for key, rx in RADOS_RE.items():
        m = re.search(rx, text)
        if m:
            res[key] = float(m.group(1))
    if proc.returncode != 0 or "time" not in res:
        res["error"] = (proc.stderr.decode(errors="replace") or text)[-800:]
        return res
    if res.get("time") and "ops" in res and "size" in res:
        res["mb_s"] = res["ops"] * res["size"] / res["time"] / 1e6  # MB/s = 10^6 bytes/s, as bench_cluster
    return res


def run(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    reps = args.reps or (3 if quick else 7)
    res: dict[str, Any] = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                           "host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(),
                           "quick": quick, "reps": reps}
    base = tempfile.mkdtemp(prefix="shoal-bench-rbd-", dir=args.dir)
    c = TestCluster(os.path.join(base, "cluster"), osds=OSDS)
    try:
        log(f"starting a {OSDS}-OSD cluster in {c.dir} ...")
        c.start(timeout=60)
        with c.admin() as a:
            ret, _, outs = a.command({"prefix": "osd pool create", "pool": POOL, "pg_num": PG_NUM})
            if ret != 0:
                raise RuntimeError(f"osd pool create {POOL}: {ret} {outs}")
        c.wait_healthy(OSDS, 60)
        cl = rados.Rados(conffile=c.conf_path)
        cl.connect()
        io = cl.open_ioctx(POOL)
        try:
            log(f"snapshot and clone creation, median of {reps}:")
            res["metadata"] = bench_metadata(io, reps)
            rbd.RBD().create(io, "benchimg", 2 * GiB)
        finally:
            io.close()
            cl.shutdown()

        t4k, t4m = ("16M", "256M") if quick else ("200M", "2G")
        log(f"rbd bench (16 threads; 4 KiB total {t4k}, 4 MiB total {t4m}):")
        res["rbd_bench"] = {}
        for label, io_type, size, pattern, total in (
                ("rbd write 4M seq t16", "write", "4M", "seq", t4m),
                ("rbd write 4K rand t16", "write", "4K", "rand", t4k),
                ("rbd read 4K rand t16", "read", "4K", "rand", t4k),
                ("rbd read 4M seq t16", "read", "4M", "seq", t4m)):
            r = res["rbd_bench"][label] = run_rbd_bench(c, io_type, size, pattern, total, "benchimg")
            log(f"  {label:<24} " + (f"{r['mb_s']:9.1f} MB/s {r['iops']:9.0f} IOPS  ({r['ops']} ops in "
                                      f"{r['elapsed_s']:.0f} s)" if "iops" in r else f"FAILED: {r.get('error')}"))

        seconds = 3 if quick else 10
        log(f"rados bench (16 in flight, {seconds} s each):")
        res["rados_bench"] = {}
        for label, mode, extra in (("rados write 4K t16", "write", ("-b", "4096", "--no-cleanup")),
                                   ("rados rand 4K t16", "rand", ()),
                                   ("rados write 4M t16", "write", ("-b", str(4 * MiB), "--no-cleanup")),
                                   ("rados seq 4M t16", "seq", ())):
            r = res["rados_bench"][label] = run_rados_bench(c, seconds, mode, *extra)
            log(f"  {label:<24} " + (f"{r['mb_s']:9.1f} MB/s {r.get('iops', 0):9.0f} IOPS  avg lat "
                                      f"{1000 * r.get('lat_s', 0):.2f} ms" if "mb_s" in r
                                      else f"FAILED: {r.get('error')}"))
            if mode == "rand":  # the 4 MiB run must not read the 4 KiB objects
                c.cli("rados", "-p", POOL, "cleanup", timeout=600)
        c.cli("rados", "-p", POOL, "cleanup", timeout=600)
    finally:
        log("stopping the cluster ...")
        c.down()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            log(f"kept {base}")
    return res


def print_report(res: dict[str, Any]) -> None:
    md = res.get("metadata", {})
    if md:
        print(f"\nO(1) metadata operations (median of {res['reps']}, python-rbd):")
        print(f"| {'operation':<14} | {'1 GiB image':>12} | {'100 GiB image':>14} | {'ratio 100G/1G':>13} |")
        print(f"|{'-' * 16}|{'-' * 14}:|{'-' * 16}:|{'-' * 15}:|")
        for op in md["1GiB"]:
            small, big = md["1GiB"][op]["median_s"], md["100GiB"][op]["median_s"]
            ratio = big / small if small else float("nan")
            print(f"| {op:<14} | {1000 * small:>9.2f} ms | {1000 * big:>11.2f} ms | {ratio:>13.2f} |")
    print("\nI/O (MB/s = 10^6 bytes/s):")
    print(f"| {'workload':<24} | {'Shoal MB/s':>10} | {'Shoal IOPS':>10} | {'real Ceph 16, this box':<34} |")
    print(f"|{'-' * 26}|{'-' * 11}:|{'-' * 11}:|{'-' * 36}|")
    for group in ("rbd_bench", "rados_bench"):
        for label, r in res.get(group, {}).items():
            if "mb_s" in r:
                print(f"| {label:<24} | {r['mb_s']:>10.1f} | {r.get('iops', 0):>10.0f} | {CEPH.get(label, ''):<34} |")
            else:
                print(f"| {label:<24} | {'failed':>10} | {'':>10} | {CEPH.get(label, ''):<34} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small totals and 3 repetitions (a minute or two)")
    p.add_argument("--reps", type=int, default=0, help="repetitions of each metadata operation (default 7, quick 3)")
    p.add_argument("--json", metavar="OUT", help="write every number as JSON to OUT")
    p.add_argument("--dir", default=None, help="parent of the temp dir (default: $TMPDIR or /tmp)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (cluster logs)")
    args = p.parse_args()
    res = run(args)
    print_report(res)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()

"""Cluster benchmark: python bench/bench_cluster.py [--quick] [--json OUT] [--profile DIR] [--with-ceph]

In one run, on this machine:

1. starts a fresh 3-OSD Shoal cluster in a temp dir (`TestCluster.up`), times start-up
   (harness start to healthy, and first daemon process start to healthy), creates pool
   `bench` with 32 PGs and times it until every PG is active+clean;
2. drives I/O through the client core in this process (`RadosClient.operate` on the
   client loop, 16 ops in flight as coroutines, not threads), like `rados bench -t 16`:
   4 MiB writefull of new objects, 4 MiB sequential and random reads of them, 4 KiB
   writefull of new objects and random reads of them (len=4096 as rados bench, and
   len=0 "whole object"); and, RBD-like, 4 KiB writes and reads at random offsets
   inside the 4 MiB objects. Each workload is time-bounded
   (10 s, --quick 3 s; the sequential read stops early when every object was read once)
   and reports MB/s (10^6 bytes), IOPS, average and p99 latency and the CPU used by each
   daemon, the client and the rest of the box;
3. measures the raw disk of the cluster's filesystem (bench/raw_disk.py: fio if installed,
   else a Python loop) and prints each Shoal number's ratio to it;
4. samples VmRSS/VmHWM of the monitor and every OSD all along and reports the peaks;
5. prints workload | Shoal | goal | real Ceph 16 (../shared/reference/real-ceph-baseline.md) |
   Shoal/Ceph | Shoal/raw disk, and writes every number with --json OUT.

--profile DIR runs py-spy (raw collapsed stacks, 200 Hz) on the three OSDs and on this
process during each workload and writes a summary (bench/profile_summary.py); the
sampling costs CPU, so take numbers from runs without it. --with-ceph runs `rados bench`
against a throw-away real Ceph cluster (../shared/tools/realceph/up.sh) afterwards
(bench/realceph_bench.py). Timings are never pass/fail tests.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import profile_summary  # noqa: E402
import raw_disk  # noqa: E402
from cluster_report import OSDS, PG_NUM, print_report  # noqa: E402
from proc_stats import CpuWindow, ProcSampler, start_time_boottime, wait_for_quiet  # noqa: E402

from shoal.client.loop_thread import LoopThread  # noqa: E402
from shoal.client.rados_client import RadosClient  # noqa: E402
from shoal.config.cli_args import build_config  # noqa: E402
from shoal.testing.cluster import TestCluster  # noqa: E402
from shoal.wire.osd_op import OpBuilder  # noqa: E402

KiB, MiB = 1024, 1024 * 1024
INFLIGHT = 16


@dataclass
class Workload:
    name: str
    block: int
    seconds: float = 0.0  # from the first submit to the last completion
    ops: int = 0
    errors: int = 0
    mb_s: float = 0.0
    iops: float = 0.0
    avg_ms: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # fraction of one core
    rss_peak_mib: dict[str, float] = field(default_factory=dict)
    first_error: str = ""
    others_before: float | None = None  # --wait-quiet: CPU of other processes just before (cores)

    def finish(self, lat: list[float], elapsed: float) -> None:
        self.seconds = elapsed
        self.ops = len(lat)
        if not lat or elapsed <= 0:
            return
        lat.sort()
        n = len(lat)
        self.iops = n / elapsed
        self.mb_s = n * self.block / elapsed / 1e6
        self.avg_ms = 1000 * sum(lat) / n
        self.p50_ms = 1000 * lat[n // 2]
        self.p99_ms = 1000 * lat[min(n - 1, int(0.99 * n))]
        self.max_ms = 1000 * lat[-1]


Job = tuple[str, OpBuilder, int | None]  # object name, op vector, expected read length (None: a write)


async def drive(client: RadosClient, pool_id: int, wl: Workload, seconds: float,
                next_job: Callable[[], Job | None], inflight: int = INFLIGHT) -> Workload:
    """Keeps `inflight` ops going until `seconds` pass or next_job() returns None."""
    lat: list[float] = []
    perf = time.perf_counter

    async def worker() -> None:
        while perf() < deadline:
            job = next_job()
            if job is None:
                return
            oid, b, expect = job
            t0 = perf()
            reply = await client.operate(pool_id, oid, b)
            if reply.result == 0 and expect is not None:
                got = len(reply.out_data(0))
                if got != expect:
                    reply.result = -5
                    wl.first_error = wl.first_error or f"{oid}: read {got} bytes, expected {expect}"
            lat.append(perf() - t0)
            if reply.result != 0:
                wl.errors += 1
                wl.first_error = wl.first_error or f"{oid}: result {reply.result}"

    start = perf()
    deadline = start + seconds
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(inflight))), seconds + 120)
    wl.finish(lat, perf() - start)
    return wl


class Bench:
    def __init__(self, cluster: TestCluster, client: RadosClient, loop: LoopThread, pool_id: int,
                 seconds: float, sampler: ProcSampler, cpu_pids: dict[str, int], profile_dir: str | None,
                 seed: int, profile_native: bool = False, wait_quiet: float = 0.0) -> None:
        self.c = cluster
        self.wait_quiet = wait_quiet
        self.profile_native = profile_native
        self.client = client
        self.loop = loop
        self.pool_id = pool_id
        self.seconds = seconds
        self.sampler = sampler
        self.cpu_pids = cpu_pids
        self.profile_dir = profile_dir
        self.rnd = random.Random(seed)
        self.objects_4m: list[str] = []
        self.objects_4k: list[str] = []
        self.results: list[Workload] = []

    def run(self, wl: Workload, next_job: Callable[[], Job | None], seconds: float | None = None) -> Workload:
        seconds = self.seconds if seconds is None else seconds
        if self.wait_quiet:
            wl.others_before = wait_for_quiet(self.wait_quiet, exclude=self.cpu_pids)
        spies = self._start_profilers(wl.name, seconds) if self.profile_dir else []
        cpu = CpuWindow(self.cpu_pids)
        self.sampler.new_window()
        cpu.start()
        self.loop.run(drive(self.client, self.pool_id, wl, seconds, next_job))
        wl.cpu = cpu.stop()
        wl.rss_peak_mib = self.sampler.new_window()
        for p in spies:
            p.wait(timeout=seconds + 60)
        self.results.append(wl)
        cpu_txt = " ".join(f"{k}={100 * v:.0f}%" for k, v in wl.cpu.items())
        print(f"  {wl.name:<24} {wl.mb_s:9.1f} MB/s {wl.iops:9.0f} IOPS  avg {wl.avg_ms:7.2f} ms  "
              f"p99 {wl.p99_ms:7.2f} ms  ops {wl.ops}  errors {wl.errors}  cpu: {cpu_txt}", flush=True)
        if wl.errors:
            print(f"    first error: {wl.first_error}", flush=True)
        return wl

    def _start_profilers(self, name: str, seconds: float) -> list[subprocess.Popen[bytes]]:
        assert self.profile_dir is not None
        procs = []
        targets = {n: p for n, p in self.cpu_pids.items() if n != "mon"}
        slug = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")
        mode = ["--native", "-r", "100"] if self.profile_native else ["--nonblocking", "-r", "200"]
        for who, pid in targets.items():
            out = os.path.join(self.profile_dir, f"{slug}.{who}.txt")
            procs.append(subprocess.Popen(
                ["py-spy", "record", *mode, "-f", "raw", "-o", out, "--pid", str(pid), "-d", str(int(seconds + 1))],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(1.0)  # let py-spy attach before the load starts
        return procs

    # -- workloads --------------------------------------------------------------------------
    def write_4m(self) -> Workload:
        data = os.urandom(4 * MiB)
        prefix = f"bench4m_{os.getpid()}_"

        def job() -> Job:
            oid = f"{prefix}{len(self.objects_4m)}"
            self.objects_4m.append(oid)  # listed when submitted; the read phases need it to have completed
            b = OpBuilder()
            b.add("writefull", data)
            return oid, b, None

        return self.run(Workload("write 4M", 4 * MiB), job)

    def read_4m(self, sequential: bool) -> Workload:
        names = list(self.objects_4m)
        it = iter(names)

        def job() -> Job | None:
            oid = next(it, None) if sequential else self.rnd.choice(names)
            if oid is None:
                return None
            b = OpBuilder()
            b.add("read", off=0, len=4 * MiB)  # rados bench reads op_size bytes
            return oid, b, 4 * MiB

        return self.run(Workload("seq read 4M" if sequential else "rand read 4M", 4 * MiB), job)

    def write_4k(self) -> Workload:
        data = os.urandom(4 * KiB)
        prefix = f"bench4k_{os.getpid()}_"

        def job() -> Job:
            oid = f"{prefix}{len(self.objects_4k)}"
            self.objects_4k.append(oid)
            b = OpBuilder()
            b.add("writefull", data)
            return oid, b, None

        return self.run(Workload("write 4K (new objects)", 4 * KiB), job)

    def read_4k(self, whole: bool = False) -> Workload:
        """Random reads of the 4 KiB objects: len=4096 as rados bench does, or len=0
        ("to the end", the OSD does not know the size up front)."""
        names = list(self.objects_4k)
        length = 0 if whole else 4 * KiB

        def job() -> Job:
            b = OpBuilder()
            b.add("read", off=0, len=length)
            return self.rnd.choice(names), b, 4 * KiB

        return self.run(Workload("rand read 4K len=0" if whole else "rand read 4K (4K objs)", 4 * KiB), job)

    def overwrite_4k(self) -> Workload:
        data = os.urandom(4 * KiB)
        names = list(self.objects_4m)

        def job() -> Job:
            b = OpBuilder()
            b.add("write", data, off=self.rnd.randrange(1024) * 4 * KiB)
            return self.rnd.choice(names), b, None

        return self.run(Workload("rand write 4K in 4M objs", 4 * KiB), job)

    def read_4k_in_4m(self) -> Workload:
        names = list(self.objects_4m)

        def job() -> Job:
            b = OpBuilder()
            b.add("read", off=self.rnd.randrange(1024) * 4 * KiB, len=4 * KiB)
            return self.rnd.choice(names), b, 4 * KiB

        return self.run(Workload("rand read 4K in 4M objs", 4 * KiB), job)


# -- main -----------------------------------------------------------------------------------------
def _fs_of(path: str) -> str:
    try:
        out = subprocess.run(["df", "--output=source,fstype,target", path], capture_output=True, text=True,
                             timeout=10).stdout.splitlines()
        return " ".join(out[-1].split()) if len(out) > 1 else "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def _git(*argv: str) -> str:
    try:
        return subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def _code_state() -> dict[str, Any]:
    """HEAD, and which files under shoal/ differ from it (the benchmark runs the working tree)."""
    import hashlib

    dirty = [line[3:] for line in _git("status", "--porcelain", "--", "shoal").splitlines()]
    diff = _git("diff", "HEAD", "--", "shoal")
    return {"commit": _git("rev-parse", "--short", "HEAD").strip() or "?", "dirty_files": dirty,
            "diff_sha256": hashlib.sha256(diff.encode()).hexdigest()[:12] if diff else ""}


def run(args: argparse.Namespace) -> dict[str, Any]:
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    res: dict[str, Any] = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        **_code_state(), "host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(),
        "loadavg_before": os.getloadavg(), "seconds_per_workload": seconds, "inflight": INFLIGHT,
        "quick": bool(args.quick), "osds": OSDS, "pg_num": PG_NUM,
    }
    if args.wait_quiet:
        print(f"waiting up to {args.wait_quiet:g} s for the box to be quiet ...", flush=True)
        res["box_busy_before_cores"] = wait_for_quiet(args.wait_quiet)
        print(f"  box busy: {res['box_busy_before_cores']:.2f} cores", flush=True)
    base = tempfile.mkdtemp(prefix="shoal-bench-", dir=args.dir)
    res["dir_fs"] = _fs_of(base)
    if args.profile:
        os.makedirs(args.profile, exist_ok=True)
    c = TestCluster(os.path.join(base, "cluster"), osds=OSDS)
    sampler: ProcSampler | None = None
    client: RadosClient | None = None
    loop: LoopThread | None = None
    try:
        print(f"starting a {OSDS}-OSD cluster in {c.dir} ...", flush=True)
        t0 = time.monotonic()
        took = c.up(OSDS, timeout=60)
        healthy_boot = time.clock_gettime(time.CLOCK_BOOTTIME)
        own = time.monotonic() - t0
        names = ["mon.a"] + [f"osd.{i}" for i in range(OSDS)]
        pids = {n: c.running_pid(n) for n in names}
        missing = [n for n, p in pids.items() if p is None]
        if missing:
            raise RuntimeError(f"daemons not running after up(): {missing}")
        first_start = min(start_time_boottime(p) for p in pids.values() if p is not None)
        sampler = ProcSampler({("mon" if n == "mon.a" else n): p for n, p in pids.items() if p is not None})
        sampler.start()
        t1 = time.monotonic()
        with c.admin() as a:
            ret, _, outs = a.command({"prefix": "osd pool create", "pool": "bench", "pg_num": PG_NUM})
            if ret != 0:
                raise RuntimeError(f"osd pool create bench: {ret} {outs}")
        c.wait_healthy(OSDS, 60)
        res["startup"] = {"harness_up_s": took, "own_up_s": own,
                          "process_start_to_healthy_s": healthy_boot - first_start,
                          "pool_create_to_clean_s": time.monotonic() - t1}
        print(f"  up in {took:.2f} s (process start to healthy {healthy_boot - first_start:.2f} s); "
              f"pool with {PG_NUM} PGs active+clean after {time.monotonic() - t1:.2f} s", flush=True)

        conf, _ = build_config("client", ["-c", c.conf_path], {})
        loop = LoopThread.shared()
        client = RadosClient(conf, "client.admin")
        loop.run(client.connect(30))
        pool = client.pool_by_name("bench")
        if pool is None:
            raise RuntimeError("pool bench not in the client's OSD map")
        cpu_pids = {"mon": pids["mon.a"], **{n: p for n, p in pids.items() if n.startswith("osd.")},
                    "client": os.getpid()}
        assert all(p is not None for p in cpu_pids.values())
        b = Bench(c, client, loop, pool.id, seconds, sampler, cpu_pids,  # type: ignore[arg-type]
                  args.profile, args.seed, args.profile_native, args.wait_quiet)
        print(f"workloads, {INFLIGHT} in flight, {seconds:g} s each:", flush=True)
        b.write_4m()
        b.read_4m(sequential=True)
        b.read_4m(sequential=False)
        b.write_4k()
        b.read_4k()
        b.read_4k(whole=True)
        b.overwrite_4k()
        b.read_4k_in_4m()
        res["workloads"] = [asdict(w) for w in b.results]
        res["objects"] = {"4m": len(b.objects_4m), "4k": len(b.objects_4k)}
    finally:
        if client is not None and loop is not None:
            try:
                loop.run(client.shutdown(), timeout=10)
            except Exception as exc:  # noqa: BLE001 - the cluster must still go down
                print(f"client shutdown: {exc!r}", file=sys.stderr)
        if sampler is not None:
            sampler.stop()
        print("stopping the cluster ...", flush=True)
        c.down()
    assert sampler is not None
    res["rss_peak_mib"] = dict(sampler.peak_rss)
    res["vmhwm_mib"] = dict(sampler.hwm)
    res["rss_samples"] = sampler.samples

    print("measuring the raw disk ...", flush=True)
    res["raw_disk"] = raw_disk.measure(base, seconds=min(seconds, 5.0),
                                       seq_size=(256 if args.quick else 1024) * MiB, fio=args.fio)
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    else:
        print(f"kept {base}")
    if args.profile:
        res["profile_dir"] = args.profile
        profile_summary.summarize_dir(args.profile, rate=100.0 if args.profile_native else 200.0)
    if args.with_ceph:
        import realceph_bench

        res["ceph"] = realceph_bench.run(seconds, base_dir=args.dir)
    res["loadavg_after"] = os.getloadavg()
    end = _code_state()
    if (end["commit"], end["diff_sha256"]) != (res["commit"], res["diff_sha256"]):
        res["code_changed_during_run"] = end
        print(f"WARNING: the code changed during the run (now {end['commit']}, dirty {end['dirty_files']}); "
              "the daemons may not run the code this process imported", flush=True)
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="3 s per workload instead of 10 s")
    p.add_argument("--seconds", type=float, default=0.0, help="seconds per workload (overrides --quick)")
    p.add_argument("--json", metavar="OUT", help="write every number as JSON to OUT")
    p.add_argument("--dir", default=None, help="parent of the temp dir (default: $TMPDIR or /tmp)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (cluster logs)")
    p.add_argument("--fio", default=None, help="fio binary (default: fio on PATH; else a Python loop)")
    p.add_argument("--profile", metavar="DIR", help="py-spy the OSDs and the client during each workload")
    p.add_argument("--profile-native", action="store_true",
                   help="with --profile: py-spy --native at 100 Hz (shows C frames: uvloop, sqlite, msgpack)")
    p.add_argument("--with-ceph", action="store_true", help="also run rados bench against a real Ceph cluster")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="S",
                   help="before the run and each workload, wait up to S seconds until other processes "
                        "use < 0.25 cores (the box is shared)")
    p.add_argument("--seed", type=int, default=1, help="seed of the random object/offset choices")
    args = p.parse_args()
    res = run(args)
    print_report(res)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1, default=str)
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()

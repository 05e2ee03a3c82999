"""What cephx costs on a real cluster: python bench/bench_auth_cluster.py [--seconds N] [--rounds R] [--json OUT]

One run starts three fresh 3-OSD clusters in turn (each in its own temp dir, stopped
before the next starts, so they never compete for the 2 CPUs):

1. `auth ... required = none`         (no handshake proofs, frames neither sealed nor signed)
2. cephx, default `ms mode` (crc)     (every frame after the handshake carries an AES-GCM tag)
3. cephx with `ms mode = secure`      (meta and payload encrypted too)

On each: pool `bench` (32 PGs), then through the client core (`RadosClient.operate` on the
client loop, 16 ops in flight, `bench_cluster.drive`, like `rados bench -t 16`):
4 KiB writefull of new objects, and 4 MiB writefull of new objects, N seconds each.
It prints IOPS, MB/s (10^6 B/s), latency, CPU of the daemons / this client / everything
else on the box, and each mode's ratio to `none` — raw, and per core of CPU the cluster
and client used (steadier than raw IOPS when other work shares the box). The issue's goal: cephx (signed) 4 KiB
write IOPS within 15 % of `none`, i.e. ratio >= 0.85.

`--interleave K` starts the three clusters together instead and rotates K time slices of
each workload over them (idle clusters cost little CPU), so load from other work on a
shared box weighs on every mode alike; the printed p99 is then the worst slice's.
`--rounds R` repeats the three clusters R times in the order none, crc, secure, none, ...
and reports every round plus the best per mode (the box is shared; "others" CPU shows how
busy it was; `--wait-quiet S` waits up to S seconds for the others to calm down before
each workload). Timings are never pass/fail.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

from bench_cluster import INFLIGHT, Job, Workload, drive  # noqa: E402
from proc_stats import CpuWindow, wait_for_quiet  # noqa: E402

from shoal.client.loop_thread import LoopThread  # noqa: E402
from shoal.client.rados_client import RadosClient  # noqa: E402
from shoal.config.cli_args import build_config  # noqa: E402
from shoal.testing.cluster import TestCluster  # noqa: E402
from shoal.wire.osd_op import OpBuilder  # noqa: E402

KiB, MiB = 1024, 1024 * 1024
OSDS = 3
PG_NUM = 32
GOAL_4K_RATIO = 0.85  # the issue: authenticated + signed 4 KiB write IOPS within 15 % of auth none

# name -> (auth for the harness, extra ceph.conf lines)
MODES: dict[str, tuple[str, str]] = {
    "none": ("none", ""),
    "cephx-crc": ("cephx", ""),
    "cephx-secure": ("cephx", "ms mode = secure"),
}


WORKLOADS = (("write 4K", 4 * KiB), ("write 4M", 4 * MiB))


class Target:
    """One fresh cluster of one mode, its client and pool; runs workloads on demand."""

    def __init__(self, name: str, workdir: str, seed: int) -> None:
        auth, extra = MODES[name]
        self.name = name
        self.cluster = TestCluster(os.path.join(workdir, name), osds=OSDS, auth=auth)
        self.loop = LoopThread.shared()
        self.client: RadosClient | None = None
        self.rnd = random.Random(seed)
        self._jobs: dict[str, Any] = {}
        self.cluster.start(extra_conf=extra)
        try:
            conf, _ = build_config("client", ["-c", self.cluster.conf_path], {})
            self.client = RadosClient(conf, "client.admin")
            self.loop.run(self.client.connect(30))
            ret, _, outs = self.loop.run(self.client.mon_command(
                {"prefix": "osd pool create", "pool": "bench", "pg_num": PG_NUM}))
            assert ret == 0, outs
            self.cluster.wait_healthy(OSDS, 120)
            pool = self.client.pool_by_name("bench")
            assert pool is not None
            self.pool_id = pool.id
            pids = {n: p for n, p in ((n, self.cluster.running_pid(n)) for n in self.cluster.pid_names())
                    if p is not None}
            self.cpu_pids = {"mon": pids["mon.a"], **{n: p for n, p in pids.items() if n.startswith("osd.")},
                             "client": os.getpid()}
        except BaseException:
            self.close()
            raise

    def _job(self, label: str, size: int) -> Any:
        """The job source of a workload (made once, so object names never repeat)."""
        if label not in self._jobs:
            data = self.rnd.randbytes(size)
            count = [0]
            prefix = f"{label.replace(' ', '')}_{os.getpid()}_"

            def job() -> Job:
                count[0] += 1
                b = OpBuilder()
                b.add("writefull", data)
                return f"{prefix}{count[0]}", b, None

            assert self.client is not None
            # a short warm-up: connections, PG activation, page cache
            self.loop.run(drive(self.client, self.pool_id, Workload("warmup", size), 1.0, job))
            self._jobs[label] = job
        return self._jobs[label]

    def run(self, label: str, size: int, seconds: float, quiet: float = 0.0) -> Workload:
        assert self.client is not None
        job = self._job(label, size)
        others_before = wait_for_quiet(quiet, exclude=self.cpu_pids) if quiet else None
        cpu = CpuWindow(self.cpu_pids)
        cpu.start()
        wl = self.loop.run(drive(self.client, self.pool_id, Workload(label, size), seconds, job))
        wl.cpu = cpu.stop()
        wl.others_before = others_before
        return wl

    def close(self) -> None:
        if self.client is not None:
            try:
                self.loop.run(self.client.shutdown(), timeout=30)
            except Exception:  # noqa: BLE001 - the cluster is going away anyway
                pass
            self.client = None
        self.cluster.down()


def merge(slices: list[Workload]) -> Workload:
    """One workload from time slices of it: totals exact, averages weighted by time or ops,
    p99 and max are the worst slice's (an upper bound)."""
    first = slices[0]
    wl = Workload(first.name, first.block)
    wl.seconds = sum(w.seconds for w in slices)
    wl.ops = sum(w.ops for w in slices)
    wl.errors = sum(w.errors for w in slices)
    wl.first_error = next((w.first_error for w in slices if w.first_error), "")
    if wl.seconds > 0:
        wl.iops = wl.ops / wl.seconds
        wl.mb_s = wl.ops * wl.block / wl.seconds / 1e6
    if wl.ops:
        wl.avg_ms = sum(w.avg_ms * w.ops for w in slices) / wl.ops
    wl.p50_ms = max(w.p50_ms for w in slices)
    wl.p99_ms = max(w.p99_ms for w in slices)
    wl.max_ms = max(w.max_ms for w in slices)
    keys = {k for w in slices for k in w.cpu}
    wl.cpu = {k: sum(w.cpu.get(k, 0.0) * w.seconds for w in slices) / max(wl.seconds, 1e-9) for k in keys}
    return wl


def show(name: str, wl: Workload) -> None:
    daemons = sum(v for k, v in wl.cpu.items() if k.startswith("osd.") or k == "mon")
    print(f"  {name:<13} {wl.name}: {wl.iops:8.0f} IOPS {wl.mb_s:8.1f} MB/s  avg {wl.avg_ms:7.2f} ms  "
          f"p99 {wl.p99_ms:7.2f} ms  errors {wl.errors}  cpu: daemons {100 * daemons:.0f}% "
          f"client {100 * wl.cpu.get('client', 0):.0f}% others {100 * wl.cpu.get('others', 0):.0f}%", flush=True)
    if wl.errors:
        print(f"    first error: {wl.first_error}", flush=True)


def run_sequential(modes: list[str], workdir: str, seconds: float, seed: int,
                   quiet: float) -> dict[str, dict[str, Any]]:
    """The three clusters in turn: each is started, measured and stopped before the next."""
    out: dict[str, dict[str, Any]] = {}
    for i, mode in enumerate(modes):
        target = Target(mode, workdir, seed + i)
        try:
            out[mode] = {}
            for label, size in WORKLOADS:
                wl = target.run(label, size, seconds, quiet)
                show(mode, wl)
                out[mode][label] = asdict(wl)
        finally:
            target.close()
    return out


def run_interleaved(modes: list[str], workdir: str, seconds: float, seed: int, slices: int,
                    quiet: float) -> dict[str, dict[str, Any]]:
    """All clusters up at once (idle ones cost little), each workload cut into `slices` time
    slices that rotate over the modes, so whatever else runs on the box weighs on every mode
    alike."""
    targets: list[Target] = []
    try:
        for i, mode in enumerate(modes):
            targets.append(Target(mode, workdir, seed + i))
        out: dict[str, dict[str, Any]] = {m: {} for m in modes}
        for label, size in WORKLOADS:
            parts: dict[str, list[Workload]] = {m: [] for m in modes}
            for k in range(slices):
                order = targets[k % len(targets):] + targets[:k % len(targets)]
                for t in order:
                    parts[t.name].append(t.run(label, size, seconds / slices, quiet if k == 0 else 0.0))
            for mode in modes:
                wl = merge(parts[mode])
                show(mode, wl)
                out[mode][label] = asdict(wl)
        return out
    finally:
        for t in targets:
            t.close()


def report(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, float]]:
    best: dict[str, dict[str, float]] = {}
    for r in rounds:
        for mode, res in r.items():
            row = _row(res)
            b = best.setdefault(mode, dict.fromkeys(row, 0.0))
            for k, v in row.items():
                b[k] = max(b[k], v)
    print()
    for i, r in enumerate(rounds, 1):
        _table(f"round {i}", {m: _row(v) for m, v in r.items()})
    if len(rounds) > 1:
        _table("best of all rounds", best)
    return best


def _row(res: dict[str, Any]) -> dict[str, float]:
    """Headline numbers of one mode; "per core" divides by the CPU the cluster and this client
    used (in cores), which moves far less than raw IOPS when other work shares the box."""
    def used(wl: dict[str, Any]) -> float:
        cpu = wl["cpu"]
        return max(1e-9, sum(v for k, v in cpu.items() if k.startswith("osd.") or k in ("mon", "client")))

    w4k, w4m = res["write 4K"], res["write 4M"]
    return {"iops_4k": w4k["iops"], "iops_4k_per_core": w4k["iops"] / used(w4k), "mb_s_4m": w4m["mb_s"],
            "mb_s_4m_per_core": w4m["mb_s"] / used(w4m), "others_4k": w4k["cpu"].get("others", 0.0)}


def _table(title: str, rows: dict[str, dict[str, float]]) -> None:
    base = rows.get("none")

    def ratio(v: dict[str, float], key: str) -> float:
        return v[key] / base[key] if base and base[key] else float("nan")

    print(f"{title}:")
    print(f"  {'mode':<13} {'4K IOPS':>8} {'vs none':>8} {'per core':>9} {'vs none':>8} {'4M MB/s':>8} "
          f"{'vs none':>8} {'per core':>9} {'vs none':>8} {'others 4K':>10}")
    for mode, v in rows.items():
        goal = ""
        if mode == "cephx-crc":
            ok = ratio(v, "iops_4k") >= GOAL_4K_RATIO
            goal = f"  goal 4K >= {GOAL_4K_RATIO:.2f} x none: {'yes' if ok else 'NO'}"
        print(f"  {mode:<13} {v['iops_4k']:>8.0f} {ratio(v, 'iops_4k'):>8.2f} {v['iops_4k_per_core']:>9.0f} "
              f"{ratio(v, 'iops_4k_per_core'):>8.2f} {v['mb_s_4m']:>8.1f} {ratio(v, 'mb_s_4m'):>8.2f} "
              f"{v['mb_s_4m_per_core']:>9.1f} {ratio(v, 'mb_s_4m_per_core'):>8.2f} "
              f"{100 * v['others_4k']:>9.0f}%{goal}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each workload (default 10)")
    ap.add_argument("--rounds", type=int, default=1, help="repeat the three clusters this many times")
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated subset of " + ",".join(MODES))
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--wait-quiet", type=float, default=0.0, metavar="S",
                    help="before each workload wait up to S seconds for other processes to use < 0.25 cores")
    ap.add_argument("--interleave", type=int, default=0, metavar="K",
                    help="start all clusters at once and rotate K time slices of each workload over them")
    ap.add_argument("--json", help="write every number here")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    modes = [m for m in args.modes.split(",") if m]
    for m in modes:
        if m not in MODES:
            ap.error(f"unknown mode {m!r}")
    print(f"bench_auth_cluster: {platform.node()} {os.cpu_count()} CPUs, python {platform.python_version()}, "
          f"{args.seconds:g}s per workload, {INFLIGHT} in flight, "
          f"{f'interleaved in {args.interleave} slices' if args.interleave else 'clusters in turn'}, seed={seed}, load avg "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    rounds: list[dict[str, dict[str, Any]]] = []
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="bench_auth_") as workdir:
        for i in range(args.rounds):
            where = os.path.join(workdir, f"r{i}")
            if args.interleave:
                rounds.append(run_interleaved(modes, where, args.seconds, seed + 10 * i, args.interleave,
                                              args.wait_quiet))
            else:
                rounds.append(run_sequential(modes, where, args.seconds, seed + 10 * i, args.wait_quiet))
    best = report(rounds)
    print(f"total {time.time() - started:.0f}s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"date": datetime.datetime.now(datetime.UTC).isoformat(), "seconds": args.seconds,
                       "inflight": INFLIGHT, "seed": seed, "rounds": rounds, "best": best}, f, indent=1)


if __name__ == "__main__":
    main()

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
else on the box, and each mode's ratio to `none`. The issue's goal: cephx (signed) 4 KiB
write IOPS within 15 % of `none`, i.e. ratio >= 0.85.

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


def run_mode(name: str, workdir: str, seconds: float, seed: int, quiet: float = 0.0) -> dict[str, Any]:
    auth, extra = MODES[name]
    cluster = TestCluster(os.path.join(workdir, name), osds=OSDS, auth=auth)
    cluster.start(extra_conf=extra)
    loop = LoopThread.shared()
    client: RadosClient | None = None
    try:
        conf, _ = build_config("client", ["-c", cluster.conf_path], {})
        client = RadosClient(conf, "client.admin")
        loop.run(client.connect(30))
        ret, _, outs = loop.run(client.mon_command({"prefix": "osd pool create", "pool": "bench", "pg_num": PG_NUM}))
        assert ret == 0, outs
        cluster.wait_healthy(OSDS, 120)
        pool = client.pool_by_name("bench")
        assert pool is not None
        pids = {n: p for n, p in ((n, cluster.running_pid(n)) for n in cluster.pid_names()) if p is not None}
        cpu_pids = {"mon": pids["mon.a"], **{n: p for n, p in pids.items() if n.startswith("osd.")},
                    "client": os.getpid()}
        rnd = random.Random(seed)
        results = {}
        for label, size in (("write 4K", 4 * KiB), ("write 4M", 4 * MiB)):
            data = rnd.randbytes(size)
            count = [0]
            prefix = f"{label.replace(' ', '')}_{os.getpid()}_"

            def job(data: bytes = data, count: list[int] = count, prefix: str = prefix) -> Job:
                count[0] += 1
                b = OpBuilder()
                b.add("writefull", data)
                return f"{prefix}{count[0]}", b, None

            # a short warm-up: connections, PG activation, page cache
            loop.run(drive(client, pool.id, Workload("warmup", size), 1.0, job))
            others_before = wait_for_quiet(quiet, exclude=cpu_pids) if quiet else None
            cpu = CpuWindow(cpu_pids)
            cpu.start()
            wl = loop.run(drive(client, pool.id, Workload(label, size), seconds, job))
            wl.cpu = cpu.stop()
            wl.others_before = others_before
            results[label] = asdict(wl)
            daemons = sum(v for k, v in wl.cpu.items() if k.startswith("osd.") or k == "mon")
            print(f"  {name:<13} {label}: {wl.iops:8.0f} IOPS {wl.mb_s:8.1f} MB/s  avg {wl.avg_ms:6.2f} ms  "
                  f"p99 {wl.p99_ms:6.2f} ms  errors {wl.errors}  cpu: daemons {100 * daemons:.0f}% "
                  f"client {100 * wl.cpu['client']:.0f}% others {100 * wl.cpu['others']:.0f}%", flush=True)
            if wl.errors:
                print(f"    first error: {wl.first_error}", flush=True)
        return results
    finally:
        if client is not None:
            try:
                loop.run(client.shutdown(), timeout=30)
            except Exception:  # noqa: BLE001 - the cluster is going away anyway
                pass
        cluster.down()


def report(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, float]]:
    best: dict[str, dict[str, float]] = {}
    for r in rounds:
        for mode, res in r.items():
            b = best.setdefault(mode, {"iops_4k": 0.0, "mb_s_4m": 0.0})
            b["iops_4k"] = max(b["iops_4k"], res["write 4K"]["iops"])
            b["mb_s_4m"] = max(b["mb_s_4m"], res["write 4M"]["mb_s"])
    print()
    for i, r in enumerate(rounds, 1):
        _table(f"round {i}", {m: {"iops_4k": v["write 4K"]["iops"], "mb_s_4m": v["write 4M"]["mb_s"]}
                              for m, v in r.items()})
    if len(rounds) > 1:
        _table("best of all rounds", best)
    return best


def _table(title: str, rows: dict[str, dict[str, float]]) -> None:
    base = rows.get("none")
    print(f"{title}:")
    print(f"  {'mode':<13} {'4K write IOPS':>14} {'vs none':>8} {'4M write MB/s':>14} {'vs none':>8}")
    for mode, v in rows.items():
        r4k = v["iops_4k"] / base["iops_4k"] if base and base["iops_4k"] else float("nan")
        r4m = v["mb_s_4m"] / base["mb_s_4m"] if base and base["mb_s_4m"] else float("nan")
        goal = ""
        if mode == "cephx-crc":
            goal = f"  goal >= {GOAL_4K_RATIO:.2f}: {'yes' if r4k >= GOAL_4K_RATIO else 'NO'}"
        print(f"  {mode:<13} {v['iops_4k']:>14.0f} {r4k:>8.2f} {v['mb_s_4m']:>14.1f} {r4m:>8.2f}{goal}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each workload (default 10)")
    ap.add_argument("--rounds", type=int, default=1, help="repeat the three clusters this many times")
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated subset of " + ",".join(MODES))
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--wait-quiet", type=float, default=0.0, metavar="S",
                    help="before each workload wait up to S seconds for other processes to use < 0.25 cores")
    ap.add_argument("--json", help="write every number here")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    modes = [m for m in args.modes.split(",") if m]
    for m in modes:
        if m not in MODES:
            ap.error(f"unknown mode {m!r}")
    print(f"bench_auth_cluster: {platform.node()} {os.cpu_count()} CPUs, python {platform.python_version()}, "
          f"{args.seconds:g}s per workload, {INFLIGHT} in flight, seed={seed}, load avg "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    rounds: list[dict[str, dict[str, Any]]] = []
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="bench_auth_") as workdir:
        for i in range(args.rounds):
            res: dict[str, dict[str, Any]] = {}
            for mode in modes:
                res[mode] = run_mode(mode, os.path.join(workdir, f"r{i}"), args.seconds, seed + i,
                                     args.wait_quiet)
            rounds.append(res)
    best = report(rounds)
    print(f"total {time.time() - started:.0f}s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"date": datetime.datetime.now(datetime.UTC).isoformat(), "seconds": args.seconds,
                       "inflight": INFLIGHT, "seed": seed, "rounds": rounds, "best": best}, f, indent=1)


if __name__ == "__main__":
    main()

"""`rados bench` against a throw-away real Ceph 16 cluster, for a side-by-side.

Uses ../shared/tools/realceph/up.sh (Debian's ceph packages; 1 mon, 1 mgr, 3 BlueStore
OSDs on sparse files) in a fresh temp dir on free monitor ports, creates pool `bench`
with 32 PGs, runs the same workloads as bench_cluster.py with `rados bench -t 16`
(4 MiB write / seq / rand; 4 KiB write / rand) while sampling the daemons' RSS and CPU,
and always tears the cluster down (`down.sh DIR --purge`).

`rados bench` prints "Bandwidth (MB/sec)" in MiB/s (obj_bencher divides by 1024*1024);
the numbers here are recomputed in MB/s = 10^6 bytes/s from ops made and time run.

Run alone: python bench/realceph_bench.py [--seconds S]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from proc_stats import CpuWindow, ProcSampler

REALCEPH = Path(__file__).resolve().parents[2] / "shared" / "tools" / "realceph"
BINARIES = ("/usr/bin/ceph", "/usr/bin/rados", "/usr/bin/ceph-mon", "/usr/bin/ceph-osd", "/usr/bin/ceph-mgr")


def available() -> str:
    """'' if a real Ceph cluster can be started here, else why not."""
    if not (REALCEPH / "up.sh").exists():
        return f"{REALCEPH}/up.sh not found"
    missing = [b for b in BINARIES if not os.path.exists(b)]
    if missing:
        return f"Debian ceph packages not installed (missing {', '.join(missing)})"
    return ""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(directory: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CEPH_ARGS", "CEPH_CONF")}
    # the real binaries, not Shoal's `ceph`/`rados` entry points that pyenv puts first
    env["PATH"] = "/usr/bin:/bin:/usr/sbin:/sbin:" + env.get("PATH", "")
    env["CEPH_CONF"] = os.path.join(directory, "ceph.conf")
    return env


def _parse_rados_bench(text: str, op_size: int) -> dict[str, Any]:
    def num(label: str) -> float:
        m = re.search(rf"^{re.escape(label)}:?\s+([0-9.eE+-]+)", text, re.M)
        return float(m.group(1)) if m else 0.0

    made = num("Total writes made") or num("Total reads made")
    secs = num("Total time run")
    return {"ops": int(made), "seconds": secs, "mb_s": made * op_size / secs / 1e6 if secs else 0.0,
            "rados_bench_mib_s": num("Bandwidth (MB/sec)"), "iops": made / secs if secs else 0.0,
            "avg_ms": 1000 * num("Average Latency(s)"), "max_ms": 1000 * num("Max latency(s)")}


def _wait_clean(env: dict[str, str], min_pgs: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["ceph", "status", "-f", "json"], env=env, capture_output=True, text=True, timeout=60)
        if out.returncode == 0:
            pg = json.loads(out.stdout)["pgmap"]
            states = {s["state_name"] for s in pg.get("pgs_by_state", [])}
            if pg.get("num_pgs", 0) >= min_pgs and states == {"active+clean"}:
                return
        time.sleep(1)
    raise TimeoutError(f"real Ceph: PGs not active+clean after {timeout:g}s")


def run(seconds: float, base_dir: str | None = None) -> dict[str, Any]:
    why = available()
    if why:
        print(f"--with-ceph skipped: {why}", flush=True)
        return {"skipped": why}
    directory = tempfile.mkdtemp(prefix="realceph-bench-", dir=base_dir)
    env = _env(directory)
    env.update(MON_PORT_V2=str(_free_port()), MON_PORT_V1=str(_free_port()))
    out: dict[str, Any] = {"dir": directory}
    sampler: ProcSampler | None = None
    try:
        print(f"starting real Ceph in {directory} ...", flush=True)
        t0 = time.monotonic()
        subprocess.run([str(REALCEPH / "up.sh"), directory], env=env, check=True, timeout=300,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        out["startup_s"] = time.monotonic() - t0
        pids = {}
        for name in sorted(os.listdir(os.path.join(directory, "pids"))):
            with open(os.path.join(directory, "pids", name)) as f:
                pids[name.removesuffix(".pid")] = int(f.read().strip())
        sampler = ProcSampler(pids)
        sampler.start()
        t1 = time.monotonic()
        subprocess.run(["ceph", "osd", "pool", "create", "bench", "32", "32"], env=env, check=True,
                       capture_output=True, timeout=120)
        _wait_clean(env, 33, 120)
        out["pool_create_to_clean_s"] = time.monotonic() - t1
        t = str(int(seconds))
        runs = [("write 4M", 4 << 20, ["write", "-b", "4M", "--no-cleanup", "--run-name", "r4m"]),
                ("seq read 4M", 4 << 20, ["seq", "--run-name", "r4m"]),
                ("rand read 4M", 4 << 20, ["rand", "--run-name", "r4m"]),
                ("write 4K (new objects)", 4096, ["write", "-b", "4096", "--no-cleanup", "--run-name", "r4k"]),
                ("rand read 4K (4K objs)", 4096, ["rand", "--run-name", "r4k"])]
        results = {}
        cpu_pids = {k: v for k, v in pids.items()}
        for name, size, args in runs:
            cpu = CpuWindow(cpu_pids)
            sampler.new_window()
            cpu.start()
            children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            w0 = time.monotonic()
            res = subprocess.run(["rados", "bench", "-p", "bench", t, *args[:1], "-t", "16", *args[1:]], env=env,
                                 capture_output=True, text=True, timeout=seconds + 300)
            r = _parse_rados_bench(res.stdout, size)
            r["cpu"] = cpu.stop()
            children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            r["cpu"]["client"] = ((children1.ru_utime + children1.ru_stime - children0.ru_utime - children0.ru_stime)
                                  / (time.monotonic() - w0))
            r["cpu"]["others"] = max(0.0, r["cpu"]["others"] - r["cpu"]["client"])
            r["rss_peak_mib"] = sampler.new_window()
            if res.returncode != 0:
                r["error"] = res.stderr[-2000:]
            results[name] = r
            print(f"  ceph {name:<24} {r['mb_s']:9.1f} MB/s {r['iops']:9.0f} IOPS  avg {r['avg_ms']:7.2f} ms",
                  flush=True)
        out["workloads"] = results
    except (subprocess.SubprocessError, OSError, TimeoutError, ValueError) as exc:
        err = getattr(exc, "stderr", None)
        out["error"] = f"{exc!r} {err.decode(errors='replace')[-2000:] if isinstance(err, bytes) else err or ''}"
        print(f"real Ceph run failed: {out['error']}", flush=True)
    finally:
        if sampler is not None:
            sampler.stop()
            out["rss_peak_mib"] = dict(sampler.peak_rss)
            out["vmhwm_mib"] = dict(sampler.hwm)
        subprocess.run([str(REALCEPH / "down.sh"), directory, "--purge"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(directory, ignore_errors=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--dir", default=None)
    args = p.parse_args()
    print(json.dumps(run(args.seconds, args.dir), indent=1))


if __name__ == "__main__":
    main()

"""The report of bench/bench_cluster.py: goals, real Ceph 16 reference numbers, tables.

Kept apart from the benchmark so that a saved `--json` result can be printed again:
python bench/cluster_report.py OUT.json
"""

from __future__ import annotations

import json
import sys
from typing import Any

OSDS = 3
PG_NUM = 32

# Real Ceph 16.2.15 on this box (../shared/reference/real-ceph-baseline.md): (low, high, source).
# `rados bench` prints "Bandwidth (MB/sec)" in MiB/s (obj_bencher divides by 1024*1024): the
# baseline's 365.7-409.6 "MB/s" for 4 MiB writes are 91-102 IOPS x 4 MiB. Converted here to
# MB/s = 10^6 bytes/s like every Shoal number.
MIB_S = 1.048576
CEPH: dict[str, tuple[float, float, str]] = {
    "startup_s": (18.1, 18.1, "up.sh, wiped dir to HEALTH_OK, typical run (11-28 s seen)"),
    "write_4m_mb_s": (365.7 * MIB_S, 409.6 * MIB_S, "rados bench write -b 4M -t 16, runs 1/2 (365.7/409.6 MiB/s)"),
    "seq_4m_mb_s": (1531.8 * MIB_S, 1584.8 * MIB_S, "rados bench seq -t 16 (1531.8/1584.8 MiB/s)"),
    "rand_4m_mb_s": (1602.4 * MIB_S, 1602.7 * MIB_S, "rados bench rand -t 16 (1602.4/1602.7 MiB/s)"),
    "write_4k_iops": (1959, 1959, "rados bench write -b 4096 -t 16 (run 2)"),
    "read_4k_iops": (13516, 14414, "rbd bench read 4K rand t16 (rados 4K reads not measured)"),
    "overwrite_4k_iops": (1667, 1667, "fio rbd randwrite 4k qd16, rbd_cache=false"),
    "osd_rss_mib": (1366, 1386, "VmHWM after all benchmarks"),
    "mon_rss_mib": (67, 67, "VmHWM"),
}
# Goals from the issue; ">=" for throughput, "<=" for time and memory.
GOALS: dict[str, tuple[str, float]] = {
    "startup_s": ("<", 1.0),
    "write_4m_mb_s": (">=", 400.0),
    "seq_4m_mb_s": (">=", 1500.0),
    "rand_4m_mb_s": (">=", 1500.0),
    "write_4k_iops": (">=", 2000.0),
    "read_4k_iops": (">=", 14000.0),
    "osd_rss_mib": ("<=", 300.0),
}


def _fmt(v: float | None, unit: str = "") -> str:
    if v is None:
        return "–"
    if abs(v) >= 100:
        return f"{v:,.0f}{unit}"
    if abs(v) >= 10:
        return f"{v:.1f}{unit}"
    return f"{v:.2f}{unit}"


def _ratio(v: float | None, ref: tuple[float, float] | float | None) -> str:
    if v is None or ref is None:
        return "–"
    if isinstance(ref, tuple):
        lo, hi = ref
        if not lo or not hi:
            return "–"
        a, b = sorted((v / lo, v / hi))
        return f"{a:.2f}" if abs(a - b) < 0.005 else f"{a:.2f}–{b:.2f}"
    return f"{v / ref:.2f}" if ref else "–"


def _meets(key: str, v: float | None) -> str:
    if key not in GOALS or v is None:
        return ""
    op, goal = GOALS[key]
    ok = v < goal if op == "<" else v <= goal if op == "<=" else v >= goal
    return "yes" if ok else "NO"


def summary_rows(res: dict[str, Any]) -> list[dict[str, Any]]:
    """The headline rows: key, label, unit, Shoal value, raw-disk reference."""
    wl = {w["name"]: w for w in res["workloads"]}
    raw = res["raw_disk"]
    osd_rss = max((v for k, v in res["rss_peak_mib"].items() if k.startswith("osd.")), default=None)

    def get(name: str, what: str) -> float | None:
        return wl[name][what] if name in wl else None

    return [
        {"key": "startup_s", "label": "start-up to all PGs active (s)", "v": res["startup"]["harness_up_s"],
         "raw": None},
        {"key": "startup_pool_s", "label": "  + pool create 32 PGs to active+clean (s)",
         "v": res["startup"]["harness_up_s"] + res["startup"]["pool_create_to_clean_s"], "raw": None},
        {"key": "write_4m_mb_s", "label": "4M write, t16 (MB/s)", "v": get("write 4M", "mb_s"),
         "raw": raw["write_4m_seq_fsync_end"]["mb_s"]},
        {"key": "seq_4m_mb_s", "label": "4M seq read, t16 (MB/s)", "v": get("seq read 4M", "mb_s"),
         "raw": raw["read_4m_seq_cold"]["mb_s"]},
        {"key": "rand_4m_mb_s", "label": "4M rand read, t16 (MB/s)", "v": get("rand read 4M", "mb_s"),
         "raw": raw["read_4m_seq_cold"]["mb_s"]},
        {"key": "write_4k_iops", "label": "4K write new objs, t16 (IOPS)", "v": get("write 4K (new objects)", "iops"),
         "raw": raw["write_4k_fsync_qd1"]["iops"]},
        {"key": "read_4k_iops", "label": "4K rand read 4K objs, t16 (IOPS)",
         "v": get("rand read 4K (4K objs)", "iops"), "raw": raw["read_4k_rand_warm_qd1"]["iops"]},
        {"key": "read_4k_whole_iops", "label": "  same, read len=0 (whole object) (IOPS)",
         "v": get("rand read 4K len=0", "iops"), "raw": raw["read_4k_rand_warm_qd1"]["iops"]},
        {"key": "overwrite_4k_iops", "label": "4K rand write in 4M objs, t16 (IOPS)",
         "v": get("rand write 4K in 4M objs", "iops"), "raw": raw["write_4k_fsync_qd1"]["iops"]},
        {"key": "read_4k_in_4m_iops", "label": "4K rand read in 4M objs, t16 (IOPS)",
         "v": get("rand read 4K in 4M objs", "iops"), "raw": raw["read_4k_rand_warm_qd1"]["iops"]},
        {"key": "osd_rss_mib", "label": "OSD peak RSS (MiB)", "v": osd_rss, "raw": None},
        {"key": "mon_rss_mib", "label": "mon peak RSS (MiB)", "v": res["rss_peak_mib"].get("mon"), "raw": None},
    ]


CEPH_RUN_WORKLOAD = {"write_4m_mb_s": ("write 4M", "mb_s"), "seq_4m_mb_s": ("seq read 4M", "mb_s"),
                     "rand_4m_mb_s": ("rand read 4M", "mb_s"), "write_4k_iops": ("write 4K (new objects)", "iops"),
                     "read_4k_iops": ("rand read 4K (4K objs)", "iops")}


def ceph_this_run(res: dict[str, Any], key: str) -> float | None:
    """The --with-ceph number for a summary row, if that was run."""
    ceph = res.get("ceph") or {}
    if key in CEPH_RUN_WORKLOAD:
        name, what = CEPH_RUN_WORKLOAD[key]
        w = (ceph.get("workloads") or {}).get(name)
        return w[what] if w else None
    if key == "startup_s":
        return ceph.get("startup_s")
    if key == "osd_rss_mib":
        return max((v for k, v in (ceph.get("rss_peak_mib") or {}).items() if k.startswith("osd.")), default=None)
    if key == "mon_rss_mib":
        return (ceph.get("rss_peak_mib") or {}).get("mon.a")
    return None


def cpu_ms_per_op(w: dict[str, Any]) -> tuple[float, float]:
    """CPU milliseconds per op spent by all OSDs together and by the client: on a CPU-bound
    box, throughput is roughly (cores available) / (CPU per op)."""
    if not w["iops"]:
        return 0.0, 0.0
    osds = sum(v for k, v in w["cpu"].items() if k.startswith("osd."))
    return 1000 * osds / w["iops"], 1000 * w["cpu"].get("client", 0.0) / w["iops"]


def print_report(res: dict[str, Any]) -> None:
    rows = summary_rows(res)
    dirty = f", working tree differs in {', '.join(res['dirty_files'])}" if res.get("dirty_files") else ""
    print(f"\nShoal {res['commit']}{dirty}; {res['date']}; {res['seconds_per_workload']:g} s per workload")
    with_ceph = bool((res.get("ceph") or {}).get("workloads"))
    res["summary"] = []
    print()
    extra_h, extra_a = (" Ceph this run | Shoal/Ceph this run |", "---:|---:|") if with_ceph else ("", "")
    print(f"| workload | Shoal | goal | meets | real Ceph 16 (baseline) | Shoal/Ceph | Shoal/raw disk |{extra_h}")
    print(f"|---|---:|---:|:-:|---:|---:|---:|{extra_a}")
    for r in rows:
        key, v = r["key"], r["v"]
        goal = GOALS.get(key)
        ceph = CEPH.get(key)
        ceph_txt = "–" if ceph is None else (_fmt(ceph[0]) if ceph[0] == ceph[1] else
                                             f"{_fmt(ceph[0])}–{_fmt(ceph[1])}")
        ceph_ref = (ceph[0], ceph[1]) if ceph else None
        now = ceph_this_run(res, key)
        row = {"key": key, "label": r["label"], "shoal": v, "goal": goal, "meets": _meets(key, v),
               "ceph": ceph_ref, "ratio_ceph": _ratio(v, ceph_ref), "raw": r["raw"], "ratio_raw": _ratio(v, r["raw"]),
               "ceph_this_run": now, "ratio_ceph_this_run": _ratio(v, now)}
        res["summary"].append(row)
        goal_txt = f"{goal[0]} {_fmt(goal[1])}" if goal else "–"
        extra = f" {_fmt(now)} | {row['ratio_ceph_this_run']} |" if with_ceph else ""
        print(f"| {r['label']} | {_fmt(v)} | {goal_txt} | {row['meets']} | {ceph_txt} | {row['ratio_ceph']} | "
              f"{row['ratio_raw']} |{extra}")

    print()
    print("| workload | MB/s | IOPS | avg ms | p50 ms | p99 ms | max ms | ops | err | CPU mon/osd0/osd1/osd2/client/"
          "others (% of 1 core) | CPU ms per op: OSDs / client | peak RSS osd MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|")
    for w in res["workloads"]:
        cpu = w["cpu"]
        cpu_txt = "/".join(f"{100 * cpu.get(k, 0):.0f}" for k in ("mon", "osd.0", "osd.1", "osd.2", "client",
                                                                      "others"))
        rss = "/".join(f"{w['rss_peak_mib'].get(f'osd.{i}', 0):.0f}" for i in range(OSDS))
        per_op = cpu_ms_per_op(w)
        print(f"| {w['name']} | {w['mb_s']:.1f} | {w['iops']:.0f} | {w['avg_ms']:.2f} | {w['p50_ms']:.2f} | "
              f"{w['p99_ms']:.2f} | {w['max_ms']:.1f} | {w['ops']} | {w['errors']} | {cpu_txt} | "
              f"{per_op[0]:.3f} / {per_op[1]:.3f} | {rss} |")

    raw = res["raw_disk"]
    print()
    print(f"raw disk ({raw['tool']}, {res['dir_fs']}): "
          f"4K write+fsync qd1 {raw['write_4k_fsync_qd1']['iops']:.0f} IOPS; "
          f"4M seq write+fsync {raw['write_4m_seq_fsync_end']['mb_s']:.0f} MB/s; "
          f"4M seq read cold {raw['read_4m_seq_cold']['mb_s']:.0f} MB/s, warm {raw['read_4m_seq_warm']['mb_s']:.0f}"
          f" MB/s; 4K rand read warm qd1 {raw['read_4k_rand_warm_qd1']['iops']:.0f} IOPS; O_DIRECT 4M qd1 write "
          f"{raw['direct_4m_seq_qd1']['write_mb_s']:.0f} MB/s, read {raw['direct_4m_seq_qd1']['read_mb_s']:.0f} MB/s")
    st = res["startup"]
    print(f"start-up: harness up() {st['harness_up_s']:.2f} s, first daemon process start to healthy "
          f"{st['process_start_to_healthy_s']:.2f} s, pool create to {PG_NUM} PGs active+clean "
          f"{st['pool_create_to_clean_s']:.2f} s")
    print("peak RSS MiB (VmRSS sampled / VmHWM): " + ", ".join(
        f"{k} {v:.0f}/{res['vmhwm_mib'].get(k, 0):.0f}" for k, v in res["rss_peak_mib"].items()))
    ceph = res.get("ceph") or {}
    if ceph.get("skipped") or ceph.get("error"):
        print(f"real Ceph side by side: {ceph.get('skipped') or ceph.get('error')}")
    for name, w in (ceph.get("workloads") or {}).items():
        cpu = w.get("cpu", {})
        osd_cpu = "/".join(f"{100 * cpu.get(f'osd.{i}', 0):.0f}" for i in range(OSDS))
        per_op = cpu_ms_per_op(w)
        print(f"real Ceph {name}: {w['mb_s']:.1f} MB/s {w['iops']:.0f} IOPS avg {w['avg_ms']:.2f} ms; "
              f"CPU osd {osd_cpu} %, rados {100 * cpu.get('client', 0):.0f} %, others {100 * cpu.get('others', 0):.0f} "
              f"% (incl. kernel I/O workers); CPU ms per op OSDs {per_op[0]:.3f} / rados {per_op[1]:.3f}")


def main() -> None:
    with open(sys.argv[1]) as f:
        print_report(json.load(f))


if __name__ == "__main__":
    main()

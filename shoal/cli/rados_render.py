"""The `rados` CLI's own plain-text outputs: `df`, `lspools`, `stat`/`stat2` and `bench`.

Pure functions from data to the exact text `rados` (Ceph 16) prints; the CLI does the I/O.
Formats were read off real `rados` runs (fixtures and a throw-away reference cluster).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from shoal.mon.render_table import LEFT, RIGHT, Column, render_table
from shoal.mon.render_units import byte_u, cfloat, format_stamp

_DF_COLUMNS = (Column("POOL_NAME", LEFT, LEFT),) + tuple(Column(h, RIGHT, RIGHT) for h in (
    "USED", "OBJECTS", "CLONES", "COPIES", "MISSING_ON_PRIMARY", "UNFOUND", "DEGRADED", "RD_OPS", "RD",
    "WR_OPS", "WR", "USED COMPR", "UNDER COMPR"))
_MIB = 1024 * 1024


# -- df / lspools / stat --------------------------------------------------------------------------

def _df_row(p: Mapping[str, Any]) -> list[str]:
    return [p["name"], byte_u(p.get("size_bytes", 0)), str(p.get("num_objects", 0)),
            str(p.get("num_object_clones", 0)), str(p.get("num_object_copies", 0)),
            str(p.get("num_objects_missing_on_primary", 0)), str(p.get("num_objects_unfound", 0)),
            str(p.get("num_objects_degraded", 0)), str(p.get("read_ops", 0)), byte_u(p.get("read_bytes", 0)),
            str(p.get("write_ops", 0)), byte_u(p.get("write_bytes", 0)), byte_u(p.get("compress_bytes_used", 0)),
            byte_u(p.get("compress_under_bytes", 0))]


def render_df(data: Mapping[str, Any]) -> str:
    """`rados df` from its JSON document; the totals there are in KiB."""
    table = render_table(_DF_COLUMNS, [_df_row(p) for p in data.get("pools") or []])
    return (table + "\n"
            f"total_objects    {data.get('total_objects', 0)}\n"
            f"total_used       {byte_u(int(data.get('total_used', 0)) * 1024)}\n"
            f"total_avail      {byte_u(int(data.get('total_avail', 0)) * 1024)}\n"
            f"total_space      {byte_u(int(data.get('total_space', 0)) * 1024)}\n")


def render_lspools(names: Iterable[str]) -> str:
    """`rados lspools` (it prints this list even when asked for JSON)."""
    return "".join(f"{name}\n" for name in names)


def render_stat(pool: str, oid: str, mtime: float, size: int, precise: bool = False,
                tz: tzinfo | None = None) -> str:
    """"rbd/obj1 mtime 2026-11-23T22:22:06.000000+0000, size 6".

    `rados stat` has whole-second mtimes (".000000"); `stat2` (`precise`) keeps the microseconds.
    The time is local, as Ceph prints it, unless `tz` is given. The namespace is never shown.
    """
    stamp = format_stamp(mtime if precise else math.floor(mtime), tz)
    return f"{pool}/{oid} mtime {stamp}, size {size}\n"


def render_stat_error(pool: str, oid: str, errno: int, reason: str) -> str:
    """The stderr line of a failed stat; Ceph starts it with a space."""
    return f" error stat-ing {pool}/{oid}: ({errno}) {reason}\n"


# -- bench ----------------------------------------------------------------------------------------

BENCH_HEADER = "  sec Cur ops   started  finished  avg MB/s  cur MB/s last lat(s)  avg lat(s)\n"
BENCH_HEADER_EVERY = 20  # the header is repeated after this many progress lines


def bench_preamble(op: str, concurrent: int, op_size: int, object_size: int, seconds: int,
                   max_objects: int, object_prefix: str) -> str:
    """What `rados bench` prints before the first header; reads print only the hints line."""
    text = "hints = 1\n"
    if op == "write":
        text += (f"Maintaining {concurrent} concurrent writes of {op_size} bytes to objects of size {object_size}"
                 f" for up to {seconds} seconds or {max_objects} objects\nObject prefix: {object_prefix}\n")
    return text


def bench_progress_line(sec: int, cur_ops: int, started: int, finished: int, avg_mb_s: float,
                        cur_mb_s: float | None, last_lat: float | None, avg_lat: float) -> str:
    """One per-second line; `cur_mb_s`/`last_lat` None means no op finished in that second ("0", "-")."""
    cur = "0" if cur_mb_s is None else cfloat(cur_mb_s)
    last = "-" if last_lat is None else cfloat(last_lat)
    return (f"{sec:>5} {cur_ops:>7} {started:>9} {finished:>9} {cfloat(avg_mb_s):>9} {cur:>9}"
            f" {last:>11} {cfloat(avg_lat):>11}\n")


def bench_latency_line(now: float, min_lat: float, max_lat: float, avg_lat: float,
                       tz: tzinfo | None = None) -> str:
    """The line printed before every repeated header: "<time> min lat: ... max lat: ... avg lat: ..."."""
    return (f"{format_stamp(now, tz)} min lat: {cfloat(min_lat)} max lat: {cfloat(max_lat)}"
            f" avg lat: {cfloat(avg_lat)}\n")


def _stddev(values: Sequence[float]) -> float:
    """Sample standard deviation (n - 1), 0 for fewer than two samples, as rados bench computes it."""
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


@dataclass(frozen=True)
class BenchSummary:
    """The figures of the closing block of `rados bench`; `op` is "write", "seq" or "rand"."""

    op: str
    time_run: float  # seconds
    ops: int  # ops finished
    op_size: int
    object_size: int
    bandwidth: float  # MB/s over the whole run
    avg_iops: int
    stddev_iops: float
    max_iops: int
    min_iops: int
    avg_latency: float  # seconds
    max_latency: float
    min_latency: float
    stddev_latency: float = 0.0  # write only
    stddev_bandwidth: float = 0.0  # write only
    max_bandwidth: float = 0.0  # write only
    min_bandwidth: float = 0.0  # write only


def summarize(op: str, time_run: float, ops: int, op_size: int, object_size: int, latencies: Sequence[float],
              bandwidth_samples: Sequence[float] = (), iops_samples: Sequence[int] = ()) -> BenchSummary:
    """The summary figures as rados bench derives them.

    Samples are per second (MB/s and ops finished in each second that saw completions); standard
    deviations are of the sample (n - 1), averages of the whole run, and the IOPS average is truncated.
    """
    bws, iops, lat = list(bandwidth_samples), [int(v) for v in iops_samples], list(latencies)
    return BenchSummary(
        op=op, time_run=time_run, ops=ops, op_size=op_size, object_size=object_size,
        bandwidth=ops * op_size / time_run / _MIB if time_run else 0.0,
        avg_iops=int(ops / time_run) if time_run else 0, stddev_iops=_stddev(iops),
        max_iops=max(iops, default=0), min_iops=min(iops, default=0),
        avg_latency=sum(lat) / len(lat) if lat else 0.0, max_latency=max(lat, default=0.0),
        min_latency=min(lat, default=0.0), stddev_latency=_stddev(lat), stddev_bandwidth=_stddev(bws),
        max_bandwidth=max(bws, default=0.0), min_bandwidth=min(bws, default=0.0))


def bench_summary(s: BenchSummary) -> str:
    """The closing block: totals, then bandwidth, IOPS and latency figures (more of them for writes)."""
    write = s.op == "write"
    verb, noun = ("writes", "Write") if write else ("reads", "Read")
    pairs = [("Total time run:", cfloat(s.time_run)), (f"Total {verb} made:", str(s.ops)),
             (f"{noun} size:", str(s.op_size)), ("Object size:", str(s.object_size)),
             ("Bandwidth (MB/sec):", cfloat(s.bandwidth))]
    if write:
        pairs += [("Stddev Bandwidth:", cfloat(s.stddev_bandwidth)),
                  ("Max bandwidth (MB/sec):", cfloat(s.max_bandwidth)),
                  ("Min bandwidth (MB/sec):", cfloat(s.min_bandwidth))]
    pairs += [("Average IOPS:", str(s.avg_iops)), ("Stddev IOPS:", cfloat(s.stddev_iops)),
              ("Max IOPS:", str(s.max_iops)), ("Min IOPS:", str(s.min_iops)),
              ("Average Latency(s):", cfloat(s.avg_latency))]
    if write:
        pairs.append(("Stddev Latency(s):", cfloat(s.stddev_latency)))
    pairs += [("Max latency(s):", cfloat(s.max_latency)), ("Min latency(s):", cfloat(s.min_latency))]
    width = 24 if write else 22  # the labels are padded to the longest one of each kind
    return "".join(f"{label.ljust(width)}{value}\n" for label, value in pairs)


def bench_cleanup(removed: int, seconds: float) -> str:
    """Printed after a write bench without --no-cleanup."""
    return (f"Cleaning up (deleting benchmark objects)\nRemoved {removed} objects\n"
            f"Clean up completed and total clean up time :{cfloat(seconds)}\n")


def render_cleanup(removed: int) -> str:
    """`rados cleanup` (and `rados -p POOL cleanup --prefix ...`)."""
    return f"Removed {removed} objects\n"

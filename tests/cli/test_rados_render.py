"""The `rados` CLI's plain outputs, against real `rados` 16 output.

Sources: the shared fixtures (rados-df, rados-lspools) and data/realrados_cases.json, captured
from a throw-away real cluster (shared/tools/realceph/up.sh): `rados df`, `stat`/`stat2`, and
`rados bench` write (3 s and 22 s, the latter repeats its header), seq and rand.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC
from pathlib import Path

import pytest

from shoal.cli.rados_render import (
    BENCH_HEADER,
    BenchSummary,
    bench_cleanup,
    bench_latency_line,
    bench_preamble,
    bench_progress_line,
    bench_summary,
    render_cleanup,
    render_df,
    render_lspools,
    render_stat,
    render_stat_error,
    summarize,
)
from shoal.mon.render_units import parse_stamp
from tests.mon.plain_fixtures import FIXTURES, json_fixture, plain_blocks

REAL = json.loads((Path(__file__).parent / "data" / "realrados_cases.json").read_text())


def test_df_fixture() -> None:
    assert render_df(json_fixture("rados-df")) == plain_blocks()["rados-df"].stdout


def test_df_real_capture() -> None:
    assert render_df(REAL["df"]["json"]) == REAL["df"]["stdout"]


def test_lspools_fixture() -> None:
    # `rados lspools --format json` prints the plain list too; the fixture file holds those bytes.
    listed = (FIXTURES / "json" / "rados-lspools.json").read_text().split()
    assert render_lspools(listed) == plain_blocks()["rados-lspools"].stdout
    assert render_lspools([]) == ""


def test_stat_lines() -> None:
    mtime = parse_stamp("2026-11-23T22:22:06.872931+0000")
    expected = REAL["stat"]["stdout"].splitlines(keepends=True)
    assert render_stat("rbd", "obj1", mtime, 6, tz=UTC) == expected[0]
    assert render_stat("rbd", "empty", mtime, 0, tz=UTC) == expected[1]
    assert render_stat("rbd", "obj1", mtime, 6, precise=True, tz=UTC) == expected[2]
    errors = REAL["stat"]["stderr"].splitlines(keepends=True)
    assert render_stat_error("rbd", "nosuch", 2, "No such file or directory") == errors[0]


_PROGRESS = re.compile(r"^ *\d+ +\d+ +\d+ +\d+ +\S+ +\S+ +\S+ +\S+$")


def _render_progress(line: str) -> str:
    sec, cur_ops, started, finished, avg, cur, last, avg_lat = line.split()
    idle = last == "-"
    return bench_progress_line(int(sec), int(cur_ops), int(started), int(finished), float(avg),
                               None if idle else float(cur), None if idle else float(last), float(avg_lat))


def _summary_from(lines: list[str], op: str) -> BenchSummary:
    values = {label.strip(): value for label, value in (line.split(":", 1) for line in lines)}
    write = op == "write"
    return BenchSummary(
        op=op, time_run=float(values["Total time run"]), ops=int(values[f"Total {'writes' if write else 'reads'} made"]),
        op_size=int(values[f"{'Write' if write else 'Read'} size"]), object_size=int(values["Object size"]),
        bandwidth=float(values["Bandwidth (MB/sec)"]), avg_iops=int(values["Average IOPS"]),
        stddev_iops=float(values["Stddev IOPS"]), max_iops=int(values["Max IOPS"]), min_iops=int(values["Min IOPS"]),
        avg_latency=float(values["Average Latency(s)"]), max_latency=float(values["Max latency(s)"]),
        min_latency=float(values["Min latency(s)"]),
        stddev_latency=float(values.get("Stddev Latency(s)", 0)),
        stddev_bandwidth=float(values.get("Stddev Bandwidth", 0)),
        max_bandwidth=float(values.get("Max bandwidth (MB/sec)", 0)),
        min_bandwidth=float(values.get("Min bandwidth (MB/sec)", 0)))


def _rerender_bench(text: str, op: str) -> str:
    """Rebuild a captured bench run line by line from the numbers it shows."""
    lines = text.splitlines()
    out = ""
    i = 0
    if op == "write":
        concurrent, op_size, object_size, seconds, max_objects = map(int, re.findall(r"\d+", lines[1]))
        prefix = lines[2].split(": ", 1)[1]
        out += bench_preamble("write", concurrent, op_size, object_size, seconds, max_objects, prefix)
        i = 3
    else:
        out += bench_preamble(op, 16, 0, 0, 0, 0, "")
        i = 1
    while i < len(lines) and not lines[i].startswith("Total time run"):
        line = lines[i]
        if line + "\n" == BENCH_HEADER:
            out += BENCH_HEADER
        elif _PROGRESS.match(line):
            out += _render_progress(line)
        else:
            m = re.match(r"(\S+) min lat: (\S+) max lat: (\S+) avg lat: (\S+)$", line)
            assert m, line
            out += bench_latency_line(parse_stamp(m[1]), float(m[2]), float(m[3]), float(m[4]), tz=UTC)
        i += 1
    summary_end = next((j for j in range(i, len(lines)) if lines[j].startswith("Cleaning up")), len(lines))
    out += bench_summary(_summary_from(lines[i:summary_end], op))
    if summary_end < len(lines):
        removed = int(re.findall(r"\d+", lines[summary_end + 1])[0])
        out += bench_cleanup(removed, float(lines[summary_end + 2].rsplit(":", 1)[1]))
    return out


@pytest.mark.parametrize(("key", "op"), [("bench_write", "write"), ("bench_write_long", "write"),
                                         ("bench_seq", "seq"), ("bench_rand", "rand")])
def test_bench_output_layout(key: str, op: str) -> None:
    assert _rerender_bench(REAL[key], op) == REAL[key]


def test_cleanup_line() -> None:
    assert render_cleanup(203) == REAL["cleanup"]


def test_summarize_math() -> None:
    s = summarize("write", 2.0, 10, 4 << 20, 4 << 20, [0.1, 0.2, 0.3], [16.0, 24.0], [4, 6])
    assert s.bandwidth == 20.0 and s.avg_iops == 5
    assert s.stddev_bandwidth == pytest.approx(math.sqrt(32)) and s.stddev_iops == pytest.approx(math.sqrt(2))
    assert (s.max_bandwidth, s.min_bandwidth, s.max_iops, s.min_iops) == (24.0, 16.0, 6, 4)
    assert s.avg_latency == pytest.approx(0.2) and s.stddev_latency == pytest.approx(0.1)
    idle = summarize("seq", 0.0, 0, 4096, 4096, [])
    assert (idle.bandwidth, idle.avg_iops, idle.stddev_iops, idle.max_latency) == (0.0, 0, 0.0, 0.0)
    assert "Stddev Bandwidth" not in bench_summary(idle)

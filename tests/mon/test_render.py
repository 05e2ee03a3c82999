"""Plain-text rendering of monitor commands, against real Ceph 16 output.

Two sources: the shared fixtures (plain-outputs.md beside json/*.json) and
data/realceph_cases.json, captured from a throw-away real Ceph 16.2.15 cluster
(shared/tools/realceph/up.sh) to cover states the fixtures lack: a down OSD, degraded and
inactive PGs, muted checks, set flags, pool snapshots, an erasure pool, blocklist and pg_temp
entries, `osd df`, `pg stat`, `osd pool get all`.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.mon.render import json_fallback, render_plain, status_line
from shoal.mon.render_table import LEFT, RIGHT, Column, render_table
from shoal.mon.render_units import (
    byte_u,
    cfloat,
    format_stamp,
    lowprecision,
    parse_stamp,
    percentify,
    si_u,
    timespan_str,
    weightf,
)
from tests.mon.plain_fixtures import FIXTURES, json_fixture, plain_blocks

REAL_CASES = json.loads((Path(__file__).parent / "data" / "realceph_cases.json").read_text())["cases"]


def _osd_dump_pg_nums() -> dict[int, int]:
    return {p["pool"]: p["pg_num"] for p in json_fixture("ceph-osd-dump")["pools"]}


def _with_pg_nums(data: dict[str, Any]) -> dict[str, Any]:
    # Ceph's `df` JSON has no PG count but the PGS column shows it: take it from the osd dump
    # captured from the same cluster (pg_num never changed there).
    pg_nums = _osd_dump_pg_nums()
    for pool in data["pools"]:
        pool["_pg_num"] = pg_nums[pool["id"]]
    return data


def _ls_detail_with_queue(data: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # The `osd pool ls detail` JSON lacks the removed-snaps queue that its plain form prints;
    # it is in the osd dump of the same cluster.
    queue = {e["pool"]: e["snaps"] for e in json_fixture("ceph-osd-dump")["removed_snaps_queue"]}
    for pool in data:
        if pool["pool_id"] in queue:
            pool["removed_snaps_queue"] = queue[pool["pool_id"]]
    return data


def _status_ages(data: dict[str, Any], now: float, mgr_age: float, flags: str = "") -> dict[str, Any]:
    # Ceph's status JSON lacks the mgr's name and start, and the osdmap flags ("flags noout").
    # It also truncates osd_up_since/osd_in_since to whole seconds, and the fixture's pair
    # "up (since 107s), in (since 112s)" is then unreachable from any single "now" (the real
    # times had fractions): osd_in_since gets back half a second so both ages come out right.
    data["mgrmap"].update(active_name="x", active_since=now - mgr_age)
    data["osdmap"]["osd_in_since"] += 0.5
    if flags:
        data["osdmap"]["flags"] = flags
    return data


# fixture name -> (prefix, cmd, data adjustment, newlines the fixture stripped from the end)
FIXTURE_CASES: dict[str, tuple[str, dict[str, Any], Any, str]] = {
    "ceph-mon-dump": ("mon dump", {}, None, ""),
    "ceph-df": ("df", {}, _with_pg_nums, ""),
    "ceph-df-detail": ("df", {"detail": "detail"}, _with_pg_nums, ""),
    "ceph-status": ("status", {"_now": 1795469933.0},
                    lambda d: _status_ages(d, 1795469933.0, 114.5), ""),
    "ceph-status-warn": ("status", {"_now": 1795469944.0},
                         lambda d: _status_ages(d, 1795469944.0, 125, "noout,sortbitwise"), ""),
    "ceph-health": ("health", {}, None, ""),
    "ceph-health-detail": ("health", {"detail": "detail"}, None, ""),
    "ceph-health-detail-warn": ("health", {"detail": "detail"}, None, ""),
    "ceph-osd-tree": ("osd tree", {}, None, ""),
    "ceph-osd-dump": ("osd dump", {}, None, ""),
    "ceph-osd-stat": ("osd stat", {"_now": 1795469935.0},
                      lambda d: {**d, "osd_in_since": d["osd_in_since"] + 0.5}, ""),
    "ceph-osd-pool-ls": ("osd pool ls", {}, None, ""),
    # `ls detail` really ends with an empty line (transcripts and a live cluster show it).
    "ceph-osd-pool-ls-detail": ("osd pool ls", {"detail": "detail"}, _ls_detail_with_queue, "\n"),
    "ceph-osd-pool-get-size": ("osd pool get", {"var": "size"}, None, ""),
    "ceph-osd-map": ("osd map", {}, None, ""),
    "ceph-osd-pool-get-quota": ("osd pool get-quota", {}, None, ""),
    "ceph-osd-pool-get-quota-unset": ("osd pool get-quota", {}, None, ""),
    "ceph-auth-get-or-create": ("auth get-or-create", {}, None, ""),
    "ceph-auth-get": ("auth get", {}, None, ""),
    "ceph-auth-ls": ("auth ls", {}, None, ""),
}


def test_every_ceph_fixture_pair_is_covered() -> None:
    paired = {n for n in plain_blocks() if n.startswith("ceph-") and (FIXTURES / "json" / f"{n}.json").exists()}
    assert paired == set(FIXTURE_CASES)


@pytest.mark.parametrize("name", sorted(FIXTURE_CASES))
def test_fixture_renders_byte_for_byte(name: str) -> None:
    prefix, cmd, adjust, stripped = FIXTURE_CASES[name]
    data = json_fixture(name)
    if adjust is not None:
        data = adjust(copy.deepcopy(data))
    block = plain_blocks()[name]
    assert render_plain(prefix, cmd, data) == block.stdout + stripped
    expected_err = status_line(prefix, data, cmd)
    assert (expected_err.rstrip("\n") if expected_err else None) == block.stderr


@pytest.mark.parametrize("case", REAL_CASES, ids=[c["name"] for c in REAL_CASES])
def test_real_ceph_capture_renders_byte_for_byte(case: dict[str, Any]) -> None:
    assert render_plain(case["prefix"], case["cmd"], case["data"]) == case["stdout"]


# -- behaviour beyond the captures -----------------------------------------------------------------

def _status(**changes: Any) -> dict[str, Any]:
    data = json_fixture("ceph-status")
    for key, value in changes.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    return data


def test_status_without_mgr_has_no_mgr_line() -> None:
    text = render_plain("status", {"_now": 1795469933.0}, json_fixture("ceph-status"))
    assert "mgr:" not in text
    assert "    mon: 1 daemons, quorum a (age 116s)\n    osd: 3 osds:" in text


def test_status_io_section_only_with_nonzero_rates() -> None:
    idle = {"read_bytes_sec": 0, "write_bytes_sec": 0, "read_op_per_sec": 0, "write_op_per_sec": 0}
    text = render_plain("status", {"_now": 1795469933.0}, _status(pgmap=idle))
    assert "io:" not in text
    assert text.endswith("    pgs:     25 active+clean\n \n")
    writes = render_plain("status", {"_now": 1795469933.0},
                          _status(pgmap={**idle, "write_bytes_sec": 255}))
    assert writes.endswith("  io:\n    client:   255 B/s wr, 0 op/s rd, 0 op/s wr\n \n")


def test_status_recovery_and_progress_sections() -> None:
    pgmap = {"recovering_bytes_per_sec": 5 << 20, "recovering_objects_per_sec": 3}
    events = {"ev1": {"message": "Global Recovery Event (3s)", "add_to_ceph_s": True}}
    text = render_plain("status", {"_now": 1795469933.0}, _status(pgmap=pgmap, progress_events=events))
    assert "    recovery: 5 MiB/s, 3 objects/s\n \n  progress:\n    Global Recovery Event (3s)\n \n" in text


def test_status_without_pgs_keeps_the_empty_pgs_line() -> None:
    # As Ceph prints a cluster with no pools (shared/reference/real-ceph-transcripts.md, appendix A).
    pgmap = {"pgs_by_state": [], "num_pgs": 0, "num_pools": 0, "num_objects": 0, "data_bytes": 0,
             "bytes_used": 0, "bytes_avail": 0, "bytes_total": 0}
    data = json_fixture("ceph-status")
    data["pgmap"] = pgmap
    text = render_plain("status", {"_now": 1795469933.0}, data)
    assert text.endswith("    pools:   0 pools, 0 pgs\n    objects: 0 objects, 0 B\n"
                         "    usage:   0 B used, 0 B / 0 B avail\n    pgs:     \n \n")


def test_status_mon_out_of_quorum_and_mgr_standbys() -> None:
    data = _status(monmap={"num_mons": 3, "out_of_quorum": ["c"]}, quorum_names=["a", "b"],
                   mgrmap={"active_name": "x", "active_since": 1795469933.0 - 7200, "standbys": ["y"]})
    text = render_plain("status", {"_now": 1795469933.0}, data)
    assert "    mon: 3 daemons, quorum a,b (age 116s), out of quorum: c\n" in text
    assert "    mgr: x(active, since 2h), standbys: y\n" in text


def test_now_may_come_from_the_document() -> None:
    data = {**json_fixture("ceph-osd-stat"), "_now": 1795469830.0}
    assert render_plain("osd stat", {}, data) == "3 osds: 3 up (since 4s), 3 in (since 10s); epoch: e100\n"


def test_health_mute_expired_and_sticky() -> None:
    data = {"status": "HEALTH_OK", "checks": {"OSD_DOWN": {
        "severity": "HEALTH_WARN", "summary": {"message": "1 osds down"}, "detail": [{"message": "osd.2 is down"}]}},
        "mutes": [{"code": "OSD_DOWN", "ttl": "2026-11-23T23:00:00.000000+0000", "sticky": True}]}
    now = parse_stamp("2026-11-23T23:00:05.000000+0000")
    assert render_plain("health", {"detail": "detail", "_now": now}, data) == (
        "HEALTH_OK (muted: OSD_DOWN(0s))\n(MUTED0s, STICKY) [WRN] OSD_DOWN: 1 osds down\n    osd.2 is down\n")


def test_osd_tree_dne_and_stray() -> None:
    data = {"nodes": [{"id": -1, "name": "default", "type": "root", "children": [1]},
                      {"id": 1, "name": "osd.1", "type": "osd", "crush_weight": 1.0, "exists": 0}],
            "stray": [{"id": 2, "name": "osd.2", "type": "osd", "exists": 1, "status": "down",
                       "reweight": 0, "primary_affinity": 1}]}
    assert render_plain("osd tree", {}, data) == (
        "ID  CLASS  WEIGHT   TYPE NAME     STATUS  REWEIGHT  PRI-AFF\n"
        "-1         1.00000  root default                           \n"
        " 1         1.00000      osd.1        DNE         0         \n"
        " 2               0  osd.2           down         0  1.00000\n")


def test_unknown_prefix_falls_back_to_indented_json() -> None:
    data = {"a": [1, 2], "b": {}}
    assert render_plain("osd crush rule dump", {}, data) == json_fallback(data)
    assert json_fallback(data) == '{\n    "a": [\n        1,\n        2\n    ],\n    "b": {}\n}\n'


def test_small_commands() -> None:
    assert render_plain("osd ls", {}, [0, 1, 2]) == "0\n1\n2\n"
    assert render_plain("fsid", {}, {"fsid": "f"}) == "f\n"
    assert render_plain("auth get-key", {}, {"key": "AQB=="}) == "AQB=="
    assert render_plain("osd pool application get", {}, "v") == "v\n"
    assert render_plain("osd pool ls", {"detail": "detail"}, []) == "\n"
    assert status_line("auth ls", {}, {"format": "json"}) is None
    assert status_line("osd dump", {}) is None


# -- units ----------------------------------------------------------------------------------------

# Every value/rendering pair the fixtures and transcripts show, plus boundary cases of the rule.
BYTE_CASES = {
    0: "0 B", 19: "19 B", 1023: "1023 B", 1024: "1 KiB", 2783: "2.7 KiB", 12288: "12 KiB", 36864: "36 KiB",
    156463: "153 KiB", 626688: "612 KiB", 699173: "683 KiB", 2150400: "2.1 MiB", 3219456: "3.1 MiB",
    7222179: "6.9 MiB", 943083520: "899 MiB", 943718400: "900 MiB", 7845705216: "7.3 GiB",
    24826720256: "23 GiB", 25769803776: "24 GiB", 1073741824: "1 GiB", 33424: "33 KiB", 243026: "237 KiB",
    281808: "275 KiB", 10239: "10 KiB", 10188: "9.9 KiB", 1048575: "1024 KiB", 1048577: "1.0 MiB",
    (1 << 64) - 1: "16 EiB",
}
SI_CASES = {0: "0", 35: "35", 999: "999", 1000: "1k", 1500: "1.50k", 12345: "12.35k", 287410: "287.41k",
            999999: "1000.0k", 1000000: "1M", 2500000000: "2.50G"}


@pytest.mark.parametrize(("value", "text"), sorted(BYTE_CASES.items()))
def test_byte_units_known_values(value: int, text: str) -> None:
    assert byte_u(value) == text


@pytest.mark.parametrize(("value", "text"), sorted(SI_CASES.items()))
def test_si_units_known_values(value: int, text: str) -> None:
    assert si_u(value) == text


_UNIT = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40, "PiB": 1 << 50, "EiB": 1 << 60}


def _parse_bytes(text: str) -> float:
    number, unit = text.split(" ")
    return float(number) * _UNIT[unit]


@given(st.integers(0, (1 << 64) - 1), st.integers(0, (1 << 64) - 1))
def test_byte_units_are_monotone(a: int, b: int) -> None:
    low, high = sorted((a, b))
    assert _parse_bytes(byte_u(low)) <= _parse_bytes(byte_u(high))


@given(st.integers(0, (1 << 64) - 1))
def test_byte_units_shape_and_precision(value: int) -> None:
    text = byte_u(value)
    assert re.fullmatch(r"\d+(\.\d{1,2})? (B|KiB|MiB|GiB|TiB|PiB|EiB)", text)
    assert len(text) <= 7 or "." not in text  # decimals are dropped before the text grows past 7
    # a whole number of units is off by at most half a unit, i.e. 5% from 10 units up
    assert abs(_parse_bytes(text) - value) <= max(0.05 * value, 0.5)


@given(st.integers(0, (1 << 62)))
def test_si_units_are_monotone(a: int) -> None:
    def parse(text: str) -> float:
        scale = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
        return float(text.rstrip("kMGTPE")) * scale[text.lstrip("0123456789.")]
    assert parse(si_u(a)) <= parse(si_u(a + 1)) <= parse(si_u(a * 2 + 1))


def test_percent_weight_and_float_formats() -> None:
    assert percentify(3.659645840525627) == "3.66"
    assert percentify(0.002662481347215362) == "0"
    assert percentify(0) == "0"
    assert weightf(0.0077972412109375) == "0.00780"
    assert weightf(0.0233917236328125) == "0.02339"
    assert weightf(0.79998779296875) == "0.79999"
    assert weightf(0) == "0"
    assert lowprecision(3.5450458526611328) == "3.55"
    assert lowprecision(0.0005) == "0"
    assert cfloat(0.949999988079071) == "0.95"
    assert cfloat(0.79998779296875) == "0.799988"
    assert cfloat(1) == "1"


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (0.5, "0.5s"), (1.2345678, "1.23457s"), (2, "2s"), (116, "116s"), (119.9, "119s"),
    (120, "2m"), (127, "2m"), (3599, "59m"), (7199, "119m"), (7200, "2h"), (86400 * 2 - 1, "47h"),
    (86400 * 2, "2d"), (86400 * 14, "2w"), (86400 * 84, "2M"), (86400 * 730, "2y"),
])
def test_timespan_str(seconds: float, text: str) -> None:
    assert timespan_str(seconds) == text


def test_stamps_round_trip() -> None:
    for text in ("2026-11-23T21:38:50.847913+0000", "2026-11-23T21:38:50.000000+0000"):
        assert format_stamp(parse_stamp(text), UTC) == text
    assert parse_stamp("2026-11-23T21:36:56.764930Z") == parse_stamp("2026-11-23T21:36:56.764930+0000")


def test_table_pads_every_cell_and_aligns_headings_separately() -> None:
    cols = (Column("NAME", LEFT, LEFT), Column("N", LEFT, RIGHT), Column("SIZE", RIGHT, RIGHT))
    assert render_table(cols, [["a", "10", "1 B"], ["bb"]]) == "NAME  N   SIZE\na     10   1 B\nbb" + " " * 12 + "\n"
    with pytest.raises(ValueError):
        render_table(cols, [["1", "2", "3", "4"]])

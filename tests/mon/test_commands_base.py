"""Shared helpers for the monitor command tests (no tests of its own).

`C` gathers what the tests build states from and the functions under test.
"""

from __future__ import annotations

import json
import os
import types
from pathlib import Path
from typing import Any

from shoal.mon import commands
from shoal.mon.state import MonInfo, MonMap, MonState, OSDStat, PGStat
from shoal.placement.osdmap import OSDInfo, OSDMap, Pool, pgid_str

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(os.environ.get("SHOAL_SHARED", REPO.parent / "shared")) / "reference" / "fixtures" / "json"
FSID = "7959c416-d5e0-4301-99a2-9531e0a14932"
T0 = 1_795_469_816.0  # 2026-11-23T21:36:56Z, the fixtures' cluster creation
GiB = 1 << 30
MiB = 1 << 20

C = types.SimpleNamespace(
    commands=commands, handle_command=commands.handle_command, command_data=commands.command_data,
    MonState=MonState, MonMap=MonMap, MonInfo=MonInfo, PGStat=PGStat, OSDStat=OSDStat, OSDMap=OSDMap,
    OSDInfo=OSDInfo, Pool=Pool, pgid_str=pgid_str,
)


# -- building states ------------------------------------------------------------------------

class Cluster:
    """A MonState plus a tiny daemon loop: run commands, commit the maps they return."""

    def __init__(self, C: Any, conf: dict[str, Any] | None = None, n_osds: int = 3, now: float = T0 + 60):
        self.C = C
        self.conf: dict[str, Any] = {"mon_max_pg_per_osd": 1000, **(conf or {})}
        osdmap = C.OSDMap(fsid=FSID, epoch=10, created=T0, modified=T0, chooseleaf_type=0,
                          last_up_change=T0 + 10, last_in_change=T0 + 4)
        for i in range(n_osds):
            osdmap.osds[i] = C.OSDInfo(id=i, host="vm", addr=f"127.0.0.1:{6802 + 8 * i}", weight=0.0078,
                                       up=True, up_from=7 + i, uuid=f"00000000-0000-4000-8000-00000000000{i}")
        monmap = C.MonMap(fsid=FSID, epoch=1, created=T0, modified=T0,
                          mons=[C.MonInfo(name="a", addr="127.0.0.1:6789", rank=0)])
        self.state = C.MonState(osdmap=osdmap, monmap=monmap, conf=self.conf.get, start_time=T0)
        for i in range(n_osds):
            self.state.osd_stats[i] = C.OSDStat(osd=i, total=8 * GiB, used=300 * MiB,
                                                avail=8 * GiB - 300 * MiB, num_pgs=0)
        self.now = now

    def run(self, cmd: dict[str, Any]) -> Any:
        """handle_command, then commit the new map as the daemon would."""
        before = json.dumps(self.state.osdmap.to_dict(), sort_keys=True)
        result = self.C.handle_command(self.state, cmd, self.now)
        after = json.dumps(self.state.osdmap.to_dict(), sort_keys=True)
        assert before == after, f"{cmd} mutated the state's OSD map"
        if result.ret < 0:
            assert result.new_osdmap is None, f"{cmd} failed but returned a new map"
        if result.new_osdmap is not None:
            assert result.new_osdmap.epoch == self.state.osdmap.epoch + 1
            assert result.new_osdmap.modified == self.now
            self.state.osdmap = result.new_osdmap
        self.now += 1
        return result

    def json(self, cmd: dict[str, Any]) -> Any:
        result = self.run({**cmd, "format": "json"})
        assert result.ret == 0, (cmd, result.outs)
        return json.loads(result.outbuf)

    def pool(self, name: str) -> Any:
        pool = self.state.osdmap.pool_by_name(name)
        assert pool is not None
        return pool

    def create_pool(self, name: str, pg_num: int = 8, app: str | None = "rbd") -> Any:
        result = self.run({"prefix": "osd pool create", "pool": name, "pg_num": pg_num})
        assert result.ret == 0, result.outs
        if app:
            assert self.run({"prefix": "osd pool application enable", "pool": name, "app": app}).ret == 0
        return self.pool(name)

    def report_pgs(self, state: str = "active+clean", objects: int = 2, nbytes: int = 4096) -> None:
        """Every PG reports `state`, with `objects` objects of `nbytes` bytes each."""
        for pool in self.state.osdmap.pools.values():
            for ps in range(pool.pg_num):
                pgid = self.C.pgid_str(pool.id, ps)
                up = self.state.osdmap.pg_to_up(pool, ps)
                self.state.pg_stats[pgid] = self.C.PGStat(
                    pgid=pgid, state=state, up=up, acting=up, num_objects=objects,
                    num_bytes=objects * nbytes, stamp=self.now)


def healthy_cluster(C: Any) -> Cluster:
    cluster = Cluster(C)
    for name in ("device_health_metrics", "rbd", "images", "volumes"):
        cluster.create_pool(name, pg_num=1 if name == "device_health_metrics" else 8,
                            app="mgr_devicehealth" if name == "device_health_metrics" else "rbd")
    cluster.report_pgs()
    cluster.state.io_rates.update(read_bytes_sec=33424, write_bytes_sec=243026, read_op_per_sec=42,
                                  write_op_per_sec=7)
    return cluster


# -- comparing against the fixtures -------------------------------------------------------------

# Dicts whose keys are data (check codes, app names, …): each value is compared with the
# fixture's first value instead of key by key.
DATA_KEYED = ("checks", "application_metadata", "options", "stats_by_class", "erasure_code_profiles",
              "services", "pool_weights", "blocklist", "range_blocklist", "crush_node_flags",
              "device_class_flags", "progress_events")


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def _kind(x: Any) -> str:
    if isinstance(x, bool):
        return "bool"
    if isinstance(x, int | float):
        return "number"
    if x is None:
        return "null"
    return type(x).__name__


def assert_layout(ours: Any, theirs: Any, path: str = "$") -> None:
    """Same keys in the same order, same nesting and value kinds (values may differ)."""
    assert _kind(ours) == _kind(theirs), f"{path}: {_kind(ours)} != {_kind(theirs)}"
    if isinstance(theirs, dict):
        if path.rsplit(".", 1)[-1] in DATA_KEYED:
            if theirs:
                first = next(iter(theirs.values()))
                for key, value in ours.items():
                    assert_layout(value, first, f"{path}.{key}")
            return
        assert list(ours) == list(theirs), f"{path}: keys {list(ours)} != {list(theirs)}"
        for key in theirs:
            assert_layout(ours[key], theirs[key], f"{path}.{key}")
    elif isinstance(theirs, list) and theirs and ours:
        # Item i against the fixture's item i (or its last): lists like the osd tree's
        # nodes mix shapes by position.
        for i, item in enumerate(ours):
            assert_layout(item, theirs[min(i, len(theirs) - 1)], f"{path}[{i}]")

"""Shared fixtures for the monitor command tests (no tests of its own).

The placement math (shoal.placement.pg / crush) is written in parallel with these
handlers. While a module is missing, the `C` fixture stubs it for the duration of the
test module only (monkeypatched into sys.modules) and drops everything imported against
the stub afterwards, so the real modules are used as soon as they exist.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import types
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path("/work/shared/reference/fixtures/json")
FSID = "7959c416-d5e0-4301-99a2-9531e0a14932"
T0 = 1_795_469_816.0  # 2026-11-23T21:36:56Z, the fixtures' cluster creation
GiB = 1 << 30
MiB = 1 << 20

_STUBBED = ("shoal.placement.pg", "shoal.placement.crush")


# -- stand-ins for the placement modules, used only while the real ones are missing -------

def _stable_mod(x: int, b: int, m: int) -> int:
    return x & m if (x & m) < b else x & (m >> 1)


def _stub_pg() -> types.ModuleType:
    mod = types.ModuleType("shoal.placement.pg")

    def pg_num_mask(pg_num: int) -> int:
        return (1 << (pg_num - 1).bit_length()) - 1

    def object_pg(name: str, nspace: str, pg_num: int, mask: int) -> int:
        key = f"{nspace}\x1f{name}" if nspace else name
        return _stable_mod(zlib.crc32(key.encode()), pg_num, mask)

    def raw_pg_to_pps(ps: int, pgp_num: int, pgp_mask: int, pool: int, hashpspool: bool) -> int:
        return zlib.crc32(f"{pool}.{_stable_mod(ps, pgp_num, pgp_mask)}".encode())

    mod.pg_num_mask, mod.object_pg, mod.raw_pg_to_pps = pg_num_mask, object_pg, raw_pg_to_pps
    return mod


def _stub_crush() -> types.ModuleType:
    mod = types.ModuleType("shoal.placement.crush")

    @dataclass
    class CrushDevice:
        id: int
        host: str
        weight: float
        reweight: float

    def map_pg(pps: int, size: int, devices: list[CrushDevice], chooseleaf_type: int) -> list[int]:
        usable = [d for d in devices if d.weight > 0 and d.reweight > 0]
        usable.sort(key=lambda d: zlib.crc32(f"{pps}:{d.id}".encode()))
        return [d.id for d in usable[:size]]

    mod.CrushDevice, mod.map_pg = CrushDevice, map_pg
    return mod


def _namespace(real: bool) -> types.SimpleNamespace:
    commands = importlib.import_module("shoal.mon.commands")
    state = importlib.import_module("shoal.mon.state")
    osdmap = importlib.import_module("shoal.placement.osdmap")
    return types.SimpleNamespace(
        real_placement=real, commands=commands, handle_command=commands.handle_command,
        command_data=commands.command_data, MonState=state.MonState, MonMap=state.MonMap,
        MonInfo=state.MonInfo, PGStat=state.PGStat, OSDStat=state.OSDStat, OSDMap=osdmap.OSDMap,
        OSDInfo=osdmap.OSDInfo, Pool=osdmap.Pool, pgid_str=osdmap.pgid_str,
    )


def _forget(names: set[str]) -> None:
    for name in names:
        sys.modules.pop(name, None)
        parent, _, child = name.rpartition(".")
        if parent in sys.modules and getattr(sys.modules[parent], child, None) is not None:
            delattr(sys.modules[parent], child)


@pytest.fixture(scope="module")
def C() -> Any:
    missing = [n for n in _STUBBED if importlib.util.find_spec(n) is None]
    if not missing:
        yield _namespace(real=True)
        return
    before = set(sys.modules)
    with pytest.MonkeyPatch.context() as mp:
        for name in missing:
            mp.setitem(sys.modules, name, _stub_pg() if name.endswith(".pg") else _stub_crush())
        yield _namespace(real=False)
    _forget({n for n in set(sys.modules) - before if n.startswith("shoal.")})


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

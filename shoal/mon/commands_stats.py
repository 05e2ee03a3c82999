"""Aggregates the PG and OSD statistics the OSDs report, for status, health and df.

Every PG of every pool in the OSD map counts; a PG no primary has reported yet is in
state `unknown`, as on Ceph. Reports for PGs that no longer exist (deleted pool, shrunk
pg_num) are ignored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from shoal.mon.commands_common import conf_value
from shoal.mon.state import MonState, PGStat
from shoal.placement.osdmap import Pool, pgid_str


@dataclass
class PoolUsage:
    objects: int = 0
    bytes: int = 0
    omap_bytes: int = 0


@dataclass
class Capacity:
    total: int = 0
    used: int = 0
    avail: int = 0
    num_osds: int = 0

    @property
    def raw_used(self) -> int:
        return self.total - self.avail

    @property
    def raw_used_ratio(self) -> float:
        return self.raw_used / self.total if self.total else 0.0


def iter_pgs(state: MonState) -> Iterator[tuple[Pool, str, PGStat | None]]:
    """(pool, pgid, last report or None) for every PG the OSD map defines."""
    for pool in sorted(state.osdmap.pools.values(), key=lambda p: p.id):
        for ps in range(pool.pg_num):
            pgid = pgid_str(pool.id, ps)
            yield pool, pgid, state.pg_stats.get(pgid)


def pg_state_of(stat: PGStat | None) -> str:
    return stat.state if stat is not None and stat.state else "unknown"


def pgs_by_state(state: MonState) -> list[tuple[str, int]]:
    """[(state, count)], most common first (ties by name), like `ceph -s` lists them."""
    counts = Counter(pg_state_of(stat) for _, _, stat in iter_pgs(state))
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def num_pgs(state: MonState) -> int:
    return sum(pool.pg_num for pool in state.osdmap.pools.values())


def pool_usage(state: MonState) -> dict[int, PoolUsage]:
    """Objects and bytes per pool id (every pool present, zero if nothing reported)."""
    usage = {pool_id: PoolUsage() for pool_id in state.osdmap.pools}
    for pool, _, stat in iter_pgs(state):
        if stat is not None:
            u = usage[pool.id]
            u.objects += stat.num_objects
            u.bytes += stat.num_bytes
            u.omap_bytes += stat.num_omap_bytes
    return usage


def capacity(state: MonState) -> Capacity:
    """Raw capacity summed over the OSDs that reported statistics."""
    cap = Capacity()
    for stat in state.osd_stats.values():
        cap.total += stat.total
        cap.used += stat.used
        cap.avail += stat.avail
        cap.num_osds += 1
    return cap


def avail_raw(state: MonState) -> int:
    """Raw bytes the fullest `in` OSD still allows, scaled to the whole rule.

    As Ceph's mgr computes MAX AVAIL: each OSD keeps (1 - full_ratio) of its size
    unusable; writes spread in proportion to CRUSH weight, so the OSD that would fill
    first bounds the total. A pool's MAX AVAIL is this divided by its size.
    """
    full_ratio = float(conf_value(state, "mon_osd_full_ratio"))
    members = [o for o in state.osdmap.osds.values() if o.in_ and o.weight > 0]
    total_weight = sum(o.weight for o in members)
    best: float | None = None
    for osd in members:
        stat = state.osd_stats.get(osd.id)
        if stat is None or stat.total <= 0:
            continue
        usable = max(0.0, stat.avail - stat.total * (1.0 - full_ratio))
        projected = usable / (osd.weight / total_weight)
        best = projected if best is None else min(best, projected)
    return int(best or 0)


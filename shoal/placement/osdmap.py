"""The OSD map: epoch-numbered cluster state every daemon and client agrees on.

The monitor owns it and publishes each epoch; OSDs and clients use it to place
objects. It is plain data plus pure placement functions (sans-IO), and it travels
as a msgpack-able dict (`to_dict` / `from_dict`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from shoal.placement.crush import CrushDevice, map_pg
from shoal.placement.pg import object_pg, pg_num_mask, raw_pg_to_pps

FLAG_HASHPSPOOL = 1
FLAG_SELFMANAGED_SNAPS = 1 << 13  # the bit Ceph's pg_pool_t uses; shown as a name in dumps

# Failure domains (Ceph's CRUSH type ids): osd 0, host 1.
TYPE_OSD = 0
TYPE_HOST = 1


@dataclass
class Pool:
    id: int
    name: str
    size: int = 3
    min_size: int = 2
    pg_num: int = 32
    pgp_num: int = 32
    crush_rule: int = 0
    flags: int = FLAG_HASHPSPOOL
    application: dict[str, dict[str, str]] = field(default_factory=dict)
    snap_seq: int = 0
    removed_snaps: list[int] = field(default_factory=list)
    quota_max_bytes: int = 0
    quota_max_objects: int = 0
    create_time: float = 0.0
    last_change: int = 0
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def pg_num_mask(self) -> int:
        return pg_num_mask(self.pg_num)

    @property
    def pgp_num_mask(self) -> int:
        return pg_num_mask(self.pgp_num)

    def removed_snap_set(self) -> frozenset[int]:
        """`removed_snaps` as a set, built once per Pool object (maps are immutable once made)."""
        cached = self.__dict__.get("_removed_set")
        if cached is None or len(cached) != len(self.removed_snaps):
            cached = self.__dict__["_removed_set"] = frozenset(self.removed_snaps)
        return cached

    def flag_names(self) -> list[str]:
        names = []
        if self.flags & FLAG_HASHPSPOOL:
            names.append("hashpspool")
        if self.flags & FLAG_SELFMANAGED_SNAPS:
            names.append("selfmanaged_snaps")
        return names


@dataclass
class OSDInfo:
    id: int
    host: str = "localhost"
    addr: str = ""  # "127.0.0.1:PORT" the OSD serves clients and peers on
    weight: float = 1.0  # CRUSH weight (capacity, TiB in Ceph's convention)
    reweight: float = 1.0  # 1.0 = in, 0.0 = out
    up: bool = False
    up_from: int = 0
    down_at: int = 0
    uuid: str = ""

    @property
    def in_(self) -> bool:
        return self.reweight > 0.0


@dataclass
class OSDMap:
    fsid: str
    epoch: int = 0
    created: float = 0.0
    modified: float = 0.0
    osds: dict[int, OSDInfo] = field(default_factory=dict)
    pools: dict[int, Pool] = field(default_factory=dict)
    pool_max: int = 0
    chooseleaf_type: int = TYPE_HOST
    last_up_change: float = 0.0
    last_in_change: float = 0.0
    # Fenced client addresses (`ip:port/nonce`, shoal/placement/blocklist.py) -> Unix time the
    # entry expires; OSDs refuse their ops (ESHUTDOWN) and drop their watches.
    blocklist: dict[str, float] = field(default_factory=dict)

    # -- lookups ----------------------------------------------------------------
    def pool_by_name(self, name: str) -> Pool | None:
        for pool in self.pools.values():
            if pool.name == name:
                return pool
        return None

    @property
    def max_osd(self) -> int:
        return max(self.osds, default=-1) + 1

    def num_up(self) -> int:
        return sum(1 for o in self.osds.values() if o.up)

    def num_in(self) -> int:
        return sum(1 for o in self.osds.values() if o.in_)

    # -- placement ----------------------------------------------------------------
    def object_to_ps(self, pool: Pool, name: str, nspace: str = "") -> int:
        """Placement seed (the PG number) of an object, as `ceph osd map` shows it."""
        return object_pg(name, nspace, pool.pg_num, pool.pg_num_mask)

    def pg_to_raw_osds(self, pool: Pool, ps: int) -> list[int]:
        """CRUSH output for a PG, ignoring whether the chosen OSDs are up."""
        pps = raw_pg_to_pps(ps, pool.pgp_num, pool.pgp_num_mask, pool.id,
                            bool(pool.flags & FLAG_HASHPSPOOL))
        devices = [CrushDevice(o.id, o.host, o.weight, o.reweight) for o in self.osds.values()]
        return map_pg(pps, pool.size, devices, self.chooseleaf_type)

    def pg_to_up(self, pool: Pool, ps: int) -> list[int]:
        """The up (= acting) set: CRUSH output minus OSDs that are down; first is primary."""
        return [o for o in self.pg_to_raw_osds(pool, ps) if self.osds[o].up]

    # -- encoding -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["osds"] = [dataclasses.asdict(o) for o in self.osds.values()]
        d["pools"] = [dataclasses.asdict(p) for p in self.pools.values()]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OSDMap:
        d = dict(d)
        osds = {o["id"]: OSDInfo(**o) for o in d.pop("osds")}
        pools = {p["id"]: Pool(**p) for p in d.pop("pools")}
        return cls(osds=osds, pools=pools, **d)

    def copy(self) -> OSDMap:
        return OSDMap.from_dict(self.to_dict())


def pgid_str(pool_id: int, ps: int) -> str:
    """`2.1f`: Ceph's PG id text (pool in decimal, seed in hex)."""
    return f"{pool_id}.{ps:x}"


def parse_pgid(text: str) -> tuple[int, int]:
    pool, _, ps = text.partition(".")
    return int(pool), int(ps, 16)

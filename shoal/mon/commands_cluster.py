"""Cluster-wide reports: status, health, df, pg stat, mon dump / stat, fsid, versions."""

from __future__ import annotations

import math
from typing import Any

from shoal.mon.commands_common import (
    Handler,
    Reply,
    Request,
    addr_with_nonce,
    addrvec,
    f32,
    num,
    reply,
    stamp,
    stamp_z,
)
from shoal.mon.commands_health import health_doc
from shoal.mon.commands_osd import DEVICE_CLASS, osdmap_summary
from shoal.mon.commands_stats import PoolUsage, avail_raw, capacity, num_pgs, pgs_by_state, pool_usage
from shoal.placement.osdmap import Pool

CEPH_VERSION = "16.2.15"
VERSION_STRING = f"ceph version {CEPH_VERSION} (shoal) pacific (stable)"
MON_FEATURES = ["kraken", "luminous", "mimic", "osdmap-prune", "nautilus", "octopus", "pacific",
                "elector-pinging"]
ELECTION_EPOCH = 3  # what a freshly started single monitor reports


# -- health / status ------------------------------------------------------------------------

def _health(req: Request) -> Reply:
    return reply(health_doc(req.state, req.now, req.str_arg("detail") == "detail"))


def _io_rates(req: Request) -> dict[str, int]:
    """Client I/O rates, present only while there is traffic (as Ceph prints them)."""
    rates = {k: int(req.state.io_rates.get(k, 0)) for k in
             ("read_bytes_sec", "write_bytes_sec", "read_op_per_sec", "write_op_per_sec")}
    if not any(rates.values()):
        return {}
    out = {k: rates[k] for k in ("read_bytes_sec", "write_bytes_sec") if rates[k]}
    out.update(read_op_per_sec=rates["read_op_per_sec"], write_op_per_sec=rates["write_op_per_sec"])
    return out


def pgmap_summary(req: Request) -> dict[str, Any]:
    state = req.state
    by_state = pgs_by_state(state)
    usage = pool_usage(state).values()
    cap = capacity(state)
    total = num_pgs(state)
    doc: dict[str, Any] = {
        "pgs_by_state": [{"state_name": name, "count": count} for name, count in by_state],
        "num_pgs": total,
        "num_pools": len(state.osdmap.pools),
        "num_objects": sum(u.objects for u in usage),
        "data_bytes": sum(u.bytes for u in usage),
        "bytes_used": cap.used,
        "bytes_avail": cap.avail,
        "bytes_total": cap.total,
    }
    counts = dict(by_state)
    unknown = counts.get("unknown", 0)
    inactive = sum(n for name, n in by_state if "active" not in name.split("+")) - unknown
    if unknown:
        doc["unknown_pgs_ratio"] = f32(unknown / total)
    if inactive:
        doc["inactive_pgs_ratio"] = f32(inactive / total)
    doc.update(_io_rates(req))
    return doc


def _monmap_summary(req: Request) -> dict[str, Any]:
    return {"epoch": req.state.monmap.epoch, "min_mon_release_name": "pacific",
            "num_mons": len(req.state.monmap.mons)}


def _status(req: Request) -> Reply:
    mons = sorted(req.state.monmap.mons, key=lambda m: m.rank)
    doc: dict[str, Any] = {
        "fsid": req.state.monmap.fsid,
        "health": health_doc(req.state, req.now, detail=False),
        "election_epoch": ELECTION_EPOCH,
        "quorum": [m.rank for m in mons],
        "quorum_names": [m.name for m in mons],
        "quorum_age": max(0, int(req.now - req.state.start_time)),
        "monmap": _monmap_summary(req),
        "osdmap": osdmap_summary(req.osdmap),
        "pgmap": pgmap_summary(req),
        "fsmap": {"epoch": 1, "by_rank": [], "up:standby": 0},
        "mgrmap": {"available": True, "num_standbys": 0, "modules": [], "services": {}},
        "servicemap": {"epoch": 1, "modified": stamp(req.state.start_time), "services": {}},
        "progress_events": {},
    }
    if not req.wants_json:
        doc["_now"] = req.now  # plain text shows "(since 26s)"
    return reply(doc)


# -- df ---------------------------------------------------------------------------------------

def _pool_df(req: Request, pool: Pool, u: PoolUsage, raw_avail: int, detail: bool) -> dict[str, Any]:
    stored = u.bytes + u.omap_bytes
    used = stored * pool.size
    percent = used / (used + raw_avail) if raw_avail else (1.0 if used else 0.0)
    stats: dict[str, Any] = {"stored": stored}
    if detail:
        stats.update(stored_data=u.bytes, stored_omap=u.omap_bytes)
    stats.update(objects=u.objects, kb_used=math.ceil(used / 1024), bytes_used=used)
    if detail:
        stats.update(data_bytes_used=u.bytes * pool.size, omap_bytes_used=u.omap_bytes * pool.size)
    stats.update(percent_used=f32(percent), max_avail=raw_avail // pool.size if pool.size else 0)
    if detail:
        stats.update(quota_objects=pool.quota_max_objects, quota_bytes=pool.quota_max_bytes, dirty=0,
                     rd=0, rd_bytes=0, wr=0, wr_bytes=0, compress_bytes_used=0, compress_under_bytes=0,
                     stored_raw=used, avail_raw=raw_avail)
    entry: dict[str, Any] = {"name": pool.name, "id": pool.id, "stats": stats}
    if not req.wants_json:
        entry["_pg_num"] = pool.pg_num  # plain text has a PGS column
    return entry


def _capacity_stats(req: Request) -> dict[str, Any]:
    cap = capacity(req.state)
    return {
        "total_bytes": cap.total,
        "total_avail_bytes": cap.avail,
        "total_used_bytes": cap.used,
        "total_used_raw_bytes": cap.raw_used,
        "total_used_raw_ratio": num(cap.raw_used_ratio),
    }


def _df(req: Request) -> Reply:
    detail = req.str_arg("detail") == "detail"
    n_osds = capacity(req.state).num_osds
    by_class = _capacity_stats(req)
    raw_avail = avail_raw(req.state)
    pools = sorted(req.osdmap.pools.values(), key=lambda p: p.id)
    usage = pool_usage(req.state)
    return reply({
        "stats": {**by_class, "num_osds": n_osds, "num_per_pool_osds": n_osds, "num_per_pool_omap_osds": n_osds},
        "stats_by_class": {DEVICE_CLASS: by_class} if n_osds else {},
        "pools": [_pool_df(req, p, usage[p.id], raw_avail, detail) for p in pools],
    })


# -- pg stat -------------------------------------------------------------------------------------

def _pg_stat(req: Request) -> Reply:
    cap = capacity(req.state)
    summary: dict[str, Any] = {
        "num_pg_by_state": [{"name": name, "num": n} for name, n in pgs_by_state(req.state)],
        "num_pgs": num_pgs(req.state),
        "num_bytes": sum(u.bytes for u in pool_usage(req.state).values()),
        "total_bytes": cap.total,
        "total_avail_bytes": cap.avail,
        "total_used_bytes": cap.used,
        "total_used_raw_bytes": cap.raw_used,
    }
    return reply({"pg_ready": True, "pg_summary": summary})


# -- monitors ------------------------------------------------------------------------------------

def _mon_entry(rank: int, name: str, addr: str) -> dict[str, Any]:
    full = addr_with_nonce(addr)
    return {"rank": rank, "name": name, "public_addrs": addrvec(full), "addr": full, "public_addr": full,
            "priority": 0, "weight": 0, "crush_location": "{}"}


def _mon_dump(req: Request) -> Reply:
    monmap = req.state.monmap
    mons = sorted(monmap.mons, key=lambda m: m.rank)
    return reply({
        "epoch": monmap.epoch,
        "fsid": monmap.fsid,
        "modified": stamp_z(monmap.modified),
        "created": stamp_z(monmap.created),
        "min_mon_release": 16,
        "min_mon_release_name": "pacific",
        "election_strategy": 1,
        "disallowed_leaders: ": "",
        "stretch_mode": False,
        "tiebreaker_mon": "",
        "removed_ranks: ": "",
        "features": {"persistent": list(MON_FEATURES), "optional": []},
        "mons": [_mon_entry(m.rank, m.name, m.addr) for m in mons],
        "quorum": [m.rank for m in mons],
    }, outs=f"dumped monmap epoch {monmap.epoch}")


def _mon_stat(req: Request) -> Reply:
    mons = sorted(req.state.monmap.mons, key=lambda m: m.rank)
    return reply({**_monmap_summary(req), "leader": mons[0].name if mons else "",
                  "quorum": [{"rank": m.rank, "name": m.name} for m in mons]})


def _fsid(req: Request) -> Reply:
    return reply({"fsid": req.state.monmap.fsid})


def _version(req: Request) -> Reply:
    return reply({"version": VERSION_STRING})


def _versions(req: Request) -> Reply:
    mons = len(req.state.monmap.mons)
    osds = req.osdmap.num_up()
    by_daemon: dict[str, dict[str, int]] = {
        "mon": {VERSION_STRING: mons} if mons else {},
        "mgr": {},
        "osd": {VERSION_STRING: osds} if osds else {},
        "mds": {},
    }
    return reply({**by_daemon, "overall": {VERSION_STRING: mons + osds} if mons + osds else {}})


HANDLERS: dict[str, Handler] = {
    "health": _health,
    "status": _status,
    "df": _df,
    "pg stat": _pg_stat,
    "mon dump": _mon_dump,
    "mon stat": _mon_stat,
    "fsid": _fsid,
    "version": _version,
    "versions": _versions,
}

"""OSD commands: tree, stat, dump, ls, map, df and marking OSDs down / out / in."""

from __future__ import annotations

import errno
import re
from typing import Any

from shoal.mon.commands_blocklist import blocklist_dump
from shoal.mon.commands_common import (
    CommandError,
    Handler,
    Reply,
    Request,
    addr_with_nonce,
    addrvec,
    crush_weight,
    f32,
    list_arg,
    next_map,
    num,
    reply,
    stamp,
)
from shoal.mon.commands_pooldump import pool_for_osd_dump, removed_snaps_queue
from shoal.mon.commands_stats import iter_pgs
from shoal.placement.osdmap import OSDInfo, OSDMap, pgid_str
from shoal.placement.pg import object_hash

# Values Ceph 16 shows for cluster-wide settings Shoal does not model.
OSDMAP_FLAGS = "sortbitwise,recovery_deletes,purged_snapdirs,pglog_hardlimit"
OSDMAP_FLAGS_NUM = 5799936
OSD_FEATURES = 4540138314316775423
DEVICE_CLASS = "hdd"


# -- the CRUSH tree (one root `default`, one bucket per host) -------------------------------

def hosts(osdmap: OSDMap) -> list[tuple[int, str, list[OSDInfo]]]:
    """(bucket id, host, OSDs) in order of each host's lowest OSD id; ids -3, -5, …

    Ceph gives each host bucket an odd negative id because every bucket has a shadow
    `<name>~hdd` twin for the device class (root -1 has -2).
    """
    by_host: dict[str, list[OSDInfo]] = {}
    for osd in sorted(osdmap.osds.values(), key=lambda o: o.id):
        by_host.setdefault(osd.host, []).append(osd)
    return [(-3 - 2 * i, host, osds) for i, (host, osds) in enumerate(by_host.items())]


def osd_node(osd: OSDInfo) -> dict[str, Any]:
    return {
        "id": osd.id,
        "device_class": DEVICE_CLASS,
        "name": f"osd.{osd.id}",
        "type": "osd",
        "type_id": 0,
        "crush_weight": crush_weight(osd.weight),
        "depth": 2,
        "pool_weights": {},
    }


def _osd_tree(req: Request) -> Reply:
    buckets = hosts(req.osdmap)
    nodes: list[dict[str, Any]] = [{
        "id": -1, "name": "default", "type": "root", "type_id": 11,
        "children": [b for b, _, _ in reversed(buckets)],  # newest first, as CRUSH lists items
    }]
    for bucket_id, host, osds in buckets:
        nodes.append({"id": bucket_id, "name": host, "type": "host", "type_id": 1, "pool_weights": {},
                      "children": [o.id for o in reversed(osds)]})
        for osd in osds:
            nodes.append({**osd_node(osd), "exists": 1, "status": "up" if osd.up else "down",
                          "reweight": num(osd.reweight), "primary_affinity": 1})
    return reply({"nodes": nodes, "stray": []})


# -- stat / ls / dump -------------------------------------------------------------------------

def osdmap_summary(osdmap: OSDMap) -> dict[str, Any]:
    """The `osdmap` section of `ceph -s` and the whole of `osd stat`."""
    return {
        "epoch": osdmap.epoch,
        "num_osds": len(osdmap.osds),
        "num_up_osds": osdmap.num_up(),
        "osd_up_since": int(osdmap.last_up_change),
        "num_in_osds": osdmap.num_in(),
        "osd_in_since": int(osdmap.last_in_change),
        "num_remapped_pgs": 0,
    }


def _osd_stat(req: Request) -> Reply:
    data = osdmap_summary(req.osdmap)
    if not req.wants_json:
        data["_now"] = req.now  # plain text shows "(since 26s)"
    return reply(data)


def _osd_ls(req: Request) -> Reply:
    return reply(sorted(req.osdmap.osds))


def _osd_entry(osd: OSDInfo) -> dict[str, Any]:
    public = addr_with_nonce(osd.addr) if osd.addr else ""
    vec = addrvec(public)
    text = addr_with_nonce(public)
    return {
        "osd": osd.id,
        "uuid": osd.uuid or "00000000-0000-0000-0000-000000000000",
        "up": int(osd.up),
        "in": int(osd.in_),
        "weight": num(osd.reweight),
        "primary_affinity": 1,
        "last_clean_begin": 0,
        "last_clean_end": 0,
        "up_from": osd.up_from,
        "up_thru": osd.up_from,
        "down_at": osd.down_at,
        "lost_at": 0,
        "public_addrs": vec,
        "cluster_addrs": vec,
        "heartbeat_back_addrs": vec,
        "heartbeat_front_addrs": vec,
        "public_addr": text,
        "cluster_addr": text,
        "heartbeat_back_addr": text,
        "heartbeat_front_addr": text,
        "state": ["exists", "up"] if osd.up else ["exists"],
    }


def _osd_xinfo(osd: OSDInfo, osdmap: OSDMap) -> dict[str, Any]:
    return {
        "osd": osd.id, "down_stamp": "0.000000", "laggy_probability": 0, "laggy_interval": 0,
        "features": OSD_FEATURES, "old_weight": 0, "last_purged_snaps_scrub": stamp(osdmap.created),
        "dead_epoch": 0,
    }


def osd_dump(req: Request) -> dict[str, Any]:
    osdmap = req.osdmap
    osds = sorted(osdmap.osds.values(), key=lambda o: o.id)
    return {
        "epoch": osdmap.epoch,
        "fsid": osdmap.fsid,
        "created": stamp(osdmap.created),
        "modified": stamp(osdmap.modified),
        "last_up_change": stamp(osdmap.last_up_change),
        "last_in_change": stamp(osdmap.last_in_change),
        "flags": OSDMAP_FLAGS,
        "flags_num": OSDMAP_FLAGS_NUM,
        "flags_set": sorted(OSDMAP_FLAGS.split(",")),
        "crush_version": 1,
        "full_ratio": f32(float(req.conf("mon_osd_full_ratio"))),
        "backfillfull_ratio": f32(float(req.conf("mon_osd_backfillfull_ratio"))),
        "nearfull_ratio": f32(float(req.conf("mon_osd_nearfull_ratio"))),
        "cluster_snapshot": "",
        "pool_max": osdmap.pool_max,
        "max_osd": osdmap.max_osd,
        "require_min_compat_client": "luminous",
        "min_compat_client": "jewel",
        "require_osd_release": "pacific",
        "pools": [pool_for_osd_dump(p) for p in sorted(osdmap.pools.values(), key=lambda p: p.id)],
        "osds": [_osd_entry(o) for o in osds],
        "osd_xinfo": [_osd_xinfo(o, osdmap) for o in osds],
        "pg_upmap": [],
        "pg_upmap_items": [],
        "pg_temp": [],
        "primary_temp": [],
        "blocklist": blocklist_dump(osdmap),
        "range_blocklist": {},
        "erasure_code_profiles": {
            "default": {"k": "2", "m": "2", "plugin": "jerasure", "technique": "reed_sol_van"},
        },
        "removed_snaps_queue": removed_snaps_queue(osdmap.pools),
        "new_removed_snaps": [],
        "new_purged_snaps": [],
        "crush_node_flags": {},
        "device_class_flags": {},
        "stretch_mode": {
            "stretch_mode_enabled": False, "stretch_bucket_count": 0, "degraded_stretch_mode": 0,
            "recovering_stretch_mode": 0, "stretch_mode_bucket": 0,
        },
    }


def _osd_dump(req: Request) -> Reply:
    return reply(osd_dump(req))


# -- osd map ------------------------------------------------------------------------------------

def _osd_map(req: Request) -> Reply:
    name = req.str_arg("pool") or ""
    pool = req.osdmap.pool_by_name(name)
    if pool is None:
        raise CommandError(errno.ENOENT, f"pool {name} does not exist")
    obj = req.required_str("object", "<objectname>")
    nspace = req.str_arg("nspace") or ""
    raw = object_hash(obj, nspace)  # the raw pgid carries the unfolded 32-bit hash
    ps = req.osdmap.object_to_ps(pool, obj, nspace)
    up = req.osdmap.pg_to_up(pool, ps)
    primary = up[0] if up else -1
    return reply({
        "epoch": req.osdmap.epoch,
        "pool": name,
        "pool_id": pool.id,
        "objname": f"{nspace}/{obj}" if nspace else obj,
        "raw_pgid": pgid_str(pool.id, raw),
        "pgid": pgid_str(pool.id, ps),
        "up": up,
        "up_primary": primary,
        "acting": list(up),
        "acting_primary": primary,
    })


# -- osd down / out / in --------------------------------------------------------------------------

_OSD_ID = re.compile(r"(?:osd\.)?(\d+)")


def _target_ids(req: Request, prefix: str) -> tuple[list[int], bool]:
    """OSD ids named by `ids`, and whether to report ones already in the wanted state."""
    words = list_arg(req.cmd, "ids")
    if not words:
        raise CommandError(errno.EINVAL, "missing required parameter ids(<osdname>)")
    if words[0] in ("any", "all", "*"):
        osds = req.osdmap.osds.values()
        if prefix == "osd in":
            osds = [o for o in osds if not o.in_]
        return sorted(o.id for o in osds), False
    ids = []
    for word in words:
        m = _OSD_ID.fullmatch(word.strip())
        if m is None:
            raise CommandError(errno.EINVAL, f"invalid osd id '{word}'")
        ids.append(int(m.group(1)))
    return ids, True


def _mark_one(new: OSDMap, osd_id: int, prefix: str, now: float, verbose: bool) -> tuple[str, bool]:
    osd = new.osds[osd_id]
    if prefix == "osd down":
        if not osd.up:
            return (f"osd.{osd_id} is already down. " if verbose else ""), False
        osd.up = False
        osd.down_at = new.epoch
        new.last_up_change = now
        return f"marked down osd.{osd_id}. ", True
    if prefix == "osd out":
        if not osd.in_:
            return (f"osd.{osd_id} is already out. " if verbose else ""), False
        osd.reweight = 0.0
    else:
        if osd.in_:
            return (f"osd.{osd_id} is already in. " if verbose else ""), False
        osd.reweight = 1.0
    new.last_in_change = now
    return f"marked {prefix.split()[1]} osd.{osd_id}. ", True


def _osd_mark(req: Request) -> Reply:
    ids, verbose = _target_ids(req, req.prefix)
    new = next_map(req)
    outs, changed = [], False
    for osd_id in ids:
        if osd_id not in new.osds:
            outs.append(f"osd.{osd_id} does not exist. ")
            continue
        text, did = _mark_one(new, osd_id, req.prefix, req.now, verbose)
        outs.append(text)
        changed |= did
    return reply(outs="".join(outs), new_osdmap=new if changed else None)


# -- osd df ------------------------------------------------------------------------------------------

def _pgs_per_osd(req: Request) -> dict[int, int]:
    counts: dict[int, int] = {}
    for _, _, stat in iter_pgs(req.state):
        for osd in set(stat.acting if stat else ()):
            counts[osd] = counts.get(osd, 0) + 1
    return counts


def _osd_df(req: Request) -> Reply:
    nodes, total = [], {"kb": 0, "kb_used": 0, "kb_avail": 0}
    pgs = _pgs_per_osd(req)
    for osd in sorted(req.osdmap.osds.values(), key=lambda o: o.id):
        stat = req.state.osd_stats.get(osd.id)
        kb = (stat.total >> 10) if stat else 0
        kb_used = (stat.used >> 10) if stat else 0
        kb_avail = (stat.avail >> 10) if stat else 0
        util = 100.0 * (kb - kb_avail) / kb if kb else 0.0
        nodes.append({**osd_node(osd), "reweight": num(osd.reweight), "kb": kb, "kb_used": kb_used,
                      "kb_used_data": kb_used, "kb_used_omap": 0, "kb_used_meta": 0, "kb_avail": kb_avail,
                      "utilization": num(util), "var": 0, "pgs": (stat.num_pgs if stat else 0) or pgs.get(osd.id, 0),
                      "status": "up" if osd.up else "down"})
        total["kb"] += kb
        total["kb_used"] += kb_used
        total["kb_avail"] += kb_avail
    average = 100.0 * (total["kb"] - total["kb_avail"]) / total["kb"] if total["kb"] else 0.0
    variances = []
    for node in nodes:
        node["var"] = num(node["utilization"] / average) if average and node["kb"] else 0
        variances.append(node["var"])
    dev = (sum((n["utilization"] - average) ** 2 for n in nodes if n["kb"]) / len(nodes)) ** 0.5 if nodes else 0.0
    return reply({"nodes": nodes, "stray": [], "summary": {
        "total_kb": total["kb"], "total_kb_used": total["kb_used"], "total_kb_used_data": total["kb_used"],
        "total_kb_used_omap": 0, "total_kb_used_meta": 0, "total_kb_avail": total["kb_avail"],
        "average_utilization": num(average), "min_var": num(min(variances, default=0)),
        "max_var": num(max(variances, default=0)), "dev": num(dev),
    }})


HANDLERS: dict[str, Handler] = {
    "osd tree": _osd_tree,
    "osd stat": _osd_stat,
    "osd ls": _osd_ls,
    "osd dump": _osd_dump,
    "osd map": _osd_map,
    "osd down": _osd_mark,
    "osd out": _osd_mark,
    "osd in": _osd_mark,
    "osd df": _osd_df,
}

"""Plain text of the osdmap commands: `osd dump`, `osd pool ls [detail]`, `osd ls`, `osd map`,
`osd pool get`, `osd pool get-quota` and `osd pool application get`.

The input is the JSON document of the command (Ceph's `--format json` shape).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from shoal.mon.render_units import byte_u, cfloat, si_u

_POOL_TYPES = {1: "replicated", 3: "erasure"}
_OBJECT_HASHES = {1: "linux", 2: "rjenkins"}  # CEPH_STR_HASH_*
_ZERO_UUID = "00000000-0000-0000-0000-000000000000"


# -- addresses and small values -------------------------------------------------------------------

def addr_text(addr: Mapping[str, Any]) -> str:
    """One entity address: "v2:127.0.0.1:6802/15576" (no type prefix for type "any", "-" for none)."""
    kind = addr.get("type", "v2")
    if kind == "none":
        return "-"
    prefix = "" if kind == "any" else f"{kind}:"
    return f"{prefix}{addr.get('addr', '')}/{addr.get('nonce', 0)}"


def addrvec_text(addrs: Mapping[str, Any] | None) -> str:
    """"[v2:127.0.0.1:3400/0,v1:127.0.0.1:6889/0]" from {"addrvec": [...]}."""
    vec = (addrs or {}).get("addrvec") or []
    return "[" + ",".join(addr_text(a) for a in vec) + "]"


def _int_list(values: Sequence[Any]) -> str:
    return "[" + ",".join(str(v) for v in values) + "]"


def _interval_set(items: Any) -> str:
    """A snap interval set as Ceph prints it, in hex: [{"begin": 52, "length": 4}] -> "[34~4]"."""
    if isinstance(items, str):
        return items
    return "[" + ",".join(f"{int(i['begin']):x}~{int(i['length']):x}" for i in items) + "]"


# -- pools ----------------------------------------------------------------------------------------

def _object_hash_name(pool: Mapping[str, Any]) -> str:
    value = pool.get("object_hash", 2)
    return value if isinstance(value, str) else _OBJECT_HASHES.get(int(value), str(value))


def _pool_optional_fields(pool: Mapping[str, Any]) -> str:
    """The fields `ceph osd dump` prints only when they are set, in Ceph's order."""
    text = ""
    lfor = [str(pool.get(k, "0")) for k in ("last_force_op_resend", "last_force_op_resend_prenautilus",
                                              "last_force_op_resend_preluminous")]
    if any(v != "0" for v in lfor):
        text += " lfor " + "/".join(lfor)
    if pool.get("auid"):
        text += f" owner {pool['auid']}"
    if pool.get("flags_names"):
        text += f" flags {pool['flags_names']}"
    if pool.get("quota_max_bytes"):
        text += f" max_bytes {pool['quota_max_bytes']}"
    if pool.get("quota_max_objects"):
        text += f" max_objects {pool['quota_max_objects']}"
    if pool.get("tiers"):
        text += " tiers " + ",".join(str(t) for t in pool["tiers"])  # a set: no brackets
    for key, label in (("tier_of", "tier_of"), ("read_tier", "read_tier"), ("write_tier", "write_tier")):
        if pool.get(key, -1) not in (-1, None):
            text += f" {label} {pool[key]}"
    if pool.get("cache_mode", "none") != "none":
        text += f" cache_mode {pool['cache_mode']}"
    if pool.get("target_max_bytes"):
        text += f" target_bytes {pool['target_max_bytes']}"
    if pool.get("target_max_objects"):
        text += f" target_objects {pool['target_max_objects']}"
    return text


def pool_line(pool: Mapping[str, Any]) -> str:
    """"pool 2 'rbd' replicated size 3 min_size 2 crush_rule 0 ... application rbd" (no newline)."""
    pool_id = pool.get("pool", pool.get("pool_id"))
    kind = _POOL_TYPES.get(int(pool.get("type", 1)), str(pool.get("type")))
    text = f"pool {pool_id} '{pool.get('pool_name', '<unknown>')}' {kind}"
    if kind == "erasure":
        text += f" profile {pool.get('erasure_code_profile', '')}"
    pg_num, pgp_num = pool.get("pg_num", 0), pool.get("pg_placement_num", pool.get("pgp_num", 0))
    text += (f" size {pool.get('size', 0)} min_size {pool.get('min_size', 0)} crush_rule {pool.get('crush_rule', 0)}"
             f" object_hash {_object_hash_name(pool)} pg_num {pg_num} pgp_num {pgp_num}")
    for key, label, base in (("pg_num_target", "pg_num_target", pg_num),
                             ("pg_placement_num_target", "pgp_num_target", pgp_num),
                             ("pg_num_pending", "pg_num_pending", pg_num)):
        if pool.get(key, base) != base:
            text += f" {label} {pool[key]}"
    if pool.get("pg_autoscale_mode"):
        text += f" autoscale_mode {pool['pg_autoscale_mode']}"
    text += f" last_change {pool.get('last_change', 0)}" + _pool_optional_fields(pool)
    text += f" stripe_width {pool.get('stripe_width', 0)}"
    if pool.get("expected_num_objects"):
        text += f" expected_num_objects {pool['expected_num_objects']}"
    if pool.get("fast_read"):
        text += " fast_read 1"
    for key, value in (pool.get("options") or {}).items():
        text += f" {key} {cfloat(value) if isinstance(value, float) else value}"
    if pool.get("application_metadata"):
        text += " application " + ",".join(pool["application_metadata"])
    return text


def _queue_by_pool(queue: Any) -> dict[int, Any]:
    return {int(e["pool"]): e.get("snaps", []) for e in queue or []}


def pool_lines(pools: Sequence[Mapping[str, Any]], removed_snaps_queue: Any = None) -> str:
    """Each pool's line, its pool snapshots and removed-snaps lines (tab-indented), newline-terminated."""
    queue = _queue_by_pool(removed_snaps_queue)
    out = ""
    for pool in pools:
        out += pool_line(pool) + "\n"
        for snap in pool.get("pool_snaps") or []:
            out += f"\tsnap {int(snap['snapid']):x} '{snap['name']}' {snap['stamp']}\n"
        if pool.get("removed_snaps") not in (None, "", "[]", []):
            out += f"\tremoved_snaps {_interval_set(pool['removed_snaps'])}\n"
        pool_id = int(pool.get("pool", pool.get("pool_id", -1)))
        snaps = queue.get(pool_id, pool.get("removed_snaps_queue"))
        if snaps:
            out += f"\tremoved_snaps_queue {_interval_set(snaps)}\n"
    return out


def render_pool_ls(data: Any, detail: bool) -> str:
    """`osd pool ls`: names; `ls detail`: the pool lines of `osd dump` and a closing empty line.

    The detail data is either the JSON list of pools (each may carry its own `removed_snaps_queue`)
    or {"pools": [...], "removed_snaps_queue": [...]} as in `osd dump`.
    """
    if not detail:
        return "".join(f"{name}\n" for name in data)
    if isinstance(data, Mapping):
        return pool_lines(data.get("pools") or [], data.get("removed_snaps_queue")) + "\n"
    return pool_lines(data) + "\n"


# -- osd dump -------------------------------------------------------------------------------------

def _dump_header(d: Mapping[str, Any]) -> str:
    text = (f"epoch {d.get('epoch', 0)}\nfsid {d.get('fsid', '')}\ncreated {d.get('created', '')}\n"
            f"modified {d.get('modified', '')}\nflags {d.get('flags', '')}\ncrush_version {d.get('crush_version', 0)}\n"
            f"full_ratio {cfloat(d.get('full_ratio', 0))}\nbackfillfull_ratio {cfloat(d.get('backfillfull_ratio', 0))}\n"
            f"nearfull_ratio {cfloat(d.get('nearfull_ratio', 0))}\n")
    if d.get("require_min_compat_client"):
        text += f"require_min_compat_client {d['require_min_compat_client']}\n"
    text += f"min_compat_client {d.get('min_compat_client', '')}\n"
    if d.get("require_osd_release"):
        text += f"require_osd_release {d['require_osd_release']}\n"
    stretch = d.get("stretch_mode") or {}
    text += f"stretch_mode_enabled {'true' if stretch.get('stretch_mode_enabled') else 'false'}\n"
    if stretch.get("stretch_mode_enabled"):
        for key in ("stretch_bucket_count", "degraded_stretch_mode", "recovering_stretch_mode", "stretch_mode_bucket"):
            text += f"{key} {stretch.get(key, 0)}\n"
    if d.get("cluster_snapshot"):
        text += f"cluster_snapshot {d['cluster_snapshot']}\n"
    return text


def osd_dump_line(osd: Mapping[str, Any]) -> str:
    """"osd.0 up   in  weight 1 up_from 7 ... exists,up <uuid>" (no newline)."""
    text = f"osd.{osd['osd']}" + (" up  " if osd.get("up") else " down") + (" in " if osd.get("in") else " out")
    text += f" weight {cfloat(osd.get('weight', 0))}"
    if float(osd.get("primary_affinity", 1)) != 1.0:
        text += f" primary_affinity {cfloat(osd['primary_affinity'])}"
    text += (f" up_from {osd.get('up_from', 0)} up_thru {osd.get('up_thru', 0)} down_at {osd.get('down_at', 0)}"
             f" last_clean_interval [{osd.get('last_clean_begin', 0)},{osd.get('last_clean_end', 0)})")
    if osd.get("lost_at"):
        text += f" lost_at {osd['lost_at']}"
    text += f" {addrvec_text(osd.get('public_addrs'))} {addrvec_text(osd.get('cluster_addrs'))}"
    text += " " + ",".join(sorted(osd.get("state") or []))
    if osd.get("uuid") and osd["uuid"] != _ZERO_UUID:
        text += f" {osd['uuid']}"
    return text


def _primary_temp_pairs(value: Any) -> list[tuple[str, Any]]:
    """Ceph 16 dumps primary_temp as a flat [pgid, osd, pgid, osd, ...] list; accept objects too."""
    if value and isinstance(value[0], Mapping):
        return [(e["pgid"], e["osd"]) for e in value]
    return list(zip(value[0::2], value[1::2], strict=False))  # a dangling pgid is dropped


def _dump_mappings(d: Mapping[str, Any]) -> str:
    text = "".join(f"pg_upmap {e['pgid']} {_int_list(e['osds'])}\n" for e in d.get("pg_upmap") or [])
    for e in d.get("pg_upmap_items") or []:
        flat = [v for m in e.get("mappings", []) for v in (m["from"], m["to"])]
        text += f"pg_upmap_items {e['pgid']} {_int_list(flat)}\n"
    text += "".join(f"pg_temp {e['pgid']} {_int_list(e['osds'])}\n" for e in d.get("pg_temp") or [])
    text += "".join(f"primary_temp {pg} {osd}\n" for pg, osd in _primary_temp_pairs(d.get("primary_temp") or []))
    text += "".join(f"blocklist {addr} expires {until}\n" for addr, until in (d.get("blocklist") or {}).items())
    return text


def render_osd_dump(d: Mapping[str, Any]) -> str:
    text = _dump_header(d) + pool_lines(d.get("pools") or [], d.get("removed_snaps_queue"))
    text += f"max_osd {d.get('max_osd', 0)}\n"
    text += "".join(osd_dump_line(o) + "\n" for o in d.get("osds") or [])
    return text + _dump_mappings(d)


# -- small osd/pool commands ----------------------------------------------------------------------

def render_osd_ls(data: Sequence[Any]) -> str:
    return "".join(f"{osd}\n" for osd in data)


def render_osd_map(d: Mapping[str, Any]) -> str:
    """"osdmap e100 pool 'rbd' (2) object 'obj1' -> pg 2.6cf8deff (2.7) -> up ([1,0,2], p1) acting (...)"."""
    return (f"osdmap e{d['epoch']} pool '{d['pool']}' ({d['pool_id']}) object '{d['objname']}' -> "
            f"pg {d['raw_pgid']} ({d['pgid']}) -> up ({_int_list(d['up'])}, p{d['up_primary']}) "
            f"acting ({_int_list(d['acting'])}, p{d['acting_primary']})\n")


def _pool_get_value(key: str, value: Any) -> str:
    if key == "use_gmt_hitset" and isinstance(value, bool):
        return "1" if value else "0"  # Ceph prints this one flag as a number, the others as words
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return cfloat(value)
    return str(value)


def render_pool_get(d: Mapping[str, Any]) -> str:
    """`osd pool get POOL VAR|all`: "size: 3" for every key but the pool's name and id."""
    return "".join(f"{k}: {_pool_get_value(k, v)}\n" for k, v in d.items() if k not in ("pool", "pool_id"))


def render_pool_quota(d: Mapping[str, Any]) -> str:
    objects, size = d.get("quota_max_objects", 0), d.get("quota_max_bytes", 0)
    text = f"quotas for pool '{d.get('pool_name', '')}':\n"
    text += (f"  max objects: {si_u(objects)} objects  (current num objects: {d.get('current_num_objects', 0)} objects)\n"
             if objects else "  max objects: N/A\n")
    text += (f"  max bytes  : {byte_u(size)}  (current num bytes: {d.get('current_num_bytes', 0)} bytes)\n"
             if size else "  max bytes  : N/A\n")
    return text


def render_application_get(data: Any) -> str:
    """Ceph prints this one as indented JSON even in plain mode; a single key's value as text."""
    if isinstance(data, str):
        return data + "\n"
    return json.dumps(data, indent=4) + "\n"

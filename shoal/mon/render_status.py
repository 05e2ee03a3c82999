"""Plain text of `ceph health [detail]`, `ceph status` (`ceph -s`), `ceph osd stat` and `ceph pg stat`.

The input is the command's JSON document (the shape of Ceph's `--format json`). Ages are shown
relative to "now", which the caller passes as `_now` (epoch seconds, in the command or the
document); keys beyond Ceph's JSON are listed in `render.py`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from shoal.mon.render_units import byte_u, parse_stamp, si_u, timespan_str

_SEVERITY_TAG = {"HEALTH_ERR": "ERR", "HEALTH_WARN": "WRN", "HEALTH_OK": "OK"}
# osdmap flags that `ceph -s` and `osd stat` never show: set on every modern cluster.
_SEMIHIDDEN_FLAGS = frozenset({
    "sortbitwise", "recovery_deletes", "purged_snapdirs", "pglog_hardlimit",
    "require_jewel_osds", "require_kraken_osds", "require_luminous_osds",
})
_PGS_INDENT = " " * 13  # continuation lines of "    pgs:     ..."
_OSD_FLAGS_INDENT = " " * 9  # "    osd: " is 9 wide; the flags line lines up under its text
_SECTION_GAP = " \n"  # `ceph -s` separates its sections with a line holding one space


def now_of(cmd: Mapping[str, Any] | None, data: Any) -> float:
    """The moment ages are measured against: `_now` of the command, else of the document, else the clock."""
    for source in (cmd, data):
        if isinstance(source, Mapping) and source.get("_now") is not None:
            return float(source["_now"])
    return time.time()


def _age_since(now: float, since: float | None) -> str | None:
    if not since:
        return None  # Ceph leaves "(since ...)" out until the first change
    return timespan_str(max(0.0, now - float(since)))


# -- health ---------------------------------------------------------------------------------------

def _mute_ttl_left(mute: Mapping[str, Any], now: float) -> float | None:
    ttl = mute.get("ttl")
    if not ttl:
        return None
    return (parse_stamp(ttl) if isinstance(ttl, str) else float(ttl)) - now


def health_summary(health: Mapping[str, Any], now: float, sep1: str, sep2: str) -> str:
    """"HEALTH_WARN<sep1>check summary<sep2>other summary<sep2>(muted: CODE(59m))", without newline."""
    mutes = list(health.get("mutes") or [])
    muted_codes = {m.get("code") for m in mutes}
    checks = health.get("checks") or {}
    summaries = [c["summary"]["message"] for code, c in checks.items() if code not in muted_codes]
    text = str(health.get("status", "HEALTH_OK"))
    if summaries:
        text += sep1 + sep2.join(summaries)
    if mutes:
        text += sep2 if summaries else sep1
        parts = []
        for mute in mutes:
            left = _mute_ttl_left(mute, now)
            ttl = "" if left is None else f"({timespan_str(left)})" if left > 0 else "(0s)"
            parts.append(f" {mute.get('code')}{ttl}")
        text += "(muted:" + "".join(parts) + ")"
    return text


def _muted_prefix(mute: Mapping[str, Any], now: float) -> str:
    text = "(MUTED"
    left = _mute_ttl_left(mute, now)
    if left is not None:
        # Ceph glues an expired ttl onto the word: "(MUTED0s)"; kept for byte-compatibility.
        text += f" ttl {timespan_str(left)}" if left > 0 else "0s"
    if mute.get("sticky"):
        text += ", STICKY"
    return text + ") "


def render_health(data: Mapping[str, Any], detail: bool, now: float) -> str:
    """`ceph health [detail]`: the one-line summary, then per check "[WRN] CODE: summary" and details."""
    out = health_summary(data, now, " ", "; ") + "\n"
    if not detail:
        return out
    mutes = {m.get("code"): m for m in data.get("mutes") or []}
    for code, check in (data.get("checks") or {}).items():
        if code in mutes:
            out += _muted_prefix(mutes[code], now)
        tag = _SEVERITY_TAG.get(check.get("severity", ""), "WRN")
        out += f"[{tag}] {code}: {check['summary']['message']}\n"
        for item in check.get("detail") or []:
            out += "    " + (item["message"] if isinstance(item, Mapping) else str(item)) + "\n"
    return out


# -- osdmap summary (ceph -s "osd:" line, ceph osd stat) ------------------------------------------

def important_flags(osdmap: Mapping[str, Any]) -> list[str]:
    """The osdmap flags an operator set (noout, noscrub, ...), from Shoal's extra `flags` key."""
    flags = osdmap.get("flags") or []
    names = flags.split(",") if isinstance(flags, str) else list(flags)
    return [f for f in names if f and f not in _SEMIHIDDEN_FLAGS]


def osdmap_summary(osdmap: Mapping[str, Any], now: float, flags_indent: str, with_epoch: bool) -> str:
    """"3 osds: 3 up (since 107s), 3 in (since 112s)[; epoch: e100][; 2 remapped pgs]" + flags line."""
    text = f"{osdmap.get('num_osds', 0)} osds: {osdmap.get('num_up_osds', 0)} up"
    up_age = _age_since(now, osdmap.get("osd_up_since"))
    if up_age:
        text += f" (since {up_age})"
    text += f", {osdmap.get('num_in_osds', 0)} in"
    in_age = _age_since(now, osdmap.get("osd_in_since"))
    if in_age:
        text += f" (since {in_age})"
    if with_epoch:
        text += f"; epoch: e{osdmap.get('epoch', 0)}"
    if osdmap.get("num_remapped_pgs"):
        text += f"; {osdmap['num_remapped_pgs']} remapped pgs"
    text += "\n"
    flags = important_flags(osdmap)
    if flags:
        text += f"{flags_indent}flags {','.join(flags)}\n"
    return text


def render_osd_stat(data: Mapping[str, Any], now: float) -> str:
    return osdmap_summary(data, now, "", with_epoch=True)


# -- pgmap pieces shared by `ceph -s` and `pg stat` ----------------------------------------------

def _ratio_line(count: int, total: int, what: str) -> str:
    return f"{count}/{total} objects {what} ({count / total * 100.0:.3f}%)"


def recovery_summaries(pgmap: Mapping[str, Any]) -> list[str]:
    """"12/36 objects degraded (33.333%)" and its misplaced and unfound siblings, when present."""
    lines = []
    for what, total_key in (("degraded", "degraded_total"), ("misplaced", "misplaced_total"),
                            ("unfound", "unfound_total")):
        count, total = pgmap.get(f"{what}_objects"), pgmap.get(total_key)
        if count and total:
            lines.append(_ratio_line(int(count), int(total), what))
    return lines


def recovery_rate(pgmap: Mapping[str, Any]) -> str:
    """"1.2 MiB/s, 3 objects/s" (with ", N keys/s" when omap keys moved), or "" when idle."""
    keys = ("recovering_bytes_per_sec", "recovering_objects_per_sec", "recovering_keys_per_sec")
    if not any(pgmap.get(k) for k in keys):
        return ""
    text = f"{byte_u(pgmap.get('recovering_bytes_per_sec', 0))}/s"
    if pgmap.get("recovering_keys_per_sec") or pgmap.get("num_keys_recovered"):
        text += f", {si_u(pgmap.get('recovering_keys_per_sec', 0))} keys/s"
    return text + f", {si_u(pgmap.get('recovering_objects_per_sec', 0))} objects/s"


def client_io_rate(pgmap: Mapping[str, Any]) -> str:
    """"33 KiB/s rd, 237 KiB/s wr, 42 op/s rd, 7 op/s wr", or "" when every rate is zero."""
    keys = ("read_bytes_sec", "write_bytes_sec", "read_op_per_sec", "write_op_per_sec")
    if not any(pgmap.get(k) for k in keys):
        return ""
    text = ""
    if pgmap.get("read_bytes_sec"):
        text += f"{byte_u(pgmap['read_bytes_sec'])}/s rd, "
    if pgmap.get("write_bytes_sec"):
        text += f"{byte_u(pgmap['write_bytes_sec'])}/s wr, "
    return text + f"{si_u(pgmap.get('read_op_per_sec', 0))} op/s rd, {si_u(pgmap.get('write_op_per_sec', 0))} op/s wr"


# -- ceph status ----------------------------------------------------------------------------------

def _mon_line(data: Mapping[str, Any]) -> str:
    monmap = data.get("monmap") or {}
    names = list(data.get("quorum_names") or [])
    count = monmap.get("num_mons", len(names))
    line = f"    mon: {count} daemons, quorum {','.join(names)} (age {timespan_str(data.get('quorum_age', 0))})"
    out_of_quorum = monmap.get("out_of_quorum") or []
    if out_of_quorum:
        line += ", out of quorum: " + ", ".join(out_of_quorum)
    return line + "\n"


def _mgr_line(mgrmap: Mapping[str, Any], now: float) -> str:
    """"    mgr: x(active, since 114s)"; nothing when no mgr is active (Shoal has none)."""
    name = mgrmap.get("active_name")
    if not name:
        return ""
    state = "active" if mgrmap.get("available", True) else "active, starting"
    age = _age_since(now, mgrmap.get("active_since"))
    text = f"    mgr: {name}({state}" + (f", since {age}" if age else "") + ")"
    standbys = mgrmap.get("standbys") or []
    if standbys:
        text += ", standbys: " + ", ".join(standbys)
    return text + "\n"


def _pgs_block(pgmap: Mapping[str, Any]) -> str:
    items = []
    if pgmap.get("unknown_pgs_ratio"):
        items.append(f"{float(pgmap['unknown_pgs_ratio']) * 100.0:.3f}% pgs unknown")
    if pgmap.get("inactive_pgs_ratio"):
        items.append(f"{float(pgmap['inactive_pgs_ratio']) * 100.0:.3f}% pgs not active")
    items.extend(recovery_summaries(pgmap))
    states = pgmap.get("pgs_by_state") or []
    width = max([1] + [len(str(s["count"])) for s in states])
    items.extend(f"{str(s['count']).ljust(width)} {s['state_name']}" for s in states)
    if not items:
        return "    pgs:     \n"
    return "    pgs:     " + ("\n" + _PGS_INDENT).join(items) + "\n"


def _data_section(pgmap: Mapping[str, Any]) -> str:
    return (f"  data:\n    pools:   {pgmap.get('num_pools', 0)} pools, {pgmap.get('num_pgs', 0)} pgs\n"
            f"    objects: {si_u(pgmap.get('num_objects', 0))} objects, {byte_u(pgmap.get('data_bytes', 0))}\n"
            f"    usage:   {byte_u(pgmap.get('bytes_used', 0))} used, {byte_u(pgmap.get('bytes_avail', 0))}"
            f" / {byte_u(pgmap.get('bytes_total', 0))} avail\n" + _pgs_block(pgmap))


def _io_section(pgmap: Mapping[str, Any]) -> str:
    client, recovery = client_io_rate(pgmap), recovery_rate(pgmap)
    if not (client or recovery):
        return ""
    return ("  io:\n" + (f"    client:   {client}\n" if client else "")
            + (f"    recovery: {recovery}\n" if recovery else ""))


def _progress_section(events: Mapping[str, Any]) -> str:
    shown = [e for e in events.values() if isinstance(e, Mapping) and e.get("add_to_ceph_s", True)]
    if not shown:
        return ""
    return "  progress:\n" + "".join(f"    {e.get('message', '')}\n" for e in shown)


def render_status(data: Mapping[str, Any], now: float) -> str:
    """`ceph status`: cluster, services, data, then io and progress when there is any."""
    health = health_summary(data.get("health") or {}, now, "\n" + " " * 12, "\n" + " " * 12)
    cluster = f"  cluster:\n    id:     {data.get('fsid', '')}\n    health: {health}\n"
    services = ("  services:\n" + _mon_line(data) + _mgr_line(data.get("mgrmap") or {}, now)
                + "    osd: " + osdmap_summary(data.get("osdmap") or {}, now, _OSD_FLAGS_INDENT, False))
    pgmap = data.get("pgmap") or {}
    sections = [cluster, services, _data_section(pgmap), _io_section(pgmap),
                _progress_section(data.get("progress_events") or {})]
    return "".join(s + _SECTION_GAP for s in sections if s)


# -- pg stat --------------------------------------------------------------------------------------

def render_pg_stat(data: Mapping[str, Any]) -> str:
    """"25 pgs: 25 active+clean; 6.9 MiB data, 899 MiB used, 23 GiB / 24 GiB avail[; io][; recovery]"."""
    summary = data.get("pg_summary", data)
    states = ", ".join(f"{s['num']} {s['name']}" for s in summary.get("num_pg_by_state") or [])
    text = (f"{summary.get('num_pgs', 0)} pgs: {states}; {byte_u(summary.get('num_bytes', 0))} data, "
            f"{byte_u(summary.get('total_used_bytes', 0))} used, {byte_u(summary.get('total_avail_bytes', 0))}"
            f" / {byte_u(summary.get('total_bytes', 0))} avail")
    if any(summary.get(k) for k in ("read_bytes_sec", "write_bytes_sec", "io_sec")):
        text += "; "
        if summary.get("read_bytes_sec"):
            text += f"{byte_u(summary['read_bytes_sec'])}/s rd, "
        if summary.get("write_bytes_sec"):
            text += f"{byte_u(summary['write_bytes_sec'])}/s wr, "
        text += f"{si_u(summary.get('io_sec', 0))} op/s"
    for line in recovery_summaries(summary):
        text += "; " + line
    rate = recovery_rate(summary)
    if rate:
        text += f"; {rate} recovering"
    return text + "\n"

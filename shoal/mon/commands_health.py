"""Cluster health: Ceph's health checks (codes, severities, summaries) computed from state.

Each check is (code, severity, summary, count, detail lines), as `ceph health detail`
shows them. The overall status is the worst severity; no checks means HEALTH_OK.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from shoal.mon.commands_common import conf_value, plural
from shoal.mon.commands_osd import hosts
from shoal.mon.commands_stats import iter_pgs, pg_state_of
from shoal.mon.state import MonState, PGStat

OK, WARN, ERR = "HEALTH_OK", "HEALTH_WARN", "HEALTH_ERR"
_RANK = {OK: 0, WARN: 1, ERR: 2}
MAX_DETAIL = 50  # Ceph's mon_health_max_detail


@dataclass
class Check:
    code: str
    severity: str
    message: str
    count: int
    detail: list[str] = field(default_factory=list)


def _osd_checks(state: MonState) -> Iterator[Check]:
    osdmap = state.osdmap
    down = [o for o in sorted(osdmap.osds.values(), key=lambda o: o.id) if not o.up and o.in_]
    if down:
        yield Check("OSD_DOWN", WARN, f"{len(down)} osds down", len(down),
                    [f"osd.{o.id} (root=default,host={o.host}) is down" for o in down])
    down_hosts = [(host, osds) for _, host, osds in hosts(osdmap)
                  if not any(o.up for o in osds) and any(o.in_ for o in osds)]
    if down_hosts:
        n_osds = sum(len(osds) for _, osds in down_hosts)
        yield Check("OSD_HOST_DOWN", WARN, f"{plural(len(down_hosts), 'host')} ({n_osds} osds) down",
                    len(down_hosts),
                    [f"host {host} (root=default) ({len(osds)} osds) is down" for host, osds in down_hosts])
    if osdmap.osds and len(down_hosts) == len(hosts(osdmap)):
        n_osds = len(osdmap.osds)
        yield Check("OSD_ROOT_DOWN", WARN, f"1 root ({n_osds} osds) down", 1,
                    [f"root default ({n_osds} osds) is down"])
    wanted = int(conf_value(state, "osd_pool_default_size"))
    if len(osdmap.osds) < wanted:
        yield Check("TOO_FEW_OSDS", WARN, f"OSD count {len(osdmap.osds)} < osd_pool_default_size {wanted}", 0)


def _fullness_checks(state: MonState) -> Iterator[Check]:
    levels = (
        ("OSD_FULL", ERR, "mon_osd_full_ratio", "full", "is full"),
        ("OSD_BACKFILLFULL", WARN, "mon_osd_backfillfull_ratio", "backfillfull", "is backfill full"),
        ("OSD_NEARFULL", WARN, "mon_osd_nearfull_ratio", "nearfull", "is near full"),
    )
    claimed: set[int] = set()
    for code, severity, option, word, phrase in levels:
        ratio = float(conf_value(state, option))
        hit = [osd for osd, s in sorted(state.osd_stats.items())
               if osd not in claimed and s.total > 0 and (s.total - s.avail) / s.total >= ratio]
        claimed.update(hit)
        if hit:
            yield Check(code, severity, f"{len(hit)} {word} osd(s)", len(hit), [f"osd.{o} {phrase}" for o in hit])


def _pg_detail(pgid: str, stat: PGStat | None) -> str:
    acting = ",".join(str(o) for o in stat.acting) if stat else ""
    return f"pg {pgid} is {pg_state_of(stat)}, acting [{acting}]"


def _pg_checks(state: MonState) -> Iterator[Check]:
    availability: dict[str, list[str]] = {w: [] for w in ("inactive", "down", "peering", "incomplete", "stale")}
    redundancy: dict[str, list[str]] = {"degraded": [], "undersized": []}
    for _, pgid, stat in iter_pgs(state):
        parts = set(pg_state_of(stat).split("+"))
        line = _pg_detail(pgid, stat)
        if "active" not in parts:
            availability["inactive"].append(line)
        for word, lines in [*availability.items(), *redundancy.items()]:
            if word in parts:
                lines.append(line)
    for code, title, groups in (("PG_AVAILABILITY", "Reduced data availability", availability),
                                ("PG_DEGRADED", "Degraded data redundancy", redundancy)):
        counted = [(word, lines) for word, lines in groups.items() if lines]
        if not counted:
            continue
        summary = ", ".join(f"{plural(len(lines), 'pg')} {word}" for word, lines in counted)
        affected = list(dict.fromkeys(line for _, lines in counted for line in lines))
        yield Check(code, WARN, f"{title}: {summary}", len(affected), affected[:MAX_DETAIL])


def _pool_checks(state: MonState, now: float) -> Iterator[Check]:
    if not conf_value(state, "mon_warn_on_pool_no_app"):
        return
    grace = float(conf_value(state, "mon_warn_on_pool_no_app_grace"))
    bare = [p.name for p in sorted(state.osdmap.pools.values(), key=lambda p: p.id)
            if not p.application and now - p.create_time > grace]
    if bare:
        yield Check("POOL_APP_NOT_ENABLED", WARN, f"{len(bare)} pool(s) do not have an application enabled",
                    len(bare), [f"application not enabled on pool '{name}'" for name in bare]
                    + ["use 'ceph osd pool application enable <pool-name> <app-name>', where <app-name> "
                       "is 'cephfs', 'rbd', 'rgw', or freeform for custom applications."])


def health_checks(state: MonState, now: float) -> list[Check]:
    checks = [*_osd_checks(state), *_fullness_checks(state), *_pg_checks(state), *_pool_checks(state, now)]
    return sorted(checks, key=lambda c: c.code)


def health_doc(state: MonState, now: float, detail: bool) -> dict[str, Any]:
    """The `health` JSON document (also the `health` section of `status`, without detail)."""
    checks = health_checks(state, now)
    status = max((c.severity for c in checks), key=_RANK.__getitem__, default=OK)
    doc: dict[str, Any] = {}
    for check in checks:
        entry: dict[str, Any] = {"severity": check.severity,
                                 "summary": {"message": check.message, "count": check.count}}
        if detail:
            entry["detail"] = [{"message": line} for line in check.detail]
        entry["muted"] = False
        doc[check.code] = entry
    return {"status": status, "checks": doc, "mutes": []}

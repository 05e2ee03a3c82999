"""Plain text of `ceph df [detail]`: the RAW STORAGE table by device class and the POOLS table.

Ceph's JSON lacks each pool's PG count, which the PGS column shows: the pool entries must carry
it as `_pg_num` (or `pg_num`); a missing count renders as 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shoal.mon.render_table import LEFT, RIGHT, Column, render_table
from shoal.mon.render_units import byte_u, percentify, si_u

_RAW_COLUMNS = (Column("CLASS", LEFT, LEFT),) + tuple(
    Column(h, RIGHT, RIGHT) for h in ("SIZE", "AVAIL", "USED", "RAW USED", "%RAW USED"))
_POOL_HEADINGS = ("ID", "PGS", "STORED", "OBJECTS", "USED", "%USED", "MAX AVAIL")
_DETAIL_HEADINGS = ("ID", "PGS", "STORED", "(DATA)", "(OMAP)", "OBJECTS", "USED", "(DATA)", "(OMAP)", "%USED",
                    "MAX AVAIL", "QUOTA OBJECTS", "QUOTA BYTES", "DIRTY", "USED COMPR", "UNDER COMPR")


def _raw_row(name: str, stats: Mapping[str, Any]) -> list[str]:
    return [name, byte_u(stats.get("total_bytes", 0)), byte_u(stats.get("total_avail_bytes", 0)),
            byte_u(stats.get("total_used_bytes", 0)), byte_u(stats.get("total_used_raw_bytes", 0)),
            percentify(float(stats.get("total_used_raw_ratio", 0)) * 100)]


def _pg_count(pool: Mapping[str, Any]) -> int:
    return int(pool.get("_pg_num", pool.get("pg_num", 0)))


def _pool_row(pool: Mapping[str, Any], detail: bool) -> list[str]:
    s = pool.get("stats") or {}
    used_pct = percentify(float(s.get("percent_used", 0)) * 100)
    if not detail:
        return [pool["name"], str(pool["id"]), str(_pg_count(pool)), byte_u(s.get("stored", 0)),
                si_u(s.get("objects", 0)), byte_u(s.get("bytes_used", 0)), used_pct, byte_u(s.get("max_avail", 0))]
    quota_objects, quota_bytes = s.get("quota_objects", 0), s.get("quota_bytes", 0)
    return [pool["name"], str(pool["id"]), str(_pg_count(pool)), byte_u(s.get("stored", 0)),
            byte_u(s.get("stored_data", 0)), byte_u(s.get("stored_omap", 0)), si_u(s.get("objects", 0)),
            byte_u(s.get("bytes_used", 0)), byte_u(s.get("data_bytes_used", 0)), byte_u(s.get("omap_bytes_used", 0)),
            used_pct, byte_u(s.get("max_avail", 0)), si_u(quota_objects) if quota_objects else "N/A",
            byte_u(quota_bytes) if quota_bytes else "N/A",
            "N/A",  # DIRTY is only counted for cache-tier pools, which Shoal does not have
            byte_u(s.get("compress_bytes_used", 0)), byte_u(s.get("compress_under_bytes", 0))]


def render_df(data: Mapping[str, Any], detail: bool) -> str:
    raw_rows = [_raw_row(name, stats) for name, stats in (data.get("stats_by_class") or {}).items()]
    raw_rows.append(_raw_row("TOTAL", data.get("stats") or {}))
    headings = _DETAIL_HEADINGS if detail else _POOL_HEADINGS
    pool_columns = (Column("POOL", LEFT, LEFT),) + tuple(Column(h, RIGHT, RIGHT) for h in headings)
    pool_rows = [_pool_row(p, detail) for p in data.get("pools") or []]
    return ("--- RAW STORAGE ---\n" + render_table(_RAW_COLUMNS, raw_rows) + " \n"
            + "--- POOLS ---\n" + render_table(pool_columns, pool_rows))

"""Plain text of `ceph osd tree` and `ceph osd df`: CRUSH nodes as tables.

Bucket weights are not in Ceph's `osd tree` JSON; they are the sum of the items' CRUSH weights
(what CRUSH itself stores), unless a bucket node carries its own `crush_weight`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shoal.mon.render_table import LEFT, RIGHT, Column, render_table
from shoal.mon.render_units import byte_u, lowprecision, weightf

_TREE_COLUMNS = (
    Column("ID", LEFT, RIGHT), Column("CLASS", LEFT, RIGHT), Column("WEIGHT", LEFT, RIGHT),
    Column("TYPE NAME", LEFT, LEFT), Column("STATUS", LEFT, RIGHT), Column("REWEIGHT", LEFT, RIGHT),
    Column("PRI-AFF", LEFT, RIGHT),
)
_DF_COLUMNS = tuple(Column(h, LEFT, RIGHT) for h in (
    "ID", "CLASS", "WEIGHT", "REWEIGHT", "SIZE", "RAW USE", "DATA", "OMAP", "META", "AVAIL", "%USE", "VAR",
    "PGS", "STATUS"))


def _depths(nodes: Sequence[Mapping[str, Any]]) -> dict[int, int]:
    """Depth of each node below its root, from the buckets' children lists."""
    children = {n["id"]: list(n.get("children") or []) for n in nodes}
    referenced = {c for kids in children.values() for c in kids}
    depths: dict[int, int] = {}
    stack = [(n["id"], 0) for n in reversed(nodes) if n["id"] not in referenced]
    while stack:
        node_id, depth = stack.pop()
        if node_id in depths:
            continue
        depths[node_id] = depth
        stack.extend((c, depth + 1) for c in children.get(node_id, []))
    return depths


def _weights(nodes: Sequence[Mapping[str, Any]]) -> dict[int, float]:
    by_id = {n["id"]: n for n in nodes}
    memo: dict[int, float] = {}

    def weight(node_id: int) -> float:
        if node_id not in memo:
            node = by_id.get(node_id, {})
            if "crush_weight" in node or node_id >= 0:
                memo[node_id] = float(node.get("crush_weight", 0.0))
            else:
                memo[node_id] = sum(weight(c) for c in node.get("children") or [])
        return memo[node_id]

    return {n["id"]: weight(n["id"]) for n in nodes}


def _tree_row(node: Mapping[str, Any], depth: int, weight: float) -> list[str]:
    indent = "    " * depth
    if node["id"] < 0:
        return [str(node["id"]), "", weightf(weight), f"{indent}{node.get('type', '')} {node.get('name', '')}"]
    row = [str(node["id"]), node.get("device_class", ""), weightf(weight), f"{indent}osd.{node['id']}"]
    if not node.get("exists", 1):
        return row + ["DNE", "0"]
    return row + [node.get("status", "down"), weightf(node.get("reweight", 0)),
                  weightf(node.get("primary_affinity", 1))]


def render_osd_tree(data: Mapping[str, Any]) -> str:
    """The CRUSH hierarchy in the JSON's (depth-first) order, then OSDs that are in no bucket."""
    nodes = list(data.get("nodes") or [])
    depths, weights = _depths(nodes), _weights(nodes)
    rows = [_tree_row(n, depths.get(n["id"], n.get("depth", 0)), weights[n["id"]]) for n in nodes]
    rows += [_tree_row(n, 0, float(n.get("crush_weight", 0.0))) for n in data.get("stray") or []]
    return render_table(_TREE_COLUMNS, rows)


def _kb(value: Any) -> str:
    return byte_u(int(value or 0) * 1024)


def _df_row(node: Mapping[str, Any]) -> list[str]:
    return [str(node["id"]), node.get("device_class", ""), weightf(node.get("crush_weight", 0)),
            weightf(node.get("reweight", 0)), _kb(node.get("kb")), _kb(node.get("kb_used")),
            _kb(node.get("kb_used_data")), _kb(node.get("kb_used_omap")), _kb(node.get("kb_used_meta")),
            _kb(node.get("kb_avail")), lowprecision(node.get("utilization", 0)), lowprecision(node.get("var", 0)),
            str(node.get("pgs", 0)), node.get("status", "")]


def render_osd_df(data: Mapping[str, Any]) -> str:
    """`ceph osd df`: one row per OSD, the TOTAL row, then "MIN/MAX VAR: a/b  STDDEV: c"."""
    osds = [n for n in list(data.get("nodes") or []) + list(data.get("stray") or []) if n.get("id", -1) >= 0]
    s = data.get("summary") or {}
    total = ["", "", "", "TOTAL", _kb(s.get("total_kb")), _kb(s.get("total_kb_used")),
             _kb(s.get("total_kb_used_data")), _kb(s.get("total_kb_used_omap")), _kb(s.get("total_kb_used_meta")),
             _kb(s.get("total_kb_avail")), lowprecision(s.get("average_utilization", 0))]
    table = render_table(_DF_COLUMNS, [_df_row(n) for n in osds] + [total])
    return table + (f"MIN/MAX VAR: {lowprecision(s.get('min_var', 0))}/{lowprecision(s.get('max_var', 0))}"
                    f"  STDDEV: {lowprecision(s.get('dev', 0))}\n")

"""The `rbd` CLI's outputs: plain tables and texts, and the JSON/XML documents of `--format`.

Pure functions from data to the exact bytes `rbd` (Ceph 16) prints; layouts were read off
real runs (`../shared/reference/fixtures/plain-outputs.md`, `json/rbd-*.json` and a
throw-away `tools/realceph` cluster). Structured outputs are built once as JSON-shaped data
(dicts keep Ceph's key order) and serialised as Ceph's formatters do: compact JSON ending in
a newline, `--pretty-format` JSON indented by 4, XML whose list items are named per list.
"""

from __future__ import annotations

import calendar
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from shoal.mon.render_table import LEFT, RIGHT, Column, render_table
from shoal.mon.render_units import byte_u, cfloat
from shoal.rbd.features import format_features, format_op_features

# librbd's image flags (RBD_FLAG_*), in Ceph's print order.
FLAG_OBJECT_MAP_INVALID, FLAG_FAST_DIFF_INVALID = 1, 2
FLAG_NAMES = {FLAG_OBJECT_MAP_INVALID: "object map invalid", FLAG_FAST_DIFF_INVALID: "fast diff invalid"}
U64_MAX = (1 << 64) - 1

ItemNamer = Callable[[str, Any], str]


# -- time ----------------------------------------------------------------------------------------------

def epoch(value: datetime | float | int) -> float:
    """Seconds since the epoch; python-rbd's naive datetimes are UTC (utcfromtimestamp)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return float(calendar.timegm(value.timetuple()))
        return value.timestamp()
    return float(value)


def ctime(value: datetime | float | int) -> str:
    """C's ctime() without its newline, in local time: "Tue Nov 24 01:22:05 2026"."""
    return time.ctime(int(epoch(value)))


# -- --format json / xml --------------------------------------------------------------------------------

def dump(data: Any, fmt: str, pretty: bool, root: str, items: Mapping[str, str | ItemNamer]) -> str:
    """A document as `rbd --format fmt [--pretty-format]` prints it (always newline-terminated).

    `root` names the outermost XML element; `items[k]` names the elements of the list under key
    (or root) `k`, or is a function choosing it per item.
    """
    if fmt == "json":
        if pretty:
            return json.dumps(data, indent=4, ensure_ascii=False) + "\n"
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False) + "\n"
    out: list[str] = []
    _xml(out, root, data, root, items, 0 if pretty else None)
    return "".join(out) + "\n"  # pretty XML already ends its last line


def _xml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(str(value))


def _xml(out: list[str], name: str, value: Any, key: str, items: Mapping[str, str | ItemNamer],
         depth: int | None) -> None:
    pad = "" if depth is None else " " * depth
    newline = "" if depth is None else "\n"
    tag = name.replace(" ", "_")
    if isinstance(value, Mapping) or isinstance(value, list):
        out.append(f"{pad}<{tag}>{newline}")
        inner = None if depth is None else depth + 1
        if isinstance(value, Mapping):
            for k, v in value.items():
                _xml(out, k, v, k, items, inner)
        else:
            namer = items.get(key, "item")
            for v in value:
                _xml(out, namer(key, v) if callable(namer) else namer, v, key, items, inner)
        out.append(f"{pad}</{tag}>{newline}")
    else:
        out.append(f"{pad}<{tag}>{_xml_text(value)}</{tag}>{newline}")


def table(columns: Sequence[tuple[str, str]], rows: Iterable[Sequence[str]]) -> str:
    """Ceph's TextTable as rbd defines its columns: headings left-aligned, cells as given."""
    return render_table([Column(h, LEFT, align) for h, align in columns], list(rows))


# -- info ------------------------------------------------------------------------------------------------

def info_data(info: Mapping[str, Any]) -> dict[str, Any]:
    """`rbd info --format json` from the facts gathered about the image (see rbd_image_cmd)."""
    d: dict[str, Any] = {"name": info["name"], "id": info["id"], "size": info["size"], "objects": info["objects"],
                         "order": info["order"], "object_size": info["object_size"],
                         "snapshot_count": info["snapshot_count"]}
    if info.get("data_pool"):
        d["data_pool"] = info["data_pool"]
    d.update(block_name_prefix=info["block_name_prefix"], format=info["format"],
             features=format_features(info["features"]), op_features=format_op_features(info["op_features"]),
             flags=[n for bit, n in FLAG_NAMES.items() if info["flags"] & bit])
    for key in ("create_timestamp", "access_timestamp", "modify_timestamp"):
        if info.get(key) is not None:
            d[key] = ctime(info[key])
    if info.get("protected") is not None:
        d["protected"] = "true" if info["protected"] else "false"
    if info.get("snapshot_limit", U64_MAX) < U64_MAX:
        d["snapshot_limit"] = info["snapshot_limit"]
    parent = info.get("parent")
    if parent:
        d["parent"] = {"pool": parent["pool_name"], "pool_namespace": parent.get("pool_namespace", ""),
                       "image": parent["image_name"], "id": parent.get("image_id", ""),
                       "snapshot": parent["snap_name"], "trash": bool(parent.get("trash")),
                       "overlap": info["overlap"]}
    if info.get("stripe_unit") is not None:
        d["stripe_unit"] = info["stripe_unit"]
        d["stripe_count"] = info["stripe_count"]
    return d


INFO_ITEMS = {"features": "feature", "op_features": "op_feature", "flags": "flag"}


def info_plain(d: Mapping[str, Any]) -> str:
    """`rbd info` from the same document `info_data` builds."""
    lines = [f"rbd image '{d['name']}':",
             f"\tsize {byte_u(d['size'])} in {d['objects']} objects",
             f"\torder {d['order']} ({byte_u(d['object_size'])} objects)",
             f"\tsnapshot_count: {d['snapshot_count']}",
             f"\tid: {d['id']}"]
    if "data_pool" in d:
        lines.append(f"\tdata_pool: {d['data_pool']}")
    lines += [f"\tblock_name_prefix: {d['block_name_prefix']}", f"\tformat: {d['format']}",
              f"\tfeatures: {', '.join(d['features'])}", f"\top_features: {', '.join(d['op_features'])}",
              f"\tflags: {', '.join(d['flags'])}"]
    lines += [f"\t{key}: {d[key]}" for key in ("create_timestamp", "access_timestamp", "modify_timestamp")
              if key in d]
    if "protected" in d:
        lines.append(f"\tprotected: {'True' if d['protected'] == 'true' else 'False'}")
    if "snapshot_limit" in d:
        lines.append(f"\tsnapshot_limit: {d['snapshot_limit']}")
    if "parent" in d:
        p = d["parent"]
        trash = f" (trash {p['id']})" if p["trash"] else ""
        lines.append(f"\tparent: {parent_spec(p['pool'], p['pool_namespace'], p['image'], p['snapshot'])}{trash}")
        lines.append(f"\toverlap: {byte_u(p['overlap'])}")
    if "stripe_unit" in d:
        lines += [f"\tstripe unit: {byte_u(d['stripe_unit'])}", f"\tstripe count: {d['stripe_count']}"]
    return "".join(line + "\n" for line in lines)


def parent_spec(pool: str, namespace: str, image: str, snap: str) -> str:
    return f"{pool}/{namespace + '/' if namespace else ''}{image}@{snap}"


# -- ls -l / snap ls / du / diff --------------------------------------------------------------------------

def ls_long_item_name(_key: str, item: Mapping[str, Any]) -> str:
    return "snapshot" if "snapshot" in item else "image"


def ls_long_plain(entries: Sequence[Mapping[str, Any]]) -> str:
    """`rbd ls -l`: the `ls -l --format json` entries as a table (nothing for an empty pool)."""
    if not entries:
        return ""
    rows = []
    for e in entries:
        p = e.get("parent")
        parent = parent_spec(p["pool"], p["pool_namespace"], p["image"], p["snapshot"]) if p else ""
        name = f"{e['image']}@{e['snapshot']}" if "snapshot" in e else e["image"]
        prot = "yes" if e.get("protected") == "true" else ""
        lock = {"exclusive": "excl", "shared": "shr"}.get(e.get("lock_type", ""), "")
        rows.append([name, byte_u(e["size"]), parent, str(e["format"]), prot, lock])
    return table([("NAME", LEFT), ("SIZE", RIGHT), ("PARENT", LEFT), ("FMT", RIGHT), ("PROT", LEFT),
                  ("LOCK", LEFT)], rows)


def snap_ls_plain(snaps: Sequence[Mapping[str, Any]]) -> str:
    if not snaps:
        return ""
    rows = [[str(s["id"]), s["name"], byte_u(s["size"]), "yes" if s["protected"] == "true" else "", s["timestamp"]]
            for s in snaps]
    return table([("SNAPID", RIGHT), ("NAME", LEFT), ("SIZE", RIGHT), ("PROTECTED", LEFT), ("TIMESTAMP", RIGHT)],
                 rows)


def du_plain(entries: Sequence[Mapping[str, Any]], total: tuple[int, int] | None) -> str:
    """`rbd du`; the <TOTAL> row only when there is more than one row (Ceph's rule)."""
    rows = [[f"{e['name']}@{e['snapshot']}" if "snapshot" in e else e["name"], byte_u(e["provisioned_size"]),
             byte_u(e["used_size"])] for e in entries]
    if total is not None and len(entries) > 1:
        rows.append(["<TOTAL>", byte_u(total[0]), byte_u(total[1])])
    return table([("NAME", LEFT), ("PROVISIONED", RIGHT), ("USED", RIGHT)], rows)


def diff_plain(extents: Sequence[Mapping[str, Any]]) -> str:
    if not extents:
        return ""
    rows = [[str(e["offset"]), str(e["length"]), "data" if e["exists"] == "true" else "zero"] for e in extents]
    return table([("Offset", LEFT), ("Length", LEFT), ("Type", LEFT)], rows)


# -- status / children / locks / image-meta / trash -------------------------------------------------------

def status_plain(watchers: Sequence[Mapping[str, Any]]) -> str:
    if not watchers:
        return "Watchers: none\n"
    return "Watchers:\n" + "".join(f"\twatcher={w['address']} client.{w['client']} cookie={w['cookie']}\n"
                                   for w in watchers)


def children_plain(children: Sequence[Mapping[str, Any]]) -> str:
    out = []
    for c in children:
        ns = f"{c['pool_namespace']}/" if c.get("pool_namespace") else ""
        trash = f" (trash {c['id']})" if c.get("trash") else ""
        out.append(f"{c['pool']}/{ns}{c['image']}{trash}\n")
    return "".join(out)


def locks_plain(lockers: Sequence[Mapping[str, str]], exclusive: bool, tag: str) -> str:
    if not lockers:
        return ""
    one = len(lockers) == 1
    head = (f"There {'is' if one else 'are'} {len(lockers)} {'exclusive' if exclusive else 'shared'}"
            f" lock{'' if one else 's'} on this image.\n")
    if not exclusive:
        head += f"Lock tag: {tag}\n"
    return head + table([("Locker", LEFT), ("ID", LEFT), ("Address", LEFT)],
                        [[lk["locker"], lk["id"], lk["address"]] for lk in lockers])


def metadata_plain(pairs: Sequence[tuple[str, str]]) -> str:
    if not pairs:
        return "There are 0 metadata on this image.\n"
    one = len(pairs) == 1
    return (f"There {'is' if one else 'are'} {len(pairs)} {'metadatum' if one else 'metadata'} on this image:\n\n"
            + table([("Key", LEFT), ("Value", LEFT)], [list(p) for p in pairs]))


def trash_status(deferment_end: float, now: float) -> str:
    stamp = ctime(deferment_end)
    return f"protected until {stamp}" if now < deferment_end else f"expired at {stamp}"


def trash_plain(entries: Sequence[Mapping[str, Any]], long: bool) -> str:
    if not long:
        return "".join(f"{e['id']} {e['name']}\n" for e in entries)
    if not entries:
        return ""
    rows = []
    for e in entries:
        p = e.get("parent")
        rows.append([e["id"], e["name"], e["source"], e["deleted_at"], e["status"],
                     parent_spec(p["pool"], p["pool_namespace"], p["image"], p["snapshot"]) if p else ""])
    return table([(h, LEFT) for h in ("ID", "NAME", "SOURCE", "DELETED_AT", "STATUS", "PARENT")], rows)


# -- bench --------------------------------------------------------------------------------------------------

BENCH_HEADER = "  SEC       OPS   OPS/SEC   BYTES/SEC\n"


def bench_banner(io_type: str, io_size: int, threads: int, total: int, rand: bool, mix_read: int) -> str:
    kind = "readwrite" if io_type in ("readwrite", "rw") else io_type
    mix = f" read:write={mix_read}:{100 - mix_read}" if kind == "readwrite" else ""
    return (f"bench  type {kind}{mix} io_size {io_size} io_threads {threads} bytes {total}"
            f" pattern {'random' if rand else 'sequential'}\n")


def bench_line(sec: int, ops: int, ops_per_sec: float, bytes_per_sec: float) -> str:
    return f"{sec:>5}  {ops:>8}  {cfloat(ops_per_sec):>8}  {byte_u(int(bytes_per_sec)) + '/s':>10}\n"


def bench_summary(elapsed: float, ops: int, io_bytes: int, io_size: int, read_ops: int | None) -> str:
    """The closing lines; the read/write split only for a readwrite run (read_ops given)."""
    span = max(elapsed, 1e-9)
    text = (f"elapsed: {int(elapsed)}   ops: {ops}   ops/sec: {cfloat(ops / span)}"
            f"   bytes/sec: {byte_u(int(io_bytes / span))}/s\n")
    if read_ops is not None:
        write_ops = ops - read_ops
        text += (f"read_ops: {read_ops}   read_ops/sec: {cfloat(read_ops / span)}"
                 f"   read_bytes/sec: {byte_u(int(read_ops * io_size / span))}/s\n"
                 f"write_ops: {write_ops}   write_ops/sec: {cfloat(write_ops / span)}"
                 f"   write_bytes/sec: {byte_u(int(write_ops * io_size / span))}/s\n")
    return text

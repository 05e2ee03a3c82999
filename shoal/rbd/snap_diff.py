"""What changed in one object between two snapshots, from its `list_snaps` answer (sans-IO).

A port of the rule librados' `calc_snap_set_diff` applies (ceph:src/librados/snap_set_diff.cc),
written against the shape of our `list_snaps` op: clones ascending, each with the snaps it
serves (ascending), its size and its overlap with the next newer version; the head has
id HEAD and starts serving right after the SnapSet's seq. Also the interval arithmetic
the diff needs (sorted, disjoint (offset, length) runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CEPH_NOSNAP = (1 << 64) - 2
WIRE_HEAD = -2  # how list_snaps names the head

Extents = list[tuple[int, int]]


def normalize(extents: list[tuple[int, int]]) -> Extents:
    """Sorted, merged, without empty runs."""
    out: Extents = []
    for off, length in sorted(e for e in extents if e[1] > 0):
        if out and out[-1][0] + out[-1][1] >= off:
            last_off, last_len = out[-1]
            out[-1] = (last_off, max(last_off + last_len, off + length) - last_off)
        else:
            out.append((off, length))
    return out


def subtract(a: Extents, b: Extents) -> Extents:
    out: Extents = []
    b = normalize(b)
    for off, length in normalize(a):
        pos, end = off, off + length
        for boff, blen in b:
            bend = boff + blen
            if bend <= pos or boff >= end:
                continue
            if boff > pos:
                out.append((pos, boff - pos))
            pos = max(pos, bend)
            if pos >= end:
                break
        if pos < end:
            out.append((pos, end - pos))
    return out


def intersect(a: Extents, b: Extents) -> Extents:
    out: Extents = []
    b = normalize(b)
    for off, length in normalize(a):
        end = off + length
        for boff, blen in b:
            lo, hi = max(off, boff), min(end, boff + blen)
            if lo < hi:
                out.append((lo, hi - lo))
    return normalize(out)


@dataclass(frozen=True)
class CloneInfo:
    id: int  # CEPH_NOSNAP for the head
    snaps: list[int]
    size: int
    overlap: Extents


@dataclass(frozen=True)
class SnapSetInfo:
    seq: int
    clones: list[CloneInfo]

    @classmethod
    def from_wire(cls, out: dict[str, Any]) -> SnapSetInfo:
        clones = []
        for c in out.get("clones", []):
            cid = int(c["id"])
            clones.append(CloneInfo(CEPH_NOSNAP if cid == WIRE_HEAD else cid, sorted(int(s) for s in c["snaps"]),
                                    int(c["size"]), [(int(o), int(n)) for o, n in c.get("overlap", [])]))
        clones.sort(key=lambda c: c.id)
        return cls(int(out.get("seq", 0)), clones)


@dataclass(frozen=True)
class ObjectDiff:
    extents: Extents  # object byte ranges that differ between start and end
    end_size: int
    end_exists: bool
    whole_object: bool  # a clone lost its snaps: the caller must treat the whole object as changed


def calc_snap_set_diff(ss: SnapSetInfo, start: int, end: int) -> ObjectDiff:
    """The object ranges that differ between snap `start` (0 = the beginning) and `end`
    (a snap id or CEPH_NOSNAP), whether the object exists at `end`, and its size there."""
    diff: Extents = []
    saw_start = False
    start_size = 0
    end_size = 0
    clones = ss.clones
    i = 0
    while i < len(clones):
        c = clones[i]
        if c.id == CEPH_NOSNAP:
            a, b = ss.seq + 1, CEPH_NOSNAP  # the head serves every snap after the seq
        elif not c.snaps:
            return ObjectDiff([], 0, False, True)
        else:
            a, b = c.snaps[0], c.snaps[-1]
        if b < start:
            i += 1
            continue
        if not saw_start:
            if start < a:  # the object did not exist at start
                if c.size:
                    diff.append((0, c.size))
                start_size = 0
            else:
                start_size = c.size
            saw_start = True
        end_size = c.size
        if end < a:  # the object does not exist at end
            return ObjectDiff([(0, start_size)] if start_size else [], end_size, False, False)
        if end <= b:
            return ObjectDiff(normalize(diff), end_size, True, False)
        # Bytes that differ between this version and the next newer one.
        max_size = c.size
        if i + 1 < len(clones):
            max_size = max(max_size, clones[i + 1].size)
        diff.extend(subtract([(0, max_size)] if max_size else [], c.overlap))
        i += 1
    return ObjectDiff(normalize(diff), end_size, False, False)

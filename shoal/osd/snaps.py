"""Self-managed snapshots of one object: its SnapSet and the rules that use it (pure).

Decision record 0005 has the design; Ceph's rules (make_writeable, find_object_context,
snap trimming) are summarised in the shared reference. The SnapSet lives in the omap
of the object's *snapdir* (`ObjectId(name, nspace, SNAPDIR)`); clones are
`ObjectId(name, nspace, clone_id)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgpack

from shoal.errors import InvalidArgument
from shoal.osd.store.base import HEAD, ObjectId

SNAPDIR = -1
SNAPSET_KEY = "snapset"
OVERLAP_END = 1 << 62  # "to the end of the object" in extent arithmetic

Extents = list[tuple[int, int]]  # sorted, disjoint, non-empty (offset, length) runs


@dataclass
class Clone:
    id: int
    snaps: list[int]  # ascending; the snapshots this clone serves
    size: int
    overlap: Extents  # bytes still identical in the next newer version

    def to_wire(self) -> list[Any]:
        return [self.id, self.snaps, self.size, [list(e) for e in self.overlap]]

    @classmethod
    def from_wire(cls, w: list[Any]) -> Clone:
        return cls(int(w[0]), [int(s) for s in w[1]], int(w[2]), [(int(o), int(n)) for o, n in w[3]])


@dataclass
class SnapSet:
    seq: int = 0
    clones: list[Clone] = field(default_factory=list)  # ascending by id

    def encode(self) -> bytes:
        return msgpack.packb([1, self.seq, [c.to_wire() for c in self.clones]], use_bin_type=True)

    @classmethod
    def decode(cls, raw: bytes) -> SnapSet:
        try:
            version, seq, clones = msgpack.unpackb(raw, raw=False)
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise InvalidArgument(f"undecodable snapset: {exc}") from exc
        if version != 1:
            raise InvalidArgument(f"snapset version {version} is not supported")
        return cls(int(seq), [Clone.from_wire(c) for c in clones])

    def copy(self) -> SnapSet:
        return SnapSet(self.seq, [Clone(c.id, list(c.snaps), c.size, list(c.overlap)) for c in self.clones])

    def to_reply(self, head_size: int | None) -> dict[str, Any]:
        """The `list_snaps` answer: every clone, then the head (id HEAD) if it exists."""
        clones: list[dict[str, Any]] = [
            {"id": c.id, "snaps": c.snaps, "size": c.size, "overlap": [list(e) for e in c.overlap]}
            for c in self.clones]
        if head_size is not None:
            clones.append({"id": HEAD, "snaps": [], "size": head_size, "overlap": []})
        return {"seq": self.seq, "clones": clones}


def snapdir_of(oid: ObjectId) -> ObjectId:
    return ObjectId(oid.name, oid.nspace, SNAPDIR)


def clone_oid(oid: ObjectId, clone_id: int) -> ObjectId:
    return ObjectId(oid.name, oid.nspace, clone_id)


def parse_snapc(raw: Any) -> tuple[int, list[int]]:
    """`[seq, [snaps descending]]` from an OSD_OP, checked as Ceph's SnapContext::is_valid."""
    if raw is None:
        return 0, []
    try:
        seq, snaps = int(raw[0]), [int(s) for s in raw[1]]
    except (TypeError, ValueError, IndexError) as exc:
        raise InvalidArgument(f"malformed snap context {raw!r}") from exc
    if seq < 0 or any(s <= 0 or s > seq for s in snaps) or any(a <= b for a, b in zip(snaps, snaps[1:], strict=False)):
        raise InvalidArgument(f"invalid snap context seq={seq} snaps={snaps}")
    return seq, snaps


def resolve_read(ss: SnapSet | None, head_exists: bool, snapid: int) -> int | None:
    """Which version serves a read at `snapid`: HEAD, a clone id, or None (ENOENT)."""
    if ss is None or snapid > ss.seq:
        return HEAD if head_exists else None
    for clone in ss.clones:
        if clone.id >= snapid:
            return clone.id if clone.snaps and clone.snaps[0] <= snapid else None
    return None


def clone_for_write(ss: SnapSet, head_exists: bool, head_size: int, seq: int, snaps: list[int],
                    removed: frozenset[int]) -> Clone | None:
    """make_writeable: the clone to take of the head before this write, if one is due.

    Updates `ss.seq`; `seq`/`snaps` are the write's SnapContext (already upgraded to the
    SnapSet's when the writer is stale)."""
    clone = None
    if head_exists and snaps and snaps[0] > ss.seq:
        covered = sorted(s for s in snaps if s > ss.seq and s not in removed)
        if covered:
            clone = Clone(seq, covered, head_size, [(0, head_size)] if head_size else [])
            ss.clones.append(clone)
    ss.seq = max(ss.seq, seq)
    return clone


def subtract(extents: Extents, off: int, length: int) -> Extents:
    """`extents` minus [off, off+length)."""
    end = off + length
    out: Extents = []
    for o, n in extents:
        e = o + n
        if e <= off or o >= end:
            out.append((o, n))
            continue
        if o < off:
            out.append((o, off - o))
        if e > end:
            out.append((end, e - end))
    return out


def intersect(a: Extents, b: Extents) -> Extents:
    out: Extents = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo = max(a[i][0], b[j][0])
        hi = min(a[i][0] + a[i][1], b[j][0] + b[j][1])
        if lo < hi:
            out.append((lo, hi - lo))
        if a[i][0] + a[i][1] < b[j][0] + b[j][1]:
            i += 1
        else:
            j += 1
    return out


def trim(ss: SnapSet, removed: frozenset[int]) -> tuple[list[int], bool]:
    """Drops removed snap ids from `ss`; returns (clone ids to delete, whether ss changed).

    A clone left serving no snapshot goes; the previous clone's overlap (which was
    relative to the deleted one) becomes its intersection with the deleted clone's."""
    doomed: list[int] = []
    changed = False
    kept: list[Clone] = []
    for clone in ss.clones:
        snaps = [s for s in clone.snaps if s not in removed]
        if snaps != clone.snaps:
            changed = True
            clone.snaps = snaps
        if snaps:
            kept.append(clone)
            continue
        doomed.append(clone.id)
        if kept:
            kept[-1].overlap = intersect(kept[-1].overlap, clone.overlap)
    ss.clones = kept
    return doomed, changed

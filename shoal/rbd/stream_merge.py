"""`rbd merge-diff`: combine two consecutive v1 diffs (A→B then B→C) into one A→C diff.

Behaviour pinned by img1/img2-merged-s2.diff from Ceph 16: the output takes the first
diff's from-snap and the second's to-snap and size; the second diff's extents win, the
first's are split around them (never coalesced), everything comes out in offset order,
and growth from the first size to the second becomes a `z` record of the first layer.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from shoal.errors import InvalidArgument
from shoal.rbd.stream_diff import DiffReader, DiffWriter, encode_record
from shoal.rbd.stream_records import DiffRecord, FromSnap, Size, ToSnap, Write, Zero

_Extent = tuple[int, int, bytes | None]  # offset, length, data (None for a zero extent)


def _read(chunks: Iterable[bytes], which: str) -> tuple[str | None, str | None, int, list[_Extent]]:
    reader = DiffReader(1)
    recs: list[DiffRecord] = []
    for chunk in chunks:
        recs.extend(reader.feed(chunk))
    reader.close()
    from_snap = to_snap = None
    size: int | None = None
    extents: list[_Extent] = []
    for r in recs:
        match r:
            case FromSnap(name):
                from_snap = name
            case ToSnap(name):
                to_snap = name
            case Size(s):
                size = s
            case Write(off, data):
                extents.append((off, len(data), data))
            case Zero(off, length):
                extents.append((off, length, None))
    if size is None:
        raise InvalidArgument(f"{which} diff has no image size record")
    return from_snap, to_snap, size, extents


def _clip(ext: _Extent, start: int, stop: int) -> _Extent | None:
    off, length, data = ext
    lo, hi = max(off, start), min(off + length, stop)
    if lo >= hi:
        return None
    return lo, hi - lo, (data[lo - off:hi - off] if data is not None else None)


def _subtract(ext: _Extent, covered: list[tuple[int, int]], starts: list[int]) -> list[_Extent]:
    """The parts of `ext` not covered by the sorted, disjoint `covered` intervals."""
    off, length, _ = ext
    end = off + length
    pieces: list[_Extent] = []
    cur = off
    i = max(bisect.bisect_right(starts, off) - 1, 0)
    while i < len(covered) and covered[i][0] < end:
        c_lo, c_hi = covered[i]
        if c_hi > cur:
            if c_lo > cur:
                piece = _clip(ext, cur, c_lo)
                if piece:
                    pieces.append(piece)
            cur = max(cur, c_hi)
        i += 1
    if cur < end:
        piece = _clip(ext, cur, end)
        if piece:
            pieces.append(piece)
    return pieces


def merge_diffs(first: Iterable[bytes], second: Iterable[bytes]) -> bytes:
    """Merge two v1 diff streams (each given as an iterable of byte chunks) into one v1 diff."""
    f_from, f_to, f_size, f_ext = _read(first, "first")
    s_from, s_to, s_size, s_ext = _read(second, "second")
    if f_to != s_from:  # as Ceph: the chain must meet exactly, even at "no snapshot"
        raise InvalidArgument(f"the first diff's end snapshot {f_to!r} is not the second's start {s_from!r}")
    lower = [c for e in f_ext if (c := _clip(e, 0, s_size))]
    if s_size > f_size:
        lower.append((f_size, s_size - f_size, None))  # the growth reads back as zeros
    covered: list[tuple[int, int]] = []
    for off, length, _ in sorted(s_ext):
        if covered and off <= covered[-1][1]:
            covered[-1] = (covered[-1][0], max(covered[-1][1], off + length))
        elif length:
            covered.append((off, off + length))
    starts = [c[0] for c in covered]
    merged = [p for e in lower for p in _subtract(e, covered, starts)] + s_ext
    merged.sort(key=lambda e: e[0])
    w = DiffWriter(1, f_from, s_to, None, s_size)
    out = [w.header()]
    for off, length, data in merged:
        out.append(encode_record(Write(off, data) if data is not None else Zero(off, length), 1))
    out.append(w.end())
    return b"".join(out)

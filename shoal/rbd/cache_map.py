"""The write-back cache's bookkeeping, sans-IO: which image bytes are dirty, which are being
written back, and what a read must overlay. cache.py drives it with real I/O.

Image byte ranges, not objects: an extent is (offset, data) in image space, so the
writeback goes through the ordinary striped write path (copy-up, object map, exclusive
lock) and a read overlays image ranges after the striped read.

Two sets of extents, each sorted and non-overlapping within itself:

* `dirty`: acknowledged to the writer, not yet sent. A newer write replaces the bytes it
  covers (the older extent is trimmed or split, never copied: pieces are memoryview
  slices of the writers' buffers).
* `inflight`: sent to the cluster, not yet acknowledged. A dirty extent overlapping an
  in-flight one is not taken until that one finishes, so two writebacks of the same bytes
  are never in flight together and the cluster cannot apply them out of order.

A read sees cluster bytes, then in-flight bytes, then dirty bytes (newest last).

Every byte carries the flush generation it was written in; `flush()` bumps the
generation and waits until no byte of an older or equal generation is pending, so a
flush waits for the writes issued before it and not for the ones that follow.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

Buffer = bytes | memoryview

MAX_WRITEBACK = 4 << 20  # adjacent dirty extents are joined into one writeback up to this size


@dataclass(slots=True)
class Extent:
    off: int
    data: memoryview
    gen: int
    born: float  # when these bytes became dirty (the age limit counts from here)

    @property
    def end(self) -> int:
        return self.off + len(self.data)

    def slice(self, start: int, end: int) -> Extent:
        """The part [start, end) (image offsets) of this extent, sharing its buffer."""
        return Extent(start, self.data[start - self.off:end - self.off], self.gen, self.born)


class ExtentMap:
    """Sorted, non-overlapping extents; overwrites trim what they cover."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._exts: list[Extent] = []

    def __iter__(self) -> Iterator[Extent]:
        return iter(list(self._exts))  # a copy: callers may change the map while iterating

    def __len__(self) -> int:
        return len(self._exts)

    def _first_overlap(self, off: int) -> int:
        """Index of the first extent that ends after `off`."""
        i = bisect.bisect_right(self._starts, off) - 1
        if i < 0 or self._exts[i].end <= off:
            i += 1
        return i

    def overlapping(self, off: int, end: int) -> list[Extent]:
        out = []
        i = self._first_overlap(off)
        while i < len(self._exts) and self._exts[i].off < end:
            out.append(self._exts[i])
            i += 1
        return out

    def cut(self, off: int, end: int) -> list[Extent]:
        """Remove bytes [off, end); returns the removed pieces (for accounting)."""
        i = self._first_overlap(off)
        j = i
        removed: list[Extent] = []
        keep: list[Extent] = []
        while j < len(self._exts) and self._exts[j].off < end:
            e = self._exts[j]
            if e.off < off:
                keep.append(e.slice(e.off, off))
            if e.end > end:
                keep.append(e.slice(end, e.end))
            removed.append(e.slice(max(e.off, off), min(e.end, end)))
            j += 1
        self._exts[i:j] = keep
        self._starts[i:j] = [e.off for e in keep]
        return removed

    def insert(self, ext: Extent) -> list[Extent]:
        """Put `ext` in, replacing whatever it covers; returns the replaced pieces."""
        removed = self.cut(ext.off, ext.end)
        i = bisect.bisect_left(self._starts, ext.off)
        self._exts.insert(i, ext)
        self._starts.insert(i, ext.off)
        return removed

    def gaps(self, off: int, end: int) -> list[tuple[int, int]]:
        """The sub-ranges of [off, end) no extent covers."""
        out, pos = [], off
        for e in self.overlapping(off, end):
            if e.off > pos:
                out.append((pos, e.off))
            pos = max(pos, e.end)
        if pos < end:
            out.append((pos, end))
        return out


@dataclass(slots=True)
class Writeback:
    """One write sent to the cluster: adjacent dirty extents joined."""

    off: int
    data: Buffer
    pieces: list[tuple[int, int]] = field(default_factory=list)  # (gen, bytes) for the flush accounting

    @property
    def end(self) -> int:
        return self.off + len(self.data)


class CacheState:
    """Dirty and in-flight image bytes of one open image (see the module docstring)."""

    def __init__(self) -> None:
        self.dirty = ExtentMap()
        self.inflight = ExtentMap()  # Extent.data holds the Writeback's bytes; gen unused
        self._wbs: dict[int, Writeback] = {}  # in-flight writebacks by offset
        self.gen = 0
        self.dirty_bytes = 0
        self.inflight_bytes = 0
        self._pending: Counter[int] = Counter()  # gen -> dirty + in-flight bytes

    # -- writers -------------------------------------------------------------------------------
    def write(self, off: int, data: Buffer, now: float) -> None:
        """Record acknowledged bytes; they replace older dirty bytes of the range."""
        if not len(data):
            return
        ext = Extent(off, memoryview(data).cast("B"), self.gen, now)
        for old in self.dirty.insert(ext):
            self._drop(old.gen, len(old.data))
            self.dirty_bytes -= len(old.data)
        self.dirty_bytes += len(ext.data)
        self._pending[ext.gen] += len(ext.data)

    def discard(self, off: int, end: int) -> None:
        """Forget dirty bytes of [off, end) (a range that no longer exists, e.g. past a shrink)."""
        for old in self.dirty.cut(off, end):
            self._drop(old.gen, len(old.data))
            self.dirty_bytes -= len(old.data)

    def new_flush(self) -> int:
        """Start a flush: returns the generation it waits for; later writes are newer."""
        g = self.gen
        self.gen += 1
        return g

    # -- writeback -----------------------------------------------------------------------------
    def take(self, now: float, flush_gen: int, target: int, max_age: float, limit: int) -> list[Writeback]:
        """Move dirty extents to in-flight and return them as writebacks (at most `limit`).

        Taken: bytes a flush waits for (gen <= flush_gen), bytes older than `max_age`, and
        while dirty bytes exceed `target` the oldest of the rest. Skipped: extents overlapping
        an in-flight writeback (they go once it is done)."""
        chosen: list[Extent] = []
        over = self.dirty_bytes - target
        candidates = [e for e in self.dirty if not self.inflight.overlapping(e.off, e.end)]
        if over > 0:
            rest = sorted((e for e in candidates if not (e.gen <= flush_gen or now - e.born >= max_age)),
                          key=lambda e: e.born)
            extra: set[int] = set()
            for e in rest:
                if over <= 0:
                    break
                extra.add(id(e))
                over -= len(e.data)
        else:
            extra = set()
        for e in candidates:
            if e.gen <= flush_gen or now - e.born >= max_age or id(e) in extra:
                chosen.append(e)
        return self._start(self._runs(chosen), limit)

    def _runs(self, exts: list[Extent]) -> list[list[Extent]]:
        """Group offset-adjacent extents (already in offset order) into joined writes."""
        runs: list[list[Extent]] = []
        size = 0
        for e in exts:
            if runs and runs[-1][-1].end == e.off and size + len(e.data) <= MAX_WRITEBACK:
                runs[-1].append(e)
                size += len(e.data)
            else:
                runs.append([e])
                size = len(e.data)
        return runs

    def _start(self, runs: list[list[Extent]], limit: int) -> list[Writeback]:
        out = []
        for run in runs[:max(0, limit)]:
            off, end = run[0].off, run[-1].end
            self.dirty.cut(off, end)
            # One piece is sent as is; several are joined (one copy, one op instead of many).
            data: Buffer = run[0].data if len(run) == 1 else b"".join(e.data for e in run)
            wb = Writeback(off, data, [(e.gen, len(e.data)) for e in run])
            size = end - off
            self.dirty_bytes -= size
            self.inflight_bytes += size
            self.inflight.insert(Extent(off, memoryview(data).cast("B"), -1, 0.0))
            self._wbs[off] = wb
            out.append(wb)
        return out

    def complete(self, wb: Writeback) -> None:
        """The cluster acknowledged `wb`."""
        self._finish(wb)
        for gen, n in wb.pieces:
            self._drop(gen, n)

    def fail(self, wb: Writeback, now: float) -> None:
        """`wb` failed: its bytes become dirty again where no newer write replaced them."""
        self._finish(wb)
        gen = min(g for g, _ in wb.pieces)
        for gen_i, n in wb.pieces:
            self._drop(gen_i, n)
        view = memoryview(wb.data).cast("B")
        for start, end in self.dirty.gaps(wb.off, wb.end):
            ext = Extent(start, view[start - wb.off:end - wb.off], gen, now)
            self.dirty.insert(ext)
            self.dirty_bytes += end - start
            self._pending[gen] += end - start

    def _finish(self, wb: Writeback) -> None:
        assert self._wbs.pop(wb.off) is wb, "writeback finished twice"
        self.inflight.cut(wb.off, wb.end)
        self.inflight_bytes -= len(wb.data)

    def _drop(self, gen: int, n: int) -> None:
        left = self._pending[gen] - n
        assert left >= 0, "cache accounting went negative"
        if left:
            self._pending[gen] = left
        else:
            del self._pending[gen]

    # -- queries -------------------------------------------------------------------------------
    def pending_upto(self, gen: int) -> bool:
        """Whether bytes written in generation `gen` or earlier are still dirty or in flight."""
        return any(g <= gen for g in self._pending)

    @property
    def empty(self) -> bool:
        return not self._pending and not self.inflight_bytes

    def oldest(self) -> float | None:
        """When the oldest dirty byte was written (None: nothing dirty)."""
        return min((e.born for e in self.dirty), default=None)

    def overlay(self, off: int, end: int) -> list[tuple[int, memoryview]]:
        """(image offset, bytes) to lay over a cluster read of [off, end), in order."""
        out = []
        for m in (self.inflight, self.dirty):
            for e in m.overlapping(off, end):
                s, t = max(e.off, off), min(e.end, end)
                out.append((s, e.data[s - e.off:t - e.off]))
        return out

    def covered(self, off: int, end: int) -> bool:
        """Whether dirty bytes cover all of [off, end) (a read needs no cluster round trip)."""
        return not self.dirty.gaps(off, end)

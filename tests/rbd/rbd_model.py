"""An in-memory model of RBD images for the model-based test (pure Python, no cluster).

Each image is a bytearray (the head) plus frozen snapshots. Ceph's content semantics
are "ideal": a clone reads its parent snapshot within the overlap (min(parent snap size,
child size at clone time), clamped by every shrink) and zeros past it, so a clone can be
modelled as a copy of the parent snapshot's bytes followed by the child's own changes;
snapshots, rollback, copy-up, flatten and trim-with-copyup never change what a reader
sees (librbd's TrimRequest copies objects up before a shrink when a clone has snapshots;
rollback rolls every object back). The only non-obvious rule is discard, which librbd
prunes (`rbd_skip_partial_discard = true`, `rbd_discard_granularity_bytes = 64 KiB`,
`librbd/io/ImageRequest.cc` ImageDiscardRequest::prune_object_extents):

    g = min(64 KiB, object size)
    per object extent [off, next):  if g < object size or next < object size:
        off = roundup(off, g); next = rounddown(next, g); drop it when off >= next
    (an extent that reaches the object's end with g == object size is kept whole)

`discard_ranges` computes the image ranges that end up zeroed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

KiB, MiB = 1024, 1024 * 1024

# librbd feature bits (python-rbd's RBD_FEATURE_*), repeated here so the model has no imports.
LAYERING, STRIPINGV2, EXCLUSIVE_LOCK, OBJECT_MAP, FAST_DIFF, DEEP_FLATTEN = 1, 2, 4, 8, 16, 32
DEFAULT_FEATURES = LAYERING | EXCLUSIVE_LOCK | OBJECT_MAP | FAST_DIFF | DEEP_FLATTEN  # 61
DISCARD_GRANULARITY = 64 * KiB


@dataclass(frozen=True)
class Layout:
    """How an image is created: order, striping (None = default) and features."""

    name: str
    order: int
    stripe_unit: int | None = None
    stripe_count: int | None = None
    features: int = DEFAULT_FEATURES
    max_objects: int = 64

    @property
    def object_size(self) -> int:
        return 1 << self.order

    @property
    def su(self) -> int:
        return self.stripe_unit or self.object_size

    @property
    def sc(self) -> int:
        return self.stripe_count or 1

    @property
    def period(self) -> int:
        """Bytes of one object set (stripe_count objects)."""
        return self.object_size * self.sc

    @property
    def max_size(self) -> int:
        return min(4 * MiB, self.object_size * self.max_objects)

    def create_kwargs(self) -> dict[str, int]:
        kw: dict[str, int] = {"order": self.order, "features": self.features}
        if self.stripe_unit is not None:
            kw["stripe_unit"] = self.stripe_unit
            kw["stripe_count"] = self.sc
        return kw

    def clone_kwargs(self) -> dict[str, int]:
        """Always explicit: a clone inherits the parent's stripe unit and count when they are not
        given (librbd CloneRequest::create_child), which need not suit the child's order."""
        return {"order": self.order, "features": self.features, "stripe_unit": self.su, "stripe_count": self.sc}

    # -- Striper::file_to_extents and back ------------------------------------------------
    def to_object(self, image_off: int) -> tuple[int, int]:
        su, sc = self.su, self.sc
        per_obj = self.object_size // su
        blockno, in_block = divmod(image_off, su)
        stripeno, stripepos = divmod(blockno, sc)
        objsetno, stripe_in_obj = divmod(stripeno, per_obj)
        return objsetno * sc + stripepos, stripe_in_obj * su + in_block

    def to_image(self, objectno: int, obj_off: int) -> int:
        su, sc = self.su, self.sc
        per_obj = self.object_size // su
        objsetno, stripepos = divmod(objectno, sc)
        stripe_in_obj, in_block = divmod(obj_off, su)
        stripeno = objsetno * per_obj + stripe_in_obj
        return (stripeno * sc + stripepos) * su + in_block

    def object_extents(self, off: int, length: int) -> dict[int, tuple[int, int]]:
        """objectno -> (object offset, length) covered by image range [off, off+length)."""
        out: dict[int, tuple[int, int]] = {}
        cur, end = off, off + length
        while cur < end:
            objectno, obj_off = self.to_object(cur)
            n = min(self.su - cur % self.su, end - cur)
            if objectno in out:
                start, ln = out[objectno]
                assert start + ln == obj_off, "image range maps to a non-contiguous object extent"
                out[objectno] = (start, ln + n)
            else:
                out[objectno] = (obj_off, n)
            cur += n
        return out

    def object_range_to_image(self, objectno: int, obj_off: int, length: int) -> list[tuple[int, int]]:
        """Image ranges (merged, ascending) holding object bytes [obj_off, obj_off+length)."""
        ranges: list[tuple[int, int]] = []
        cur, end = obj_off, obj_off + length
        while cur < end:
            n = min(self.su - cur % self.su, end - cur)
            img = self.to_image(objectno, cur)
            if ranges and ranges[-1][0] + ranges[-1][1] == img:
                ranges[-1] = (ranges[-1][0], ranges[-1][1] + n)
            else:
                ranges.append((img, n))
            cur += n
        return sorted(ranges)

    def discard_ranges(self, off: int, length: int) -> list[tuple[int, int]]:
        """The image ranges python-rbd's Image.discard(off, length) zeroes on Ceph (see module doc)."""
        os_ = self.object_size
        g = min(DISCARD_GRANULARITY, os_)
        out: list[tuple[int, int]] = []
        for objectno, (o_off, o_len) in sorted(self.object_extents(off, length).items()):
            start, nxt = o_off, o_off + o_len
            if g < os_ or nxt < os_:
                start = -(-start // g) * g
                nxt = nxt // g * g
                if start >= nxt:
                    continue
            out.extend(self.object_range_to_image(objectno, start, nxt - start))
        return sorted(out)


LAYOUTS: tuple[Layout, ...] = (
    Layout("o12", 12),                                                        # 4 KiB objects
    Layout("o14-su4k-sc2", 14, 4 * KiB, 2, DEFAULT_FEATURES | STRIPINGV2),
    Layout("o16-su16k-sc4", 16, 16 * KiB, 4, DEFAULT_FEATURES | STRIPINGV2),
    Layout("o13-su2k-sc3", 13, 2 * KiB, 3, LAYERING | STRIPINGV2 | DEEP_FLATTEN),  # no lock, no object map
    Layout("o15-plain", 15, features=LAYERING | DEEP_FLATTEN),
    Layout("o17", 17, max_objects=32),                                        # granularity 64K < object size
)
LAYOUT_BY_NAME = {lay.name: lay for lay in LAYOUTS}


def pattern(seed: int, length: int, kind: str = "random") -> bytes:
    if kind == "zeros":
        return bytes(length)
    if kind == "byte":
        return bytes([seed % 255 + 1]) * length
    return random.Random(seed).randbytes(length)


@dataclass(eq=False)  # compared by identity
class SnapModel:
    data: bytes
    protected: bool = False
    children: set[str] = field(default_factory=set)  # clones that reference this snapshot


@dataclass
class ImageModel:
    name: str
    layout: Layout
    data: bytearray
    snaps: dict[str, SnapModel] = field(default_factory=dict)   # user namespace, creation order
    trashed: list[SnapModel] = field(default_factory=list)      # removed while v2 children remained
    parent: tuple[str, str] | None = None                       # (image, snap name) while attached
    parent_snap: SnapModel | None = None
    clone_format: int | None = None

    @property
    def size(self) -> int:
        return len(self.data)

    def write(self, off: int, payload: bytes) -> None:
        assert off + len(payload) <= self.size
        self.data[off:off + len(payload)] = payload

    def zero(self, off: int, length: int) -> None:
        self.data[off:off + length] = bytes(length)

    def discard(self, off: int, length: int) -> list[tuple[int, int]]:
        ranges = self.layout.discard_ranges(off, length)
        for start, n in ranges:
            self.zero(start, n)
        return ranges

    def resize(self, new_size: int) -> None:
        if new_size < self.size:
            del self.data[new_size:]
        else:
            self.data.extend(bytes(new_size - self.size))


def first_difference(expected: bytes, got: bytes) -> str:
    """A short description of where two byte strings differ (for assertion messages)."""
    if len(expected) != len(got):
        head = f"length {len(got)} != expected {len(expected)}; "
    else:
        head = ""
    for i, (a, b) in enumerate(zip(expected, got, strict=False)):
        if a != b:
            j = i
            while j < min(len(expected), len(got)) and expected[j] != got[j]:
                j += 1
            return (f"{head}first difference at byte {i} (differs for {j - i} bytes): "
                    f"expected {expected[i:i + 16].hex()} got {got[i:i + 16].hex()}")
    return head + "common prefix equal"

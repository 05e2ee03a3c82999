"""RBD striping: image offsets <-> (object number, object offset), sans-IO.

The mapping follows Ceph's `Striper` (`ceph:src/osdc/Striper.cc`), see ceph-facts §2:
an image is cut into stripe units of `su` bytes, dealt round-robin over `sc` objects
(one "object set"); once each object of the set holds `os` bytes the next set starts.

    blockno     = off // su
    stripeno    = blockno // sc
    stripepos   = blockno % sc
    objectsetno = stripeno // (os // su)
    objectno    = objectsetno * sc + stripepos
    obj_offset  = (stripeno % (os // su)) * su + off % su

With the default layout (su = os, sc = 1) this reduces to `off // os`, `off % os`.
Nothing here does I/O; the image layer turns these extents into RADOS operations.
"""

from __future__ import annotations

import errno as _errno
from dataclasses import dataclass, field

from shoal.errors import InvalidArgument

# librbd's create-time limits (`librbd/image/CreateRequest.cc validate_order`): an
# order outside [12, 25] fails with EDOM ("order must be in the range [12, 25]").
MIN_ORDER = 12
MAX_ORDER = 25
DEFAULT_ORDER = 22  # RBD_DEFAULT_OBJ_ORDER, 4 MiB objects


class LayoutError(InvalidArgument, ValueError):
    """An invalid striping layout; also a ValueError so plain callers can catch it."""


@dataclass(frozen=True)
class ObjectExtent:
    """The part of one data object that an image range touches.

    `buffer_extents` says where each piece of the object range sits in the caller's
    buffer (offsets relative to the start of the image range): with stripe_count > 1
    one contiguous object range maps to several non-adjacent buffer pieces.
    """

    objectno: int
    offset: int
    length: int
    buffer_extents: list[tuple[int, int]] = field(default_factory=list)


@dataclass(frozen=True)
class Layout:
    """An image's striping layout.

    `stripe_unit=0, stripe_count=0` mean "object size" and "1", as librbd treats the
    `rbd_default_stripe_unit`/`rbd_default_stripe_count` = 0 defaults; the stored
    values are always the effective ones.
    """

    order: int = DEFAULT_ORDER
    stripe_unit: int = 0
    stripe_count: int = 0

    def __post_init__(self) -> None:
        order, su, sc = self.order, self.stripe_unit, self.stripe_count
        if not isinstance(order, int) or not MIN_ORDER <= order <= MAX_ORDER:
            raise LayoutError(f"order must be in the range [{MIN_ORDER}, {MAX_ORDER}]", errno=_errno.EDOM)
        if su < 0 or sc < 0:
            raise LayoutError("stripe unit and stripe count must not be negative")
        # librbd insists on both or neither (CreateRequest validate_striping).
        if (su == 0) != (sc == 0):
            raise LayoutError("must specify both (or neither) of stripe-unit and stripe-count")
        os_ = 1 << order
        if su == 0:
            # frozen: normalise the 0/0 defaults through object.__setattr__.
            object.__setattr__(self, "stripe_unit", os_)
            object.__setattr__(self, "stripe_count", 1)
        elif su > os_ or os_ % su:
            raise LayoutError("stripe unit is not a factor of the object size")

    @classmethod
    def from_object_size(cls, object_size: int, stripe_unit: int = 0, stripe_count: int = 0) -> Layout:
        """Build a layout from an object size in bytes (must be a power of two)."""
        if object_size <= 0 or object_size & (object_size - 1):
            raise LayoutError("object size must be a power of two")
        return cls(object_size.bit_length() - 1, stripe_unit, stripe_count)

    @property
    def object_size(self) -> int:
        return 1 << self.order

    @property
    def stripes_per_object(self) -> int:
        return self.object_size // self.stripe_unit

    @property
    def period(self) -> int:
        """Bytes of image covered by one object set (`rbd export` reads in these units)."""
        return self.object_size * self.stripe_count

    @property
    def is_default(self) -> bool:
        """True when no STRIPINGV2 feature is needed (su == object size, sc == 1)."""
        return self.stripe_unit == self.object_size and self.stripe_count == 1

    # -- forward map ---------------------------------------------------------------

    def map_offset(self, offset: int) -> tuple[int, int]:
        """(objectno, obj_offset) of one image byte offset."""
        if offset < 0:
            raise LayoutError("offset must not be negative")
        su, sc = self.stripe_unit, self.stripe_count
        blockno, block_off = divmod(offset, su)
        stripeno, stripepos = divmod(blockno, sc)
        objectsetno, stripe_in_obj = divmod(stripeno, self.stripes_per_object)
        return objectsetno * sc + stripepos, stripe_in_obj * su + block_off

    def file_to_extents(self, offset: int, length: int) -> list[ObjectExtent]:
        """Split image range [offset, offset+length) into per-object extents.

        Like Ceph's Striper::file_to_extents, pieces landing in the same object are
        merged; for a single image range they are always adjacent inside the object
        (an object's stripe units are consecutive in it), so each object appears once.
        Result is in ascending object order; adjacent buffer pieces are merged too.
        """
        if offset < 0 or length < 0:
            raise LayoutError("offset and length must not be negative")
        su = self.stripe_unit
        # objectno -> [obj_offset, obj_length, buffer_extents]
        acc: dict[int, list] = {}
        pos, end = offset, offset + length
        while pos < end:
            objectno, obj_off = self.map_offset(pos)
            piece = min(end - pos, su - pos % su)  # never crosses a stripe unit
            buf_off = pos - offset
            ent = acc.get(objectno)
            if ent is None:
                acc[objectno] = [obj_off, piece, [(buf_off, piece)]]
            else:
                # Pieces of one range arrive in object order and contiguous; assert
                # it rather than silently producing overlapping extents.
                assert ent[0] + ent[1] == obj_off, "non-contiguous object pieces"
                ent[1] += piece
                bufs = ent[2]
                last_off, last_len = bufs[-1]
                if last_off + last_len == buf_off:
                    bufs[-1] = (last_off, last_len + piece)
                else:
                    bufs.append((buf_off, piece))
            pos += piece
        return [ObjectExtent(no, e[0], e[1], e[2]) for no, e in sorted(acc.items())]

    def objects_in_range(self, offset: int, length: int) -> list[int]:
        """Sorted object numbers that image range [offset, offset+length) touches."""
        if offset < 0 or length < 0:
            raise LayoutError("offset and length must not be negative")
        if length == 0:
            return []
        su, sc = self.stripe_unit, self.stripe_count
        first_block, last_block = offset // su, (offset + length - 1) // su
        objs: set[int] = set()
        # Walk at most `sc` blocks per object set: after that every object of the set
        # has been seen, so jump to the next set.
        spo = self.stripes_per_object
        blockno = first_block
        while blockno <= last_block:
            stripeno, stripepos = divmod(blockno, sc)
            setno = stripeno // spo
            objs.add(setno * sc + stripepos)
            set_first_block = setno * spo * sc
            if blockno - max(first_block, set_first_block) + 1 >= sc:
                blockno = (setno + 1) * spo * sc  # whole set covered; next set
            else:
                blockno += 1
        return sorted(objs)

    def object_count(self, image_size: int) -> int:
        """Objects an image of `image_size` bytes can touch (`rbd info` "N objects").

        Ceph's Striper::get_num_objects: whole periods count `sc` objects each; a
        trailing partial period shorter than one stripe row only reaches the first
        ceil(rem / su) objects of its set.
        """
        if image_size < 0:
            raise LayoutError("size must not be negative")
        su, sc = self.stripe_unit, self.stripe_count
        period = self.period
        num_periods = -(-image_size // period)
        rem = image_size % period
        short = 0
        if 0 < rem < sc * su:
            short = sc - (-(-rem // su))
        return num_periods * sc - short

    # -- reverse map ---------------------------------------------------------------

    def object_to_file(self, objectno: int, obj_offset: int) -> int:
        """Image offset of one byte of an object."""
        if objectno < 0 or not 0 <= obj_offset < self.object_size:
            raise LayoutError("object number or object offset out of range")
        su, sc = self.stripe_unit, self.stripe_count
        setno, stripepos = divmod(objectno, sc)
        stripe_in_obj, block_off = divmod(obj_offset, su)
        stripeno = setno * self.stripes_per_object + stripe_in_obj
        return (stripeno * sc + stripepos) * su + block_off

    def extent_to_file(self, objectno: int, obj_offset: int, length: int) -> list[tuple[int, int]]:
        """Image ranges (offset, length) that object range [obj_offset, +length) holds.

        Ceph's Striper::extent_to_file emits one piece per stripe unit; we merge pieces
        that are adjacent in the image (only possible when stripe_count == 1).
        """
        if length < 0 or obj_offset < 0 or obj_offset + length > self.object_size:
            raise LayoutError("object extent out of range")
        su = self.stripe_unit
        out: list[tuple[int, int]] = []
        pos, end = obj_offset, obj_offset + length
        while pos < end:
            piece = min(end - pos, su - pos % su)
            file_off = self.object_to_file(objectno, pos)
            if out and out[-1][0] + out[-1][1] == file_off:
                out[-1] = (out[-1][0], out[-1][1] + piece)
            else:
                out.append((file_off, piece))
            pos += piece
        return out

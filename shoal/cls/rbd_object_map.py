"""cls_rbd object-map methods on `rbd_object_map.<id>[.<snapid>]`.

The map is 2 bits per object (NONEXISTENT=0, EXISTS=1, PENDING=2, EXISTS_CLEAN=3),
packed four to a byte with object i at bit shift 6 - 2*(i % 4) (most significant first).
Stored as the object's data: ENCODE_START(1, 1) { u64 object count, string packed bits }.
This is NOT byte-identical to Ceph's BitVector (which adds a CRC footer); only our OSDs
read it. In/out are msgpack; a map is exchanged as {size, bits} with the packing above.
"""

from __future__ import annotations

from shoal.cls import rbd_common as c
from shoal.cls.encoding import Decoder, enc_bytes, enc_struct, enc_u64
from shoal.cls.registry import RD, WR, MethodContext, method
from shoal.errors import InvalidArgument, RangeError

NONEXISTENT, EXISTS, PENDING, EXISTS_CLEAN = 0, 1, 2, 3

MAX_OBJECTS = 256_000_000  # cls_rbd's MAX_OBJECT_MAP_OBJECT_COUNT (UNVERIFIED value); bounds the map size


def _check_bits(size: int, bits: bytes) -> None:
    if len(bits) != (size + 3) // 4:
        raise InvalidArgument(f"{len(bits)} bytes don't hold a map of {size} objects")


def load(ctx: MethodContext) -> tuple[int, bytearray]:
    c.require_object(ctx)
    d = Decoder(ctx.read(0, 0))
    _, body = d.struct_start(max_compat=1)
    size = body.u64()
    bits = body.bytes_()
    _check_bits(size, bits)
    return size, bytearray(bits)


def save(ctx: MethodContext, size: int, bits: bytes) -> None:
    ctx.write_full(enc_struct(1, 1, enc_u64(size) + enc_bytes(bytes(bits))))


def get_state(bits: bytearray, i: int) -> int:
    return (bits[i // 4] >> (6 - 2 * (i % 4))) & 3


def set_state(bits: bytearray, i: int, state: int) -> None:
    shift = 6 - 2 * (i % 4)
    bits[i // 4] = (bits[i // 4] & ~(3 << shift)) | (state << shift)


def _whole_bytes(start: int, end: int) -> tuple[int, int]:
    """The byte range [lo, hi) lying entirely inside objects [start, end)."""
    lo, hi = (start + 3) // 4, end // 4
    return lo, max(lo, hi)


def fill(bits: bytearray, start: int, end: int, state: int) -> None:
    """Set objects [start, end) to `state`, a byte at a time where possible (maps are large)."""
    lo, hi = _whole_bytes(start, end)
    for i in list(range(start, min(end, lo * 4))) + list(range(max(start, hi * 4), end)):
        set_state(bits, i, state)
    bits[lo:hi] = bytes([state * 0x55]) * (hi - lo)


def all_in_state(bits: bytearray, start: int, end: int, state: int) -> bool:
    lo, hi = _whole_bytes(start, end)
    edges = list(range(start, min(end, lo * 4))) + list(range(max(start, hi * 4), end))
    if any(get_state(bits, i) != state for i in edges):
        return False
    return bits[lo:hi].count(state * 0x55) == hi - lo


@method("rbd", "object_map_load", RD)
def object_map_load(ctx: MethodContext, data: bytes) -> bytes:
    """In: nothing. Out: {size, bits}. ENOENT missing map; EINVAL corrupt."""
    size, bits = load(ctx)
    return c.out({"size": size, "bits": bytes(bits)})


@method("rbd", "object_map_save", RD | WR)
def object_map_save(ctx: MethodContext, data: bytes) -> bytes:
    """In: {size, bits}. Out: nil. Replaces the whole map."""
    a = c.args(data)
    size = c.get_int(a, "size", hi=MAX_OBJECTS)
    bits = c.get_bytes(a, "bits")
    _check_bits(size, bits)
    save(ctx, size, bits)
    return b""


@method("rbd", "object_map_resize", RD | WR)
def object_map_resize(ctx: MethodContext, data: bytes) -> bytes:
    """In: {object_count, default_state}. Out: nil. Creates a missing map.

    New objects get default_state; shrinking refuses with ESTALE if a dropped object is
    not in default_state (the map still says it exists) (UNVERIFIED errno).
    """
    a = c.args(data)
    count = c.get_int(a, "object_count", hi=MAX_OBJECTS)
    default = c.get_int(a, "default_state", hi=3)
    size, bits = load(ctx) if ctx.exists and ctx.size else (0, bytearray())
    if count < size and not all_in_state(bits, count, size, default):
        raise c.Stale("the object map says a dropped object still exists")
    new = bytearray((count + 3) // 4)
    keep = min(size, count)
    new[:keep // 4] = bits[:keep // 4]
    for i in range(keep // 4 * 4, keep):
        set_state(new, i, get_state(bits, i))
    fill(new, keep, count, default)
    save(ctx, count, new)
    return b""


@method("rbd", "object_map_update", RD | WR)
def object_map_update(ctx: MethodContext, data: bytes) -> bytes:
    """In: {start_object_no, end_object_no, new_object_state, current_object_state=None}. Out: nil.

    Sets [start, end) to the new state, only where the state equals current_object_state
    when that is given (EXISTS also matches EXISTS_CLEAN). ERANGE for an empty range or one
    past the map; ENOENT missing map.
    """
    a = c.args(data)
    start = c.get_int(a, "start_object_no")
    end = c.get_int(a, "end_object_no")
    new_state = c.get_int(a, "new_object_state", hi=3)
    current = a.get("current_object_state")
    if current is not None:
        current = c.get_int(a, "current_object_state", hi=3)
    size, bits = load(ctx)
    if start >= end or end > size:
        raise RangeError(f"range [{start}, {end}) outside a map of {size}")
    if current is None:
        fill(bits, start, end, new_state)
    else:
        matches = {current, EXISTS_CLEAN} if current == EXISTS else {current}
        for i in range(start, end):
            if get_state(bits, i) in matches:
                set_state(bits, i, new_state)
    save(ctx, size, bits)
    return b""


@method("rbd", "object_map_snap_add", RD | WR)
def object_map_snap_add(ctx: MethodContext, data: bytes) -> bytes:
    """In: nothing. Out: nil. After a snapshot, EXISTS becomes EXISTS_CLEAN so later writes show (fast-diff)."""
    size, bits = load(ctx)
    # In each 2-bit slot, 01 (EXISTS) -> 11 (EXISTS_CLEAN): set the high bit where low=1, high=0.
    new = bytes(b | (((b & 0x55) & ~(b >> 1) & 0x55) << 1) for b in bits)
    if new != bytes(bits):
        save(ctx, size, new)
    return b""


@method("rbd", "object_map_snap_remove", RD | WR)
def object_map_snap_remove(ctx: MethodContext, data: bytes) -> bytes:
    """In: {size, bits} (the removed snapshot's map). Out: nil.

    EXISTS_CLEAN objects become EXISTS where the snapshot's map says EXISTS or doesn't
    cover them, so the diff against the older snapshot stays right.
    """
    a = c.args(data)
    src_size = c.get_int(a, "size", hi=MAX_OBJECTS)
    src_bits = bytearray(c.get_bytes(a, "bits"))
    _check_bits(src_size, src_bits)
    size, bits = load(ctx)
    updated = False
    for i in range(size):
        if get_state(bits, i) == EXISTS_CLEAN and (i >= src_size or get_state(src_bits, i) == EXISTS):
            set_state(bits, i, EXISTS)
            updated = True
    if updated:
        save(ctx, size, bits)
    return b""

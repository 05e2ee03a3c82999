"""cls_rbd methods on `rbd_header.<id>`: create, size, features, striping, flags, timestamps, metadata.

Stored keys and their bytes follow ceph-facts §1 (u64 `size`, u8 `order`, u64 `features`,
string `object_prefix`, u64 `snap_seq`, utime_t timestamps, i64 `data_pool_id`, u64
`stripe_unit`/`stripe_count`/`flags`/`op_features`, `metadata_<key>` = the raw value bytes).
Inputs/outputs are msgpack (see rbd_common). "snap_id" arguments default to HEAD.
"""

from __future__ import annotations

import time

from shoal.cls import rbd_common as c
from shoal.cls.encoding import (
    dec_i64,
    dec_utime,
    enc_i64,
    enc_u8,
    enc_u64,
    enc_utime_float,
)
from shoal.cls.registry import RD, WR, MethodContext, method
from shoal.errors import Exists, InvalidArgument, NotFound
from shoal.rbd import features as F

MAX_METADATA_KEY = 1024  # keep keys bounded; Ceph has no documented limit here (our choice)


def load_snap(ctx: MethodContext, snap_id: int) -> dict:
    raw = c.read_key(ctx, c.snap_key(snap_id))
    if raw is None:
        raise NotFound(f"no snapshot {snap_id}")
    rec = c.unpack_record(raw)
    if not isinstance(rec, dict):
        raise InvalidArgument("corrupt snapshot record")
    return rec


def require_feature(ctx: MethodContext, bit: int) -> int:
    """ENOEXEC unless the header has `bit` (a header without features is an old image: ENOEXEC too)."""
    features = c.read_u64(ctx, "features", 0)
    if not features & bit:
        raise c.NoExec(f"image lacks feature {F.FEATURE_NAMES.get(bit, bit)}")
    return features


@method("rbd", "create", RD | WR)
def create(ctx: MethodContext, data: bytes) -> bytes:
    """In: {size, order, features, object_prefix, data_pool_id=-1}. Out: nil.

    ENOSYS for unknown feature bits; EINVAL for an empty prefix; EEXIST if the header
    already has an object_prefix; EINVAL for the OPERATIONS bit or DATA_POOL disagreeing
    with data_pool_id (-1 = none), checked in that order as cls_rbd does.
    """
    a = c.args(data)
    size = c.get_int(a, "size")
    order = c.get_int(a, "order", hi=63)
    features = c.get_int(a, "features")
    prefix = c.get_str(a, "object_prefix")
    data_pool_id = c.get_int(a, "data_pool_id", -1, lo=-(1 << 63), hi=(1 << 63) - 1)
    # Ceph's order of checks: unknown bits, empty prefix, existing header, then OPERATIONS / data pool.
    if features & ~F.ALL:
        raise c.NotImplementedFeature(f"unknown feature bits {features & ~F.ALL:#x}")
    if not prefix:
        raise InvalidArgument("empty object prefix")
    if c.read_key(ctx, "object_prefix") is not None:
        raise Exists("image header already exists")
    if features & F.OPERATIONS:
        raise InvalidArgument("the operations feature is set implicitly, never at create")
    # DATA_POOL means "data lives in another pool": -1 (no data pool) and the bit must agree.
    if bool(features & F.DATA_POOL) != (data_pool_id != -1):
        raise InvalidArgument("data pool feature and data_pool_id disagree")
    now = enc_utime_float(time.time())
    kv = {
        "size": enc_u64(size),
        "order": enc_u8(order),
        "features": enc_u64(features),
        "object_prefix": c.enc_string(prefix),
        "snap_seq": enc_u64(0),
        "create_timestamp": now,
        "access_timestamp": now,
        "modify_timestamp": now,
    }
    if features & F.DATA_POOL:
        kv["data_pool_id"] = enc_i64(data_pool_id)
    ctx.omap_set(kv)
    return b""


@method("rbd", "get_size", RD)
def get_size(ctx: MethodContext, data: bytes) -> bytes:
    """In: {snap_id=HEAD}. Out: {size, order}. ENOENT for a missing header or snapshot."""
    a = c.args(data)
    snap_id = c.get_int(a, "snap_id", c.CEPH_NOSNAP)
    order = c.read_u8(ctx, "order")
    if snap_id == c.CEPH_NOSNAP:
        size = c.read_u64(ctx, "size")
    else:
        size = int(load_snap(ctx, snap_id)["image_size"])
    return c.out({"size": size, "order": order})


@method("rbd", "set_size", RD | WR)
def set_size(ctx: MethodContext, data: bytes) -> bytes:
    """In: {size}. Out: nil. Shrinking below the parent overlap shrinks the overlap (§4)."""
    a = c.args(data)
    size = c.get_int(a, "size")
    old = c.read_u64(ctx, "size")
    parent = c.read_key(ctx, "parent") if size < old else None
    if parent is not None:
        spec = c.unpack_record(parent)
        overlap = spec.get("head_overlap")
        if overlap is not None and overlap > size:
            spec["head_overlap"] = size
            ctx.omap_set({"parent": c.pack_record(spec)})
    c.write_u64(ctx, "size", size)
    return b""


@method("rbd", "get_features", RD)
def get_features(ctx: MethodContext, data: bytes) -> bytes:
    """In: {snap_id=HEAD (ignored, as in current Ceph), read_only=False}. Out: {features, incompatible}.

    `incompatible` is what a client must understand to open the image: the
    read-incompatible set for read-only opens, else the read-write-incompatible set.
    """
    a = c.args(data)
    c.get_int(a, "snap_id", c.CEPH_NOSNAP)
    read_only = bool(a.get("read_only", False))
    features = c.read_u64(ctx, "features")
    incompatible = features & (F.INCOMPATIBLE if read_only else F.RW_INCOMPATIBLE)
    return c.out({"features": features, "incompatible": incompatible})


@method("rbd", "get_all_features", RD)
def get_all_features(ctx: MethodContext, data: bytes) -> bytes:
    """In: nothing. Out: the mask of every feature bit this class knows."""
    return c.out(F.ALL)


@method("rbd", "set_features", RD | WR)
def set_features(ctx: MethodContext, data: bytes) -> bytes:
    """In: {features, mask}. Out: nil. Only bits in `mask` change.

    EINVAL if the mask touches internal bits (operations, migrating), a bit being enabled
    is not mutable, or a bit being disabled is neither mutable nor disable-only.
    Unknown mask bits are ignored.
    """
    a = c.args(data)
    features = c.get_int(a, "features")
    mask = c.get_int(a, "mask")
    current = c.read_u64(ctx, "features")
    if mask & F.INTERNAL:
        raise InvalidArgument("internal features can't be changed")
    mask &= F.ALL  # newer clients may mask bits we don't know: ignore them, as Ceph does
    enabling = features & mask
    if enabling & ~F.MUTABLE:
        raise InvalidArgument(f"features {enabling & ~F.MUTABLE:#x} can't be enabled")
    disabling = ~features & mask & F.ALL
    if disabling & ~(F.MUTABLE | F.DISABLE_ONLY):
        raise InvalidArgument(f"features {disabling & ~(F.MUTABLE | F.DISABLE_ONLY):#x} can't be disabled")
    c.write_u64(ctx, "features", (current & ~mask) | (features & mask))
    return b""


@method("rbd", "get_object_prefix", RD)
def get_object_prefix(ctx: MethodContext, data: bytes) -> bytes:
    """In: nothing. Out: the object prefix string (e.g. "rbd_data.<id>")."""
    return c.out(c.read_string(ctx, "object_prefix"))


@method("rbd", "get_data_pool", RD)
def get_data_pool(ctx: MethodContext, data: bytes) -> bytes:
    """In: nothing. Out: the data pool id, or -1 when data lives in the header's pool (or no header, as Ceph)."""
    raw = c.read_key(ctx, "data_pool_id")
    return c.out(-1 if raw is None else dec_i64(raw))


@method("rbd", "get_stripe_unit_count", RD)
def get_stripe_unit_count(ctx: MethodContext, data: bytes) -> bytes:
    """In: nothing. Out: {stripe_unit, stripe_count}; defaults 1<<order and 1 when unset.

    ENOENT missing header; ENOEXEC without STRIPINGV2 (callers then use 1<<order x 1).
    """
    c.require_object(ctx)
    require_feature(ctx, F.STRIPINGV2)
    order = c.read_u8(ctx, "order")
    unit = c.read_u64(ctx, "stripe_unit", 1 << order)
    count = c.read_u64(ctx, "stripe_count", 1)
    return c.out({"stripe_unit": unit, "stripe_count": count})


@method("rbd", "set_stripe_unit_count", RD | WR)
def set_stripe_unit_count(ctx: MethodContext, data: bytes) -> bytes:
    """In: {stripe_unit, stripe_count}. Out: nil.

    ENOEXEC without STRIPINGV2; EINVAL for a zero count, or a unit that is zero, larger
    than the object size, or not a divisor of it (§1).
    """
    a = c.args(data)
    unit = c.get_int(a, "stripe_unit")
    count = c.get_int(a, "stripe_count")
    if count == 0 or unit == 0:
        raise InvalidArgument("zero stripe unit or count")
    c.require_object(ctx)
    require_feature(ctx, F.STRIPINGV2)
    obj_size = 1 << c.read_u8(ctx, "order")
    if count == 0 or unit == 0 or unit > obj_size or obj_size % unit:
        raise InvalidArgument(f"bad striping {unit}x{count} for object size {obj_size}")
    ctx.omap_set({"stripe_unit": enc_u64(unit), "stripe_count": enc_u64(count)})
    return b""


@method("rbd", "get_flags", RD)
def get_flags(ctx: MethodContext, data: bytes) -> bytes:
    """In: {snap_id=HEAD}. Out: the flags u64 (a snapshot's own copy for a snap id)."""
    a = c.args(data)
    snap_id = c.get_int(a, "snap_id", c.CEPH_NOSNAP)
    if snap_id == c.CEPH_NOSNAP:
        c.require_object(ctx)
        return c.out(c.read_u64(ctx, "flags", 0))
    return c.out(int(load_snap(ctx, snap_id).get("flags", 0)))


@method("rbd", "set_flags", RD | WR)
def set_flags(ctx: MethodContext, data: bytes) -> bytes:
    """In: {flags, mask, snap_id=HEAD}. Out: nil. Bits outside `mask` keep their value."""
    a = c.args(data)
    flags = c.get_int(a, "flags")
    mask = c.get_int(a, "mask")
    snap_id = c.get_int(a, "snap_id", c.CEPH_NOSNAP)
    c.read_u64(ctx, "size")  # ENOENT unless this is an image header
    if snap_id == c.CEPH_NOSNAP:
        old = c.read_u64(ctx, "flags", 0)
        c.write_u64(ctx, "flags", (old & ~mask) | (flags & mask))
    else:
        rec = load_snap(ctx, snap_id)
        rec["flags"] = (int(rec.get("flags", 0)) & ~mask) | (flags & mask)
        ctx.omap_set({c.snap_key(snap_id): c.pack_record(rec)})
    return b""


@method("rbd", "op_features_get", RD)
def op_features_get(ctx: MethodContext, data: bytes) -> bytes:
    """In: nothing. Out: the op_features u64 (0 when unset)."""
    c.require_object(ctx)
    return c.out(c.read_u64(ctx, "op_features", 0))


def set_op_features(ctx: MethodContext, op_features: int, mask: int) -> None:
    """Change op features under `mask`; the OPERATIONS feature bit mirrors "any op feature set"
    (so clients that don't know op features refuse to write), and 0 removes the key."""
    features = c.read_u64(ctx, "features")
    old = c.read_u64(ctx, "op_features", 0)
    new = (old & ~mask) | (op_features & mask)
    if new == old:
        return
    if new:
        ctx.omap_set({"op_features": enc_u64(new), "features": enc_u64(features | F.OPERATIONS)})
    else:
        ctx.omap_rm(["op_features"])
        ctx.omap_set({"features": enc_u64(features & ~F.OPERATIONS)})


@method("rbd", "op_features_set", RD | WR)
def op_features_set(ctx: MethodContext, data: bytes) -> bytes:
    """In: {op_features, mask}. Out: nil. EINVAL for unknown op-feature bits in the mask."""
    a = c.args(data)
    op_features = c.get_int(a, "op_features")
    mask = c.get_int(a, "mask")
    if mask & ~sum(F.OP_FEATURE_NAMES):
        raise InvalidArgument("unknown op feature bits")
    set_op_features(ctx, op_features, mask)
    return b""


def _timestamp(ctx: MethodContext, key: str) -> bytes:
    raw = c.read_key(ctx, key)
    if raw is None:  # as in Ceph: a missing stamp (or object) reads as the zero time
        return c.out([0, 0])
    return c.out(list(dec_utime(raw)))


@method("rbd", "get_create_timestamp", RD)
def get_create_timestamp(ctx: MethodContext, data: bytes) -> bytes:
    """In: nothing. Out: [sec, nsec]."""
    return _timestamp(ctx, "create_timestamp")


@method("rbd", "get_access_timestamp", RD)
def get_access_timestamp(ctx: MethodContext, data: bytes) -> bytes:
    """In: nothing. Out: [sec, nsec]."""
    return _timestamp(ctx, "access_timestamp")


@method("rbd", "get_modify_timestamp", RD)
def get_modify_timestamp(ctx: MethodContext, data: bytes) -> bytes:
    """In: nothing. Out: [sec, nsec]."""
    return _timestamp(ctx, "modify_timestamp")


@method("rbd", "set_access_timestamp", RD | WR)
def set_access_timestamp(ctx: MethodContext, data: bytes) -> bytes:
    """In: nothing. Out: nil. Stamps "now". ENOENT missing object."""
    c.require_object(ctx)
    ctx.omap_set({"access_timestamp": enc_utime_float(time.time())})
    return b""


@method("rbd", "set_modify_timestamp", RD | WR)
def set_modify_timestamp(ctx: MethodContext, data: bytes) -> bytes:
    """In: nothing. Out: nil. Stamps "now". ENOENT missing object."""
    c.require_object(ctx)
    ctx.omap_set({"modify_timestamp": enc_utime_float(time.time())})
    return b""


# -- image metadata (metadata_<key> -> the value's raw bytes, as cls_rbd stores them) -------
def _meta_key(a: dict) -> str:
    key = c.get_str(a, "key")
    if not key or len(key) > MAX_METADATA_KEY:
        raise InvalidArgument("bad metadata key")
    return c.METADATA_PREFIX + key


@method("rbd", "metadata_set", RD | WR)
def metadata_set(ctx: MethodContext, data: bytes) -> bytes:
    """In: {data: {key: bytes|str}}. Out: nil. Works on any object (pool-level metadata lives in rbd_info)."""
    a = c.args(data)
    items = a.get("data")
    if not isinstance(items, dict):
        raise InvalidArgument("metadata_set needs a data map")
    kv = {_meta_key({"key": key}): c.get_bytes({"v": value}, "v") for key, value in items.items()}
    if kv:
        ctx.omap_set(kv)
    return b""


@method("rbd", "metadata_get", RD)
def metadata_get(ctx: MethodContext, data: bytes) -> bytes:
    """In: {key}. Out: the value bytes. ENOENT when unset."""
    key = _meta_key(c.args(data))
    raw = c.read_key(ctx, key)
    if raw is None:
        raise NotFound(f"no metadata {key!r}")
    return c.out(raw)


@method("rbd", "metadata_remove", RD | WR)
def metadata_remove(ctx: MethodContext, data: bytes) -> bytes:
    """In: {key}. Out: nil. ENOENT when unset (UNVERIFIED: Ceph's omap key removal may succeed instead)."""
    key = _meta_key(c.args(data))
    if c.read_key(ctx, key) is None:
        raise NotFound(f"no metadata {key!r}")
    ctx.omap_rm([key])
    return b""


@method("rbd", "metadata_list", RD)
def metadata_list(ctx: MethodContext, data: bytes) -> bytes:
    """In: {start_after="", max_return=64 (0 = 64)}. Out: {key: bytes} in key order (a page). ENOENT missing object."""
    a = c.args(data)
    start = c.get_str(a, "start_after", "")
    max_return = c.get_int(a, "max_return", 64, hi=1 << 20) or 64
    c.require_object(ctx)
    after = c.METADATA_PREFIX + start if start else ""
    return c.out({k[len(c.METADATA_PREFIX):]: v for k, v in c.all_vals(ctx, c.METADATA_PREFIX, after, max_return)})

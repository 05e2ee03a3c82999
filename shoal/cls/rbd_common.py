"""Helpers shared by the cls_rbd modules: msgpack arguments, header-key access, constants.

Our method wire format is ours: a method's input is a msgpack map (an empty input is an
empty map) and its output is a msgpack value, both documented per method. What methods
*store* follows Ceph where ceph-facts §1 documents the bytes (u64 size, u8 order, ...);
records Ceph stores in struct encodings we have not verified (snapshot records, the
parent spec, v2 children, trash specs) are stored as msgpack and say so.
"""

from __future__ import annotations

from typing import Any

import msgpack

from shoal.cls.encoding import dec_string, dec_u8, dec_u64, enc_string, enc_u8, enc_u64
from shoal.cls.registry import MethodContext
from shoal.errors import InvalidArgument, NotFound, ShoalError

CEPH_NOSNAP = (1 << 64) - 2  # the HEAD "snap id" (include/rados.h)
CEPH_MAXSNAP = (1 << 64) - 3  # largest usable snap id ((u64)-3 in include/rados.h)
U64_MAX = (1 << 64) - 1

SNAP_KEY_PREFIX = "snapshot_"
SNAP_CHILDREN_PREFIX = "snap_children_"
METADATA_PREFIX = "metadata_"

PROTECTION_UNPROTECTED = 0
PROTECTION_UNPROTECTING = 1
PROTECTION_PROTECTED = 2


class NoExec(ShoalError):
    """cls_rbd's answer when the image lacks a feature the method needs (require_feature)."""

    errno = 8  # ENOEXEC


class Stale(ShoalError):
    errno = 116  # ESTALE


class QuotaExceeded(ShoalError):
    errno = 122  # EDQUOT


class NotImplementedFeature(ShoalError):
    errno = 38  # ENOSYS


class CrossDevice(ShoalError):
    errno = 18  # EXDEV: the old parent API can't carry a pool namespace


class BadFd(ShoalError):
    errno = 9  # EBADF


def args(data: bytes) -> dict[str, Any]:
    """Decode a method's msgpack input map; empty input means no arguments."""
    if not data:
        return {}
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise InvalidArgument(f"undecodable method input: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidArgument("method input must be a msgpack map")
    return value


def out(value: Any) -> bytes:
    return bytes(msgpack.packb(value, use_bin_type=True))


def get_int(a: dict[str, Any], key: str, default: int | None = None, lo: int = 0, hi: int = U64_MAX) -> int:
    value = a.get(key, default)
    if value is None:
        raise InvalidArgument(f"missing argument {key!r}")
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise InvalidArgument(f"argument {key!r} must be an integer in [{lo}, {hi}]")
    return value


def get_str(a: dict[str, Any], key: str, default: str | None = None) -> str:
    value = a.get(key, default)
    if not isinstance(value, str):
        raise InvalidArgument(f"argument {key!r} must be a string")
    return value


def get_bytes(a: dict[str, Any], key: str) -> bytes:
    value = a.get(key)
    if isinstance(value, str):
        return value.encode()
    if not isinstance(value, bytes):
        raise InvalidArgument(f"argument {key!r} must be bytes")
    return value


def require_object(ctx: MethodContext) -> None:
    if not ctx.exists:
        raise NotFound("object does not exist")


def read_key(ctx: MethodContext, key: str) -> bytes | None:
    """One omap value, or None when the key (or the whole object) is missing."""
    if not ctx.exists:
        return None
    return ctx.omap_get_vals_by_keys([key]).get(key)


def read_u64(ctx: MethodContext, key: str, default: int | None = None) -> int:
    raw = read_key(ctx, key)
    if raw is None:
        if default is None:
            raise NotFound(f"no {key!r} key")
        return default
    return dec_u64(raw)


def read_u8(ctx: MethodContext, key: str) -> int:
    raw = read_key(ctx, key)
    if raw is None:
        raise NotFound(f"no {key!r} key")
    return dec_u8(raw)


def read_string(ctx: MethodContext, key: str) -> str:
    raw = read_key(ctx, key)
    if raw is None:
        raise NotFound(f"no {key!r} key")
    return dec_string(raw)


def write_u64(ctx: MethodContext, key: str, value: int) -> None:
    ctx.omap_set({key: enc_u64(value)})


def write_u8(ctx: MethodContext, key: str, value: int) -> None:
    ctx.omap_set({key: enc_u8(value)})


def write_string(ctx: MethodContext, key: str, value: str) -> None:
    ctx.omap_set({key: enc_string(value)})


def all_vals(ctx: MethodContext, prefix: str, start_after: str = "", max_return: int = 1 << 30) -> list[tuple[str, bytes]]:
    """Every omap entry under `prefix` (paged internally, as cls_rbd reads RBD_MAX_KEYS_READ at a time)."""
    if not ctx.exists:
        return []
    items: list[tuple[str, bytes]] = []
    after = start_after
    while len(items) < max_return:
        batch, more = ctx.omap_get_vals(after, prefix, min(1024, max_return - len(items)))
        items.extend(batch)
        if not more or not batch:
            break
        after = batch[-1][0]
    return items


def unpack_record(raw: bytes) -> Any:
    try:
        return msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except Exception as exc:
        raise InvalidArgument(f"undecodable stored record: {exc}") from exc


def pack_record(value: Any) -> bytes:
    return bytes(msgpack.packb(value, use_bin_type=True))


def snap_key(snap_id: int) -> str:
    return f"{SNAP_KEY_PREFIX}{snap_id:016x}"


def snap_children_key(snap_id: int) -> str:
    return f"{SNAP_CHILDREN_PREFIX}{snap_id:016x}"

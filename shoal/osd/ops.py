"""Executes one op vector against an ObjectContext (pure: no I/O of its own).

Ceph's rule: the vector is all-or-nothing. The first failing op (without FAILOK)
ends it with that op's errno and nothing is written.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any

from shoal.cls.registry import WR, lookup
from shoal.errors import InvalidArgument, NotSupported, PermissionDenied, ShoalError
from shoal.osd.object_context import ObjectContext
from shoal.wire.osd_op import CALL, FLAG_FAILOK, WRITE_OPS

# Callers may ask for at most this many omap entries in one op (Ceph's osd_max_omap_entries_per_request).
MAX_OMAP_RETURN = 131072


class OpResult:
    def __init__(self) -> None:
        self.result = 0
        self.outs: list[dict[str, Any]] = []
        self._chunks: list[bytes] = []
        self._len = 0

    def out_data(self, payload: bytes) -> list[int]:
        ref = [self._len, len(payload)]
        if payload:
            self._chunks.append(payload)
            self._len += len(payload)
        return ref

    def data(self) -> bytes:
        return self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)


def vector_writes(ops: list[dict[str, Any]]) -> bool:
    """Whether an op vector modifies its object (class methods count by their flags)."""
    for op in ops:
        name = op.get("op")
        if name in WRITE_OPS:
            return True
        if name == CALL:
            meth = lookup(str(op.get("cls")), str(op.get("method")))
            if meth is not None and meth.flags & WR:
                return True
    return False


def _payload(op: dict[str, Any], data: memoryview) -> memoryview:
    ref = op.get("d")
    if ref is None:
        return memoryview(b"")
    off, length = int(ref[0]), int(ref[1])
    if off < 0 or length < 0 or off + length > len(data):
        raise InvalidArgument("op payload reference outside the request data")
    return data[off:off + length]  # a view: writes keep the received buffer, uncopied


def _nonneg(op: dict[str, Any], key: str, default: int = 0) -> int:
    value = int(op.get(key, default))
    if value < 0:
        raise InvalidArgument(f"{op['op']}: negative {key} {value}")
    return value


Allow = Callable[[str, str | None, bool, bool], bool]  # (kind, cls, reads, writes) -> allowed


def execute(ctx: ObjectContext, ops: list[dict[str, Any]], data: memoryview,
            allow: Allow | None = None) -> OpResult:
    res = OpResult()
    for op in ops:
        out: dict[str, Any] = {"r": 0}
        try:
            _one(ctx, op, data, res, out, allow)
        except ShoalError as exc:
            out["r"] = -exc.errno
            if not (int(op.get("flags", 0)) & FLAG_FAILOK):
                res.outs.append(out)
                res.result = -exc.errno
                return res
        res.outs.append(out)
    ctx.finish()
    return res


def _one(ctx: ObjectContext, op: dict[str, Any], data: memoryview, res: OpResult,
         out: dict[str, Any], allow: Allow | None) -> None:
    name = op["op"]
    if name == "read":
        payload = ctx.read(_nonneg(op, "off"), _nonneg(op, "len"))
        out["d"] = res.out_data(payload)
    elif name == "stat":
        ctx.require_exists()
        out["size"], out["mtime"] = ctx.size, ctx.mtime
    elif name == "assert_exists":
        ctx.require_exists()
    elif name == "write":
        ctx.write(_nonneg(op, "off"), _payload(op, data))
    elif name == "writefull":
        ctx.write_full(_payload(op, data))
    elif name == "append":
        ctx.append(_payload(op, data))
    elif name == "truncate":
        ctx.truncate(_nonneg(op, "size"))
    elif name == "zero":
        ctx.zero(_nonneg(op, "off"), _nonneg(op, "len"))
    elif name == "create":
        ctx.create(bool(op.get("excl")))
    elif name == "delete":
        ctx.remove()
    elif name == "getxattr":
        out["d"] = res.out_data(ctx.getxattr(str(op["name"])))
    elif name == "getxattrs":
        out["attrs"] = ctx.getxattrs()
    elif name == "setxattr":
        ctx.setxattr(str(op["name"]), bytes(_payload(op, data)))
    elif name == "rmxattr":
        ctx.rmxattr(str(op["name"]))
    elif name in ("omap_get_vals", "omap_get_keys"):
        max_return = min(int(op.get("max_return", MAX_OMAP_RETURN)), MAX_OMAP_RETURN)
        items, more = ctx.omap_get_vals(str(op.get("start_after", "")), str(op.get("filter_prefix", "")),
                                        max(max_return, 0))
        out["more"] = more
        if name == "omap_get_keys":
            out["keys"] = [k for k, _ in items]
        else:
            out["vals"] = items
    elif name == "omap_get_vals_by_keys":
        out["vals"] = ctx.omap_get_vals_by_keys([str(k) for k in op["keys"]])
    elif name == "omap_get_header":
        out["d"] = res.out_data(ctx.omap_get_header())
    elif name == "omap_setkeys":
        kv = op["kv"]
        if not isinstance(kv, dict) or not all(isinstance(v, bytes) for v in kv.values()):
            raise InvalidArgument("omap_setkeys needs a map of str to bytes")
        ctx.omap_set({str(k): v for k, v in kv.items()})
    elif name == "omap_rmkeys":
        ctx.omap_rm([str(k) for k in op["keys"]])
    elif name == "omap_clear":
        ctx.omap_clear()
    elif name == "omap_setheader":
        ctx.omap_set_header(bytes(_payload(op, data)))
    elif name == "list_snaps":
        out.update(ctx.list_snaps())
    elif name == "rollback":
        ctx.rollback(_nonneg(op, "snapid"))
    elif name == "checksum":
        ctx.require_exists()
        out["crc"] = ctx.store.checksum(ctx.coll, ctx.oid)
    elif name == CALL:
        _call(ctx, op, data, res, out, allow)
    else:
        raise NotSupported(f"unknown object operation {name!r}")


def _call(ctx: ObjectContext, op: dict[str, Any], data: memoryview, res: OpResult,
          out: dict[str, Any], allow: Allow | None) -> None:
    cls_name, method_name = str(op["cls"]), str(op["method"])
    meth = lookup(cls_name, method_name)
    if meth is None:
        raise NotSupported(f"no object class method {cls_name}.{method_name}", errno.EOPNOTSUPP)
    writes = bool(meth.flags & WR)
    if allow is not None and not allow("call", cls_name, True, writes):
        raise PermissionDenied(f"not allowed to call {cls_name}.{method_name}")
    output = meth.fn(ctx, bytes(_payload(op, data)))
    out["d"] = res.out_data(output or b"")

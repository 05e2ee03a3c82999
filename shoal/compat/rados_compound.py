"""Ioctx's compound operations: WriteOp/ReadOp vectors, omap reads and writes (python-rados API).

A mixin of `Ioctx`: it uses the Ioctx's `_ready`, `_run`, `_operate` and `nspace`.
"""

from __future__ import annotations

from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from shoal.client.objecter import OpReply
from shoal.compat.rados_errors import Error, as_text, make_ex, require_str, require_uint, type_error
from shoal.compat.rados_ops import LIBRADOS_OPERATION_NOFLAG, OmapIterator, PendingOp, ReadOp, WriteOp
from shoal.errors import ShoalError
from shoal.wire.osd_op import OpBuilder

_RANGE_PAGE = 1024  # omap keys per read while resolving remove_omap_range2


class CompoundOps:
    """WriteOp/ReadOp handling and omap calls of an Ioctx."""

    if TYPE_CHECKING:  # provided by Ioctx
        nspace: str

        def _ready(self) -> None: ...
        def _run(self, coro: Coroutine[Any, Any, Any], what: str) -> Any: ...
        async def _operate(self, oid: str, builder: OpBuilder, nspace: str) -> OpReply: ...

    def create_write_op(self) -> WriteOp:
        return WriteOp().create()  # type: ignore[return-value]

    def create_read_op(self) -> ReadOp:
        return ReadOp().create()  # type: ignore[return-value]

    def release_write_op(self, write_op: WriteOp) -> None:
        write_op.release()

    def release_read_op(self, read_op: ReadOp) -> None:
        read_op.release()

    def set_omap(self, write_op: WriteOp, keys: Sequence[str], values: Sequence[bytes | str]) -> None:
        if not isinstance(write_op, WriteOp):
            raise type_error("write_op", "WriteOp", write_op)
        if len(keys) != len(values):
            raise Error("Rados(): keys and values must have the same number of items")
        kv: dict[str, bytes] = {}
        for k, v in zip(keys, values, strict=True):
            raw = v if isinstance(v, bytes) else (v.encode("utf-8") if isinstance(v, str) else None)
            if raw is None:
                raise TypeError("values must be a string")
            kv[as_text(k, "keys")] = raw
        write_op._add(PendingOp("omap_setkeys", args={"kv": kv}))

    def remove_omap_keys(self, write_op: WriteOp, keys: Sequence[str]) -> None:
        if not isinstance(write_op, WriteOp):
            raise type_error("write_op", "WriteOp", write_op)
        write_op._add(PendingOp("omap_rmkeys", args={"keys": [as_text(k, "keys") for k in keys]}))

    def clear_omap(self, write_op: WriteOp) -> None:
        if not isinstance(write_op, WriteOp):
            raise type_error("write_op", "WriteOp", write_op)
        write_op._add(PendingOp("omap_clear"))

    def remove_omap_range2(self, write_op: WriteOp, key_begin: str, key_end: str) -> None:
        """Remove omap keys in [key_begin, key_end) when the op is operated."""
        if not isinstance(write_op, WriteOp):
            raise type_error("write_op", "WriteOp", write_op)
        write_op._add(PendingOp("rm_range", args={"begin": as_text(key_begin, "key_begin"),
                                                  "end": as_text(key_end, "key_end")}))

    def get_omap_vals(self, read_op: ReadOp, start_after: str, filter_prefix: str,
                      max_return: int) -> tuple[OmapIterator, int]:
        if not isinstance(read_op, ReadOp):
            raise type_error("read_op", "ReadOp", read_op)
        it = OmapIterator(self)
        read_op._add(PendingOp("omap_get_vals", result=it, args={
            "start_after": as_text(start_after, "start_after") if start_after else "",
            "filter_prefix": as_text(filter_prefix, "filter_prefix") if filter_prefix else "",
            "max_return": require_uint(max_return, "max_return", "int")}))
        return it, 0  # the 0 is meaningless, kept by python-rados for backward compatibility

    def get_omap_keys(self, read_op: ReadOp, start_after: str, max_return: int) -> tuple[OmapIterator, int]:
        if not isinstance(read_op, ReadOp):
            raise type_error("read_op", "ReadOp", read_op)
        it = OmapIterator(self)
        read_op._add(PendingOp("omap_get_keys", result=it, args={
            "start_after": as_text(start_after, "start_after") if start_after else "",
            "filter_prefix": "", "max_return": require_uint(max_return, "max_return", "int")}))
        return it, 0

    def get_omap_vals_by_keys(self, read_op: ReadOp, keys: Sequence[str]) -> tuple[OmapIterator, int]:
        if not isinstance(read_op, ReadOp):
            raise type_error("read_op", "ReadOp", read_op)
        it = OmapIterator(self)
        read_op._add(PendingOp("omap_get_vals_by_keys", result=it,
                               args={"keys": [as_text(k, "keys") for k in keys]}))
        return it, 0

    def operate_write_op(self, write_op: WriteOp, oid: str, mtime: int = 0,
                         flags: int = LIBRADOS_OPERATION_NOFLAG) -> None:
        self._ready()
        if not isinstance(write_op, WriteOp):
            raise type_error("write_op", "WriteOp", write_op)
        oid = require_str(oid, "oid")
        what = f"Failed to operate write op for oid {oid}"
        reply = self._run(self._compound(oid, write_op._take(), self.nspace, what), what)
        if reply is not None and reply.result < 0:
            raise make_ex(reply.result, what)

    def operate_read_op(self, read_op: ReadOp, oid: str, flag: int = LIBRADOS_OPERATION_NOFLAG) -> None:
        self._ready()
        if not isinstance(read_op, ReadOp):
            raise type_error("read_op", "ReadOp", read_op)
        oid = require_str(oid, "oid")
        what = f"Failed to operate read op for oid {oid}"
        reply = self._run(self._compound(oid, read_op._take(), self.nspace, what), what)
        if reply is not None and reply.result < 0:
            raise make_ex(reply.result, what)

    async def _compound(self, oid: str, ops: list[PendingOp], nspace: str, what: str) -> OpReply | None:
        """Send a compound op as one vector; fill omap iterators from the reply."""
        for op in ops:
            if op.name == "unsupported":
                raise ShoalError(what, op.err)
        if not ops:
            return None  # librados: an empty operation succeeds without a round trip
        if any(op.name == "rm_range" for op in ops):
            ops = await self._resolve_ranges(oid, ops, nspace)
        b = OpBuilder()
        for op in ops:
            entry = b.add(op.name, op.payload, **op.args)
            if op.flags:
                entry["flags"] = op.flags
        reply = await self._operate(oid, b, nspace)
        if reply.result >= 0:
            for i, op in enumerate(ops):
                if op.result is not None:
                    op.result._fill(_omap_items(op.name, reply.outs[i] if i < len(reply.outs) else {}))
        return reply

    async def _resolve_ranges(self, oid: str, ops: list[PendingOp], nspace: str) -> list[PendingOp]:
        """Turn each `rm_range` pseudo op into omap_rmkeys of the keys then in range.

        The keys come from a read just before the write, so a key another client adds in
        between survives; keys set earlier in this same operation are included.
        """
        out: list[PendingOp] = []
        set_before: set[str] = set()
        for op in ops:
            if op.name == "omap_setkeys":
                set_before.update(op.args["kv"])
            elif op.name in ("omap_clear", "delete"):
                set_before.clear()
            if op.name != "rm_range":
                out.append(op)
                continue
            begin, end = op.args["begin"], op.args["end"]
            keys = set(await self._stored_keys_in_range(oid, nspace, begin, end))
            keys.update(k for k in set_before if _in_range(k, begin, end))
            set_before.difference_update(keys)
            out.append(PendingOp("omap_rmkeys", args={"keys": sorted(keys)}, flags=op.flags))
        return out

    async def _stored_keys_in_range(self, oid: str, nspace: str, begin: str, end: str) -> list[str]:
        found: list[str] = []
        b = OpBuilder()
        b.add("omap_get_vals_by_keys", keys=[begin])
        b.add("omap_get_keys", start_after=begin, filter_prefix="", max_return=_RANGE_PAGE)
        while True:
            reply = await self._operate(oid, b, nspace)
            if reply.result < 0:
                return found  # no object: the rmkeys op itself will report ENOENT
            outs = reply.outs
            if len(outs) == 2:  # first page: the begin key itself, then what follows it
                found.extend(k for k in outs[0].get("vals", {}) if _in_range(k, begin, end))
            page = outs[-1]
            keys = [str(k) for k in page.get("keys", [])]
            found.extend(k for k in keys if _in_range(k, begin, end))
            if not page.get("more") or not keys or not _in_range(keys[-1], begin, end):
                return found
            b = OpBuilder()
            b.add("omap_get_keys", start_after=keys[-1], filter_prefix="", max_return=_RANGE_PAGE)


def _in_range(key: str, begin: str, end: str) -> bool:
    return begin <= key < end  # str order of code points == the OSD's UTF-8 byte order


def _omap_items(op_name: str, out: dict[str, Any]) -> list[tuple[str, bytes | None]]:
    if op_name == "omap_get_keys":
        return [(str(k), None) for k in out.get("keys", [])]
    if op_name == "omap_get_vals":
        return [(str(k), bytes(v)) for k, v in out.get("vals", [])]
    vals = out.get("vals", {})
    return [(k, bytes(vals[k])) for k in sorted(vals, key=lambda s: str(s).encode())]

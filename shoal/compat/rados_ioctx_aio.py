"""Ioctx's asynchronous calls (`aio_*`, `operate_aio_*_op`, `aio_flush`) returning Completions.

A mixin of `Ioctx`. Each call checks its arguments at once, then runs its op vector as a
coroutine on the client loop thread; the Completion is finished from there, and its
callbacks run on the handle's finisher thread (see rados_aio.py).
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from shoal.client.objecter import OpReply
from shoal.compat.rados_aio import Call, Completion
from shoal.compat.rados_errors import make_ex, require_bytes, require_str, require_uint, type_error
from shoal.compat.rados_ops import LIBRADOS_OPERATION_NOFLAG, ReadOp, WriteOp
from shoal.errors import ShoalError
from shoal.wire.osd_op import OpBuilder

AioCallback = Callable[..., Any] | None


def _check_callback(cb: Any, name: str) -> None:
    if cb is not None and not callable(cb):
        raise type_error(name, "Callable", cb)


class AioOps:
    """The asynchronous calls of an Ioctx."""

    if TYPE_CHECKING:  # provided by Ioctx
        rados: Any
        nspace: str
        _pending: set[Completion]
        _pending_lock: Any

        def _ready(self) -> None: ...
        async def _operate(self, oid: str, builder: OpBuilder, nspace: str) -> OpReply: ...
        async def _compound(self, oid: str, ops: list[Any], nspace: str, what: str) -> OpReply | None: ...

    def _track(self, comp: Completion) -> None:
        with self._pending_lock:
            self._pending.add(comp)

    def _untrack(self, comp: Completion) -> None:
        with self._pending_lock:
            self._pending.discard(comp)

    def _submit(self, coro: Coroutine[Any, Any, tuple[int, tuple[Any, ...]]], oncomplete: AioCallback,
                onsafe: AioCallback) -> Completion:
        comp = Completion(self, oncomplete, onsafe)
        self._track(comp)
        comp._attach(Call(self.rados._loop, coro), self.rados._finisher_for_callbacks())
        return comp

    async def _aio_simple(self, oid: str, builder: OpBuilder, nspace: str) -> tuple[int, tuple[Any, ...]]:
        try:
            reply = await self._operate(oid, builder, nspace)
        except ShoalError as exc:
            return -exc.errno, ()
        return min(reply.result, 0), ()

    def _aio_builder(self, op: str, payload: bytes | None = None, **args: Any) -> OpBuilder:
        b = OpBuilder()
        b.add(op, payload, **args)
        return b

    def aio_write(self, object_name: str, to_write: bytes, offset: int = 0,
                  oncomplete: AioCallback = None, onsafe: AioCallback = None) -> Completion:
        self._ready()
        key, data = require_str(object_name, "object_name"), require_bytes(to_write, "to_write")
        offset = require_uint(offset, "offset")
        _check_callback(oncomplete, "oncomplete")
        _check_callback(onsafe, "onsafe")
        return self._submit(self._aio_simple(key, self._aio_builder("write", data, off=offset), self.nspace),
                            oncomplete, onsafe)

    def aio_write_full(self, object_name: str, to_write: bytes,
                       oncomplete: AioCallback = None, onsafe: AioCallback = None) -> Completion:
        self._ready()
        key, data = require_str(object_name, "object_name"), require_bytes(to_write, "to_write")
        _check_callback(oncomplete, "oncomplete")
        _check_callback(onsafe, "onsafe")
        return self._submit(self._aio_simple(key, self._aio_builder("writefull", data), self.nspace),
                            oncomplete, onsafe)

    def aio_writesame(self, object_name: str, to_write: bytes, write_len: int, offset: int = 0,
                      oncomplete: AioCallback = None) -> Completion:
        self._ready()
        key, data = require_str(object_name, "object_name"), require_bytes(to_write, "to_write")
        write_len, offset = require_uint(write_len, "write_len", "size_t"), require_uint(offset, "offset")
        _check_callback(oncomplete, "oncomplete")
        if not data or write_len % len(data):
            raise make_ex(errno.EINVAL, f"error writing object {key}")
        b = self._aio_builder("write", data * (write_len // len(data)), off=offset)
        return self._submit(self._aio_simple(key, b, self.nspace), oncomplete, None)

    def aio_append(self, object_name: str, to_append: bytes,
                   oncomplete: AioCallback = None, onsafe: AioCallback = None) -> Completion:
        self._ready()
        key, data = require_str(object_name, "object_name"), require_bytes(to_append, "to_append")
        _check_callback(oncomplete, "oncomplete")
        _check_callback(onsafe, "onsafe")
        return self._submit(self._aio_simple(key, self._aio_builder("append", data), self.nspace),
                            oncomplete, onsafe)

    def aio_remove(self, object_name: str, oncomplete: AioCallback = None,
                   onsafe: AioCallback = None) -> Completion:
        self._ready()
        key = require_str(object_name, "object_name")
        _check_callback(oncomplete, "oncomplete")
        _check_callback(onsafe, "onsafe")
        return self._submit(self._aio_simple(key, self._aio_builder("delete"), self.nspace), oncomplete, onsafe)

    def aio_setxattr(self, object_name: str, xattr_name: str, xattr_value: bytes,
                     oncomplete: AioCallback = None) -> Completion:
        self._ready()
        key, name = require_str(object_name, "object_name"), require_str(xattr_name, "xattr_name")
        value = require_bytes(xattr_value, "xattr_value")
        _check_callback(oncomplete, "oncomplete")
        return self._submit(self._aio_simple(key, self._aio_builder("setxattr", value, name=name), self.nspace),
                            oncomplete, None)

    def aio_rmxattr(self, object_name: str, xattr_name: str, oncomplete: AioCallback = None) -> Completion:
        self._ready()
        key, name = require_str(object_name, "object_name"), require_str(xattr_name, "xattr_name")
        _check_callback(oncomplete, "oncomplete")
        return self._submit(self._aio_simple(key, self._aio_builder("rmxattr", name=name), self.nspace),
                            oncomplete, None)

    def aio_read(self, object_name: str, length: int, offset: int, oncomplete: AioCallback = None) -> Completion:
        """oncomplete(completion, data) — data is None when the read failed."""
        self._ready()
        key = require_str(object_name, "object_name")
        length, offset = require_uint(length, "length", "size_t"), require_uint(offset, "offset")
        _check_callback(oncomplete, "oncomplete")
        nspace = self.nspace
        comp_box: list[Completion] = []

        async def run() -> tuple[int, tuple[Any, ...]]:
            b = self._aio_builder("read", off=offset, len=length) if length else self._aio_builder("assert_exists")
            try:
                reply = await self._operate(key, b, nspace)
            except ShoalError as exc:
                return -exc.errno, (None,)
            if reply.result < 0:
                return reply.result, (None,)
            data = reply.out_data(0) if length else b""
            comp_box[0].buf = data
            return len(data), (data,)

        comp = Completion(self, oncomplete, None)
        comp_box.append(comp)
        self._track(comp)
        comp._attach(Call(self.rados._loop, run()), self.rados._finisher_for_callbacks())
        return comp

    def aio_stat(self, object_name: str, oncomplete: AioCallback) -> Completion:
        """oncomplete(completion, size, mtime) — (None, None) when the stat failed."""
        self._ready()
        key = require_str(object_name, "object_name")
        _check_callback(oncomplete, "oncomplete")
        nspace = self.nspace

        async def run() -> tuple[int, tuple[Any, ...]]:
            try:
                reply = await self._operate(key, self._aio_builder("stat"), nspace)
            except ShoalError as exc:
                return -exc.errno, (None, None)
            if reply.result < 0:
                return reply.result, (None, None)
            out = reply.outs[0]
            return 0, (int(out["size"]), time.localtime(int(out["mtime"])))

        return self._submit(run(), oncomplete, None)

    def aio_execute(self, object_name: str, cls: str, method: str, data: bytes, length: int = 8192,
                    oncomplete: AioCallback = None, onsafe: AioCallback = None) -> Completion:
        """Callbacks get (completion, output); the return value is the output's length."""
        self._ready()
        key, cls, method = require_str(object_name, "object_name"), require_str(cls, "cls"), require_str(method, "method")
        data, length = require_bytes(data, "data"), require_uint(length, "length", "size_t")
        _check_callback(oncomplete, "oncomplete")
        _check_callback(onsafe, "onsafe")
        nspace = self.nspace

        async def run() -> tuple[int, tuple[Any, ...]]:
            try:
                reply = await self._operate(key, self._aio_builder("call", data, cls=cls, method=method), nspace)
            except ShoalError as exc:
                return -exc.errno, (None,)
            if reply.result < 0:
                return reply.result, (None,)
            out = reply.out_data(0)
            if len(out) > length:
                return -errno.ERANGE, (None,)
            return len(out), (out,)

        return self._submit(run(), oncomplete, onsafe)

    def operate_aio_write_op(self, write_op: WriteOp, oid: str, oncomplete: AioCallback = None,
                             onsafe: AioCallback = None, mtime: int = 0,
                             flags: int = LIBRADOS_OPERATION_NOFLAG) -> Completion:
        self._ready()
        if not isinstance(write_op, WriteOp):
            raise type_error("write_op", "WriteOp", write_op)
        return self._aio_compound(write_op, require_str(oid, "oid"), oncomplete, onsafe, "write")

    def operate_aio_read_op(self, read_op: ReadOp, oid: str, oncomplete: AioCallback = None,
                            onsafe: AioCallback = None, flag: int = LIBRADOS_OPERATION_NOFLAG) -> Completion:
        self._ready()
        if not isinstance(read_op, ReadOp):
            raise type_error("read_op", "ReadOp", read_op)
        return self._aio_compound(read_op, require_str(oid, "oid"), oncomplete, onsafe, "read")

    # Newer spellings some callers use.
    aio_operate_write_op = operate_aio_write_op
    aio_operate_read_op = operate_aio_read_op

    def _aio_compound(self, op: WriteOp | ReadOp, oid: str, oncomplete: AioCallback, onsafe: AioCallback,
                      kind: str) -> Completion:
        _check_callback(oncomplete, "oncomplete")
        _check_callback(onsafe, "onsafe")
        ops, nspace = op._take(), self.nspace
        what = f"Failed to operate aio {kind} op for oid {oid}"

        async def run() -> tuple[int, tuple[Any, ...]]:
            try:
                reply = await self._compound(oid, ops, nspace, what)
            except ShoalError as exc:
                return -exc.errno, ()
            return (min(reply.result, 0) if reply is not None else 0), ()

        return self._submit(run(), oncomplete, onsafe)

    def aio_flush(self) -> None:
        """Block until every aio op issued on this Ioctx so far has completed."""
        with self._pending_lock:
            pending = list(self._pending)
        for comp in pending:
            comp.wait_for_complete()


"""Where the RBD layer's RADOS operations go: a pool (and namespace) of one client.

`IoCtx` is librados' IoCtx reduced to what librbd needs: run an op vector on an object
(with a SnapContext for writes or a snap id for reads), call an object-class method
with msgpack arguments, and raise the `shoal.errors` class of a failed result. It also
holds the small concurrency helpers the image layer shares: a bounded gather (per-object
ops in parallel, never unbounded) and the I/O gate that lets a snapshot quiesce this
handle's writes.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import msgpack

from shoal.client.objecter import OpReply
from shoal.client.rados_client import RadosClient
from shoal.errors import ShoalError, from_errno
from shoal.wire.osd_op import OpBuilder

T = TypeVar("T")

CEPH_NOSNAP = (1 << 64) - 2  # HEAD, as librados names it (LIBRADOS_SNAP_HEAD)
SnapContext = tuple[int, list[int]]  # (seq, snap ids descending)
EMPTY_SNAPC: SnapContext = (0, [])

# Data-path parallelism per call (objects in flight); management commands use
# rbd_concurrent_management_ops instead.
IO_CONCURRENCY = 64


def pack(args: dict[str, Any]) -> bytes:
    return bytes(msgpack.packb(args, use_bin_type=True))


def unpack(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise from_errno(errno.EIO, f"undecodable object-class reply: {exc}") from exc


@dataclass(frozen=True)
class IoCtx:
    client: RadosClient
    pool_id: int
    nspace: str = ""

    def pool_name(self) -> str:
        osdmap = self.client.osdmap
        pool = osdmap.pools.get(self.pool_id) if osdmap is not None else None
        if pool is None:
            raise from_errno(errno.ENOENT, f"pool {self.pool_id} does not exist")
        return pool.name

    def with_pool(self, pool_id: int, nspace: str | None = None) -> IoCtx:
        return IoCtx(self.client, pool_id, self.nspace if nspace is None else nspace)

    async def operate(self, oid: str, builder: OpBuilder, *, snapc: SnapContext | None = None,
                      snap: int | None = None) -> OpReply:
        """Run an op vector; the reply's result may be negative (the caller decides)."""
        kwargs: dict[str, Any] = {}
        if snapc is not None:
            kwargs["snapc"] = snapc
        if snap is not None and snap != CEPH_NOSNAP:
            kwargs["snap"] = snap
        return await self.client.operate(self.pool_id, oid, builder, self.nspace, **kwargs)

    async def checked(self, oid: str, builder: OpBuilder, what: str, *, snapc: SnapContext | None = None,
                      snap: int | None = None) -> OpReply:
        """Run an op vector and raise the errno class of a failure, naming `what`."""
        reply = await self.operate(oid, builder, snapc=snapc, snap=snap)
        if reply.result < 0:
            raise from_errno(reply.result, f"{what}: {errno_text(reply.result)}")
        return reply

    async def call(self, oid: str, cls: str, method: str, args: dict[str, Any] | None = None, *,
                   what: str = "", snapc: SnapContext | None = None) -> Any:
        """One object-class method; returns its decoded msgpack output."""
        b = OpBuilder()
        b.add("call", pack(args or {}), cls=cls, method=method)
        reply = await self.checked(oid, b, what or f"{cls}.{method} on {oid}", snapc=snapc)
        return unpack(reply.out_data(0))


def add_call(b: OpBuilder, cls: str, method: str, args: dict[str, Any] | None = None,
             raw: bytes | memoryview | None = None, flags: int = 0) -> None:
    """Append an object-class call to an op vector (`raw` replaces the msgpack input)."""
    payload = raw if raw is not None else pack(args or {})
    if flags:
        b.add("call", payload, cls=cls, method=method, flags=flags)
    else:
        b.add("call", payload, cls=cls, method=method)


def call_output(reply: OpReply, i: int) -> Any:
    """Decoded output of op `i` of a vector; raises that op's errno if it failed (FAILOK ops)."""
    r = int(reply.outs[i].get("r", 0)) if i < len(reply.outs) else -errno.EIO
    if r < 0:
        raise from_errno(r, errno_text(r))
    return unpack(reply.out_data(i))


def errno_text(err: int) -> str:
    return f"({abs(err)}) {os.strerror(abs(err))}"


async def gather_bounded(aws: Iterable[Awaitable[T]], limit: int) -> list[T]:
    """Await every awaitable with at most `limit` running at once; results in order.

    The first failure cancels what is still running and is raised; awaitables not yet
    started are closed, so a failed bulk operation stops issuing new object ops.
    """
    sem = asyncio.Semaphore(max(1, limit))

    async def run(aw: Awaitable[T]) -> T:
        async with sem:
            return await aw

    pending = list(aws)
    tasks = [asyncio.ensure_future(run(aw)) for aw in pending]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def bounded_each(items: Iterable[T], limit: int, fn: Any) -> None:
    """Run `await fn(item)` for every item, at most `limit` at once, without creating a task
    per item up front (bulk operations over millions of objects stay in bounded memory)."""
    it = iter(items)
    running: set[asyncio.Task[Any]] = set()
    try:
        while True:
            while len(running) < max(1, limit):
                try:
                    item = next(it)
                except StopIteration:
                    break
                running.add(asyncio.ensure_future(fn(item)))
            if not running:
                return
            done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                t.result()  # raise the first failure
    finally:
        for t in running:
            t.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)


class IoGate:
    """Writes of one image handle pass shared; a snapshot (or resize, rollback) closes the
    gate, waits for writes in flight, runs, then reopens it — librbd's "block writes"
    around operations that change the SnapContext or the size."""

    def __init__(self) -> None:
        self._writers = 0
        self._closed = 0
        self._cond = asyncio.Condition()

    async def __aenter__(self) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: self._closed == 0)
            self._writers += 1

    async def __aexit__(self, *exc: object) -> None:
        async with self._cond:
            self._writers -= 1
            self._cond.notify_all()

    def exclusive(self) -> _Exclusive:
        return _Exclusive(self)


class _Exclusive:
    def __init__(self, gate: IoGate) -> None:
        self.gate = gate

    async def __aenter__(self) -> None:
        g = self.gate
        async with g._cond:
            g._closed += 1
            await g._cond.wait_for(lambda: g._writers == 0)

    async def __aexit__(self, *exc: object) -> None:
        g = self.gate
        async with g._cond:
            g._closed -= 1
            g._cond.notify_all()


def is_errno(exc: BaseException, *errs: int) -> bool:
    return isinstance(exc, ShoalError) and exc.errno in errs

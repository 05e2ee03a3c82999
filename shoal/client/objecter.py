"""The Objecter: sends object ops to the right primary and keeps them going.

Each op keeps one request id for its whole life. When the OSD map changes and an
op's primary is different, the op is sent again to the new primary; OSDs recognise
a resent write by that id and answer it from their PG log instead of applying it
twice. A lost connection or a "not primary" answer waits for a newer map.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import logging
from dataclasses import dataclass, field
from typing import Any

from shoal.errors import NotFound, ShoalError, Shutdown, TimedOut
from shoal.net.connection import Connection, connect, split_addr
from shoal.placement.osdmap import OSDMap, Pool
from shoal.wire.frame import Frame
from shoal.wire.messages import AUTH_NONE, PROTOCOL_VERSION, Msg

log = logging.getLogger("shoal.client")


@dataclass
class OpReply:
    result: int
    outs: list[dict[str, Any]]
    data: bytes | bytearray | memoryview
    version: tuple[int, int] | None = None

    def out_data(self, i: int) -> bytes:
        ref = self.outs[i].get("d") if i < len(self.outs) else None
        if ref is None:
            return b""
        off, length = ref
        return bytes(memoryview(self.data)[off:off + length])


@dataclass
class _Target:
    osd: int
    addr: str
    epoch: int = field(compare=False)


class Objecter:
    def __init__(self, entity: str, client_id: str, request_map: Any) -> None:
        self.entity = entity
        self.client_id = client_id  # unique per client instance: prefix of every reqid
        self.request_map = request_map
        self.osdmap: OSDMap | None = None
        self._tids = itertools.count(1)
        self._sessions: dict[int, tuple[str, Connection]] = {}
        self._connecting: dict[int, asyncio.Future[Connection]] = {}
        self._map_changed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pg_cache: dict[tuple[int, int], list[int]] = {}

    # -- map --------------------------------------------------------------------------
    def handle_map(self, osdmap: OSDMap) -> None:
        self.osdmap = osdmap
        self._pg_cache.clear()
        fut, self._map_changed = self._map_changed, asyncio.get_running_loop().create_future()
        if not fut.done():
            fut.set_result(None)

    async def wait_for_map_change(self, timeout: float | None = None) -> None:
        self.request_map()
        await asyncio.wait_for(asyncio.shield(self._map_changed), timeout)

    def pool(self, pool_id: int) -> Pool:
        assert self.osdmap is not None
        pool = self.osdmap.pools.get(pool_id)
        if pool is None:
            raise NotFound(f"pool {pool_id} does not exist", errno.ENOENT)
        return pool

    def up_set(self, pool: Pool, ps: int) -> list[int]:
        key = (pool.id, ps)
        up = self._pg_cache.get(key)
        if up is None:
            assert self.osdmap is not None
            up = self._pg_cache[key] = self.osdmap.pg_to_up(pool, ps)
        return up

    def _target(self, pool_id: int, ps: int | None, oid: str, nspace: str) -> _Target | None:
        assert self.osdmap is not None
        pool = self.pool(pool_id)
        if ps is None:
            ps = self.osdmap.object_to_ps(pool, oid, nspace)
        up = self.up_set(pool, ps)
        if not up:
            return None
        info = self.osdmap.osds[up[0]]
        return _Target(up[0], info.addr, self.osdmap.epoch)

    # -- sessions -----------------------------------------------------------------------
    async def _session(self, target: _Target) -> Connection:
        cached = self._sessions.get(target.osd)
        if cached is not None and cached[0] == target.addr and not cached[1].closed:
            return cached[1]
        pending = self._connecting.get(target.osd)
        if pending is not None:
            return await asyncio.shield(pending)
        fut: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
        self._connecting[target.osd] = fut
        try:
            host, port = split_addr(target.addr)
            conn = await connect(host, port, None, name=f"osd.{target.osd}", timeout=5.0)
            reply = await conn.request(Msg.HELLO, {"protocol": PROTOCOL_VERSION, "entity": self.entity,
                                                   "auth": [AUTH_NONE]}, timeout=5.0)
            if reply.type != Msg.HELLO_REPLY:
                conn.close()
                raise ShoalError(f"osd.{target.osd} refused the session: {reply.meta.get('msg')}",
                                 -int(reply.meta.get("err", -errno.EACCES)))
            self._sessions[target.osd] = (target.addr, conn)
            fut.set_result(conn)
            return conn
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()
            raise
        finally:
            del self._connecting[target.osd]

    # -- ops --------------------------------------------------------------------------------
    async def op(self, pool_id: int, oid: str, nspace: str, ops: list[dict[str, Any]],
                 data: bytes | bytearray | memoryview = b"", ps: int | None = None,
                 timeout: float | None = None) -> OpReply:
        reqid = f"{self.client_id}:{next(self._tids)}"
        meta = {"pool": pool_id, "oid": oid, "ns": nspace, "ops": ops, "reqid": reqid}
        if ps is not None:
            meta["ps"] = ps
        try:
            return await asyncio.wait_for(self._drive(meta, data, pool_id, ps, oid, nspace), timeout or None)
        except TimeoutError as exc:
            raise TimedOut(f"operation on {oid!r} in pool {pool_id} timed out", errno.ETIMEDOUT) from exc

    async def _drive(self, meta: dict[str, Any], data: bytes | bytearray | memoryview, pool_id: int,
                     ps: int | None, oid: str, nspace: str) -> OpReply:
        request: asyncio.Future[Frame] | None = None
        target: _Target | None = None
        try:
            while True:
                if request is None:
                    target = self._target(pool_id, ps, oid, nspace)
                    if target is None:  # no OSD of this PG is up: wait for the map to change
                        await self.wait_for_map_change()
                        continue
                    try:
                        conn = await self._session(target)
                    except (TimeoutError, OSError, ShoalError) as exc:
                        log.debug("event=session_failed osd=%d error=%r", target.osd, exc)
                        await self._pause_for_map()
                        continue
                    meta["epoch"] = target.epoch
                    request = asyncio.ensure_future(conn.request(Msg.OSD_OP, dict(meta), data))
                changed = self._map_changed
                done, _ = await asyncio.wait({request, changed}, return_when=asyncio.FIRST_COMPLETED)
                if request in done:
                    try:
                        reply = request.result()
                    except Shutdown:
                        request = None
                        await self._pause_for_map()
                        continue
                    request = None
                    if reply.type == Msg.ERROR:
                        return OpReply(int(reply.meta.get("err", -errno.EIO)), [], b"")
                    if reply.meta.get("retry"):
                        assert self.osdmap is not None
                        if int(reply.meta.get("epoch", 0)) > self.osdmap.epoch:
                            await self.wait_for_map_change(5.0)
                        else:
                            await asyncio.sleep(0.05)
                        continue
                    version = reply.meta.get("version")
                    return OpReply(int(reply.meta["r"]), reply.meta.get("outs", []), reply.data,
                                   tuple(version) if version else None)
                # The map changed: resend only if the primary moved.
                new_target = self._target(pool_id, ps, oid, nspace)
                if new_target is None or target is None or (new_target.osd, new_target.addr) != (target.osd, target.addr):
                    request.cancel()
                    request = None
        finally:
            if request is not None:
                request.cancel()

    async def _pause_for_map(self) -> None:
        try:
            await self.wait_for_map_change(1.0)
        except TimeoutError:
            pass

    async def close(self) -> None:
        for _, conn in self._sessions.values():
            conn.close()
        self._sessions.clear()

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
import os
from dataclasses import dataclass, field
from typing import Any

from shoal.auth.tickets import Ticket
from shoal.client.watch import Lingers
from shoal.errors import NotFound, ShoalError, Shutdown, TimedOut
from shoal.net.connection import Connection, connect, split_addr
from shoal.net.handshake import Identity, service_handshake
from shoal.net.sessions import SessionCache
from shoal.placement.osdmap import OSDMap, Pool
from shoal.wire.frame import Frame
from shoal.wire.messages import Msg
from shoal.wire.osd_op import SNAP_HEAD

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


@dataclass(eq=False)
class _Op:
    meta: dict[str, Any]
    data: bytes | bytearray | memoryview
    pool_id: int
    ps: int | None
    oid: str
    nspace: str
    result: asyncio.Future[OpReply]
    target: _Target | None = None
    request: asyncio.Future[Frame] | None = None
    retry: asyncio.TimerHandle | None = None
    session_losses: int = 0


class Objecter:
    def __init__(self, identity: Identity, tickets: dict[str, Ticket], client_id: str, request_map: Any) -> None:
        self.identity = identity
        self.tickets = tickets  # kept fresh by the MonClient
        self.entity = identity.entity
        self.client_id = client_id  # unique per client instance: prefix of every reqid
        self.request_map = request_map
        self.osdmap: OSDMap | None = None
        self._tids = itertools.count(1)
        self._sessions = SessionCache()
        self._map_changed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pg_cache: dict[tuple[int, int], list[int]] = {}
        self._inflight: dict[str, _Op] = {}
        self.lingers = Lingers(self)  # watches (shoal/client/watch.py)
        # This instance's address nonce (`ip:0/nonce`, shoal/placement/blocklist.py): sent with
        # every op so OSDs can check the blocklist; the watches' nonce, so `list_watchers`,
        # cls_lock lockers and blocklist entries all name the client the same way.
        # Drawn from the OS, not the random module: hypothesis reseeds that per example, and two
        # clients of one process sharing a nonce would share an address (and a fence).
        self.nonce = int.from_bytes(os.urandom(4), "little") & 0x7FFFFFFF or 1
        self.lingers.nonce = self.nonce
        self.blocklisted = False  # an OSD answered ESHUTDOWN: another client fenced us

    # -- map --------------------------------------------------------------------------
    def handle_map(self, osdmap: OSDMap) -> None:
        self.osdmap = osdmap
        self._pg_cache.clear()
        fut, self._map_changed = self._map_changed, asyncio.get_running_loop().create_future()
        if not fut.done():
            fut.set_result(None)
        self._retarget_all()
        self.lingers.handle_map()

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
        async def open_() -> Connection:
            host, port = split_addr(target.addr)
            conn = await connect(host, port, self.lingers.handle_frame, name=f"osd.{target.osd}", timeout=5.0)
            try:
                await service_handshake(conn, self.identity, self.tickets.get("osd"), f"osd.{target.osd}", 5.0)
            except (ShoalError, OSError):
                conn.close()
                raise
            return conn

        return await self._sessions.get(target.osd, target.addr, open_)

    # -- ops --------------------------------------------------------------------------------
    async def op(self, pool_id: int, oid: str, nspace: str, ops: list[dict[str, Any]],
                 data: bytes | bytearray | memoryview = b"", ps: int | None = None,
                 timeout: float | None = None, snapc: tuple[int, list[int]] | None = None,
                 snap: int | None = None) -> OpReply:
        reqid = f"{self.client_id}:{next(self._tids)}"
        meta: dict[str, Any] = {"pool": pool_id, "oid": oid, "ns": nspace, "ops": ops, "reqid": reqid,
                                "nonce": self.nonce}
        if ps is not None:
            meta["ps"] = ps
        if snapc is not None and snapc[0]:
            meta["snapc"] = [snapc[0], list(snapc[1])]
        if snap is not None and snap != SNAP_HEAD:
            meta["snap"] = snap
        op = _Op(meta, data, pool_id, ps, oid, nspace, asyncio.get_running_loop().create_future())
        self._inflight[reqid] = op
        self._send(op)
        try:
            if timeout:
                return await asyncio.wait_for(asyncio.shield(op.result), timeout)
            return await op.result
        except TimeoutError as exc:
            raise TimedOut(f"operation on {oid!r} in pool {pool_id} timed out", errno.ETIMEDOUT) from exc
        finally:
            self._finish(op)

    def _finish(self, op: _Op) -> None:
        self._inflight.pop(op.meta["reqid"], None)
        if op.request is not None:
            op.request.cancel()
            op.request = None
        if op.retry is not None:
            op.retry.cancel()
            op.retry = None

    def _send(self, op: _Op) -> None:
        """(Re)send `op` to its current primary, or park it until the map changes."""
        if op.result.done():
            return
        if op.request is not None:
            op.request.cancel()
            op.request = None
        try:
            op.target = self._target(op.pool_id, op.ps, op.oid, op.nspace)
        except NotFound as exc:
            op.result.set_exception(exc)
            return
        if op.target is None:
            self.request_map()  # no OSD of this PG is up: the next map may have one
            return
        cached = self._sessions.cached(op.target.osd, op.target.addr)
        if cached is not None:
            self._start(op, cached)
        else:
            task = asyncio.ensure_future(self._connect_then_send(op, op.target))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _connect_then_send(self, op: _Op, target: _Target) -> None:
        try:
            conn = await self._session(target)
        except (OSError, ShoalError) as exc:
            log.debug("event=session_failed osd=%d error=%r", target.osd, exc)
            self._retry_later(op, 0.5)
            return
        if op.target is target and not op.result.done():
            self._start(op, conn)

    def _start(self, op: _Op, conn: Connection) -> None:
        assert op.target is not None
        op.meta["epoch"] = op.target.epoch
        try:
            op.request = conn.start_request(Msg.OSD_OP, dict(op.meta), op.data)
        except Shutdown:
            self._retry_later(op, 0.2)
            return
        op.request.add_done_callback(lambda f, op=op: self._on_reply(op, f))

    def _retry_later(self, op: _Op, delay: float) -> None:
        """Resend after `delay` unless a new map re-targets the op first."""
        if op.retry is not None:
            op.retry.cancel()
        self.request_map()
        op.retry = asyncio.get_running_loop().call_later(delay, self._send, op)

    def _on_reply(self, op: _Op, fut: asyncio.Future[Frame]) -> None:
        if fut.cancelled() or op.request is not fut or op.result.done():
            return
        op.request = None
        exc = fut.exception()
        if exc is not None:
            # A session can close under a live OSD (its ticket expired): resend at once the
            # first time; after that the OSD is likely gone and a new map is due.
            op.session_losses += 1
            self._retry_later(op, 0.0 if op.session_losses == 1 else 0.5)
            return
        reply = fut.result()
        if reply.type == Msg.ERROR:
            op.result.set_result(OpReply(int(reply.meta.get("err", -errno.EIO)), [], b""))
            return
        if reply.meta.get("retry"):
            assert self.osdmap is not None
            newer = int(reply.meta.get("epoch", 0)) > self.osdmap.epoch
            self._retry_later(op, 2.0 if newer else 0.05)
            return
        r = int(reply.meta.get("r", 0))
        if r == -errno.ESHUTDOWN:
            self._note_blocklisted(op)
        elif self.blocklisted and r >= 0:
            self.blocklisted = False  # unfenced (osd blocklist rm / expiry)
        version = reply.meta.get("version")
        op.result.set_result(OpReply(r, reply.meta.get("outs", []), reply.data,
                                     tuple(version) if version else None))

    def _note_blocklisted(self, op: _Op) -> None:
        """The OSD refused us as blocklisted (EBLOCKLISTED): the op fails with ESHUTDOWN at once
        (no resend: it would be refused again) and later ops still try, so that an operator's
        `osd blocklist rm` gives the client its access back."""
        if not self.blocklisted:
            log.warning("event=blocklisted client=%s nonce=%d oid=%s: this client was fenced "
                        "(osd blocklist); its ops fail with ESHUTDOWN", self.entity, self.nonce, op.oid)
        self.blocklisted = True

    def _retarget_all(self) -> None:
        """After a map change: resend every op whose primary moved (or that was parked)."""
        for op in list(self._inflight.values()):
            new = self._target(op.pool_id, op.ps, op.oid, op.nspace) if op.pool_id in self.osdmap.pools else None
            old = op.target
            if old is None or new is None or (new.osd, new.addr) != (old.osd, old.addr) or op.request is None:
                self._send(op)

    async def close(self) -> None:
        await self.lingers.close()
        self._sessions.close_all()

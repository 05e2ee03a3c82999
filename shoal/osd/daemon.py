"""The OSD daemon: serves object ops for the PGs it is primary of, replicates, recovers.

One asyncio loop; store commits run on the group committer's thread and large reads
on a small thread pool, so disk work never stalls other clients.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import logging
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

from shoal.auth import negotiate
from shoal.auth.caps_osd import OSDCap
from shoal.auth.cephx_core import AuthError, required_for
from shoal.auth.cephx_service import ServiceAuthServer
from shoal.auth.tickets import ServiceSecrets, Ticket
from shoal.cls.registry import RD, WR, lookup
from shoal.errors import NotFound, ShoalError, Shutdown
from shoal.net.connection import Connection, connect, serve, split_addr
from shoal.net.handshake import Identity, mon_handshake, renew_tickets, service_handshake
from shoal.net.serving import protocol_ok, serve_frame
from shoal.net.sessions import SessionCache
from shoal.osd.committer import GroupCommitter
from shoal.osd.fencing import EBLOCKLISTED, fenced, newly_blocklisted, sender_addr
from shoal.osd.object_context import ObjectContext, context_at_snap
from shoal.osd.ops import execute, vector_writes
from shoal.osd.pg import PG, IntervalChanged
from shoal.osd.snaps import parse_snapc
from shoal.osd.store.base import HEAD, ObjectId, ObjectStore
from shoal.osd.store.transaction import Transaction
from shoal.osd.watch import WatchService
from shoal.placement.osdmap import OSDMap, parse_pgid
from shoal.wire.frame import Frame
from shoal.wire.messages import AUTH_NONE, Msg
from shoal.wire.osd_op import ALL_NSPACES, CALL, PG_OPS, READ_OPS, SNAP_HEAD, WATCH_OPS, WRITE_OPS

log = logging.getLogger("shoal.osd")
PEER_MESSAGES = frozenset({Msg.REP_OP, Msg.PG_QUERY})  # only other OSDs may send these

INLINE_READ_LIMIT = 256 * 1024  # larger reads run on the reader pool


class OSD:
    def __init__(self, whoami: int, store: ObjectStore, conf: Callable[[str], Any], mon_addrs: list[str],
                 bind_host: str = "127.0.0.1", host: str | None = None, identity: Identity | None = None) -> None:
        self.whoami = whoami
        self.identity = identity or Identity(f"osd.{whoami}", None, [AUTH_NONE], ["crc"])
        # Rotating service secrets (a non-authoritative copy, refreshed from the monitor)
        # verify client tickets without asking the monitor.
        self.secrets = ServiceSecrets(float(conf("auth_service_ticket_ttl") or 3600.0), ["osd"])
        self.service_auth = ServiceAuthServer(
            "osd", self.secrets, time.time, required=self._required, name=f"osd.{whoami}")
        self.tickets: dict[str, Ticket] = {}
        self.mon_auth: Any = None
        self._caps_cache: dict[str, OSDCap] = {}
        self._handlers = {Msg.OSD_OP: self._osd_op, Msg.REP_OP: self._rep_op, Msg.PG_QUERY: self._pg_query}
        self.store = store
        self.conf = conf
        self.mon_addrs = mon_addrs
        self.bind_host = bind_host
        self.host = host or socket.gethostname()
        self.addr = ""
        self.uuid = str(uuid.uuid4())
        self.osdmap = OSDMap(fsid="", epoch=0)
        self.pgs: dict[str, PG] = {}
        self.committer = GroupCommitter(store)
        self.readers = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="read")
        self.mon: Connection | None = None
        self.peers = SessionCache()
        self._map_lock = asyncio.Lock()
        self._epoch_changed = asyncio.Condition()
        self.ready_epoch = 0  # the newest map whose PG changes are fully applied
        self._rebooting = False
        self.boot_epoch = 0  # epoch of our last completed boot; 0 while booting
        self._tasks: list[asyncio.Task[Any]] = []
        self._stats_event = asyncio.Event()
        self.server: asyncio.Server | None = None
        self.io = {"rd": 0, "wr": 0, "rd_bytes": 0, "wr_bytes": 0}
        self.watches = WatchService(self)  # watch/notify state, in memory only (shoal/osd/watch.py)
        self._handlers[Msg.NOTIFY_ACK] = self.watches.handle_ack

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        self.store.mount()
        for coll in self.store.list_collections():
            pool_id, ps = parse_pgid(coll)
            pg = PG(self, pool_id, ps)
            pg.load()
            self.pgs[coll] = pg
        self.server = await serve(self.bind_host, 0, self._handle, name=f"osd.{self.whoami}")
        port = self.server.sockets[0].getsockname()[1]
        self.addr = f"{self.bind_host}:{port}"
        await self._connect_mon()
        self._tasks.append(asyncio.create_task(self._beacon_loop()))
        log.info("event=started osd=%d addr=%s pgs=%d", self.whoami, self.addr, len(self.pgs))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for pg in self.pgs.values():
            pg.stop()
        if self.server:
            self.server.close()
        if self.mon:
            self.mon.close()
        self.committer.shutdown()
        self.readers.shutdown(wait=True)
        self.store.umount()

    # -- monitor session ------------------------------------------------------------------
    async def _connect_mon(self) -> None:
        last: Exception | None = None
        for _ in range(100):
            for addr in self.mon_addrs:
                host, port = split_addr(addr)
                try:
                    conn = await connect(host, port, self._handle_mon, name="mon")
                    self.mon_auth, _ = await mon_handshake(conn, self.identity, services=["osd"])
                    self.tickets.update(self.mon_auth.tickets)
                    if self.mon_auth.method != AUTH_NONE:
                        await self._refresh_secrets(conn)
                    self.mon = conn
                    conn.send(Msg.MON_SUBSCRIBE, {"what": "osdmap", "start": self.osdmap.epoch})
                    reply = await conn.request(Msg.OSD_BOOT, {
                        "osd": self.whoami, "addr": self.addr, "host": self.host, "uuid": self.uuid,
                        "weight": 1.0}, timeout=10)
                    await self.wait_for_epoch(int(reply.meta["epoch"]))
                    self.boot_epoch = int(reply.meta["epoch"])
                    self._tasks.append(asyncio.create_task(self._watch_mon(conn)))
                    if self.mon_auth.method != AUTH_NONE:
                        self._tasks.append(asyncio.create_task(self._auth_refresh_loop(conn)))
                    return
                except (TimeoutError, OSError, ShoalError) as exc:
                    last = exc
            await asyncio.sleep(0.2)
        raise Shutdown(f"osd.{self.whoami}: cannot reach a monitor at {self.mon_addrs}: {last}")

    async def _refresh_secrets(self, conn: Connection) -> None:
        reply = await conn.request(Msg.ROTATING_REQUEST, self.mon_auth.rotating_request(), timeout=10)
        if reply.type != Msg.ROTATING_REPLY:
            raise ShoalError(f"monitor refused rotating secrets: {reply.meta.get('msg')}", errno.EACCES)
        self.secrets.update_from(self.mon_auth.handle_rotating_reply(reply.meta))

    async def _auth_refresh_loop(self, conn: Connection) -> None:
        """Keep service secrets and our own tickets fresh (a quarter ttl ahead)."""
        while not conn.closed:
            await asyncio.sleep(max(1.0, self.secrets.ttl / 4))
            try:
                await self._refresh_secrets(conn)
                self.tickets.update(await renew_tickets(conn, self.mon_auth, ["osd"]))
            except (ShoalError, OSError) as exc:
                log.warning("event=auth_refresh_failed osd=%d error=%r", self.whoami, exc)

    def _required(self, entity: str) -> str:
        return required_for(entity, str(self.conf("auth_cluster_required") or "cephx"),
                            str(self.conf("auth_service_required") or "cephx"))

    def _boot_again(self, epoch: int) -> None:
        """The map says we are down while we run (a stall, or `ceph osd down`): boot again,
        as Ceph's OSDs do when "wrongly marked me down"."""
        if self._rebooting:
            return
        self._rebooting = True
        log.warning("event=wrongly_marked_down osd=%d epoch=%d", self.whoami, epoch)

        async def boot() -> None:
            try:
                assert self.mon is not None
                reply = await self.mon.request(Msg.OSD_BOOT, {"osd": self.whoami, "addr": self.addr,
                                                              "host": self.host, "uuid": self.uuid,
                                                              "weight": 1.0}, timeout=10)
                self.boot_epoch = int(reply.meta["epoch"])
            except (ShoalError, OSError) as exc:
                log.warning("event=reboot_failed osd=%d error=%r", self.whoami, exc)
            finally:
                self._rebooting = False

        task = asyncio.create_task(boot())
        self._tasks.append(task)

    async def _watch_mon(self, conn: Connection) -> None:
        await conn.wait_closed()
        log.warning("event=mon_session_lost osd=%d", self.whoami)
        await self._connect_mon()

    async def _handle_mon(self, conn: Connection, frame: Frame) -> None:
        if frame.type == Msg.OSDMAP:
            await self._handle_map(OSDMap.from_dict(frame.meta["map"]))

    async def wait_for_epoch(self, epoch: int, timeout: float = 30.0) -> None:
        if self.ready_epoch >= epoch:
            return
        if self.mon is not None and not self.mon.closed:
            self.mon.send(Msg.MON_SUBSCRIBE, {"what": "osdmap", "start": self.osdmap.epoch})
        async with self._epoch_changed:
            await asyncio.wait_for(self._epoch_changed.wait_for(lambda: self.ready_epoch >= epoch), timeout)

    # -- OSD map ---------------------------------------------------------------------------
    async def _handle_map(self, new: OSDMap) -> None:
        async with self._map_lock:
            if new.epoch <= self.osdmap.epoch:
                return
            old, self.osdmap = self.osdmap, new
            if newly_blocklisted(old, new):
                self.watches.drop_blocklisted(new)  # before any op is served under this map
            me = new.osds.get(self.whoami)
            creating: list[PG] = []
            changes: list[tuple[PG, list[int], tuple[Any, ...]]] = []
            live: set[str] = set()
            for pool in new.pools.values():
                for ps in range(pool.pg_num):
                    pgid = f"{pool.id}.{ps:x}"
                    pg = self.pgs.get(pgid)
                    up = new.pg_to_up(pool, ps) if me is not None and me.up else []
                    if pg is None and self.whoami not in up:
                        continue
                    live.add(pgid)
                    if pg is None:
                        pg = PG(self, pool.id, ps)
                        creating.append(pg)
                    interval = (tuple(up), tuple(new.osds[o].up_from for o in up), pool.size, pool.min_size)
                    if interval != pg.interval:
                        changes.append((pg, up, interval))
            if creating:
                txn = Transaction()
                for pg in creating:
                    pg.add_create(txn)
                await self.committer.submit(txn)
                for pg in creating:
                    self.pgs[pg.pgid] = pg
            for pg, up, interval in changes:
                pg.on_new_interval(up, interval, new.epoch)
            trimming = {pid for pid, pool in new.pools.items() if pool.removed_snaps and (
                pid not in old.pools or len(old.pools[pid].removed_snaps) != len(pool.removed_snaps))}
            for pg in self.pgs.values():
                if pg.pool_id in trimming:
                    pg.kick_trim()
            await self._remove_deleted_pools(live)
            self.ready_epoch = new.epoch
            if (me is not None and not me.up and self.boot_epoch and new.epoch > self.boot_epoch
                    and self.mon is not None and not self.mon.closed):
                self._boot_again(new.epoch)
        async with self._epoch_changed:
            self._epoch_changed.notify_all()
        self.stats_changed()

    async def _remove_deleted_pools(self, live: set[str]) -> None:
        gone = [pgid for pgid, pg in self.pgs.items() if pg.pool_id not in self.osdmap.pools]
        if not gone:
            return
        txn = Transaction()
        for pgid in gone:
            self.pgs.pop(pgid).stop()
            txn.remove_collection(pgid)
        await self.committer.submit(txn)
        log.info("event=pgs_removed count=%d", len(gone))

    # -- peers -----------------------------------------------------------------------------
    async def _peer_conn(self, osd_id: int) -> Connection:
        info = self.osdmap.osds.get(osd_id)
        if info is None or not info.up:
            raise Shutdown(f"osd.{osd_id} is not up")

        async def open_() -> Connection:
            host, port = split_addr(info.addr)
            conn = await connect(host, port, self._handle, name=f"osd.{osd_id}")
            try:
                await service_handshake(conn, self.identity, self.tickets.get("osd"), f"osd.{osd_id}")
            except (ShoalError, OSError):
                conn.close()
                raise
            conn.info.update(entity=f"osd.{osd_id}", authenticated=True, osdcap=None)
            return conn

        return await self.peers.get(osd_id, info.addr, open_)

    async def peer_request(self, osd_id: int, type_: int, meta: dict[str, Any],
                           data: bytes | memoryview = b"", timeout: float | None = None) -> Frame:
        try:
            conn = await self._peer_conn(osd_id)
            return await conn.request(type_, meta, data, timeout=timeout)
        except (TimeoutError, OSError) as exc:
            raise Shutdown(f"osd.{osd_id} unreachable: {exc}") from exc

    def report_failure(self, osd_id: int, reason: Any) -> None:
        log.warning("event=peer_failed osd=%d peer=osd.%d reason=%r", self.whoami, osd_id, reason)
        if self.mon is not None and not self.mon.closed:
            self.mon.send(Msg.OSD_FAILURE, {"reporter": self.whoami, "target": osd_id,
                                            "epoch": self.osdmap.epoch})

    # -- statistics --------------------------------------------------------------------------
    def stats_changed(self) -> None:
        self._stats_event.set()

    async def _beacon_loop(self) -> None:
        interval = float(self.conf("osd_heartbeat_interval") or 1.0)
        while True:
            try:
                await asyncio.wait_for(self._stats_event.wait(), interval)
                await asyncio.sleep(0.05)  # coalesce a burst of PG state changes
            except TimeoutError:
                pass
            self._stats_event.clear()
            self._send_beacon()

    def _send_beacon(self) -> None:
        if self.mon is None or self.mon.closed:
            return
        total, used, avail = self.store.statfs()
        pgs = [pg.stat() for pg in self.pgs.values() if pg.is_primary()]
        primary = sum(1 for pg in self.pgs.values() if pg.state != "stray")
        try:
            self.mon.send(Msg.OSD_BEACON, {
                "osd": self.whoami, "epoch": self.osdmap.epoch, "pgs": pgs,
                "stat": {"total": total, "used": used, "avail": avail, "num_pgs": primary},
                "io": dict(self.io)})
        except Shutdown:
            pass

    # -- incoming frames -------------------------------------------------------------------------
    async def _handle(self, conn: Connection, frame: Frame) -> None:
        refused = await serve_frame(
            conn, frame, log, handshake={Msg.HELLO: self._hello_in}, handlers=self._handlers,
            daemons_only=PEER_MESSAGES, is_daemon=lambda c, f: str(c.info.get("entity")).startswith("osd."))
        if refused is not None and refused.errno == errno.EAGAIN and self.mon is not None and not self.mon.closed:
            # The client's ticket is sealed with a secret newer than ours: fetch the new ones.
            asyncio.ensure_future(self._refresh_secrets(self.mon)).add_done_callback(
                lambda f: f.cancelled() or f.exception())

    def _hello_in(self, conn: Connection, frame: Frame) -> None:
        meta = frame.meta
        if not protocol_ok(conn, frame, log):
            return
        if "entity" in conn.info:
            raise AuthError("HELLO repeated on one connection")
        reply, peer = self.service_auth.handle_hello(meta)
        mode = negotiate.choose_mode(list(meta.get("modes") or ["crc"]),
                                     str(self.conf("ms_mode") or "crc secure").split())
        reply.update(osd=self.whoami, mode=mode)
        conn.reply(frame, Msg.HELLO_REPLY, reply)
        if peer.method != AUTH_NONE:
            conn.install_session(*peer.session(negotiate.is_secure(mode), negotiate.context(mode)))
        osdcap = None
        if not peer.entity.startswith("osd.") or peer.method == AUTH_NONE:
            osdcap = self._caps_cache.get(peer.caps)
            if osdcap is None:
                osdcap = self._caps_cache[peer.caps] = OSDCap.for_session(peer.caps)
        conn.info.update(entity=peer.entity, authenticated=True, osdcap=osdcap, global_id=peer.global_id)
        conn.name = peer.entity
        if peer.expires is not None:
            # The session ends with its ticket: a deleted entity cannot get a new one.
            local_expiry = peer.expires - time.time()
            asyncio.get_running_loop().call_later(max(local_expiry, 0.0), conn.close)

    def _allowed(self, conn: Connection, pool: Any, nspace: str, oid: str, ops: list[dict[str, Any]]) -> bool:
        """OSD caps check of one op vector (peers with `profile osd` skip it)."""
        osdcap: OSDCap | None = conn.info.get("osdcap")
        if osdcap is None:
            return True
        reads = writes = False
        calls: list[tuple[str, str, bool, bool]] = []
        for op in ops:
            name = op.get("op")
            if name in READ_OPS or name in WATCH_OPS or name == "pgls":
                reads = True
            elif name in WRITE_OPS:
                writes = True
            elif name == CALL:
                meth = lookup(str(op.get("cls")), str(op.get("method")))
                flags = meth.flags if meth is not None else RD | WR
                calls.append((str(op.get("cls")), str(op.get("method")), bool(flags & RD), bool(flags & WR)))
        return osdcap.allows(pool.name, nspace, oid, read=reads, write=writes, cls_calls=calls,
                             app_metadata=pool.application, addr=conn.peer)

    def _refused_fenced(self, conn: Connection, frame: Frame) -> bool:
        """Answer -ESHUTDOWN if the current map blocklists the sender (shoal/osd/fencing.py)."""
        addr = fenced(self.osdmap, conn, frame.meta)
        if addr is None:
            return False
        log.info("event=op_refused reason=blocklisted client=%s addr=%s oid=%s epoch=%d", conn.name, addr,
                 frame.meta.get("oid"), self.osdmap.epoch)
        conn.reply(frame, Msg.OSD_OP_REPLY, {"r": -EBLOCKLISTED, "outs": [], "epoch": self.osdmap.epoch})
        return True

    def _retry(self, conn: Connection, frame: Frame) -> None:
        conn.reply(frame, Msg.OSD_OP_REPLY, {"r": -errno.EAGAIN, "epoch": self.osdmap.epoch, "retry": True})

    async def _osd_op(self, conn: Connection, frame: Frame) -> None:
        m = frame.meta
        try:
            await self.wait_for_epoch(int(m.get("epoch", 0)))
        except TimeoutError:
            self._retry(conn, frame)  # a map we cannot get (yet): the client waits and resends
            return
        if self._refused_fenced(conn, frame):
            return
        pool = self.osdmap.pools.get(int(m["pool"]))
        if pool is None:
            conn.reply(frame, Msg.OSD_OP_REPLY, {"r": -errno.ENOENT, "epoch": self.osdmap.epoch})
            return
        ops: list[dict[str, Any]] = m["ops"]
        name, nspace = str(m.get("oid", "")), str(m.get("ns", ""))
        listing = any(op.get("op") in PG_OPS for op in ops)
        if listing and len(ops) != 1:
            conn.reply(frame, Msg.OSD_OP_REPLY, {"r": -errno.EINVAL, "epoch": self.osdmap.epoch})
            return
        # A listing names no object: check it as a listing of the pool (namespace), whatever
        # name the message carries, or an object-prefix grant would open the whole pool.
        if not self._allowed(conn, pool, nspace, "" if listing else name, ops):
            conn.reply(frame, Msg.OSD_OP_REPLY, {"r": -errno.EPERM, "epoch": self.osdmap.epoch})
            return
        if listing:
            ps = int(m["ps"])
        else:
            ps = self.osdmap.object_to_ps(pool, name, nspace)
        pg = self.pgs.get(f"{pool.id}.{ps:x}")
        while True:
            if pg is None or not pg.is_primary():
                self._retry(conn, frame)
                return
            if pg.active.is_set():
                break
            await pg.active.wait()
        if ops and ops[0].get("op") in WATCH_OPS:
            await self.watches.handle_op(conn, frame, pg, ObjectId(name, nspace))
            return
        if ops and ops[0].get("op") == "pgls":
            self._pgls(conn, frame, pg)
            return
        key = (nspace, name)
        await pg.lock_object(key)
        try:
            await self._run_ops(conn, frame, pg, pool, ObjectId(name, nspace), ops)
        except IntervalChanged:
            pass  # no reply: the client resends to the new primary, which knows it by reqid
        finally:
            pg.unlock_object(key)

    async def _run_ops(self, conn: Connection, frame: Frame, pg: PG, pool: Any, oid: ObjectId,
                       ops: list[dict[str, Any]]) -> None:
        m = frame.meta
        if self._refused_fenced(conn, frame):  # again under the object lock: a fence may have arrived
            return
        writes = vector_writes(ops)
        reqid = m.get("reqid")
        if writes and reqid is not None:
            dup = pg.log.find_dup(str(reqid))
            if dup is not None:
                conn.reply(frame, Msg.OSD_OP_REPLY, {"r": dup.result, "outs": [], "dup": True,
                                                     "version": list(dup.version)})
                return
        data = memoryview(frame.data) if frame.data else memoryview(b"")
        snapid = m.get("snap")
        if snapid is not None and int(snapid) != SNAP_HEAD:
            if writes:
                conn.reply(frame, Msg.OSD_OP_REPLY, {"r": -errno.EROFS, "epoch": self.osdmap.epoch})
                return
            at_snap = context_at_snap(self.store, pg.coll, oid, int(snapid))
            if at_snap is None:
                conn.reply(frame, Msg.OSD_OP_REPLY, {"r": -errno.ENOENT, "outs": [{"r": -errno.ENOENT}]})
                return
            ctx = at_snap
        else:
            try:
                snapc = parse_snapc(m.get("snapc"))
            except ShoalError as exc:
                conn.reply(frame, Msg.OSD_OP_REPLY, {"r": -exc.errno, "epoch": self.osdmap.epoch})
                return
            ctx = ObjectContext(self.store, pg.coll, oid, snapc, snapshots=pool.snap_seq > 0,
                                removed_snaps=pool.removed_snap_set())
            if any(op.get("op") == CALL for op in ops):
                ctx.origin = sender_addr(conn, m)  # what cls_lock records as the locker's address
        # Large reads run on the reader pool so the loop keeps serving; small ones inline.
        big = any(op.get("op") == "read" and min(int(op.get("len", 0)) or ctx.size, ctx.size) > INLINE_READ_LIMIT
                  for op in ops)
        if big:
            res = await asyncio.get_running_loop().run_in_executor(self.readers, execute, ctx, ops, data)
        else:
            res = execute(ctx, ops, data)
        if res.result < 0 or not writes or not ctx.modified:
            self.io["rd"] += 1
            out = res.data()
            self.io["rd_bytes"] += len(out)
            conn.reply(frame, Msg.OSD_OP_REPLY, {"r": res.result, "outs": res.outs}, out)
            return
        op_kind = "delete" if ctx.removed and not ctx.exists else "modify"
        delta_objects = int(ctx.exists) - int(ctx.existed)
        entry = await pg.commit_write(ctx.txn, op_kind, oid, str(reqid) if reqid is not None else None,
                                      delta_objects, ctx.size - ctx.orig_size)
        self.io["wr"] += 1
        self.io["wr_bytes"] += len(data)
        conn.reply(frame, Msg.OSD_OP_REPLY, {"r": 0, "outs": res.outs, "version": list(entry.version)},
                   res.data())
        if op_kind == "delete":
            self.watches.object_removed(pg, oid)  # its watchers learn now, not at their next ping

    def _pgls(self, conn: Connection, frame: Frame, pg: PG) -> None:
        op = frame.meta["ops"][0]
        start = op.get("start_after")
        start_oid = ObjectId(str(start[1]), str(start[0])) if start else None
        max_return = max(1, min(int(op.get("max", 1024)), 10000))
        nspace = str(frame.meta.get("ns", ""))
        every_ns = nspace == ALL_NSPACES
        names: list[list[str]] = []
        cursor, more = start_oid, True
        # Only the asked namespace's names leave the OSD; keep scanning past other
        # namespaces' objects so a page is never empty while more remain.
        while more and len(names) < max_return:
            objects, more = self.store.list_objects(pg.coll, cursor, max_return)
            if not objects:
                more = False
                break
            cursor = objects[-1]
            names += [[o.nspace, o.name] for o in objects
                      if o.snap == HEAD and (every_ns or o.nspace == nspace)]
        if len(names) > max_return:
            names, more = names[:max_return], True
        conn.reply(frame, Msg.OSD_OP_REPLY, {"r": 0, "outs": [{"r": 0, "names": names, "more": more}]})

    # -- replication and recovery (from other OSDs) ------------------------------------------
    async def _rep_op(self, conn: Connection, frame: Frame) -> None:
        pg = self.pgs.get(str(frame.meta["pgid"]))
        if pg is None:
            await self.wait_for_epoch(int(frame.meta["epoch"]))
            pg = self.pgs.get(str(frame.meta["pgid"]))
        if pg is None:
            conn.reply(frame, Msg.REP_OP_REPLY, {"r": -errno.ENOENT})
            return
        result = await pg.apply_rep_op(frame.meta, frame.data)
        conn.reply(frame, Msg.REP_OP_REPLY, {"r": result})

    async def _pg_query(self, conn: Connection, frame: Frame) -> None:
        m = frame.meta
        await self.wait_for_epoch(int(m["epoch"]))
        pg = self.pgs.get(str(m["pgid"]))
        if pg is None:
            conn.reply(frame, Msg.PG_REPLY, {"r": -errno.ENOENT})
            return
        what = m["what"]
        if what == "info":
            conn.reply(frame, Msg.PG_REPLY, {"info": pg.info.to_wire()})
        elif what == "log":
            conn.reply(frame, Msg.PG_REPLY, {"entries": [e.to_wire() for e in pg.log.entries],
                                             "tail": list(pg.log.tail)})
        elif what == "list":
            conn.reply(frame, Msg.PG_REPLY, {"names": self.list_pg_names(pg.coll)})
        elif what == "get":
            state, data = await self.read_object_state(pg.coll, str(m["nspace"]), str(m["name"]))
            conn.reply(frame, Msg.PG_REPLY, {"state": state}, data)
        elif what == "put":
            txn = self.object_state_txn(pg.coll, str(m["nspace"]), str(m["name"]), m["state"], bytes(frame.data))
            await self.committer.submit(txn)
            conn.reply(frame, Msg.PG_REPLY, {})
        elif what == "activate":
            await pg.adopt_log(m["entries"], m["tail"])
            await asyncio.get_running_loop().run_in_executor(self.readers, pg._recount)
            conn.reply(frame, Msg.PG_REPLY, {})
        else:
            conn.reply(frame, Msg.PG_REPLY, {"r": -errno.EINVAL})

    def list_pg_names(self, coll: str) -> list[tuple[str, str]]:
        """Every object name in the PG, including names whose head is gone but clones remain."""
        objects, _ = self.store.list_objects(coll)
        return sorted({(o.nspace, o.name) for o in objects})

    def _versions(self, coll: str, nspace: str, name: str) -> list[ObjectId]:
        """Head, snapdir and clones of one name, in store order."""
        out: list[ObjectId] = []
        cursor, more = ObjectId(name, nspace, HEAD - 1), True
        while more:
            objects, more = self.store.list_objects(coll, cursor, 16)
            for o in objects:
                if (o.nspace, o.name) != (nspace, name):
                    return out
                out.append(o)
            if objects:
                cursor = objects[-1]
        return out

    async def read_object_state(self, coll: str, nspace: str, name: str) -> tuple[dict[str, Any], bytes]:
        return await asyncio.get_running_loop().run_in_executor(self.readers, self._object_state, coll,
                                                                nspace, name)

    def _object_state(self, coll: str, nspace: str, name: str) -> tuple[dict[str, Any], bytes]:
        """Everything stored under one name (head, snapdir, clones) for recovery: a state
        document per version and their data concatenated in the same order."""
        versions: list[dict[str, Any]] = []
        chunks: list[bytes] = []
        for oid in self._versions(coll, nspace, name):
            try:
                st = self.store.stat(coll, oid)
            except NotFound:
                continue
            omap, _ = self.store.omap_get_vals(coll, oid)
            data = self.store.read(coll, oid, 0, 0)
            versions.append({"snap": oid.snap, "mtime": st.mtime, "attrs": self.store.getattrs(coll, oid),
                             "omap": dict(omap), "header": self.store.omap_get_header(coll, oid),
                             "len": len(data)})
            chunks.append(data)
        return {"versions": versions}, b"".join(chunks)

    def object_state_txn(self, coll: str, nspace: str, name: str, state: dict[str, Any], data: bytes) -> Transaction:
        txn = Transaction()
        for oid in self._versions(coll, nspace, name):
            txn.remove(coll, oid)
        at = 0
        for version in state.get("versions", []):
            oid = ObjectId(name, nspace, int(version["snap"]))
            length = int(version["len"])
            txn.touch(coll, oid)
            if length:
                txn.write(coll, oid, 0, data[at:at + length])
            at += length
            if version.get("attrs"):
                txn.setattrs(coll, oid, version["attrs"])
            if version.get("omap"):
                txn.omap_setkeys(coll, oid, version["omap"])
            if version.get("header"):
                txn.omap_setheader(coll, oid, version["header"])
            txn.set_mtime(coll, oid, float(version.get("mtime", time.time())))
        return txn


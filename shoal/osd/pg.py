"""A placement group on one OSD: ordering, replication, peering and recovery.

Primary write path: take the object's lock (FIFO, so one client's ops on an object
keep their order), check the PG log for a duplicate reqid, run the op vector, give
the result a version, then in one step (no await in between, so versions reach the
store and the replicas in order) queue the local commit and send the transaction to
every replica. Acknowledge when all of them are durable.

Peering (on every interval change, run by the new primary): collect every acting
member's info, take the member with the newest last_update as the authority, bring
the primary and then each other member level with it — by the log where it reaches
back far enough, else by copying every object — and only then serve IO. Writes
below `min_size` members wait; they are never acknowledged on too few copies.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import msgpack

from shoal.errors import ShoalError, Shutdown
from shoal.osd.object_context import ObjectContext
from shoal.osd.pg_log import LogEntry, PGInfo, PGLog, Version, ver_str
from shoal.osd.snaps import SNAPDIR, SNAPSET_KEY, clone_oid, snapdir_of, trim
from shoal.osd.store.base import HEAD, ObjectId
from shoal.osd.store.transaction import Transaction
from shoal.wire.messages import Msg
from shoal.wire.payload import attach, detach, joined

if TYPE_CHECKING:
    from shoal.osd.daemon import OSD

log = logging.getLogger("shoal.osd")

LOG_KEEP = 3000  # entries kept for dup detection and log recovery (osd_min_pg_log_entries)
LOG_TRIM_SLACK = 500  # trim in batches, not on every write
REPLICA_FAILURE_WAIT = 20.0  # seconds a write waits for the map to react to a failed replica
INFO_KEY = "info"
TRIM_BATCH = 256  # objects listed per step of the snap trimmer


class IntervalChanged(Exception):
    """The PG's acting set changed while an operation was waiting on the old one."""


def _pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def _unpack(raw: bytes) -> Any:
    return msgpack.unpackb(raw, raw=False, strict_map_key=False)


class PG:
    def __init__(self, osd: OSD, pool_id: int, ps: int) -> None:
        self.osd = osd
        self.pool_id = pool_id
        self.ps = ps
        self.pgid = f"{pool_id}.{ps:x}"
        self.coll = self.pgid
        self.up: list[int] = []
        self.interval: tuple[Any, ...] = ()
        self.interval_epoch = 0
        self.state = "inactive"
        self.info = PGInfo()
        self.log = PGLog()
        self.next_seq = 1
        self.active = asyncio.Event()
        self._interval_changed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._lock_users: dict[tuple[str, str], int] = {}
        self.rep_lock = asyncio.Lock()  # replicas apply REP_OPs strictly in arrival order
        self.num_objects = 0
        self.num_bytes = 0
        self._peering: asyncio.Task[None] | None = None
        self._trimmer: asyncio.Task[None] | None = None
        self.trimmed: set[int] = set()  # removed snap ids this primary has trimmed from the PG

    # -- persistence ------------------------------------------------------------------
    def load(self) -> None:
        store = self.osd.store
        raw = store.get_meta(self.coll, INFO_KEY)
        if raw is not None:
            self.info = PGInfo.from_wire(_unpack(raw))
        stored = store.log_read(self.coll)
        entries = [LogEntry.from_wire(_unpack(e)) for _, e in stored]
        self.log = PGLog.from_entries(entries, self.info.log_tail)
        if stored:
            self.info.log_key = max(self.info.log_key, stored[-1][0])
        self.next_seq = self.info.last_update[1] + 1
        self._recount()

    def _recount(self) -> None:
        objects, _ = self.osd.store.list_objects(self.coll)
        self.num_objects = sum(1 for o in objects if o.snap == HEAD)
        self.num_bytes = sum(self.osd.store.stat(self.coll, o).size for o in objects)

    def add_create(self, txn: Transaction) -> None:
        txn.create_collection(self.coll)
        txn.set_meta(self.coll, INFO_KEY, _pack(self.info.to_wire()))

    # -- roles --------------------------------------------------------------------------
    @property
    def primary(self) -> int | None:
        return self.up[0] if self.up else None

    def is_primary(self) -> bool:
        return self.primary == self.osd.whoami

    @property
    def replicas(self) -> list[int]:
        return self.up[1:]

    def pool(self) -> Any:
        return self.osd.osdmap.pools.get(self.pool_id)

    def on_new_interval(self, up: list[int], interval: tuple[Any, ...], epoch: int) -> None:
        """The acting set (or a member's incarnation) changed: restart peering."""
        self.up, self.interval, self.interval_epoch = up, interval, epoch
        self.active.clear()
        if not self._interval_changed.done():
            self._interval_changed.set_result(None)
        self._interval_changed = asyncio.get_running_loop().create_future()
        if self._peering is not None:
            self._peering.cancel()
            self._peering = None
        if self.is_primary():
            self.state = "peering"
            self._peering = asyncio.create_task(self._peer(interval))
        else:
            self.trimmed.clear()  # a later primary term rescans the PG
            self.state = "replica" if self.osd.whoami in up else "stray"

    def stop(self) -> None:
        if self._peering is not None:
            self._peering.cancel()
        if self._trimmer is not None:
            self._trimmer.cancel()
        if not self._interval_changed.done():
            self._interval_changed.set_result(None)

    # -- object locks -------------------------------------------------------------------
    async def lock_object(self, key: tuple[str, str]) -> None:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        self._lock_users[key] = self._lock_users.get(key, 0) + 1
        await lock.acquire()

    def unlock_object(self, key: tuple[str, str]) -> None:
        self._locks[key].release()
        users = self._lock_users[key] - 1
        if users:
            self._lock_users[key] = users
        else:
            del self._lock_users[key]
            del self._locks[key]

    # -- primary write path -------------------------------------------------------------
    def _new_entry(self, op: str, oid: ObjectId, reqid: str | None, result: int) -> LogEntry:
        version: Version = (self.osd.osdmap.epoch, self.next_seq)
        if version <= self.log.head:
            version = (self.log.head[0], self.log.head[1] + 1)
        self.next_seq = version[1] + 1
        return LogEntry(version, op, oid.name, oid.nspace, reqid, result)

    def _log_txn(self, txn: Transaction, entry: LogEntry) -> None:
        """Add the log entry, the new info and any due trim to `txn` (same atomic commit)."""
        self.log.append(entry)
        self.info.last_update = entry.version
        self.info.log_key += 1
        txn.log_append(self.coll, self.info.log_key, _pack(entry.to_wire()))
        if len(self.log.entries) > LOG_KEEP + LOG_TRIM_SLACK:
            tail = self.log.trim_to(LOG_KEEP)
            assert tail is not None
            self.info.log_tail = tail
            # The kept entries occupy the keys just below log_key.
            txn.log_trim(self.coll, self.info.log_key - len(self.log.entries))
        txn.set_meta(self.coll, INFO_KEY, _pack(self.info.to_wire()))

    async def commit_write(self, txn: Transaction, op: str, oid: ObjectId, reqid: str | None,
                           delta_objects: int, delta_bytes: int) -> LogEntry:
        """Order, persist and replicate one write; returns its log entry once it is durable
        on every member of the acting set (waiting across interval changes if need be)."""
        entry = self._new_entry(op, oid, reqid, 0)
        # Object ops only (each member logs under its own keys); payloads ride in the data segment.
        wire, chunks = detach(txn.to_wire())
        payload = joined(chunks)
        self._log_txn(txn, entry)
        self.num_objects += delta_objects
        self.num_bytes += delta_bytes
        interval_changed = self._interval_changed
        waits: list[Awaitable[Any]] = [self.osd.committer.submit(txn)]
        for replica in self.replicas:
            waits.append(self._replicate_to(replica, {
                "pgid": self.pgid, "epoch": self.osd.osdmap.epoch, "txn": wire,
                "entry": entry.to_wire()}, payload))
        gathered = asyncio.gather(*waits, return_exceptions=True)
        done, _ = await asyncio.wait({gathered, interval_changed}, return_when=asyncio.FIRST_COMPLETED)
        if gathered in done:
            failures = [r for r in gathered.result()
                        if isinstance(r, BaseException) or (hasattr(r, "meta") and r.meta.get("r", 0) < 0)]
            if not failures:
                return entry
            local = gathered.result()[0]
            if isinstance(local, BaseException):
                raise local  # the local store refused: nothing was acknowledged
            for replica, res in zip(self.replicas, gathered.result()[1:], strict=True):
                if isinstance(res, BaseException) or res.meta.get("r", 0) < 0:
                    self.osd.report_failure(replica, res)
            try:
                await asyncio.wait_for(asyncio.shield(interval_changed), REPLICA_FAILURE_WAIT)
            except TimeoutError:
                # The map did not change (the replica is alive but refused or lost the op):
                # peer again in this interval, which levels every member, then answer.
                log.warning("event=repeer pg=%s reason=replica_failed_without_map_change", self.pgid)
                self.on_new_interval(self.up, self.interval, self.interval_epoch)
        else:
            gathered.add_done_callback(lambda f: f.exception())
        # The acting set changed under us. Peering of the new interval brings every member
        # level with the authoritative log, which holds this entry if we are still primary.
        await self.wait_active()
        if not self.is_primary():
            raise IntervalChanged(self.pgid)
        return entry

    async def _replicate_to(self, replica: int, meta: dict[str, Any], payload: Any) -> Any:
        """Send one REP_OP, again on a fresh connection if the session merely closed (its
        ticket expired, say); replicas recognise a resent entry by its version."""
        for attempt in range(3):
            try:
                return await self.osd.peer_request(replica, Msg.REP_OP, dict(meta), payload)
            except Shutdown:
                if attempt == 2 or replica not in self.up:
                    raise
                await asyncio.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    async def wait_active(self, timeout: float | None = None) -> None:
        if timeout:
            await asyncio.wait_for(self.active.wait(), timeout)
        else:
            await self.active.wait()

    # -- replica write path --------------------------------------------------------------
    async def apply_rep_op(self, meta: dict[str, Any], data: Any = b"") -> int:
        """Apply a primary's transaction; returns 0 or a negative errno."""
        async with self.rep_lock:
            await self.osd.wait_for_epoch(int(meta["epoch"]))
            if self.osd.whoami not in self.up[1:]:
                return -errno.ESTALE  # we are not a replica of this PG in our (newer) map
            entry = LogEntry.from_wire(meta["entry"])
            if entry.version <= self.log.head:
                return 0  # already have it (resent after a reconnect)
            txn = Transaction.from_wire(attach(meta["txn"], data))
            self._log_txn(txn, entry)
            self.next_seq = entry.version[1] + 1
            fut = self.osd.committer.submit(txn)
        await fut
        return 0

    # -- peering ------------------------------------------------------------------------
    async def _peer(self, interval: tuple[Any, ...]) -> None:
        started = time.monotonic()
        try:
            await self._peer_once(interval)
        except asyncio.CancelledError:
            raise
        except (TimeoutError, ShoalError, OSError) as exc:
            # A member did not answer: report it and wait for the map to change.
            log.warning("event=peering_blocked pg=%s interval=%s error=%r", self.pgid, self.up, exc)
            self.state = "peering"
            await asyncio.sleep(1.0)
            if interval == self.interval:  # retry until the map changes the interval
                self._peering = asyncio.create_task(self._peer(interval))
            return
        log.info("event=active pg=%s up=%s last_update=%s state=%s took_ms=%.1f", self.pgid, self.up,
                 ver_str(self.info.last_update), self.state, (time.monotonic() - started) * 1000)

    async def _query(self, osd_id: int, what: str, **extra: Any) -> Any:
        reply = await self.osd.peer_request(osd_id, Msg.PG_QUERY, {
            "pgid": self.pgid, "epoch": self.osd.osdmap.epoch, "what": what, **extra}, timeout=10.0)
        if reply.meta.get("r", 0) < 0:
            raise ShoalError(f"pg {self.pgid} {what} query to osd.{osd_id} failed: {reply.meta.get('r')}",
                             -reply.meta["r"])
        return reply

    async def _peer_once(self, interval: tuple[Any, ...]) -> None:
        me = self.osd.whoami
        infos: dict[int, PGInfo] = {me: self.info}
        replies = await asyncio.gather(*(self._query(r, "info") for r in self.replicas))
        for replica, reply in zip(self.replicas, replies, strict=True):
            infos[replica] = PGInfo.from_wire(reply.meta["info"])
        auth = max(infos, key=lambda o: (infos[o].last_update, o == me))
        if auth != me:
            auth_log = await self._fetch_log(auth)
            await self._sync_member(me, auth, auth_log, infos[me])
        auth_log = self.log
        for replica in self.replicas:
            if replica != auth or auth == me:
                await self._sync_member(replica, me, auth_log, infos[replica])
        if interval != self.interval:
            return
        pool = self.pool()
        size = pool.size if pool else len(self.up)
        min_size = pool.min_size if pool else 1
        if len(self.up) < min_size:
            self.state = "undersized+degraded+peered"
            return  # IO stays blocked until enough members are back
        self.state = "active+clean" if len(self.up) >= size else "active+undersized+degraded"
        self.next_seq = max(self.next_seq, self.log.head[1] + 1)
        self.active.set()
        self.osd.stats_changed()
        self.kick_trim()

    async def _fetch_log(self, osd_id: int) -> PGLog:
        reply = await self._query(osd_id, "log")
        entries = [LogEntry.from_wire(e) for e in reply.meta["entries"]]
        return PGLog.from_entries(entries, tuple(reply.meta["tail"]))  # type: ignore[arg-type]

    async def _member_log(self, osd_id: int) -> PGLog:
        return self.log if osd_id == self.osd.whoami else await self._fetch_log(osd_id)

    async def _sync_member(self, target: int, source: int, auth_log: PGLog, target_info: PGInfo) -> None:
        """Make `target`'s copy of this PG equal to `source`'s (which holds `auth_log`)."""
        target_log = await self._member_log(target)
        if target_info.last_update == auth_log.head and not auth_log.divergent(target_log.entries):
            return
        names: set[tuple[str, str]]
        backfill = not auth_log.covers(target_info.last_update)
        if backfill:
            names = set(await self._list_names(source)) | set(await self._list_names(target))
        else:
            names = set(auth_log.objects_after(target_info.last_update))
            names |= {e.key for e in auth_log.divergent(target_log.entries)}
        log.info("event=recover pg=%s target=osd.%d source=osd.%d objects=%d mode=%s", self.pgid, target,
                 source, len(names), "backfill" if backfill else "log")
        self.state = "peering+recovering"
        for nspace, name in sorted(names):
            state, data = await self._get_object(source, nspace, name)
            await self._put_object(target, nspace, name, state, data)
        await self._activate_member(target, auth_log)

    async def _list_names(self, osd_id: int) -> list[tuple[str, str]]:
        if osd_id == self.osd.whoami:
            return self.osd.list_pg_names(self.coll)
        reply = await self._query(osd_id, "list")
        return [(str(n), str(name)) for n, name in reply.meta["names"]]

    async def _get_object(self, osd_id: int, nspace: str, name: str) -> tuple[dict[str, Any], bytes]:
        if osd_id == self.osd.whoami:
            return await self.osd.read_object_state(self.coll, nspace, name)
        reply = await self._query(osd_id, "get", nspace=nspace, name=name)
        return reply.meta["state"], bytes(reply.data)

    async def _put_object(self, osd_id: int, nspace: str, name: str, state: dict[str, Any], data: bytes) -> None:
        if osd_id == self.osd.whoami:
            await self.osd.committer.submit(self.osd.object_state_txn(self.coll, nspace, name, state, data))
            return
        reply = await self.osd.peer_request(osd_id, Msg.PG_QUERY, {
            "pgid": self.pgid, "epoch": self.osd.osdmap.epoch, "what": "put", "nspace": nspace,
            "name": name, "state": state}, data, timeout=60.0)
        if reply.meta.get("r", 0) < 0:
            raise ShoalError(f"pg {self.pgid}: push to osd.{osd_id} failed", -reply.meta["r"])

    async def _activate_member(self, osd_id: int, auth_log: PGLog) -> None:
        entries = [e.to_wire() for e in auth_log.entries]
        if osd_id == self.osd.whoami:
            await self.adopt_log(entries, list(auth_log.tail))
            # Lists and stats every object of the PG: not on the event loop.
            await asyncio.get_running_loop().run_in_executor(self.osd.readers, self._recount)
            return
        await self._query(osd_id, "activate", entries=entries, tail=list(auth_log.tail))

    async def adopt_log(self, entries: list[Any], tail: list[int]) -> None:
        """Replace this member's log and info with the authority's (one atomic commit)."""
        log_ = PGLog.from_entries([LogEntry.from_wire(e) for e in entries], (int(tail[0]), int(tail[1])))
        txn = Transaction()
        key = self.info.log_key
        txn.log_trim(self.coll, key)
        for entry in log_.entries:
            key += 1
            txn.log_append(self.coll, key, _pack(entry.to_wire()))
        info = PGInfo(log_.head, log_.tail, self.osd.osdmap.epoch, key)
        txn.set_meta(self.coll, INFO_KEY, _pack(info.to_wire()))
        await self.osd.committer.submit(txn)
        self.log, self.info = log_, info
        self.next_seq = max(self.next_seq, log_.head[1] + 1)

    # -- snapshot trimming (decision record 0005) -------------------------------------------
    def kick_trim(self) -> None:
        """Start trimming snapshots the pool removed, unless already running."""
        pool = self.pool()
        if (pool is None or not self.is_primary() or not pool.removed_snaps
                or (self._trimmer is not None and not self._trimmer.done())):
            return
        if pool.removed_snap_set() <= self.trimmed:
            return
        self._trimmer = asyncio.create_task(self._trim())
        self._trimmer.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _trim(self) -> None:
        while True:
            pool = self.pool()
            if pool is None or not self.is_primary():
                return
            todo = pool.removed_snap_set() - self.trimmed
            if not todo:
                return
            await self.wait_active()
            cursor: ObjectId | None = None
            more = True
            while more:
                objects, more = await asyncio.get_running_loop().run_in_executor(
                    self.osd.readers, self.osd.store.list_objects, self.coll, cursor, TRIM_BATCH)
                for oid in objects:
                    if oid.snap == SNAPDIR:
                        try:
                            await self._trim_object(ObjectId(oid.name, oid.nspace), todo)
                        except IntervalChanged:
                            return  # the next primary trims
                if objects:
                    cursor = objects[-1]
            self.trimmed |= todo
            log.info("event=snaps_trimmed pg=%s snaps=%s", self.pgid, sorted(todo))

    async def _trim_object(self, head: ObjectId, removed: frozenset[int]) -> None:
        key = (head.nspace, head.name)
        await self.lock_object(key)
        try:
            ctx = ObjectContext(self.osd.store, self.coll, head, snapshots=True)
            ss = ctx.snapset()
            if ss is None:
                return
            doomed, changed = trim(ss, removed)
            if not changed:
                return
            txn = Transaction()
            freed = 0
            for clone_id in doomed:
                victim = clone_oid(head, clone_id)
                freed += self.osd.store.stat(self.coll, victim).size
                txn.remove(self.coll, victim)
            if ss.clones or ctx.exists:
                txn.omap_setkeys(self.coll, snapdir_of(head), {SNAPSET_KEY: ss.encode()})
            else:
                txn.remove(self.coll, snapdir_of(head))
            await self.commit_write(txn, "modify", head, None, 0, -freed)
        finally:
            self.unlock_object(key)

    # -- statistics ------------------------------------------------------------------------
    def stat(self) -> dict[str, Any]:
        return {"pgid": self.pgid, "state": self.state, "up": list(self.up), "acting": list(self.up),
                "num_objects": self.num_objects, "num_bytes": self.num_bytes,
                "log_size": len(self.log.entries), "version": ver_str(self.info.last_update),
                "reported_epoch": self.osd.osdmap.epoch}


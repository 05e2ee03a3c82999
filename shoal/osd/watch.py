"""Watch/notify on the primary OSD: who watches which object, and the notifies in flight.

librados' model: a client *watches* an object under a cookie; a *notify* on the object
sends its payload to every watcher (WATCH_NOTIFY), each watcher acks it (NOTIFY_ACK,
optionally with reply data), and the notifier's op is answered once every watcher acked
or the notify's timeout expired (-ETIMEDOUT, with the acks and the watchers that missed
it). Watchers ping; one silent for longer than its timeout is dropped (and told so with
a "disconnect" WATCH_NOTIFY), as is every watcher of a session that closes.

Watch state lives only in the primary's memory. Unlike Ceph, which keeps watchers in
the object's info so a new primary knows them, a new primary here starts with none:
clients re-register their watches (linger ops) after a map change or a lost session,
and a notify that reaches the new primary before a watcher re-registered does not wait
for it.

`WatchRegistry` is the bookkeeping: pure, clocked by its caller, unit-tested alone.
`WatchService` drives it for the OSD: op dispatch, fan-out, acks, timers, sweeps.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shoal.errors import NotFound, Shutdown
from shoal.net.connection import Connection
from shoal.osd.store.base import ObjectId
from shoal.placement.blocklist import client_addr, is_blocklisted
from shoal.placement.osdmap import OSDMap
from shoal.wire.frame import Frame
from shoal.wire.messages import Msg

if TYPE_CHECKING:
    from shoal.osd.daemon import OSD
    from shoal.osd.pg import PG

log = logging.getLogger("shoal.osd.watch")

ObjKey = tuple[str, str, str]  # (pgid, namespace, object name)
WatcherKey = tuple[int, int]  # (client global id, cookie)

DEFAULT_WATCH_TIMEOUT = 30.0  # Ceph's osd_client_watch_timeout
DEFAULT_NOTIFY_TIMEOUT = 30.0  # Ceph's osd_default_notify_timeout
MAX_TIMEOUT = 3600.0  # longest watch or notify timeout a client may ask for
MAX_WATCHERS_PER_OBJECT = 4096
MAX_NOTIFIES = 4096  # notifies in flight on one OSD
MAX_ACK_REPLY = 1 << 20  # bytes of reply data one watcher may attach to an ack
SWEEP_INTERVAL = 0.5  # how often expired watchers and moved PGs are looked for
WATCH_OPS = ("watch", "reconnect", "unwatch", "ping")


class WatchError(Exception):
    """A watch/notify request refused; `errno` is positive."""

    def __init__(self, message: str, err: int) -> None:
        super().__init__(message)
        self.errno = err


@dataclass(eq=False)
class Watcher:
    key: ObjKey
    gid: int
    cookie: int
    addr: str  # "ip:0/nonce", as Ceph shows a client's address
    timeout: float
    session: Hashable  # the connection notifies go out on
    last_seen: float

    @property
    def wkey(self) -> WatcherKey:
        return (self.gid, self.cookie)

    def describe(self) -> dict[str, Any]:
        """One entry of list_watchers (librados' obj_watch_t)."""
        return {"name": f"client.{self.gid}", "watcher_id": self.gid, "addr": self.addr,
                "cookie": self.cookie, "timeout": int(self.timeout)}


@dataclass(eq=False)
class Notify:
    notify_id: int
    key: ObjKey
    notifier: int
    payload: bytes
    deadline: float
    waiting: dict[WatcherKey, Watcher]
    acks: dict[WatcherKey, bytes] = field(default_factory=dict)
    timeouts: list[WatcherKey] = field(default_factory=list)
    done: bool = False
    aborted: bool = False  # the PG moved away: the notifier resends to the new primary
    waiter: Any = None  # the driver's handle (a future) for the notifier's op

    @property
    def result(self) -> int:
        return -errno.ETIMEDOUT if self.timeouts else 0


class WatchRegistry:
    """Watchers per object, notifies in flight, and which session holds which watcher."""

    def __init__(self, max_watchers: int = MAX_WATCHERS_PER_OBJECT, max_notifies: int = MAX_NOTIFIES) -> None:
        self.max_watchers = max_watchers
        self.max_notifies = max_notifies
        self.objects: dict[ObjKey, dict[WatcherKey, Watcher]] = {}
        self.sessions: dict[Hashable, dict[int, Watcher]] = {}  # session -> {id(watcher): watcher}
        self.notifies: dict[int, Notify] = {}
        self._seq = itertools.count(1)

    # -- watchers ---------------------------------------------------------------------------
    def watch(self, key: ObjKey, gid: int, cookie: int, addr: str, timeout: float, session: Hashable,
              now: float) -> tuple[Watcher, bool]:
        """Register (or refresh, possibly on a new session) a watch; (watcher, is it new)."""
        watchers = self.objects.get(key)
        w = watchers.get((gid, cookie)) if watchers else None
        if w is None:
            if watchers is not None and len(watchers) >= self.max_watchers:
                raise WatchError(f"object {key[2]!r} already has {len(watchers)} watchers", errno.ENOSPC)
            w = Watcher(key, gid, cookie, addr, timeout, session, now)
            self.objects.setdefault(key, {})[w.wkey] = w
            self.sessions.setdefault(session, {})[id(w)] = w
            return w, True
        if w.session is not session:
            self._unlink_session(w)
            w.session = session
            self.sessions.setdefault(session, {})[id(w)] = w
        w.addr, w.timeout, w.last_seen = addr, timeout, now
        return w, False

    def find(self, key: ObjKey, gid: int, cookie: int) -> Watcher | None:
        watchers = self.objects.get(key)
        return watchers.get((gid, cookie)) if watchers else None

    def ping(self, key: ObjKey, gid: int, cookie: int, session: Hashable, now: float) -> int:
        """0, or -ENOTCONN when this session holds no such watch (it timed out or moved)."""
        w = self.find(key, gid, cookie)
        if w is None or w.session is not session:
            return -errno.ENOTCONN
        w.last_seen = now
        return 0

    def watchers(self, key: ObjKey) -> list[Watcher]:
        return list(self.objects.get(key, {}).values())

    def pending_for(self, w: Watcher) -> list[Notify]:
        """Notifies still waiting for this watcher (resent when it moves to a new session)."""
        return [n for n in self.notifies.values() if n.waiting.get(w.wkey) is w]

    def unwatch(self, key: ObjKey, gid: int, cookie: int) -> tuple[Watcher | None, list[Notify]]:
        w = self.find(key, gid, cookie)
        if w is None:
            return None, []
        return w, self._remove(w)

    def remove_object(self, key: ObjKey) -> tuple[list[Watcher], list[Notify]]:
        """The object was deleted: its watchers are gone (and no longer waited for)."""
        gone = self.watchers(key)
        finished: list[Notify] = []
        for w in gone:
            finished += self._remove(w)
        return gone, finished

    def drop_session(self, session: Hashable) -> tuple[list[Watcher], list[Notify]]:
        gone = list(self.sessions.get(session, {}).values())
        finished: list[Notify] = []
        for w in gone:
            finished += self._remove(w)
        return gone, finished

    def expire(self, now: float) -> tuple[list[Watcher], list[Notify]]:
        """Drop watchers that have not pinged within their timeout."""
        gone = [w for ws in self.objects.values() for w in ws.values() if now - w.last_seen > w.timeout]
        finished: list[Notify] = []
        for w in gone:
            finished += self._remove(w)
        return gone, finished

    def drop_where(self, doomed: Callable[[Watcher], bool]) -> tuple[list[Watcher], list[Notify]]:
        """Drop the watchers `doomed` picks (blocklisted clients); notifies stop waiting for them."""
        gone = [w for ws in self.objects.values() for w in ws.values() if doomed(w)]
        finished: list[Notify] = []
        for w in gone:
            finished += self._remove(w)
        return gone, finished

    def drop_objects(self, doomed: Callable[[ObjKey], bool]) -> tuple[list[Watcher], list[Notify]]:
        """Forget the watchers and notifies of objects `doomed` says this OSD no longer serves;
        their notifies end `aborted`."""
        aborted = [n for n in self.notifies.values() if doomed(n.key)]
        for n in aborted:
            n.aborted = True
            self._finish(n)
        gone = [w for k, ws in self.objects.items() if doomed(k) for w in ws.values()]
        for w in gone:
            self._remove(w)
        return gone, aborted

    def _remove(self, w: Watcher) -> list[Notify]:
        watchers = self.objects.get(w.key)
        if watchers is not None and watchers.get(w.wkey) is w:
            del watchers[w.wkey]
            if not watchers:
                del self.objects[w.key]
        self._unlink_session(w)
        # A removed watcher is neither an ack nor a timeout: its notifies stop waiting for it.
        finished = []
        for n in list(self.notifies.values()):
            if n.waiting.get(w.wkey) is w:
                del n.waiting[w.wkey]
                if not n.waiting:
                    self._finish(n)
                    finished.append(n)
        return finished

    def _unlink_session(self, w: Watcher) -> None:
        held = self.sessions.get(w.session)
        if held is not None:
            held.pop(id(w), None)
            if not held:
                del self.sessions[w.session]

    # -- notifies -----------------------------------------------------------------------------
    def start_notify(self, key: ObjKey, notifier: int, payload: bytes, timeout: float, now: float,
                     epoch: int) -> Notify:
        """A notify to every current watcher of `key`; done at once when there is none."""
        waiting = dict(self.objects.get(key, {}))
        if waiting and len(self.notifies) >= self.max_notifies:
            raise WatchError(f"{len(self.notifies)} notifies already in flight", errno.EBUSY)
        notify_id = ((epoch & 0xFFFFFFFF) << 32) | (next(self._seq) & 0xFFFFFFFF)  # Ceph's get_next_id
        n = Notify(notify_id, key, notifier, payload, now + timeout, waiting)
        if n.waiting:
            self.notifies[notify_id] = n
        else:
            n.done = True
        return n

    def ack(self, session: Hashable, notify_id: int, cookie: int, reply: bytes) -> Notify | None:
        """Record a watcher's ack; returns the notify when that was the last one it waited for."""
        n = self.notifies.get(notify_id)
        if n is None:
            return None
        for wkey, w in n.waiting.items():
            if w.cookie == cookie and w.session is session:
                del n.waiting[wkey]
                n.acks[wkey] = reply
                break
        else:
            return None
        if n.waiting:
            return None
        self._finish(n)
        return n

    def time_out(self, notify_id: int) -> Notify | None:
        """The notify's timeout expired: whoever has not acked is listed as timed out."""
        n = self.notifies.get(notify_id)
        if n is None:
            return None
        n.timeouts = sorted(n.waiting)
        n.waiting = {}
        self._finish(n)
        return n

    def _finish(self, n: Notify) -> None:
        n.done = True
        self.notifies.pop(n.notify_id, None)


def _client_addr(conn: Connection, nonce: int) -> str:
    # The same text the blocklist and cls_lock use for this client (shoal/placement/blocklist.py).
    return client_addr(conn.peer, nonce)


def _clamp_timeout(value: Any, default: float) -> float:
    t = float(value or 0)
    if t != t or t < 0:  # NaN or negative
        raise WatchError(f"bad timeout {value!r}", errno.EINVAL)
    return min(t or default, MAX_TIMEOUT)


class WatchService:
    """The OSD's driver of its WatchRegistry."""

    def __init__(self, osd: OSD) -> None:
        self.osd = osd
        self.registry = WatchRegistry()
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._tracked: set[Connection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    # -- the ops (from OSD._osd_op, once the PG is active here) --------------------------------
    async def handle_op(self, conn: Connection, frame: Frame, pg: PG, oid: ObjectId) -> None:
        ops: list[dict[str, Any]] = frame.meta["ops"]
        if len(ops) != 1:
            self._reply(conn, frame, -errno.EINVAL)
            return
        op = ops[0]
        key: ObjKey = (pg.pgid, oid.nspace, oid.name)
        lock_key = (oid.nspace, oid.name)
        notify: Notify | None = None
        out: dict[str, Any] = {"r": 0}
        data = b""
        # Under the object's lock: ordered after writes sent before, and the object's
        # existence cannot change while the watch or notify is set up.
        await pg.lock_object(lock_key)
        try:
            try:
                self.osd.store.stat(pg.coll, oid)
                exists = True
            except NotFound:
                exists = False
            name = op["op"]
            if name == "watch":
                out = self._watch_op(conn, key, op, exists)
            elif not exists:
                out = {"r": -errno.ENOENT}
            elif name == "list_watchers":
                out = {"r": 0, "watchers": [w.describe() for w in self.registry.watchers(key)]}
            elif name == "notify":
                notify = self._start_notify(conn, key, op, frame)
            else:
                out = {"r": -errno.EOPNOTSUPP}
        except WatchError as exc:
            log.info("event=watch_refused pg=%s oid=%s op=%s reason=%s", pg.pgid, oid.name, op.get("op"), exc)
            out = {"r": -exc.errno}
        finally:
            pg.unlock_object(lock_key)
        if notify is not None:
            if not notify.done:
                fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                notify.waiter = fut
                await fut
            if notify.aborted:
                conn.reply(frame, Msg.OSD_OP_REPLY, {"r": -errno.EAGAIN, "epoch": self.osd.osdmap.epoch,
                                                     "retry": True})
                return
            out, data = self._notify_result(notify)
        conn.reply(frame, Msg.OSD_OP_REPLY, {"r": min(int(out["r"]), 0), "outs": [out]}, data)

    def _default_watch_timeout(self) -> float:
        """For a client that asks for none: `osd_client_watch_timeout` (Ceph's option)."""
        try:
            return float(self.osd.conf("osd_client_watch_timeout") or DEFAULT_WATCH_TIMEOUT)
        except (KeyError, TypeError, ValueError):
            return DEFAULT_WATCH_TIMEOUT

    def _reply(self, conn: Connection, frame: Frame, r: int) -> None:
        conn.reply(frame, Msg.OSD_OP_REPLY, {"r": r, "outs": [{"r": r}]})

    def _gid(self, conn: Connection, op: dict[str, Any]) -> int:
        # The ticket's global id when cephx authenticated the session; with auth none the
        # client's own word (from the monitor's HELLO_REPLY) is all there is.
        return int(conn.info.get("global_id") or op.get("gid") or 0)

    def _watch_op(self, conn: Connection, key: ObjKey, op: dict[str, Any], exists: bool) -> dict[str, Any]:
        wop = str(op.get("watch_op", "watch"))
        if wop not in WATCH_OPS:
            raise WatchError(f"unknown watch op {wop!r}", errno.EINVAL)
        gid, cookie = self._gid(conn, op), int(op["cookie"])
        now = time.monotonic()
        if wop == "unwatch":
            w, finished = self.registry.unwatch(key, gid, cookie)
            self._complete(finished)
            if w is not None:
                log.info("event=unwatch oid=%s client=%d cookie=%d", key[2], gid, cookie)
            return {"r": 0 if exists else -errno.ENOENT}
        if not exists:
            return {"r": -errno.ENOENT}
        addr = _client_addr(conn, int(op.get("nonce", 0)))
        if is_blocklisted(self.osd.osdmap.blocklist, addr):
            raise WatchError(f"client {addr} is blocklisted", errno.ESHUTDOWN)
        if wop == "ping":
            return {"r": self.registry.ping(key, gid, cookie, conn, now)}
        # "watch" and "reconnect" both (re)register here: this primary may never have seen
        # the watch (state is not persisted), so a reconnect to it registers it anew.
        timeout = _clamp_timeout(op.get("timeout"), self._default_watch_timeout())
        known = self.registry.find(key, gid, cookie)
        moved = known is not None and known.session is not conn
        w, new = self.registry.watch(key, gid, cookie, addr, timeout, conn, now)
        self._track(conn)
        self._ensure_sweeper()
        log.info("event=%s oid=%s client=%d cookie=%d timeout=%g", "watch" if new else wop, key[2], gid,
                 cookie, timeout)
        if moved:
            for n in self.registry.pending_for(w):
                self._send_notify(w, n)  # what its old session may not have delivered
        return {"r": 0}

    # -- notify ----------------------------------------------------------------------------------
    def _start_notify(self, conn: Connection, key: ObjKey, op: dict[str, Any], frame: Frame) -> Notify:
        timeout = _clamp_timeout(op.get("timeout"), DEFAULT_NOTIFY_TIMEOUT)
        ref = op.get("d")
        payload = b""
        if ref is not None:
            off, length = int(ref[0]), int(ref[1])
            if off < 0 or length < 0 or off + length > len(frame.data):
                raise WatchError("notify payload reference outside the request data", errno.EINVAL)
            payload = bytes(memoryview(frame.data)[off:off + length])
        n = self.registry.start_notify(key, self._gid(conn, op), payload, timeout, time.monotonic(),
                                       self.osd.osdmap.epoch)
        for w in n.waiting.values():
            self._send_notify(w, n)
        if not n.done:
            self._timers[n.notify_id] = asyncio.get_running_loop().call_later(timeout, self._time_out, n.notify_id)
        log.debug("event=notify oid=%s notify_id=%d watchers=%d timeout=%g", key[2], n.notify_id,
                  len(n.waiting), timeout)
        return n

    def _send_notify(self, w: Watcher, n: Notify) -> None:
        conn = w.session
        assert isinstance(conn, Connection)
        try:
            conn.send(Msg.WATCH_NOTIFY, {"event": "notify", "cookie": w.cookie, "notify_id": n.notify_id,
                                         "notifier": n.notifier}, n.payload)
        except Shutdown:
            pass  # its session is closing: dropping it ends the wait for it

    def _time_out(self, notify_id: int) -> None:
        self._timers.pop(notify_id, None)
        n = self.registry.time_out(notify_id)
        if n is not None:
            log.info("event=notify_timed_out oid=%s notify_id=%d missed=%s", n.key[2], notify_id, n.timeouts)
            self._complete([n])

    def _complete(self, finished: list[Notify]) -> None:
        for n in finished:
            timer = self._timers.pop(n.notify_id, None)
            if timer is not None:
                timer.cancel()
            if n.waiter is not None and not n.waiter.done():
                n.waiter.set_result(None)

    @staticmethod
    def _notify_result(n: Notify) -> tuple[dict[str, Any], bytes]:
        chunks: list[bytes] = []
        acks: list[list[Any]] = []
        at = 0
        for (gid, cookie), reply in sorted(n.acks.items()):
            acks.append([gid, cookie, [at, len(reply)]])
            chunks.append(reply)
            at += len(reply)
        out = {"r": n.result, "notify_id": n.notify_id, "acks": acks,
               "timeouts": [list(k) for k in n.timeouts]}
        return out, b"".join(chunks)

    def handle_ack(self, conn: Connection, frame: Frame) -> None:
        """NOTIFY_ACK {notify_id, cookie} data=reply, from a watcher (no answer)."""
        notify_id, cookie = int(frame.meta["notify_id"]), int(frame.meta["cookie"])
        if len(frame.data) > MAX_ACK_REPLY:
            log.warning("event=notify_ack_refused peer=%s notify_id=%d reason=reply_too_large bytes=%d",
                        conn.peer, notify_id, len(frame.data))
            return
        n = self.registry.ack(conn, notify_id, cookie, bytes(frame.data))
        if n is not None:
            self._complete([n])

    def object_removed(self, pg: PG, oid: ObjectId) -> None:
        """After a delete of `oid` committed: its watchers are disconnected (their clients'
        error callbacks get -ENOTCONN), as Ceph does."""
        gone, finished = self.registry.remove_object((pg.pgid, oid.nspace, oid.name))
        for w in gone:
            self._disconnect(w)
        self._complete(finished)

    def _disconnect(self, w: Watcher) -> None:
        conn = w.session
        if isinstance(conn, Connection) and not conn.closed:
            try:
                conn.send(Msg.WATCH_NOTIFY, {"event": "disconnect", "cookie": w.cookie, "notify_id": 0,
                                             "notifier": 0})
            except Shutdown:
                pass

    def drop_blocklisted(self, osdmap: OSDMap) -> None:
        """A map fenced some clients: drop their watches and tell them (Ceph's
        check_blocklisted_watchers), so lock owners' liveness checks see them gone."""
        gone, finished = self.registry.drop_where(lambda w: is_blocklisted(osdmap.blocklist, w.addr))
        for w in gone:
            log.info("event=watch_dropped reason=blocklisted oid=%s client=%d addr=%s", w.key[2], w.gid, w.addr)
            self._disconnect(w)
        self._complete(finished)

    # -- sessions, expiry, moved PGs ----------------------------------------------------------------
    def _track(self, conn: Connection) -> None:
        if conn in self._tracked:
            return
        self._tracked.add(conn)

        async def closed() -> None:
            await conn.wait_closed()
            self._tracked.discard(conn)
            gone, finished = self.registry.drop_session(conn)
            if gone:
                log.info("event=watchers_dropped reason=session_closed peer=%s count=%d", conn.peer, len(gone))
            self._complete(finished)

        task = asyncio.create_task(closed())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _ensure_sweeper(self) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.create_task(self._sweep_loop())
            self.osd._tasks.append(self._sweeper)  # cancelled by OSD.stop

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            self.sweep(time.monotonic())

    def sweep(self, now: float) -> None:
        expired, finished = self.registry.expire(now)
        for w in expired:
            log.info("event=watch_timed_out oid=%s client=%d cookie=%d", w.key[2], w.gid, w.cookie)
            self._disconnect(w)
        self._complete(finished)

        def moved(key: ObjKey) -> bool:
            pg = self.osd.pgs.get(key[0])
            return pg is None or not pg.is_primary()

        gone, aborted = self.registry.drop_objects(moved)
        if gone or aborted:
            log.info("event=watchers_dropped reason=not_primary count=%d notifies=%d", len(gone), len(aborted))
        self._complete(aborted)

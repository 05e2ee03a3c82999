"""Client side of watch/notify: watches kept registered with their object's primary.

A watch is a *linger* op: registered with the object's primary, then kept there. It is
re-registered ("reconnect") whenever the OSD map moves the object to another primary
or the session to the primary closes, and pinged every few seconds so the OSD keeps
it. A watch that cannot be kept — re-registration refused, a ping answered ENOTCONN,
the OSD's "disconnect" — is reported once to the watch's error callback and stays
broken (`check` raises) until the user unwatches, as in librados.

Notifications (WATCH_NOTIFY) arrive on the client loop thread. User callbacks run one
at a time on a native callback thread (librados' finisher), never on the loop, so a
callback may block or make blocking rados calls; its return value is sent back to the
OSD as the NOTIFY_ACK reply.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shoal.client.callbacks import CallbackRunner
from shoal.errors import NotFound, ShoalError, Shutdown, TimedOut, from_errno
from shoal.net.connection import Connection
from shoal.wire.frame import Frame
from shoal.wire.messages import Msg

if TYPE_CHECKING:
    from shoal.client.objecter import Objecter, _Target

log = logging.getLogger("shoal.client.watch")

# callback(notify_id, notifier_gid, cookie, payload) -> reply data (None: an empty reply)
WatchCallback = Callable[[int, int, int, bytes], "bytes | None"]
# error_callback(cookie, negative errno)
WatchErrorCallback = Callable[[int, int], None]

MAX_QUEUED_CALLBACKS = 1024  # notifications waiting for the callback thread; more are dropped
REQUEST_TIMEOUT = 10.0  # one registration attempt
RETRY_DELAY = 0.5  # between registration attempts while the primary is unreachable
MIN_PING_INTERVAL, MAX_PING_INTERVAL = 0.5, 5.0  # Ceph pings every objecter_tick_interval (5 s)


def normalize_watch_error(err: int) -> int:
    """librados' rule: a watch lost because its object was deleted reads as ENOTCONN."""
    return -errno.ENOTCONN if err in (-errno.ENOENT, -errno.ENOTCONN) else err


@dataclass(eq=False)
class Linger:
    cookie: int
    pool_id: int
    oid: str
    nspace: str
    timeout: int
    callback: WatchCallback
    error_callback: WatchErrorCallback | None
    target: _Target | None = None
    conn: Connection | None = None
    error: int = 0  # negative errno once the watch is broken
    confirmed: float = 0.0  # monotonic time the OSD last confirmed the watch
    closed: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    @property
    def ping_interval(self) -> float:
        return max(MIN_PING_INTERVAL, min(MAX_PING_INTERVAL, (self.timeout or 30) / 3))


class Lingers:
    """The watches of one client (the Objecter's linger registry)."""

    def __init__(self, objecter: Objecter) -> None:
        self.objecter = objecter
        self.gid = 0  # the client's global id, set once connected
        self.nonce = random.getrandbits(31) or 1  # shown in the watcher's address, like Ceph's
        self._cookies = itertools.count(1)
        self._lingers: dict[int, Linger] = {}
        self._runner: CallbackRunner | None = None
        self._loop = asyncio.get_running_loop()

    # -- API (on the loop thread) ----------------------------------------------------------------
    async def watch(self, pool_id: int, oid: str, nspace: str, callback: WatchCallback,
                    error_callback: WatchErrorCallback | None = None, timeout: int = 0,
                    deadline: float | None = None) -> int:
        """Register a watch; returns its cookie. `timeout` (s, 0 = the OSD's default) is how
        long the OSD keeps it without a ping; `deadline` bounds the wait for a primary."""
        lg = Linger(next(self._cookies), pool_id, oid, nspace, int(timeout), callback, error_callback)
        if self._runner is None:
            self._runner = CallbackRunner("shoal-watch-cb", MAX_QUEUED_CALLBACKS)
        self._lingers[lg.cookie] = lg
        try:
            await asyncio.wait_for(self._first_registration(lg), deadline)
        except TimeoutError as exc:
            self._lingers.pop(lg.cookie, None)
            raise TimedOut(f"watch on {oid!r} in pool {pool_id}: no primary answered", errno.ETIMEDOUT) from exc
        except BaseException:
            self._lingers.pop(lg.cookie, None)
            raise
        lg.task = asyncio.create_task(self._maintain(lg))
        return lg.cookie

    async def _first_registration(self, lg: Linger) -> None:
        while True:
            r = await self._register(lg, "watch")
            if r == 0:
                return
            if r is not None:
                raise from_errno(r, f"watch on {lg.oid!r} in pool {lg.pool_id}")
            await self._pause(lg, RETRY_DELAY)

    async def unwatch(self, cookie: int) -> None:
        lg = self._lingers.pop(cookie, None)
        if lg is None:
            raise NotFound(f"no watch with cookie {cookie}", errno.ENOENT)
        lg.closed = True
        if lg.task is not None:
            lg.task.cancel()
        if lg.error:
            return  # the OSD no longer has it
        reply = await self.objecter.op(lg.pool_id, lg.oid, lg.nspace, [self._watch_op(lg, "unwatch")],
                                       timeout=REQUEST_TIMEOUT)
        if reply.result < 0 and reply.result not in (-errno.ENOENT, -errno.ENOTCONN):
            raise from_errno(reply.result, f"unwatch of {lg.oid!r} in pool {lg.pool_id}")

    def check(self, cookie: int) -> int:
        """Milliseconds since the OSD last confirmed the watch; raises if it is broken."""
        lg = self._lingers.get(cookie)
        if lg is None:
            raise from_errno(-errno.ENOTCONN, f"no watch with cookie {cookie}")
        if lg.error:
            raise from_errno(lg.error, f"watch on {lg.oid!r} in pool {lg.pool_id} is broken")
        return int((time.monotonic() - lg.confirmed) * 1000)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait (from a caller's thread) until queued callbacks ran."""
        return self._runner.flush(timeout) if self._runner is not None else True

    async def close(self) -> None:
        """Forget every watch (closing the sessions next makes the OSDs drop them)."""
        for lg in self._lingers.values():
            lg.closed = True
            if lg.task is not None:
                lg.task.cancel()
        self._lingers.clear()
        if self._runner is not None:
            self._runner.stop()

    # -- from the Objecter ---------------------------------------------------------------------------
    def handle_map(self) -> None:
        """A new OSD map: watches whose primary moved (or that wait for one) re-register."""
        for lg in self._lingers.values():
            if lg.closed or lg.error:
                continue
            try:
                new = self.objecter._target(lg.pool_id, None, lg.oid, lg.nspace)
            except NotFound:
                new = None  # the pool is gone: re-registration fails and reports it
            old = lg.target
            if new is None or old is None or (new.osd, new.addr) != (old.osd, old.addr):
                lg.target = None
                lg.wake.set()

    def handle_frame(self, conn: Connection, frame: Frame) -> None:
        """Unsolicited frames on an OSD session: WATCH_NOTIFY."""
        if frame.type != Msg.WATCH_NOTIFY:
            return
        m = frame.meta
        try:
            cookie, notify_id, notifier = int(m["cookie"]), int(m["notify_id"]), int(m.get("notifier", 0))
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("event=bad_watch_notify peer=%s error=%r", conn.peer, exc)
            return
        lg = self._lingers.get(cookie)
        if lg is None or lg.closed:
            return
        if m.get("event") == "disconnect":
            if conn is lg.conn:
                self._fail(lg, -errno.ENOTCONN, "the OSD dropped the watch")
            return
        payload = bytes(frame.data)
        assert self._runner is not None
        if not self._runner.submit(lambda: self._run_callback(lg, conn, notify_id, notifier, payload)):
            log.warning("event=notify_dropped oid=%s cookie=%d notify_id=%d reason=callback_queue_full",
                        lg.oid, lg.cookie, notify_id)

    # -- callbacks (on the callback thread) -------------------------------------------------------------
    def _run_callback(self, lg: Linger, conn: Connection, notify_id: int, notifier: int, payload: bytes) -> None:
        if lg.closed:
            return
        reply = lg.callback(notify_id, notifier, lg.cookie, payload)  # raising means no ack
        data = bytes(reply) if reply else b""
        try:
            self._loop.call_soon_threadsafe(self._send_ack, lg, conn, notify_id, data)
        except RuntimeError:
            pass  # the loop is gone (interpreter exit)

    def _send_ack(self, lg: Linger, conn: Connection, notify_id: int, data: bytes) -> None:
        for c in (conn, lg.conn):
            if c is not None and not c.closed:
                try:
                    c.send(Msg.NOTIFY_ACK, {"notify_id": notify_id, "cookie": lg.cookie}, data)
                    return
                except Shutdown:
                    continue

    def _fail(self, lg: Linger, err: int, why: str) -> None:
        if lg.error or lg.closed:
            return
        lg.error = normalize_watch_error(err)
        lg.wake.set()
        log.warning("event=watch_error oid=%s pool=%d cookie=%d err=%d reason=%s", lg.oid, lg.pool_id,
                    lg.cookie, lg.error, why)
        cb = lg.error_callback
        if cb is not None and self._runner is not None:
            cookie, error = lg.cookie, lg.error
            if not self._runner.submit(lambda: cb(cookie, error)):
                log.warning("event=watch_error_callback_dropped cookie=%d reason=callback_queue_full", cookie)

    # -- keeping a watch registered (on the loop thread) -----------------------------------------------
    def _watch_op(self, lg: Linger, watch_op: str) -> dict[str, Any]:
        return {"op": "watch", "watch_op": watch_op, "cookie": lg.cookie, "timeout": lg.timeout,
                "gid": self.gid, "nonce": self.nonce}

    async def _register(self, lg: Linger, watch_op: str) -> int | None:
        """One attempt: 0 registered, < 0 refused (errno), None: no primary reachable yet."""
        try:
            target = self.objecter._target(lg.pool_id, None, lg.oid, lg.nspace)
        except NotFound:
            return -errno.ENOENT
        if target is None:
            self.objecter.request_map()
            return None
        try:
            conn = await self.objecter._session(target)
            reply = await conn.request(Msg.OSD_OP, {
                "pool": lg.pool_id, "oid": lg.oid, "ns": lg.nspace, "epoch": target.epoch,
                "ops": [self._watch_op(lg, watch_op)]}, timeout=REQUEST_TIMEOUT)
        except (OSError, ShoalError, TimeoutError) as exc:
            log.debug("event=watch_register_retry oid=%s osd=%d error=%r", lg.oid, target.osd, exc)
            self.objecter.request_map()
            return None
        if reply.type == Msg.ERROR:
            return int(reply.meta.get("err", -errno.EIO))
        if reply.meta.get("retry"):
            self.objecter.request_map()  # not the primary (yet): wait for a newer map
            return None
        r = int(reply.meta["r"])
        if r == 0:
            lg.target, lg.conn, lg.confirmed = target, conn, time.monotonic()
            log.debug("event=watch_registered oid=%s osd=%d cookie=%d op=%s", lg.oid, target.osd,
                      lg.cookie, watch_op)
            if self._moved(lg, target):
                lg.target = None  # a map that arrived meanwhile moved it: register again
                lg.wake.set()
        return r

    def _moved(self, lg: Linger, target: _Target) -> bool:
        try:
            now = self.objecter._target(lg.pool_id, None, lg.oid, lg.nspace)
        except NotFound:
            return True
        return now is None or (now.osd, now.addr) != (target.osd, target.addr)

    async def _pause(self, lg: Linger, delay: float, conn: Connection | None = None) -> bool:
        """Sleep `delay`, or less if woken (map change, error) or `conn` closes; True if woken."""
        waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(lg.wake.wait())]
        if conn is not None:
            waiters.append(asyncio.ensure_future(conn.wait_closed()))
        try:
            done, _ = await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        lg.wake.clear()
        return bool(done)

    async def _maintain(self, lg: Linger) -> None:
        while not lg.closed and not lg.error:
            conn = lg.conn
            if lg.target is None or conn is None or conn.closed:
                r = await self._register(lg, "reconnect")
                if r is None:
                    await self._pause(lg, RETRY_DELAY)
                elif r < 0:
                    self._fail(lg, r, "re-registration refused")
                continue
            if await self._pause(lg, lg.ping_interval, conn):
                continue
            await self._ping(lg, conn)

    async def _ping(self, lg: Linger, conn: Connection) -> None:
        meta = {"pool": lg.pool_id, "oid": lg.oid, "ns": lg.nspace,
                "epoch": lg.target.epoch if lg.target else 0, "ops": [self._watch_op(lg, "ping")]}
        try:
            reply = await conn.request(Msg.OSD_OP, meta, timeout=max(lg.timeout, REQUEST_TIMEOUT))
        except Shutdown:
            return  # the session closed: the next round re-registers
        except TimeoutError:
            log.debug("event=watch_ping_timeout oid=%s cookie=%d", lg.oid, lg.cookie)
            return
        if reply.type == Msg.ERROR:
            self._fail(lg, int(reply.meta.get("err", -errno.EIO)), "ping refused")
        elif reply.meta.get("retry"):
            lg.target = None  # that OSD is no longer the primary
            self.objecter.request_map()
        elif int(reply.meta["r"]) < 0:
            self._fail(lg, int(reply.meta["r"]), "ping refused")
        else:
            lg.confirmed = time.monotonic()

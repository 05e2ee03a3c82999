"""The EXCLUSIVE_LOCK feature: one writer at a time, handed over cooperatively.

As librbd: the owner holds the cls_lock `rbd_lock` on the header, exclusive, tag
`internal`, cookie `auto <watch cookie>`, locker `client.<global id>`. A handle that
must write without the lock tries to take it; if another client holds it, the handle
checks that the owner's header watch is still there — a dead owner's lock is broken —
and otherwise asks the owner (REQUEST_LOCK). The owner lets its writes in flight
finish, releases the lock and says so (RELEASED_LOCK); the requester takes it. Writes
enter the image's I/O gate only while the lock is held, and a release closes the gate
first, so no write ever runs without the lock.

Breaking a dead owner's lock fences it first, as librbd with `rbd_blocklist_on_break_lock`
(decision record 0007): the owner's address (the lock's locker address, which the OSD
recorded) is blocklisted for `rbd_blocklist_expire_seconds`, this client waits for the map
with the entry, and only then breaks the lock. An owner that only looked dead (stopped,
cut off) can therefore never write again: its ops fail with ESHUTDOWN. "Dead" means its
header watch is gone: at once when its process dies (the OSD sees the session close),
otherwise after `osd_client_watch_timeout` without pings.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from shoal.client.blocklist import blocklist_add
from shoal.errors import Busy, Exists, NotFound, ShoalError, TimedOut, from_errno
from shoal.rbd.image_watcher import ACQUIRED_LOCK, RELEASED_LOCK, REQUEST_LOCK, ImageWatcher

if TYPE_CHECKING:
    from shoal.rbd.image import ImageCtx

log = logging.getLogger("shoal.rbd.lock")

LOCK_TAG = "internal"
COOKIE_PREFIX = "auto "
REQUEST_RETRY = 1.0  # seconds between lock requests while the owner holds on
ACQUIRE_TIMEOUT = 60.0  # give up (ETIMEDOUT) if the owner never lets go


class ExclusiveLock:
    def __init__(self, ictx: ImageCtx, watcher: ImageWatcher) -> None:
        self.ictx = ictx
        self.watcher = watcher
        self.owned = False
        self._acquiring = asyncio.Lock()
        self._released = asyncio.Event()  # set when the owner says it let go
        self._releasing: asyncio.Task[None] | None = None
        watcher.on_request_lock = self._on_request
        watcher.on_released_lock = self._released.set

    @property
    def entity(self) -> str:
        return f"client.{self.ictx.io.client.instance_id}"

    @property
    def cookie(self) -> str:
        return f"{COOKIE_PREFIX}{self.watcher.cookie}"

    @asynccontextmanager
    async def write_guard(self) -> AsyncIterator[None]:
        """Hold the image's I/O gate with the lock owned for the duration of one write."""
        while True:
            if not self.owned:
                await self.acquire()
            async with self.ictx.gate:
                if self.owned:  # a release closes the gate first: still ours while we are in
                    yield
                    return

    @asynccontextmanager
    async def op_guard(self) -> AsyncIterator[None]:
        """Hold the lock and the image's operation lock for one management operation (a
        release waits for the operation lock, so the lock stays ours until it ends)."""
        while True:
            if not self.owned:
                await self.acquire()
            async with self.ictx.op_lock:
                if self.owned:
                    yield
                    return

    async def acquire(self) -> None:
        async with self._acquiring:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + ACQUIRE_TIMEOUT
            while not self.owned:
                self._released.clear()
                if await self._try_lock():
                    break
                if loop.time() > deadline:
                    raise TimedOut(f"image {self.ictx.spec_text()}: timed out waiting for the "
                                   "exclusive lock", errno.ETIMEDOUT)
                try:
                    await asyncio.wait_for(self._released.wait(), REQUEST_RETRY)
                except TimeoutError:
                    pass
            self.ictx.exclusive_owner = True
        # The previous owner may have changed the header (snapshots, size): as librbd,
        # refresh on every acquisition before the first write under the lock.
        await self.ictx.refresh()
        await self.watcher.notify(ACQUIRED_LOCK)

    async def _lock_once(self) -> bool:
        try:
            await self.ictx.header.lock(self.entity, self.cookie, exclusive=True, tag=LOCK_TAG)
        except Exists:  # EEXIST: we already hold it under this cookie
            pass
        except Busy:
            return False
        self.owned = True
        return True

    async def _try_lock(self) -> bool:
        """One attempt: True once the lock is ours; else the owner has been asked."""
        if await self._lock_once():
            return True
        header = self.ictx.header
        info = await header.lock_info()
        lockers = info.get("lockers", [])
        if not lockers:
            return False  # released meanwhile: try again at once
        owner = lockers[0]
        locker, cookie = str(owner["locker"]), str(owner["cookie"])
        if not await self._owner_alive(locker, cookie):
            await self._fence(locker, str(owner.get("address") or ""))
            log.info("event=break_dead_lock image=%s owner=%s address=%s", self.ictx.id, locker,
                     owner.get("address"))
            try:
                await header.break_lock(locker, cookie)
            except NotFound:
                pass  # someone else broke it first
            return await self._lock_once()
        await self.watcher.notify(REQUEST_LOCK, gid=self.ictx.io.client.instance_id)
        return False

    async def _fence(self, locker: str, address: str) -> None:
        """Blocklist a dead owner before its lock is broken (librbd's BreakRequest)."""
        if locker == self.entity:
            return  # a stale lock of our own (an earlier watch cookie): never fence ourselves
        await fence_locker(self.ictx, locker, address, "cannot take the exclusive lock of dead owner")

    async def _owner_alive(self, locker: str, cookie: str) -> bool:
        if not cookie.startswith(COOKIE_PREFIX) or not locker.startswith("client."):
            return True  # not a lock we manage: never break it
        io = self.ictx.io
        watchers = await io.client.list_watchers(io.pool_id, self.watcher.oid, io.nspace)
        want = (locker, cookie[len(COOKIE_PREFIX):])
        return any((str(w.get("name")), str(w.get("cookie"))) == want for w in watchers)

    def _on_request(self) -> None:
        if self.owned and (self._releasing is None or self._releasing.done()):
            self._releasing = asyncio.ensure_future(self.release())

    async def release(self) -> None:
        """Let in-flight writes finish, then give the lock up and tell the waiters."""
        if not self.owned:
            return
        await self.ictx.before_lock_release()  # cached writes go out while the lock is ours
        async with self.ictx.op_lock, self.ictx.gate.exclusive():
            if not self.owned:
                return
            self.owned = False
            self.ictx.exclusive_owner = False
            try:
                await self.ictx.header.unlock(self.entity, self.cookie)
            except ShoalError as exc:  # broken by someone else, or the header is gone
                log.info("event=unlock_failed image=%s error=%r", self.ictx.id, exc)
        await self.watcher.notify(RELEASED_LOCK)


async def fence_locker(ictx: ImageCtx, locker: str, address: str, what: str) -> None:
    """With `rbd_blocklist_on_break_lock`, blocklist a lock's owner at `address` for
    `rbd_blocklist_expire_seconds` and wait for the map holding the entry, so the owner can
    no longer write once its lock is broken."""
    client = ictx.io.client
    if not _conf_bool(client.conf, "rbd_blocklist_on_break_lock", True):
        return
    if not address:
        log.warning("event=break_lock_unfenced image=%s owner=%s reason=no_locker_address", ictx.id, locker)
        return
    expire = _conf_float(client.conf, "rbd_blocklist_expire_seconds", 0.0)
    log.info("event=blocklist_lock_owner image=%s owner=%s address=%s expire=%g", ictx.id, locker, address,
             expire)
    try:
        await blocklist_add(client, address, expire)
    except ShoalError as exc:
        raise from_errno(exc.errno, f"image {ictx.spec_text()}: {what} {locker}: {exc}") from exc


def _conf_bool(conf: object, name: str, default: bool) -> bool:
    try:
        value = conf.get(name)  # type: ignore[attr-defined]
    except (KeyError, AttributeError):
        return default
    return default if value is None else bool(value)


def _conf_float(conf: object, name: str, default: float) -> float:
    try:
        value = conf.get(name)  # type: ignore[attr-defined]
        return default if value is None else float(value)
    except (KeyError, AttributeError, TypeError, ValueError):
        return default

"""The header watch of an open image: header-change notices and exclusive-lock messages.

librbd keeps a watch on `rbd_header.<id>` for every writable open image. Whoever changes
the header (resize, snapshots, features, flatten) notifies the others so that they
refresh before their next operation; a client that needs the exclusive lock asks its
owner through the same channel. The payloads are msgpack maps `{"op": ...}` of our own
(librbd's encoded notify payloads are not reproduced: only Shoal clients talk here).

Notify callbacks arrive on the client's callback thread; they only flag or schedule work
on the loop and answer at once, so a notifier never waits on a slow peer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import msgpack

from shoal.errors import ShoalError

if TYPE_CHECKING:
    from shoal.rbd.image import ImageCtx

log = logging.getLogger("shoal.rbd.watch")

HEADER_UPDATE = "header_update"
REQUEST_LOCK = "request_lock"
RELEASED_LOCK = "released_lock"
ACQUIRED_LOCK = "acquired_lock"
NOTIFY_TIMEOUT = 5.0  # seconds a notifier waits for acks (a dead watcher costs at most this)


def encode(op: str, **fields: object) -> bytes:
    return bytes(msgpack.packb({"op": op, **fields}, use_bin_type=True))


def decode(payload: bytes) -> dict[str, object]:
    try:
        msg = msgpack.unpackb(payload, raw=False)
    except (ValueError, msgpack.UnpackException):
        return {}
    return msg if isinstance(msg, dict) else {}


class ImageWatcher:
    """Registers the header watch and turns notifications into calls on the loop."""

    def __init__(self, ictx: ImageCtx) -> None:
        self.ictx = ictx
        self.cookie: int | None = None
        self._loop = asyncio.get_running_loop()
        # Set by the exclusive lock: what to do when another client asks for the lock, or
        # when the owner let it go.
        self.on_request_lock: Callable[[], None] | None = None
        self.on_released_lock: Callable[[], None] | None = None

    @property
    def oid(self) -> str:
        return self.ictx.header.oid

    async def register(self) -> None:
        io = self.ictx.io
        self.cookie = await io.client.watch(io.pool_id, self.oid, io.nspace, self._on_notify, self._on_error)

    async def unregister(self) -> None:
        if self.cookie is None:
            return
        cookie, self.cookie = self.cookie, None
        try:
            await self.ictx.io.client.unwatch(cookie)
        except ShoalError as exc:  # the watch may already be gone with its session
            log.debug("event=unwatch_failed image=%s error=%r", self.ictx.id, exc)

    async def notify(self, op: str, **fields: object) -> None:
        """Tell every other open handle of this image; never fails the caller's operation."""
        io = self.ictx.io
        try:
            await io.client.notify(io.pool_id, self.oid, io.nspace, encode(op, **fields), NOTIFY_TIMEOUT)
        except ShoalError as exc:
            log.info("event=notify_failed image=%s op=%s error=%r", self.ictx.id, op, exc)

    # -- callback thread -----------------------------------------------------------------
    def _on_notify(self, notify_id: int, notifier: int, cookie: int, payload: bytes) -> bytes | None:
        op = decode(payload).get("op")
        if op in (HEADER_UPDATE, ACQUIRED_LOCK):
            self._loop.call_soon_threadsafe(self._header_changed)
        elif op == REQUEST_LOCK and self.on_request_lock is not None:
            self._loop.call_soon_threadsafe(self.on_request_lock)
        elif op == RELEASED_LOCK and self.on_released_lock is not None:
            self._loop.call_soon_threadsafe(self.on_released_lock)
        return None

    def _on_error(self, cookie: int, err: int) -> None:
        # A lost watch may have missed notifications: refresh, and watch again.
        self._loop.call_soon_threadsafe(self._rewatch)

    def _header_changed(self) -> None:
        self.ictx.needs_refresh = True

    def _rewatch(self) -> None:
        self.ictx.needs_refresh = True
        if self.cookie is None or self.ictx.closed:
            return

        async def again() -> None:
            old, self.cookie = self.cookie, None
            if old is not None:
                try:
                    await self.ictx.io.client.unwatch(old)
                except ShoalError:
                    pass  # it is the broken one
            try:
                await self.register()
            except ShoalError as exc:
                log.warning("event=rewatch_failed image=%s error=%r", self.ictx.id, exc)

        asyncio.ensure_future(again())

"""Session with a monitor: handshake, OSD map subscription, commands; hunts on loss."""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from collections.abc import Callable
from typing import Any

from shoal.auth.cephx_core import AuthError
from shoal.auth.tickets import Ticket
from shoal.errors import AccessDenied, ShoalError, Shutdown, TimedOut
from shoal.net.connection import Connection, connect, split_addr
from shoal.net.handshake import Identity, mon_handshake, renew_tickets
from shoal.placement.osdmap import OSDMap
from shoal.wire.frame import Frame
from shoal.wire.messages import Msg

log = logging.getLogger("shoal.client")


class MonClient:
    def __init__(self, mon_addrs: list[str], identity: Identity, on_map: Callable[[OSDMap], None]) -> None:
        self.mon_addrs = mon_addrs
        self.identity = identity
        self.entity = identity.entity
        self.on_map = on_map
        # Service tickets (shared with the Objecter, which authenticates to OSDs with them).
        self.tickets: dict[str, Ticket] = {}
        self._auth: Any = None
        self.conn: Connection | None = None
        self.fsid = ""
        self.global_id = 0
        self.epoch = 0
        self._map_event = asyncio.Event()
        self._closing = False
        self._hunt_task: asyncio.Task[None] | None = None
        self._renew_task: asyncio.Task[None] | None = None

    async def connect(self, timeout: float) -> None:
        async def session_and_map() -> None:
            await self._hunt()
            await self._map_event.wait()

        await asyncio.wait_for(session_and_map(), timeout)

    async def _hunt(self) -> None:
        last: BaseException | None = None
        while not self._closing:
            for addr in self.mon_addrs:
                try:
                    host, port = split_addr(addr)
                    conn = await connect(host, port, self._handle, name="mon", timeout=3.0)
                    try:
                        self._auth, hello = await mon_handshake(conn, self.identity, services=["osd"], timeout=5.0)
                    except (AccessDenied, AuthError):
                        conn.close()
                        raise
                    self.fsid = str(hello["fsid"])
                    self.global_id = int(self._auth.global_id or hello.get("global_id", 0))
                    self.tickets.update(self._auth.tickets)
                    self.conn = conn
                    conn.send(Msg.MON_SUBSCRIBE, {"what": "osdmap", "start": self.epoch})
                    self._hunt_task = asyncio.create_task(self._watch(conn))
                    if self.tickets:
                        self._renew_task = asyncio.create_task(self._renew_loop(conn))
                    return
                except (AccessDenied, AuthError) as exc:
                    raise AccessDenied(f"error connecting to the cluster: {exc}", exc.errno) from exc
                except (TimeoutError, OSError, ShoalError) as exc:
                    last = exc
            log.debug("event=mon_hunt_failed error=%r", last)
            await asyncio.sleep(0.2)

    async def _renew_loop(self, conn: Connection) -> None:
        """Renew service tickets when two thirds of their life has passed."""
        while not conn.closed:
            remaining = min(t.remaining(time.time()) for t in self.tickets.values())
            await asyncio.sleep(max(0.5, remaining / 3))
            try:
                self.tickets.update(await renew_tickets(conn, self._auth, ["osd"], timeout=10.0))
            except (ShoalError, OSError) as exc:
                log.warning("event=ticket_renewal_failed entity=%s error=%s", self.entity, exc)
                if isinstance(exc, AccessDenied):
                    return

    async def _watch(self, conn: Connection) -> None:
        await conn.wait_closed()
        if not self._closing:
            log.info("event=mon_session_lost")
            self.conn = None
            await self._hunt()

    def _handle(self, conn: Connection, frame: Frame) -> None:
        if frame.type == Msg.OSDMAP:
            epoch = int(frame.meta["epoch"])
            if epoch > self.epoch:
                self.epoch = epoch
                self.on_map(OSDMap.from_dict(frame.meta["map"]))
                self._map_event.set()

    def request_map(self) -> None:
        if self.conn is not None and not self.conn.closed:
            self.conn.send(Msg.MON_SUBSCRIBE, {"what": "osdmap", "start": self.epoch})

    async def command(self, cmd: dict[str, Any], inbuf: bytes = b"", timeout: float | None = None) -> tuple[int, bytes, str]:
        async def attempt() -> tuple[int, bytes, str]:
            while True:
                conn = self.conn
                if conn is None or conn.closed:
                    await asyncio.sleep(0.1)
                    continue
                try:
                    reply = await conn.request(Msg.MON_COMMAND, {"cmd": cmd}, inbuf)
                except Shutdown:
                    continue  # the session broke: resend on the next one
                if reply.type == Msg.ERROR:
                    return int(reply.meta.get("err", -errno.EINVAL)), b"", str(reply.meta.get("msg", ""))
                return int(reply.meta["ret"]), bytes(reply.data), str(reply.meta.get("outs", ""))

        try:
            return await asyncio.wait_for(attempt(), timeout or None)
        except TimeoutError as exc:
            raise TimedOut(f"monitor command {cmd.get('prefix')!r} timed out") from exc

    async def close(self) -> None:
        self._closing = True
        for task in (self._hunt_task, self._renew_task):
            if task is not None:
                task.cancel()
        if self.conn is not None:
            self.conn.close()

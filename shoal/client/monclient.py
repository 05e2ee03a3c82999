"""Session with a monitor: handshake, OSD map subscription, commands; hunts on loss."""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Callable
from typing import Any

from shoal.errors import AccessDenied, ShoalError, Shutdown, TimedOut
from shoal.net.connection import Connection, connect, split_addr
from shoal.placement.osdmap import OSDMap
from shoal.wire.frame import Frame
from shoal.wire.messages import AUTH_NONE, PROTOCOL_VERSION, Msg

log = logging.getLogger("shoal.client")


class MonClient:
    def __init__(self, mon_addrs: list[str], entity: str, on_map: Callable[[OSDMap], None]) -> None:
        self.mon_addrs = mon_addrs
        self.entity = entity
        self.on_map = on_map
        self.conn: Connection | None = None
        self.fsid = ""
        self.global_id = 0
        self.epoch = 0
        self._map_event = asyncio.Event()
        self._closing = False
        self._hunt_task: asyncio.Task[None] | None = None

    async def connect(self, timeout: float) -> None:
        await asyncio.wait_for(self._hunt(), timeout)
        await asyncio.wait_for(self._map_event.wait(), timeout)

    async def _hunt(self) -> None:
        last: BaseException | None = None
        while not self._closing:
            for addr in self.mon_addrs:
                try:
                    host, port = split_addr(addr)
                    conn = await connect(host, port, self._handle, name="mon", timeout=3.0)
                    reply = await conn.request(Msg.HELLO, {"protocol": PROTOCOL_VERSION, "entity": self.entity,
                                                           "auth": [AUTH_NONE]}, timeout=5.0)
                    if reply.type != Msg.HELLO_REPLY:
                        conn.close()
                        raise AccessDenied(str(reply.meta.get("msg", "handshake refused")),
                                           -int(reply.meta.get("err", -errno.EACCES)))
                    self.fsid = str(reply.meta["fsid"])
                    self.global_id = int(reply.meta.get("global_id", 0))
                    self.conn = conn
                    conn.send(Msg.MON_SUBSCRIBE, {"what": "osdmap", "start": self.epoch})
                    self._hunt_task = asyncio.create_task(self._watch(conn))
                    return
                except AccessDenied:
                    raise
                except (TimeoutError, OSError, ShoalError) as exc:
                    last = exc
            log.debug("event=mon_hunt_failed error=%r", last)
            await asyncio.sleep(0.2)

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
        if self._hunt_task is not None:
            self._hunt_task.cancel()
        if self.conn is not None:
            self.conn.close()

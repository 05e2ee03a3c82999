"""A cache of authenticated sessions to peers, opened at most once at a time per peer.

Both the client's Objecter and an OSD (towards its peers) keep one session per OSD and
must not open two at once when many ops want the same peer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable

from shoal.errors import Shutdown
from shoal.net.connection import Connection


class SessionCache:
    def __init__(self) -> None:
        self._sessions: dict[Hashable, tuple[str, Connection]] = {}
        self._opening: dict[Hashable, asyncio.Future[Connection]] = {}

    def cached(self, key: Hashable, addr: str) -> Connection | None:
        """The open session to `key` at `addr`, if there is one (a moved peer needs a new one)."""
        entry = self._sessions.get(key)
        if entry is not None and entry[0] == addr and not entry[1].closed:
            return entry[1]
        return None

    async def get(self, key: Hashable, addr: str, open_: Callable[[], Awaitable[Connection]]) -> Connection:
        conn = self.cached(key, addr)
        if conn is not None:
            return conn
        pending = self._opening.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        fut: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
        self._opening[key] = fut
        try:
            conn = await open_()
            self._sessions[key] = (addr, conn)
            fut.set_result(conn)
            return conn
        except BaseException as exc:
            # Others may be waiting on this attempt: a cancellation of *this* task must reach
            # them as a failed connection (which they retry), not as their own cancellation.
            shared = exc if not isinstance(exc, asyncio.CancelledError) else Shutdown("connection attempt abandoned")
            fut.set_exception(shared)
            fut.exception()
            raise
        finally:
            del self._opening[key]

    def close_all(self) -> None:
        for _, conn in self._sessions.values():
            conn.close()
        self._sessions.clear()

"""Fencing another client: librados' `blocklist_add` (decision record 0007).

The monitor adds the address to the OSD map's blocklist (a new epoch) before it answers;
this then waits until this client's own map has that epoch. Every op the client sends
afterwards carries it, and an OSD serves an op only once its map is at least the op's
epoch — so from here on, no OSD this client talks to can still serve the fenced one.
That is the ordering librbd relies on before it breaks a dead owner's lock.
"""

from __future__ import annotations

import asyncio
import errno
from typing import TYPE_CHECKING, Any

from shoal.errors import TimedOut, from_errno

if TYPE_CHECKING:
    from shoal.client.rados_client import RadosClient

MAP_WAIT = 60.0  # bound on waiting for the map that holds the new entry


async def blocklist_add(client: RadosClient, addr: str, expire_seconds: float = 0) -> None:
    """Blocklist `addr` (`ip:port/nonce`) for `expire_seconds` (0: the monitor's default) and
    wait for the map that holds the entry. Raises EACCES without the mon caps (`profile rbd`
    allows it), EINVAL for an address the monitor cannot parse."""
    cmd: dict[str, Any] = {"prefix": "osd blocklist", "blocklistop": "add", "addr": addr}
    if expire_seconds:
        cmd["expire"] = float(expire_seconds)
    ret, _, outs = await client.mon_command(cmd)
    if ret < 0:
        why = "access denied (the client's mon caps need `profile rbd`)" if ret == -errno.EACCES else outs
        raise from_errno(ret, f"blocklisting {addr}: {why}")
    try:
        await asyncio.wait_for(client.wait_for_latest_map(), MAP_WAIT)
    except TimeoutError as exc:
        raise TimedOut(f"blocklisted {addr}, but the OSD map with the entry did not arrive within "
                       f"{MAP_WAIT:g}s", errno.ETIMEDOUT) from exc

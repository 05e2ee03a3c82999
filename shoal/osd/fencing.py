"""Blocklist enforcement on the OSD (decision record 0007).

Rule: an op is served only once this OSD's map is at least the op's epoch (`_osd_op`
waits for it), and its sender is checked against the blocklist of the map the OSD holds
when the op runs — on arrival, and again under the object's lock just before it executes,
so an op that queued behind the lock while a map with the fence arrived is refused too.
A refused op is answered -ESHUTDOWN (Ceph's -EBLOCKLISTED = -108), without retry.

A client's address is `peer ip:0/nonce` (shoal/placement/blocklist.py). The nonce comes
with every op (`meta["nonce"]`, from the Objecter) or, for watch registrations, inside the
watch op; it is cached per connection, since one connection is one client instance.
"""

from __future__ import annotations

import errno
from typing import Any

from shoal.net.connection import Connection
from shoal.placement.blocklist import client_addr, whole_ip
from shoal.placement.osdmap import OSDMap

EBLOCKLISTED = errno.ESHUTDOWN  # Ceph's alias: what a fenced client's ops fail with


def op_nonce(meta: dict[str, Any]) -> int:
    nonce = meta.get("nonce")
    if nonce is None:
        ops = meta.get("ops")
        if isinstance(ops, list) and ops and isinstance(ops[0], dict):
            nonce = ops[0].get("nonce")
    try:
        return int(nonce or 0)
    except (TypeError, ValueError):
        return 0


def _addrs(conn: Connection, meta: dict[str, Any]) -> tuple[int, str, str]:
    """(nonce, the sender's address, its whole-ip entry), cached per connection."""
    nonce = op_nonce(meta)
    cached: tuple[int, str, str] | None = conn.info.get("client_addr")
    if cached is None or cached[0] != nonce:
        addr = client_addr(conn.peer, nonce)
        cached = conn.info["client_addr"] = (nonce, addr, whole_ip(addr))
    return cached


def sender_addr(conn: Connection, meta: dict[str, Any]) -> str:
    """The address of the client that sent `meta` on `conn`."""
    return _addrs(conn, meta)[1]


def is_peer(conn: Connection) -> bool:
    return str(conn.info.get("entity", "")).startswith("osd.")


def fenced(osdmap: OSDMap, conn: Connection, meta: dict[str, Any]) -> str | None:
    """The sender's address if the map blocklists it, else None (cheap while the list is empty)."""
    if not osdmap.blocklist or is_peer(conn):
        return None
    _, addr, whole = _addrs(conn, meta)
    return addr if addr in osdmap.blocklist or whole in osdmap.blocklist else None


def newly_blocklisted(old: OSDMap, new: OSDMap) -> bool:
    """Whether `new` lists an address (or moves an expiry) that `old` did not."""
    return any(old.blocklist.get(addr) != until for addr, until in new.blocklist.items())

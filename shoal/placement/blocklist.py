"""Client addresses and the OSD map's blocklist (sans-IO).

A client's address is Ceph's legacy entity address text `ip:port/nonce`. Shoal clients
do not listen, so the port is 0 (as a Ceph client's shows); the ip is the one the OSD
sees the client's connection come from and the nonce is a random number the client
picks once per instance (`Objecter.nonce`) and sends with its ops. The same text is a
watcher's `addr` (`rbd status`, `list_watchers`), a cls lock's locker `address`
(`rbd lock ls`) and a blocklist key, so an operator can copy one into the other.

The blocklist maps such an address to the Unix time its entry expires. As Ceph's
`OSDMap::is_blocklisted`, an entry `ip:0/0` fences every client on that ip.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

_PREFIXES = ("v1:", "v2:", "any:")


class AddrError(ValueError):
    """Text that is not an entity address."""


def format_addr(ip: str, port: int, nonce: int) -> str:
    host = f"[{ip}]" if ":" in ip else ip
    return f"{host}:{port}/{nonce}"


def parse_entity_addr(text: str) -> str:
    """`10.0.0.5`, `10.0.0.5:0/123`, `v1:10.0.0.5:6789/0`, `[::1]:0/7` → canonical `ip:port/nonce`
    (a missing port or nonce is 0, as Ceph's entity_addr_t::parse). Hostnames are refused."""
    bad = AddrError(f"unable to parse address {text}")
    body = text.strip()
    for prefix in _PREFIXES:
        if body.startswith(prefix):
            body = body[len(prefix):]
            break
    body, slash, nonce_text = body.partition("/")
    port_text = ""
    if body.startswith("["):  # [v6] or [v6]:port
        host, close, rest = body[1:].partition("]")
        if not close or (rest and not rest.startswith(":")):
            raise bad
        port_text = rest[1:]
    elif body.count(":") == 1:  # v4:port
        host, _, port_text = body.partition(":")
    else:  # v4, or a bare v6 (which cannot carry a port)
        host = body
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise bad from None
    if (port_text and not port_text.isdigit()) or (slash and not nonce_text.isdigit()):
        raise bad
    port, nonce = int(port_text or 0), int(nonce_text or 0)
    if port > 0xFFFF or nonce > 0xFFFFFFFF:
        raise bad
    return format_addr(str(ip), port, nonce)


def client_addr(peer: str, nonce: int) -> str:
    """The address of a client whose connection comes from `peer` (`ip:port` or `[v6]:port`)."""
    host = peer.rsplit(":", 1)[0] if ":" in peer else peer
    host = host.strip("[]")
    return format_addr(host, 0, nonce & 0xFFFFFFFF)


def whole_ip(addr: str) -> str:
    """`10.0.0.5:0/123` → `10.0.0.5:0/0`: the entry that fences every client on the ip."""
    host = addr.rsplit("/", 1)[0].rsplit(":", 1)[0]
    return f"{host}:0/0"


def is_blocklisted(blocklist: Mapping[str, float], addr: str) -> bool:
    if not blocklist:
        return False
    return addr in blocklist or whole_ip(addr) in blocklist

"""Entity names (`client.glance`, `osd.0`, `mon.`) as Ceph's `EntityName` reads and orders them."""

from __future__ import annotations

# Ceph's entity type codes (CEPH_ENTITY_TYPE_*). Keyrings and `ceph auth ls` list
# entities ordered by (type code, id), which is why OSDs come before clients and
# `mgr.x` comes last.
TYPE_CODES: dict[str, int] = {"mon": 0x01, "mds": 0x02, "osd": 0x04, "client": 0x08, "mgr": 0x10, "auth": 0x20}


def is_valid_entity(name: str) -> bool:
    """`type.id` with a known type. The id may be anything, even empty (`mon.`), as in Ceph."""
    if not isinstance(name, str):
        return False
    etype, dot, _ = name.partition(".")
    return bool(dot) and etype in TYPE_CODES


def entity_sort_key(name: str) -> tuple[int, bytes]:
    """Ceph's `EntityName` order: type code first, then the id compared bytewise."""
    etype, _, eid = name.partition(".")
    return (TYPE_CODES.get(etype, 0xFF), eid.encode("utf-8", "surrogateescape"))

"""Object -> placement group, with Ceph's exact rules.

An object's PG must be the one Ceph would compute (same hash, same stable-mod), so
that `ceph osd map` shows the same PG ids an operator knows and a future Ceph-wire
front end places objects where real clients expect them. The PG -> OSD step
(`crush.py`) is ours; the `pps` computed here is its input.
"""

from __future__ import annotations

from shoal.placement.hash import crush_hash32_2, str_hash_rjenkins

__all__ = ["object_hash", "object_pg", "pg_num_mask", "raw_pg_to_pps", "stable_mod"]

# Separator between namespace and object name in the hashed key (pg_pool_t::hash_key).
NSPACE_SEP = "\x1f"


def pg_num_mask(pg_num: int) -> int:
    """Smallest all-ones mask covering 0..pg_num-1, i.e. 2^ceil(log2(pg_num)) - 1.

    Works for any pg_num, not just powers of two: `stable_mod` uses it to fold the
    hash into range without reshuffling objects when pg_num grows by one.
    """
    if pg_num < 1:
        raise ValueError(f"pg_num must be >= 1, got {pg_num}")
    return (1 << (pg_num - 1).bit_length()) - 1


def stable_mod(x: int, b: int, bmask: int) -> int:
    """`x` folded into 0..b-1 so that growing `b` by one only splits one bucket.

    Unlike `x % b`, raising b from n to n+1 moves only the objects that land in the
    new bucket n, and they all come from its single parent bucket n & (bmask >> 1);
    that is what lets a pool split PGs instead of reshuffling every object.
    `bmask` must be `pg_num_mask(b)`.
    """
    r = x & bmask
    return r if r < b else x & (bmask >> 1)


def object_hash(name: str, nspace: str = "") -> int:
    """Ceph's 32-bit hash of an object's name within a namespace (UTF-8)."""
    key = nspace + NSPACE_SEP + name if nspace else name
    return str_hash_rjenkins(key.encode("utf-8"))


def object_pg(name: str, nspace: str, pg_num: int, pg_num_mask: int) -> int:
    """Placement seed (the PG number within its pool) of an object."""
    return stable_mod(object_hash(name, nspace), pg_num, pg_num_mask)


def raw_pg_to_pps(ps: int, pgp_num: int, pgp_num_mask: int, pool_id: int, hashpspool: bool) -> int:
    """The CRUSH input for PG `ps` of a pool (pg_pool_t::raw_pg_to_pps).

    With HASHPSPOOL (the default) the seed is hashed with the pool id, so PG n of
    every pool does not land on the same OSDs; the legacy form just adds the pool id.
    pgp_num < pg_num keeps freshly split PGs on their parent's OSDs until the
    operator raises pgp_num.
    """
    seed = stable_mod(ps, pgp_num, pgp_num_mask)
    if hashpspool:
        return crush_hash32_2(seed, pool_id)
    return (seed + pool_id) & 0xFFFFFFFF

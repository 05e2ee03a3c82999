"""PG -> OSDs: a weighted, failure-domain-aware choice in the spirit of CRUSH straw2.

Why not Ceph's exact CRUSH: only object -> PG must match Ceph (see `pg.py`); which OSDs
serve a PG is internal to a Shoal cluster, as long as every daemon and client computes
the same answer from the same OSD map. We keep what makes straw2 good -- every device
gets an independent, weight-scaled draw for each PG, so adding or removing a device
only moves data onto or off that device -- and drop the tree walk.

The algorithm, for placement input `x` (the pps) and each eligible device i:

    u_i   = (crush_hash32_3(x, id_i, 0) + 1) / 2^32        in (0, 1]
    key_i = ln(u_i) / weight_i                              (straw2's draw)

Devices are ranked by key, highest first (ties: lower id first), and the result is
the first `size` devices of that ranking, skipping a device whose host already holds
a replica when the failure domain is the host. A device is eligible when its CRUSH
weight is > 0 and it passes Ceph's reweight test: with `reweight` as 16.16 fixed point
R, it is in for this PG iff `crush_hash32_2(x, id) & 0xffff < R` (R = 0x10000 always
in, R = 0 always out).

How this relates to CRUSH's firstn rule (choose a host by straw2, a device inside it by
straw2, reject collisions and out devices, retry with r = rep + tries, at most 50
tries): -key_i is exponentially distributed with rate weight_i, and exponential races
are memoryless, so "take the best key, then the best key among the devices still
allowed" draws each replica with probability proportional to weight among the devices
still allowed -- the distribution firstn's rejection-and-retry aims at, and the
host's chance is the sum of its devices' weights, as with a host bucket in straw2.
What changes is that nothing is ever rejected, hence:

* no retry budget: a PG gets `size` OSDs whenever `size` eligible hosts (devices)
  exist, and fewer only when they do not; CRUSH can give up after 50 tries;
* strictly minimal movement, also for a device added to or removed from an existing
  host (with a host-bucket tree the host's weight changes, which also moves PGs
  between the host's other devices and other hosts). Adding device N changes a PG only
  if N now ranks inside its selection, so every changed mapping contains N; removing
  or marking out device D changes only PGs whose mapping contained D;
* one hash per device per PG (plus one per partially reweighted device) instead of
  one per item per try, which keeps the pure-Python cost low.

Determinism: the ranking depends only on (x, device set); input order does not
matter. `math.log` comes from the platform's libm; keys of equal-weight devices compare
exactly like their hashes whatever the libm's last-bit rounding, and a different
last bit could only flip two unequal-weight keys that agree to ~1e-16, so every node
computes the same placement in practice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

from shoal.placement.hash import crush_hash32_2, crush_hash32_3

__all__ = ["TYPE_HOST", "TYPE_OSD", "CrushDevice", "map_pg"]

# Failure domains, with Ceph's CRUSH type ids.
TYPE_OSD = 0
TYPE_HOST = 1

_IN = 0x10000  # reweight 1.0 in 16.16 fixed point
_U_SCALE = 2.0**-32  # maps hash + 1 (1 .. 2^32) onto (0, 1]
# Results memoised per device set; bounded so a long-lived client cannot grow it
# without limit (cleared wholesale when full: recomputing is cheap, scanning is not).
_RESULTS_MAX = 16384


class CrushDevice(NamedTuple):
    """One OSD as placement sees it.

    `weight` is the CRUSH weight (capacity share; 0 = never chosen). `reweight` is the
    in/out override: 1.0 in, 0.0 out, in between in for that fraction of PGs.
    """

    id: int
    host: str
    weight: float
    reweight: float


class _Item(NamedTuple):
    id: int
    host: str
    weight: float
    reweight16: int  # ceil(reweight * 0x10000), clamped to 0..0x10000


class _Topology:
    """The eligible devices of one device set, prepared once, plus memoised results.

    Keyed by the device tuple, so a new OSD map with an unchanged device set (a pool
    created, an OSD marked up) reuses both.
    """

    __slots__ = ("items", "results")

    def __init__(self, items: tuple[_Item, ...]) -> None:
        self.items = items
        self.results: dict[tuple[int, int, int], tuple[int, ...]] = {}


def _reweight16(dev: CrushDevice) -> int:
    """Reweight as the 16.16 threshold of the "is in" test: in iff u < reweight * 0x10000."""
    rw = float(dev.reweight)
    if math.isnan(rw):
        raise ValueError(f"osd.{dev.id}: reweight is NaN")
    if rw <= 0.0:
        return 0
    if rw >= 1.0:
        return _IN
    return min(_IN, math.ceil(rw * _IN))


@lru_cache(maxsize=8)
def _topology(devices: tuple[CrushDevice, ...]) -> _Topology:
    seen: set[int] = set()
    items = []
    for dev in sorted(devices, key=lambda d: d.id):
        if dev.id in seen:
            raise ValueError(f"osd.{dev.id} appears twice in the device list")
        seen.add(dev.id)
        weight = float(dev.weight)
        if not math.isfinite(weight) or weight < 0.0:
            raise ValueError(f"osd.{dev.id}: CRUSH weight must be finite and >= 0, got {dev.weight!r}")
        rw16 = _reweight16(dev)
        if weight == 0.0 or rw16 == 0:
            continue  # never chosen: leaving it out changes no other device's draw
        items.append(_Item(dev.id, dev.host, weight, rw16))
    return _Topology(tuple(items))


def map_pg(x: int, size: int, devices: Sequence[CrushDevice], chooseleaf_type: int) -> list[int]:
    """Up to `size` distinct OSD ids for placement input `x`; the first is the primary.

    `chooseleaf_type` is the failure domain: TYPE_HOST (1) puts no two replicas on one
    host, TYPE_OSD (0) only keeps the OSDs distinct. Returns fewer than `size` ids when
    there are not enough eligible hosts (or devices). Pure and deterministic: the same
    inputs, in any order, give the same list on every node.
    """
    if chooseleaf_type != TYPE_HOST and chooseleaf_type != TYPE_OSD:
        raise ValueError(f"unsupported chooseleaf type {chooseleaf_type} (0 = osd, 1 = host)")
    if size <= 0:
        return []
    x &= 0xFFFFFFFF
    topo = _topology(tuple(devices))
    memo_key = (x, size, chooseleaf_type)
    hit = topo.results.get(memo_key)
    if hit is not None:
        return list(hit)

    log = math.log
    ranked = []
    for dev_id, host, weight, rw16 in topo.items:
        if rw16 != _IN and (crush_hash32_2(x, dev_id) & 0xFFFF) >= rw16:
            continue  # out for this PG
        key = log((crush_hash32_3(x, dev_id, 0) + 1) * _U_SCALE) / weight
        # (key, -id): highest key first, lower id first on a tie; ids are unique.
        ranked.append((key, -dev_id, host))
    ranked.sort(reverse=True)

    if chooseleaf_type == TYPE_OSD:
        chosen = tuple(-neg_id for _, neg_id, _ in ranked[:size])
    else:
        hosts: set[str] = set()
        picked: list[int] = []
        for _, neg_id, host in ranked:
            if host in hosts:
                continue
            hosts.add(host)
            picked.append(-neg_id)
            if len(picked) == size:
                break
        chosen = tuple(picked)

    results = topo.results
    if len(results) >= _RESULTS_MAX:
        results.clear()
    results[memo_key] = chosen
    return list(chosen)

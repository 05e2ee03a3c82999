"""Properties of PG -> OSD placement (straw2-style ranking, see shoal/placement/crush.py).

Hypothesis runs derandomized (a fixed seed per test), so a failure reproduces; it
prints the falsifying cluster and PG input.
"""

from __future__ import annotations

import math
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.placement.crush import TYPE_HOST, TYPE_OSD, CrushDevice, map_pg
from shoal.placement.hash import crush_hash32_2
from shoal.placement.pg import raw_pg_to_pps

SETTINGS = settings(derandomize=True, deadline=None, max_examples=60, database=None)
MOVE_SETTINGS = settings(derandomize=True, deadline=None, max_examples=40, database=None)

u32 = st.integers(min_value=0, max_value=0xFFFFFFFF)
failure_domains = st.sampled_from([TYPE_OSD, TYPE_HOST])
sizes = st.integers(min_value=1, max_value=5)


def pps_list(n: int, pool_id: int = 1) -> list[int]:
    """Realistic CRUSH inputs: the pps of PGs 0..n-1 of a pool with pg_num n."""
    mask = (1 << (n - 1).bit_length()) - 1
    return [raw_pg_to_pps(ps, n, mask, pool_id, True) for ps in range(n)]


PGS_128 = pps_list(128)
PGS_4096 = pps_list(4096)


@st.composite
def clusters(draw: st.DrawFn, reweights: tuple[float, ...] = (1.0,), max_hosts: int = 6) -> list[CrushDevice]:
    """1..max_hosts hosts with 1..3 devices each; ids shuffled so id order != host order."""
    n_hosts = draw(st.integers(min_value=1, max_value=max_hosts))
    per_host = [draw(st.integers(min_value=1, max_value=3)) for _ in range(n_hosts)]
    ids = draw(st.permutations(range(sum(per_host))))
    devs = []
    k = 0
    for h, count in enumerate(per_host):
        for _ in range(count):
            weight = draw(st.sampled_from([0.5, 1.0, 1.0, 2.0]))
            reweight = draw(st.sampled_from(reweights))
            devs.append(CrushDevice(ids[k], f"host{h}", weight, reweight))
            k += 1
    return devs


def eligible(devs: list[CrushDevice]) -> list[CrushDevice]:
    return [d for d in devs if d.weight > 0 and d.reweight > 0]


# -- basic contract ---------------------------------------------------------------------


@SETTINGS
@given(clusters(reweights=(1.0, 1.0, 0.0, 0.5)), u32, sizes, failure_domains, st.randoms(use_true_random=False))
def test_deterministic_and_independent_of_input_order(devs, x, size, ftype, rnd) -> None:
    first = map_pg(x, size, devs, ftype)
    assert map_pg(x, size, devs, ftype) == first
    shuffled = list(devs)
    rnd.shuffle(shuffled)
    assert map_pg(x, size, shuffled, ftype) == first


@SETTINGS
@given(clusters(reweights=(1.0, 1.0, 0.0)), u32, sizes, failure_domains)
def test_distinct_size_and_failure_domain(devs, x, size, ftype) -> None:
    """Distinct ids; `size` of them whenever enough eligible hosts (or devices) exist;
    with the host failure domain no two replicas share a host."""
    result = map_pg(x, size, devs, ftype)
    by_id = {d.id: d for d in devs}
    assert len(set(result)) == len(result)
    assert all(i in by_id for i in result)
    live = eligible(devs)
    if ftype == TYPE_HOST:
        hosts = [by_id[i].host for i in result]
        assert len(set(hosts)) == len(hosts)
        assert len(result) == min(size, len({d.host for d in live}))
    else:
        assert len(result) == min(size, len(live))


@SETTINGS
@given(clusters(reweights=(1.0, 0.0, 0.25, 0.5, 0.75)), st.lists(u32, min_size=20, max_size=20), sizes,
       failure_domains)
def test_out_devices_never_chosen(devs, xs, size, ftype) -> None:
    """reweight 0 is always out; a partial reweight is Ceph's test:
    in for PG x iff crush_hash32_2(x, id) & 0xffff < reweight * 0x10000."""
    by_id = {d.id: d for d in devs}
    for x in xs:
        for i in map_pg(x, size, devs, ftype):
            rw = by_id[i].reweight
            assert rw > 0
            if rw < 1:
                assert (crush_hash32_2(x, i) & 0xFFFF) < rw * 0x10000


def test_zero_weight_never_chosen() -> None:
    devs = [CrushDevice(0, "a", 1.0, 1.0), CrushDevice(1, "b", 0.0, 1.0), CrushDevice(2, "c", 1.0, 1.0)]
    for x in PGS_128:
        assert map_pg(x, 3, devs, TYPE_HOST) in ([0, 2], [2, 0])


def test_fewer_than_size_when_not_enough_hosts() -> None:
    devs = [CrushDevice(i, f"h{i % 2}", 1.0, 1.0) for i in range(6)]
    for x in PGS_128[:32]:
        assert len(map_pg(x, 3, devs, TYPE_HOST)) == 2
        assert len(map_pg(x, 3, devs, TYPE_OSD)) == 3


def test_edge_cases() -> None:
    devs = [CrushDevice(0, "a", 1.0, 1.0)]
    assert map_pg(1, 0, devs, TYPE_HOST) == []
    assert map_pg(1, 3, [], TYPE_HOST) == []
    assert map_pg(1, 3, [CrushDevice(0, "a", 1.0, 0.0)], TYPE_HOST) == []
    assert map_pg(1, 3, devs, TYPE_HOST) == [0]
    # x is a u32: a negative int means the same as in C.
    assert map_pg(-1, 1, devs, TYPE_OSD) == map_pg(0xFFFFFFFF, 1, devs, TYPE_OSD)


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="chooseleaf type"):
        map_pg(1, 3, [CrushDevice(0, "a", 1.0, 1.0)], 2)
    with pytest.raises(ValueError, match="osd.0 appears twice"):
        map_pg(1, 3, [CrushDevice(0, "a", 1.0, 1.0), CrushDevice(0, "b", 1.0, 1.0)], TYPE_HOST)
    with pytest.raises(ValueError, match="osd.3"):
        map_pg(1, 3, [CrushDevice(3, "a", math.nan, 1.0)], TYPE_HOST)
    with pytest.raises(ValueError, match="osd.3"):
        map_pg(1, 3, [CrushDevice(3, "a", -1.0, 1.0)], TYPE_HOST)


def test_result_is_a_fresh_list() -> None:
    """Results are memoised; a caller mutating its list must not corrupt the memo."""
    devs = [CrushDevice(i, f"h{i}", 1.0, 1.0) for i in range(4)]
    first = map_pg(42, 3, devs, TYPE_HOST)
    first.append(99)
    assert map_pg(42, 3, devs, TYPE_HOST) == first[:3]


# -- balance ---------------------------------------------------------------------------


def _replica_shares(devs: list[CrushDevice], size: int, ftype: int) -> dict[int, float]:
    """Each device's share of all replicas over 4096 PGs, divided by its weight share."""
    counts: Counter[int] = Counter()
    for x in PGS_4096:
        counts.update(map_pg(x, size, devs, ftype))
    total = sum(counts.values())
    weight = sum(d.weight for d in devs)
    return {d.id: (counts[d.id] / total) / (d.weight / weight) for d in devs}


def _primary_shares(devs: list[CrushDevice], size: int, ftype: int) -> dict[int, float]:
    counts = Counter(map_pg(x, size, devs, ftype)[0] for x in PGS_4096)
    weight = sum(d.weight for d in devs)
    return {d.id: (counts[d.id] / len(PGS_4096)) / (d.weight / weight) for d in devs}


BALANCE_CASES = {
    "equal, 3 hosts x 2, size 3": ([CrushDevice(i, f"h{i // 2}", 1.0, 1.0) for i in range(6)], 3, TYPE_HOST),
    "equal, 6 hosts, size 3": ([CrushDevice(i, f"h{i}", 1.0, 1.0) for i in range(6)], 3, TYPE_HOST),
    "equal, flat, size 2": ([CrushDevice(i, "one", 1.0, 1.0) for i in range(5)], 2, TYPE_OSD),
    "2:1, 3 hosts of (2, 1), size 3": (
        [CrushDevice(i, f"h{i // 2}", 2.0 if i % 2 == 0 else 1.0, 1.0) for i in range(6)], 3, TYPE_HOST),
    "2:1, 12 hosts, size 3": (
        [CrushDevice(i, f"h{i}", 2.0 if i % 2 == 0 else 1.0, 1.0) for i in range(12)], 3, TYPE_HOST),
    "2:1, flat, size 2": ([CrushDevice(i, "one", 2.0 if i < 4 else 1.0, 1.0) for i in range(8)], 2, TYPE_OSD),
}


@pytest.mark.parametrize("case", list(BALANCE_CASES))
def test_balance_within_20_percent_of_weight(case: str) -> None:
    """Each device's share of replicas, and of primaries, is within +-20% of its
    weight share. (The cases keep the hosts' weight shares below 1/size: a host
    heavier than that cannot get its share under "one replica per host", in CRUSH
    either.)"""
    devs, size, ftype = BALANCE_CASES[case]
    for shares in (_replica_shares(devs, size, ftype), _primary_shares(devs, size, ftype)):
        bad = {i: round(s, 3) for i, s in shares.items() if not 0.8 <= s <= 1.2}
        assert not bad, f"{case}: share/weight-share out of range: {bad}"


def test_partial_reweight_scales_share() -> None:
    """reweight 0.5 keeps a device in for about half of the PGs, so it holds about half
    the data its weight alone would give it."""
    devs = [CrushDevice(i, f"h{i}", 1.0, 0.5 if i == 0 else 1.0) for i in range(8)]
    full = [d._replace(reweight=1.0) for d in devs]
    n_half = sum(0 in map_pg(x, 2, devs, TYPE_HOST) for x in PGS_4096)
    n_full = sum(0 in map_pg(x, 2, full, TYPE_HOST) for x in PGS_4096)
    assert 0.4 <= n_half / n_full <= 0.6


# -- minimal movement ------------------------------------------------------------------


@st.composite
def cluster_and_new_device(draw: st.DrawFn) -> tuple[list[CrushDevice], CrushDevice]:
    devs = draw(clusters(reweights=(1.0, 1.0, 0.0, 0.5)))
    hosts = sorted({d.host for d in devs})
    host = draw(st.sampled_from([*hosts, "newhost"]))  # into an existing host, or a new one
    weight = draw(st.sampled_from([0.5, 1.0, 2.0]))
    return devs, CrushDevice(max(d.id for d in devs) + 1, host, weight, 1.0)


@MOVE_SETTINGS
@given(cluster_and_new_device(), sizes, failure_domains)
def test_adding_a_device_only_moves_data_onto_it(case, size, ftype) -> None:
    """Every PG whose mapping changes now includes the new device; nothing else
    shuffles, whether it joins an existing host or brings a new one."""
    devs, new = case
    grown = [*devs, new]
    for x in PGS_128:
        before = map_pg(x, size, devs, ftype)
        after = map_pg(x, size, grown, ftype)
        if after != before:
            assert new.id in after, (x, before, after)


@st.composite
def cluster_and_victim(draw: st.DrawFn) -> tuple[list[CrushDevice], int, str]:
    devs = draw(clusters(reweights=(1.0, 1.0, 0.0, 0.5)))
    victim = draw(st.sampled_from([d.id for d in devs]))
    how = draw(st.sampled_from(["remove", "out", "zero-weight", "partial-out"]))
    return devs, victim, how


@MOVE_SETTINGS
@given(cluster_and_victim(), sizes, failure_domains)
def test_removing_or_outing_a_device_only_moves_its_data(case, size, ftype) -> None:
    """Only PGs that contained the device change when it is removed, marked out,
    given weight 0 or reweighted down."""
    devs, victim, how = case
    if how == "remove":
        shrunk = [d for d in devs if d.id != victim]
    else:
        old = next(d for d in devs if d.id == victim)
        # A partial reweight only ever lowers it here: 0.5 -> 0.3 keeps a subset of its PGs.
        change = {"out": {"reweight": 0.0}, "zero-weight": {"weight": 0.0},
                  "partial-out": {"reweight": min(old.reweight, 0.3)}}[how]
        shrunk = [d._replace(**change) if d.id == victim else d for d in devs]
    for x in PGS_128:
        before = map_pg(x, size, devs, ftype)
        after = map_pg(x, size, shrunk, ftype)
        if after != before:
            assert victim in before, (x, before, after)
        assert how == "partial-out" or victim not in after


def test_movement_fraction_is_about_the_new_share() -> None:
    """Adding a 4th equal host to 3 (size 3) moves about 1/4 of the replicas, the
    minimum needed to give it its share, not more."""
    devs = [CrushDevice(i, f"h{i}", 1.0, 1.0) for i in range(3)]
    grown = [*devs, CrushDevice(3, "h3", 1.0, 1.0)]
    moved = 0
    for x in PGS_4096:
        before, after = map_pg(x, 3, devs, TYPE_HOST), map_pg(x, 3, grown, TYPE_HOST)
        moved += len(set(after) - set(before))
    assert 0.22 <= moved / (3 * len(PGS_4096)) <= 0.28

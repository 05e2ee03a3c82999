"""The write-back cache's bookkeeping (shoal/rbd/cache_map.py), sans-IO, against a model.

The model is two byte arrays: what the user wrote (`latest`) and what the cluster holds
(`cluster`, changed only when a writeback completes). Whatever the interleaving of writes,
writebacks taken, completed or failed, and flushes:

* a read (cluster bytes, then the overlay) equals `latest` (read-your-writes);
* no two in-flight writebacks overlap (the cluster can't reorder overlapping writes);
* the byte accounting matches the extents;
* draining everything leaves `cluster == latest`, and a flush generation is pending exactly
  while bytes written before it are.
"""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.rbd.cache_map import CacheState, Extent, ExtentMap

SIZE = 256

ops = st.lists(st.one_of(
    st.tuples(st.just("write"), st.integers(0, SIZE - 1), st.integers(1, 64), st.integers(0, 255)),
    st.tuples(st.just("take"), st.integers(0, 3), st.integers(0, 128), st.booleans()),
    st.tuples(st.just("complete"), st.integers(0, 7)),
    st.tuples(st.just("fail"), st.integers(0, 7)),
    st.tuples(st.just("flush")),
    st.tuples(st.just("tick"), st.floats(0, 2)),
), max_size=60)


def view(state: CacheState, cluster: bytearray) -> bytes:
    out = bytearray(cluster)
    for off, data in state.overlay(0, SIZE):
        out[off:off + len(data)] = data
    return bytes(out)


def check_invariants(state: CacheState) -> None:
    inflight = sorted((e.off, e.end) for e in state.inflight)
    for (_, a_end), (b_off, _) in pairwise(inflight):
        assert a_end <= b_off, "overlapping writebacks in flight"
    assert state.dirty_bytes == sum(len(e.data) for e in state.dirty)
    assert state.inflight_bytes == sum(e.end - e.off for e in state.inflight)
    dirty = sorted((e.off, e.end) for e in state.dirty)
    for (_, a_end), (b_off, _) in pairwise(dirty):
        assert a_end <= b_off, "overlapping dirty extents"


@settings(max_examples=300, deadline=None)
@given(ops)
def test_cache_state_matches_model(script: list[tuple]) -> None:
    state = CacheState()
    latest, cluster = bytearray(SIZE), bytearray(SIZE)
    inflight = []
    now = 0.0
    flushes: list[tuple[int, bytes]] = []  # (gen, latest at the flush)
    for op in script:
        kind = op[0]
        if kind == "write":
            _, off, n, fill = op
            n = min(n, SIZE - off)
            data = bytes([fill]) * n
            state.write(off, data, now)
            latest[off:off + n] = data
        elif kind == "take":
            _, limit, target, flush = op
            inflight += state.take(now, state.gen - 1 if flush else -1, target, 1.0, limit)
        elif kind in ("complete", "fail") and inflight:
            wb = inflight.pop(op[1] % len(inflight))
            if kind == "complete":
                cluster[wb.off:wb.end] = wb.data
                state.complete(wb)
            else:
                state.fail(wb, now)
        elif kind == "flush":
            flushes.append((state.new_flush(), bytes(latest)))
        elif kind == "tick":
            now += op[1]
        check_invariants(state)
        assert view(state, cluster) == bytes(latest)
    # Drain: everything reaches the cluster in a bounded number of rounds.
    final = state.new_flush()
    for _ in range(1000):
        batch = state.take(now, final, 0, 1.0, 100)
        for wb in inflight + batch:
            cluster[wb.off:wb.end] = wb.data
            state.complete(wb)
        inflight = []
        if state.empty:
            break
    assert state.empty and not state.pending_upto(final)
    assert bytes(cluster) == bytes(latest)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 100), st.integers(1, 40)), max_size=30))
def test_extent_map_last_writer_wins(writes: list[tuple[int, int]]) -> None:
    m = ExtentMap()
    model: list[int | None] = [None] * 160
    for i, (off, n) in enumerate(writes):
        m.insert(Extent(off, memoryview(bytes([i]) * n), 0, 0.0))
        model[off:off + n] = [i] * n
    got: list[int | None] = [None] * 160
    for e in m:
        for k, b in enumerate(e.data):
            got[e.off + k] = b
    assert got == model
    covered = [(s, t) for s, t in m.gaps(0, 160)]
    for s, t in covered:
        assert all(model[k] is None for k in range(s, t))


def test_flush_generation_waits_only_for_older_bytes() -> None:
    state = CacheState()
    state.write(0, b"a" * 10, 0.0)
    g = state.new_flush()
    state.write(100, b"b" * 10, 0.0)
    assert state.pending_upto(g)
    wbs = state.take(0.0, g, 1 << 20, 10.0, 10)
    assert [(w.off, len(w.data)) for w in wbs] == [(0, 10)]  # only what the flush waits for
    state.complete(wbs[0])
    assert not state.pending_upto(g)
    assert state.dirty_bytes == 10


def test_overlapping_write_waits_for_inflight_writeback() -> None:
    state = CacheState()
    state.write(0, b"a" * 10, 0.0)
    (wb,) = state.take(0.0, 0, 0, 1.0, 10)
    state.write(5, b"b" * 10, 0.0)
    assert state.take(0.0, state.new_flush(), 0, 1.0, 10) == []  # overlaps the in-flight one
    state.complete(wb)
    (wb2,) = state.take(0.0, 1, 0, 1.0, 10)
    assert (wb2.off, bytes(wb2.data)) == (5, b"b" * 10)


def test_adjacent_dirty_extents_join_into_one_writeback() -> None:
    state = CacheState()
    for i in range(8):
        state.write(i * 4096, bytes([i]) * 4096, 0.0)
    wbs = state.take(0.0, state.new_flush(), 0, 1.0, 10)
    assert len(wbs) == 1 and len(wbs[0].data) == 8 * 4096
    assert wbs[0].pieces == [(0, 4096)] * 8

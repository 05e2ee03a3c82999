"""ObjectContext and the SnapSet rules, on a MemoryStore (no daemons)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shoal.osd.object_context import ObjectContext, context_at_snap
from shoal.osd.ops import execute
from shoal.osd.snaps import SnapSet, intersect, resolve_read, subtract, trim
from shoal.osd.store.base import HEAD, ObjectId
from shoal.osd.store.memory import MemoryStore
from shoal.osd.store.transaction import Transaction

COLL = "1.0"


def store() -> MemoryStore:
    s = MemoryStore()
    s.mount()
    t = Transaction()
    t.create_collection(COLL)
    s.apply([t])
    return s


def run(s: MemoryStore, name: str, ops: list[dict], snapc: tuple[int, list[int]] | None = None) -> list[dict]:
    ctx = ObjectContext(s, COLL, ObjectId(name), snapc, snapshots=True)
    res = execute(ctx, ops, memoryview(b""))
    assert res.result == 0, res.outs
    if ctx.modified:
        s.apply([ctx.txn])
    return res.outs


def test_a_vector_reads_what_it_created() -> None:
    s = store()
    outs = run(s, "h", [{"op": "omap_setkeys", "kv": {"a": b"1"}},
                        {"op": "omap_get_vals_by_keys", "keys": ["a", "b"]}, {"op": "getxattrs"},
                        {"op": "omap_get_header"}, {"op": "omap_get_vals"}])
    assert outs[1]["vals"] == {"a": b"1"} and outs[2]["attrs"] == {} and outs[4]["vals"] == [("a", b"1")]


def test_clone_on_write_and_read_at_snap() -> None:
    s = store()
    s.apply([_write_txn("o", b"old")])
    run(s, "o", [{"op": "writefull", "d": None}], snapc=(3, [3, 2]))  # truncates to empty
    at2 = context_at_snap(s, COLL, ObjectId("o"), 2)
    assert at2 is not None and at2.read(0, 0) == b"old"
    assert context_at_snap(s, COLL, ObjectId("o"), 4).oid.snap == HEAD  # type: ignore[union-attr]
    listed = run(s, "o", [{"op": "list_snaps"}])[0]
    assert [c["id"] for c in listed["clones"]] == [3, HEAD] and listed["clones"][0]["snaps"] == [2, 3]


def _write_txn(name: str, data: bytes) -> Transaction:
    t = Transaction()
    t.write(COLL, ObjectId(name), 0, data)
    return t


extents = st.lists(st.tuples(st.integers(0, 200), st.integers(1, 50)), max_size=6).map(
    lambda xs: sorted({o: n for o, n in xs}.items()))


def _bytes_of(ext: list[tuple[int, int]]) -> set[int]:
    return {b for o, n in ext for b in range(o, o + n)}


@given(extents, st.integers(0, 250), st.integers(0, 60))
def test_subtract_removes_exactly_the_range(ext: list[tuple[int, int]], off: int, length: int) -> None:
    assert _bytes_of(subtract(ext, off, length)) == _bytes_of(ext) - set(range(off, off + length))


@given(extents, extents)
def test_intersect_is_set_intersection(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> None:
    norm_a = subtract(a, 10**6, 1)
    assert _bytes_of(intersect(norm_a, subtract(b, 10**6, 1))) <= _bytes_of(a) & _bytes_of(b)


def test_resolve_and_trim() -> None:
    ss = SnapSet.decode(SnapSet(6).encode())
    from shoal.osd.snaps import Clone
    ss.clones = [Clone(2, [1, 2], 10, [(0, 5)]), Clone(5, [4, 5], 10, [(3, 7)])]
    assert resolve_read(ss, True, 1) == 2 and resolve_read(ss, True, 3) is None
    assert resolve_read(ss, True, 4) == 5 and resolve_read(ss, True, 7) == HEAD
    assert resolve_read(ss, False, 7) is None
    doomed, changed = trim(ss, frozenset({4, 5}))
    assert doomed == [5] and changed and ss.clones[0].overlap == [(3, 2)]

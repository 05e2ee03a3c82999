"""The ObjectStore conformance suite, as library code taking a store factory.

    check_object_store(lambda: SqliteStore(tmpdir))

runs every check, each on a fresh store from the factory (which must return a new,
empty, unmounted store). Tests may instead parametrize over `CHECKS` to see each check
pass or fail by name. Checks raise AssertionError with a message that says what
differed; they do not rely on pytest's assert rewriting.

`dump_store` turns a whole store into plain data, for comparing two stores (or one
store before and after a failed batch).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

from shoal.errors import Exists, InvalidArgument, NoData, NotFound, ShoalError, Shutdown
from shoal.osd.store.base import HEAD, ObjectStore
from shoal.osd.store.transaction import ObjectId, Transaction

C = "1.0"
C2 = "1.1"
A = ObjectId("a")
B = ObjectId("b")
KiB, MiB = 1024, 1024 * 1024


# ---------------------------------------------------------------- helpers

def expect(cond: object, msg: str) -> None:
    if not cond:
        raise AssertionError(msg)


def expect_eq(got: object, want: object, what: str) -> None:
    if got != want:
        g, w = _short(got), _short(want)
        raise AssertionError(f"{what}: got {g}, want {w}")


def expect_raises(exc: type[BaseException], fn: Callable[[], object], what: str,
                  mentions: tuple[str, ...] = ()) -> BaseException:
    try:
        fn()
    except exc as e:
        for m in mentions:
            expect(m in str(e), f"{what}: error {e!r} should mention {m!r}")
        return e
    except BaseException as e:
        raise AssertionError(f"{what}: raised {e!r}, want {exc.__name__}") from e
    raise AssertionError(f"{what}: did not raise {exc.__name__}")


def _short(x: object) -> str:
    if isinstance(x, bytes | bytearray) and len(x) > 48:
        return f"<{len(x)} bytes {bytes(x[:24])!r}...>"
    r = repr(x)
    return r if len(r) < 400 else r[:400] + "..."


def txn(*build: Callable[[Transaction], None]) -> Transaction:
    t = Transaction()
    for b in build:
        b(t)
    return t


def apply1(store: ObjectStore, fn: Callable[[Transaction], None]) -> None:
    t = Transaction()
    fn(t)
    store.apply([t])


def with_coll(store: ObjectStore, *colls: str) -> None:
    t = Transaction()
    for c in colls or (C,):
        t.create_collection(c)
    store.apply([t])


def dump_store(store: ObjectStore) -> dict[str, Any]:
    """Everything observable in the store, as plain data (mtimes included)."""
    out: dict[str, Any] = {}
    for coll in store.list_collections():
        objs: dict[ObjectId, Any] = {}
        oids, more = store.list_objects(coll)
        expect(not more, "list_objects with the default max_return returned more=True")
        for oid in oids:
            st = store.stat(coll, oid)
            objs[oid] = {
                "size": st.size, "mtime": st.mtime,
                "data": store.read(coll, oid, 0, 0),
                "xattrs": store.getattrs(coll, oid),
                "omap": store.omap_get_vals(coll, oid)[0],
                "header": store.omap_get_header(coll, oid),
            }
        out[coll] = {"objects": objs, "meta": store.get_all_meta(coll), "log": store.log_read(coll)}
    return out


def _pattern(seed: int, n: int) -> bytes:
    return random.Random(seed).randbytes(n)


# ---------------------------------------------------------------- checks

def check_lifecycle(s: ObjectStore) -> None:
    with_coll(s)
    apply1(s, lambda t: t.write(C, A, 0, b"persist"))
    before = dump_store(s)
    s.umount()
    expect_raises(Shutdown, lambda: s.apply([txn(lambda t: t.touch(C, B))]), "apply while unmounted")
    expect_raises(Shutdown, lambda: s.read(C, A, 0, 0), "read while unmounted")
    s.mount()
    expect_eq(dump_store(s), before, "contents after umount + mount")
    s.apply([])
    s.apply([Transaction(), Transaction()])
    expect_eq(dump_store(s), before, "contents after empty applies")


def check_collections(s: ObjectStore) -> None:
    expect_eq(s.list_collections(), [], "collections of a new store")
    with_coll(s, "2.1f", "10.0", "2.a")
    expect_eq(s.list_collections(), ["10.0", "2.1f", "2.a"], "list_collections (sorted)")
    expect(s.collection_exists("2.1f") and not s.collection_exists("3.0"), "collection_exists")
    expect_raises(Exists, lambda: s.apply([txn(lambda t: t.create_collection("2.1f"))]),
                  "create of an existing collection", ("2.1f",))
    expect_raises(NotFound, lambda: s.apply([txn(lambda t: t.remove_collection("9.9"))]),
                  "remove of a missing collection", ("9.9",))
    apply1(s, lambda t: (t.write("2.1f", A, 0, b"x" * 100), t.omap_setkeys("2.1f", A, {"k": b"v"}),
                         t.setattrs("2.1f", A, {"_": b"oi"}), t.set_meta("2.1f", "info", b"i"),
                         t.log_append("2.1f", 7, b"e")))
    apply1(s, lambda t: t.remove_collection("2.1f"))
    expect_eq(s.list_collections(), ["10.0", "2.a"], "collections after remove")
    for fn in (lambda: s.list_objects("2.1f"), lambda: s.get_meta("2.1f", "info"),
               lambda: s.log_read("2.1f"), lambda: s.stat("2.1f", A), lambda: s.get_all_meta("2.1f")):
        expect_raises(NotFound, fn, "read of a removed collection")
    expect(not s.exists("2.1f", A), "exists() in a removed collection")
    with_coll(s, "2.1f")
    expect_eq(dump_store(s)["2.1f"], {"objects": {}, "meta": {}, "log": []}, "a re-created collection is empty")
    apply1(s, lambda t: t.log_append("2.1f", 1, b"again"))  # the log restarts with the collection
    expect_raises(NotFound, lambda: s.apply([txn(lambda t: t.write("nope", A, 0, b"x"))]),
                  "write to a missing collection", ("nope",))


def check_touch_stat(s: ObjectStore) -> None:
    with_coll(s)
    expect(not s.exists(C, A), "exists before touch")
    expect_raises(NotFound, lambda: s.stat(C, A), "stat of a missing object", ("a", C))
    expect_raises(NotFound, lambda: s.read(C, A, 0, 0), "read of a missing object")
    apply1(s, lambda t: t.touch(C, A))
    expect(s.exists(C, A), "exists after touch")
    st = s.stat(C, A)
    expect_eq((st.size, st.mtime), (0, 0.0), "stat of a touched object")
    expect_eq(s.read(C, A, 0, 0), b"", "read of an empty object")
    apply1(s, lambda t: t.write(C, A, 0, b"data"))
    apply1(s, lambda t: t.touch(C, A))
    expect_eq(s.read(C, A, 0, 0), b"data", "touch keeps existing data")
    expect_raises(NotFound, lambda: s.stat("9.9", A), "stat in a missing collection", ("9.9",))


def check_write_read(s: ObjectStore) -> None:
    with_coll(s)
    apply1(s, lambda t: t.write(C, A, 0, b"hello world"))
    expect_eq(s.read(C, A, 0, 0), b"hello world", "read to end")
    expect_eq(s.read(C, A, 6, 5), b"world", "read in the middle")
    expect_eq(s.read(C, A, 6, 100), b"world", "short read at the end")
    expect_eq(s.read(C, A, 11, 10), b"", "read at the end")
    expect_eq(s.read(C, A, 1000, 10), b"", "read past the end")
    expect_eq(s.read(C, A, 3, 0), b"lo world", "length 0 reads to the end")
    apply1(s, lambda t: t.write(C, A, 6, b"WO"))
    expect_eq(s.read(C, A, 0, 0), b"hello WOrld", "overwrite in the middle")
    apply1(s, lambda t: t.write(C, A, 20, bytearray(b"far")))
    expect_eq(s.read(C, A, 0, 0), b"hello WOrld" + bytes(9) + b"far", "hole reads as zeros")
    expect_eq(s.stat(C, A).size, 23, "size after an extending write")
    apply1(s, lambda t: t.write(C, A, 100, b""))
    expect_eq(s.stat(C, A).size, 23, "a zero-length write does not extend")
    apply1(s, lambda t: t.write(C, B, 50, b""))
    expect(s.exists(C, B) and s.stat(C, B).size == 0, "a zero-length write creates the object")
    buf = bytearray(_pattern(1, 300 * KiB))
    apply1(s, lambda t: t.write(C, B, 0, memoryview(buf)[10:]))
    expect_eq(s.read(C, B, 0, 0), bytes(buf[10:]), "memoryview payload")
    big = _pattern(2, 4 * MiB + 123)
    apply1(s, lambda t: t.write(C, ObjectId("big"), 4097, big))
    expect_eq(s.read(C, ObjectId("big"), 0, 0), bytes(4097) + big, "4 MiB write at an odd offset")
    expect_eq(s.read(C, ObjectId("big"), 4 * MiB - 5, 4 * KiB), (bytes(4097) + big)[4 * MiB - 5:4 * MiB + 4091],
              "4 KiB read across blocks")
    expect_raises(InvalidArgument, lambda: s.read(C, A, -1, 5), "negative offset")
    expect_raises(InvalidArgument, lambda: s.read(C, A, 0, -5), "negative length")
    expect_raises(InvalidArgument, lambda: s.read(C, "a", 0, 5), "object id that is not an ObjectId")  # type: ignore[arg-type]


def check_random_extents(s: ObjectStore) -> None:
    """Seeded random writes/zeros/truncates around block boundaries against a bytearray."""
    with_coll(s)
    seed = random.randrange(1 << 30)
    rnd = random.Random(seed)
    model = bytearray()
    edges = [0, 1, 4095, 4096, 65535, 65536, 65537, 131072, 200000, 262143]
    for step in range(60):
        kind = rnd.choice(["write", "write", "write", "zero", "truncate"])
        off = max(0, rnd.choice(edges) + rnd.randint(-3, 3)) if rnd.random() < 0.6 else rnd.randrange(300000)
        n = rnd.choice([1, 7, 4096, 65536, 70000, rnd.randrange(1, 140000)])
        t = Transaction()
        if kind == "write":
            data = rnd.randbytes(n)
            t.write(C, A, off, data)
            if len(model) < off:
                model.extend(bytes(off - len(model)))
            model[off:off + n] = data
        elif kind == "zero":
            t.zero(C, A, off, n)
            if off < len(model):
                end = min(off + n, len(model))
                model[off:end] = bytes(end - off)
        else:
            t.truncate(C, A, off)
            if off < len(model):
                del model[off:]
            else:
                model.extend(bytes(off - len(model)))
        s.apply([t])
        got = s.read(C, A, 0, 0)
        if got != bytes(model):
            diff = next((i for i in range(min(len(got), len(model))) if got[i] != model[i]), None)
            raise AssertionError(f"random extents (seed {seed}) step {step} {kind} {off}~{n}: "
                                 f"size {len(got)} vs {len(model)}, first differing byte {diff}")
        r_off = rnd.randrange(len(model) + 10)
        r_len = rnd.randrange(70000)
        want = bytes(model[r_off:r_off + r_len]) if r_len else bytes(model[r_off:])
        expect_eq(s.read(C, A, r_off, r_len), want, f"partial read (seed {seed}) step {step}")


def check_zero(s: ObjectStore) -> None:
    with_coll(s)
    data = _pattern(3, 200 * KiB)
    apply1(s, lambda t: t.write(C, A, 0, data))
    apply1(s, lambda t: t.zero(C, A, 1000, 70000))
    want = data[:1000] + bytes(70000) + data[71000:]
    expect_eq(s.read(C, A, 0, 0), want, "zero in the middle")
    apply1(s, lambda t: t.zero(C, A, 190 * KiB, 100 * KiB))
    want = want[:190 * KiB] + bytes(10 * KiB)
    expect_eq(s.stat(C, A).size, 200 * KiB, "zero past the end does not extend")
    expect_eq(s.read(C, A, 0, 0), want, "zero clipped at the end")
    apply1(s, lambda t: t.zero(C, A, 300 * KiB, 10))
    expect_eq(s.stat(C, A).size, 200 * KiB, "zero entirely past the end is a no-op")
    apply1(s, lambda t: t.zero(C, B, 0, 100))
    expect(s.exists(C, B) and s.stat(C, B).size == 0, "zero creates a missing object, empty")
    apply1(s, lambda t: t.zero(C, A, 0, 1 << 30))
    expect_eq(s.read(C, A, 0, 0), bytes(200 * KiB), "zero of the whole object")


def check_truncate(s: ObjectStore) -> None:
    with_coll(s)
    data = _pattern(4, 150 * KiB)
    apply1(s, lambda t: t.write(C, A, 0, data))
    apply1(s, lambda t: t.truncate(C, A, 70000))
    expect_eq(s.read(C, A, 0, 0), data[:70000], "truncate shrinks")
    apply1(s, lambda t: t.truncate(C, A, 150 * KiB))
    expect_eq(s.read(C, A, 0, 0), data[:70000] + bytes(150 * KiB - 70000), "shrink then grow reads zeros")
    apply1(s, lambda t: (t.truncate(C, A, 10), t.write(C, A, 20, b"z")))
    expect_eq(s.read(C, A, 0, 0), data[:10] + bytes(10) + b"z", "no stale bytes after truncate + write")
    apply1(s, lambda t: t.truncate(C, B, 5000))
    expect_eq(s.read(C, B, 0, 0), bytes(5000), "truncate creates a missing object")
    apply1(s, lambda t: t.truncate(C, A, 0))
    expect_eq((s.read(C, A, 0, 0), s.stat(C, A).size), (b"", 0), "truncate to 0")


def check_remove(s: ObjectStore) -> None:
    with_coll(s)
    apply1(s, lambda t: (t.write(C, A, 0, b"x" * 100000), t.setattrs(C, A, {"n": b"v"}),
                         t.omap_setkeys(C, A, {"k": b"v"}), t.omap_setheader(C, A, b"h"),
                         t.set_mtime(C, A, 5.0)))
    apply1(s, lambda t: t.remove(C, A))
    expect(not s.exists(C, A), "removed object still exists")
    apply1(s, lambda t: t.remove(C, A))  # missing: no-op
    apply1(s, lambda t: t.touch(C, A))
    expect_eq((s.read(C, A, 0, 0), s.getattrs(C, A), s.omap_get_vals(C, A), s.omap_get_header(C, A),
               s.stat(C, A).mtime), (b"", {}, ([], False), b"", 0.0), "a re-created object is fresh")


def check_xattrs(s: ObjectStore) -> None:
    with_coll(s)
    expect_raises(NotFound, lambda: s.apply([txn(lambda t: t.setattrs(C, A, {"n": b"v"}))]),
                  "setattrs on a missing object", ("a",))
    apply1(s, lambda t: (t.touch(C, A), t.setattrs(C, A, {"b": b"2", "a": b"1", "é": b"\x00\xff", "": b""})))
    expect_eq(s.getattrs(C, A), {"": b"", "a": b"1", "b": b"2", "é": b"\x00\xff"}, "getattrs")
    expect_eq(list(s.getattrs(C, A)), ["", "a", "b", "é"], "getattrs order")
    expect_eq(s.getattr(C, A, "é"), b"\x00\xff", "getattr")
    apply1(s, lambda t: (t.setattrs(C, A, {"a": b"one"}), t.rmattr(C, A, "b"), t.rmattr(C, A, "missing")))
    expect_eq(s.getattrs(C, A), {"": b"", "a": b"one", "é": b"\x00\xff"}, "after overwrite and rmattr")
    expect_raises(NoData, lambda: s.getattr(C, A, "b"), "getattr of a missing xattr", ("b",))
    expect_raises(NotFound, lambda: s.getattr(C, B, "a"), "getattr on a missing object")
    expect_raises(NotFound, lambda: s.getattrs(C, B), "getattrs on a missing object")
    expect_raises(NotFound, lambda: s.apply([txn(lambda t: t.rmattr(C, B, "a"))]), "rmattr on a missing object")


def check_omap(s: ObjectStore) -> None:
    with_coll(s)
    expect_raises(NotFound, lambda: s.apply([txn(lambda t: t.omap_setkeys(C, A, {"k": b"v"}))]),
                  "omap_setkeys on a missing object")
    keys = ["a", "a\x00", "a/1", "a/2", "a/10", "b", "é", "z", "\u4e2d", "\U0001f600", "~"]
    apply1(s, lambda t: (t.touch(C, A), t.omap_setkeys(C, A, {k: k.encode() + b"!" for k in keys})))
    order = sorted(keys, key=lambda k: k.encode("utf-8"))
    expect_eq(s.omap_get_keys(C, A), (order, False), "keys in bytewise UTF-8 order")
    expect_eq(s.omap_get_vals(C, A)[0], [(k, k.encode() + b"!") for k in order], "vals")
    expect_eq(s.omap_get_keys(C, A, filter_prefix="a/"), (["a/1", "a/10", "a/2"], False), "prefix")
    expect_eq(s.omap_get_keys(C, A, filter_prefix="a/", max_return=2), (["a/1", "a/10"], True), "prefix paged")
    expect_eq(s.omap_get_keys(C, A, start_after="a/10", filter_prefix="a/", max_return=2), (["a/2"], False),
              "prefix second page")
    expect_eq(s.omap_get_keys(C, A, start_after="0", filter_prefix="a/"), (["a/1", "a/10", "a/2"], False),
              "start_after before the prefix")
    expect_eq(s.omap_get_keys(C, A, start_after="a/3", filter_prefix="a/"), ([], False), "start_after past prefix")
    expect_eq(s.omap_get_keys(C, A, max_return=0), ([], True), "max_return 0 with keys")
    got: list[str] = []
    after = ""
    while True:
        page, more = s.omap_get_keys(C, A, start_after=after, max_return=5)
        got += page
        if not more:
            break
        after = page[-1]
    expect_eq(got, order, "paging by 5")
    expect_raises(InvalidArgument, lambda: txn(lambda t: t.omap_setkeys(C, A, {"": b"x"})), "empty omap key")
    expect_eq(s.omap_get_vals_by_keys(C, A, ["z", "nope", "a"]), {"a": b"a!", "z": b"z!"}, "vals_by_keys")
    apply1(s, lambda t: (t.omap_rmkeys(C, A, ["z", "nope"]), t.omap_rmkeyrange(C, A, "a/", "a/2")))
    expect_eq(s.omap_get_keys(C, A)[0], [k for k in order if k not in ("z", "a/1", "a/10")],
              "after rmkeys and rmkeyrange [a/, a/2)")
    apply1(s, lambda t: t.omap_rmkeyrange(C, A, "z", "a"))  # empty range: no-op
    apply1(s, lambda t: (t.omap_setheader(C, A, b"hdr\x00"), t.omap_setkeys(C, A, {"b": b"new"})))
    expect_eq(s.omap_get_header(C, A), b"hdr\x00", "header")
    expect_eq(s.omap_get_vals_by_keys(C, A, ["b"]), {"b": b"new"}, "overwritten value")
    apply1(s, lambda t: t.omap_clear(C, A))
    expect_eq((s.omap_get_vals(C, A), s.omap_get_header(C, A)), (([], False), b""), "after omap_clear")
    expect_raises(NotFound, lambda: s.omap_get_vals(C, B), "omap read on a missing object")
    for fn in (lambda t: t.omap_rmkeys(C, B, ["a"]), lambda t: t.omap_clear(C, B),
               lambda t: t.omap_setheader(C, B, b""), lambda t: t.omap_rmkeyrange(C, B, "a", "b")):
        expect_raises(NotFound, lambda fn=fn: s.apply([txn(fn)]), "omap op on a missing object")


def check_clone(s: ObjectStore) -> None:
    with_coll(s)
    data = _pattern(5, 200 * KiB + 17)
    clone = ObjectId("a", snap=4)
    apply1(s, lambda t: (t.write(C, A, 0, data), t.setattrs(C, A, {"_": b"oi", "snapset": b"s"}),
                         t.omap_setkeys(C, A, {"k1": b"v1"}), t.omap_setheader(C, A, b"h"), t.set_mtime(C, A, 9.5)))
    apply1(s, lambda t: (t.touch(C, clone), t.setattrs(C, clone, {"stale": b"x"}),
                         t.write(C, clone, 0, b"junk" * 100000)))
    apply1(s, lambda t: t.clone(C, A, clone))
    expect_eq(s.checksum(C, clone), s.checksum(C, A), "checksum of a fresh clone")
    expect_eq((s.read(C, clone, 0, 0), s.getattrs(C, clone), s.omap_get_vals(C, clone)[0],
               s.omap_get_header(C, clone), s.stat(C, clone)), (data, {"_": b"oi", "snapset": b"s"},
               [("k1", b"v1")], b"h", s.stat(C, A)), "clone replaces dst with a full copy")
    apply1(s, lambda t: (t.write(C, A, 70000, b"NEW" * 1000), t.truncate(C, A, 100000),
                         t.setattrs(C, A, {"_": b"oi2"}), t.omap_setkeys(C, A, {"k2": b"v2"})))
    expect_eq(s.read(C, clone, 0, 0), data, "clone data unchanged by writes to the source")
    expect_eq(s.getattrs(C, clone)["_"], b"oi", "clone xattrs unchanged")
    expect_eq(s.omap_get_keys(C, clone)[0], ["k1"], "clone omap unchanged")
    apply1(s, lambda t: t.write(C, clone, 0, b"C" * 70000))
    expect_eq(s.read(C, A, 0, 1000), data[:1000], "source unchanged by writes to the clone")
    clone2 = ObjectId("a", snap=7)
    apply1(s, lambda t: (t.clone(C, clone, clone2), t.remove(C, clone)))
    expect_eq(s.read(C, clone2, 0, 0), b"C" * 70000 + data[70000:], "clone of a clone survives removal of its source")
    apply1(s, lambda t: (t.zero(C, clone2, 0, 300 * KiB), t.remove(C, clone2)))
    expect_eq(s.read(C, A, 0, 70000), data[:70000], "source intact after its clones are gone")
    expect_raises(NotFound, lambda: s.apply([txn(lambda t: t.clone(C, B, clone))]), "clone of a missing object")
    expect_raises(InvalidArgument, lambda: txn(lambda t: t.clone(C, A, A)), "clone onto itself")


def check_mtime(s: ObjectStore) -> None:
    with_coll(s)
    apply1(s, lambda t: (t.write(C, A, 0, b"x"), t.set_mtime(C, A, 1234.5)))
    apply1(s, lambda t: t.write(C, A, 0, b"y"))
    expect_eq(s.stat(C, A).mtime, 1234.5, "mtime is only set by set_mtime")
    expect_raises(NotFound, lambda: s.apply([txn(lambda t: t.set_mtime(C, B, 1.0))]), "set_mtime of a missing object")


def check_meta(s: ObjectStore) -> None:
    with_coll(s, C, C2)
    apply1(s, lambda t: (t.set_meta(C, "info", b"1"), t.set_meta(C, "epoch", b"\x00"), t.set_meta(C2, "info", b"2")))
    expect_eq((s.get_meta(C, "info"), s.get_meta(C, "nope")), (b"1", None), "get_meta")
    expect_eq(s.get_all_meta(C), {"epoch": b"\x00", "info": b"1"}, "get_all_meta")
    apply1(s, lambda t: (t.rm_meta(C, "epoch"), t.rm_meta(C, "nope"), t.set_meta(C, "info", b"3")))
    expect_eq((s.get_all_meta(C), s.get_all_meta(C2)), ({"info": b"3"}, {"info": b"2"}), "meta per collection")
    expect_raises(NotFound, lambda: s.get_meta("9.9", "info"), "get_meta of a missing collection")
    expect_raises(NotFound, lambda: s.apply([txn(lambda t: t.set_meta("9.9", "k", b""))]), "set_meta missing coll")


def check_log(s: ObjectStore) -> None:
    with_coll(s, C, C2)
    apply1(s, lambda t: [t.log_append(C, i, b"e%d" % i) for i in (1, 2, 5, 9)])
    apply1(s, lambda t: t.log_append(C2, 1, b"other"))
    expect_eq(s.log_read(C), [(1, b"e1"), (2, b"e2"), (5, b"e5"), (9, b"e9")], "log_read")
    expect_eq(s.log_read(C, after_seq=2, max_entries=1), [(5, b"e5")], "log_read paged")
    expect_eq(s.log_read(C, after_seq=9), [], "log_read at the end")
    for seq in (9, 3):
        expect_raises(InvalidArgument, lambda seq=seq: s.apply([txn(lambda t: t.log_append(C, seq, b"x"))]),
                      f"log_append of seq {seq} not above 9", (C,))
    expect_raises(InvalidArgument, lambda: s.apply([txn(lambda t: (t.log_append(C, 10, b"x"),
                                                                   t.log_append(C, 10, b"y")))]),
                  "duplicate seq inside one transaction")
    apply1(s, lambda t: t.log_trim(C, 5))
    expect_eq(s.log_read(C), [(9, b"e9")], "after log_trim(5)")
    apply1(s, lambda t: t.log_trim(C, 100))
    expect_eq(s.log_read(C), [], "after trimming everything")
    expect_raises(InvalidArgument, lambda: s.apply([txn(lambda t: t.log_append(C, 9, b"x"))]),
                  "seq must stay above the last appended seq even after a trim")
    apply1(s, lambda t: (t.log_append(C, 10, b"a"), t.log_trim(C, 10), t.log_append(C, 11, b"b")))
    expect_eq(s.log_read(C), [(11, b"b")], "append, trim, append in one transaction")
    expect_eq(s.log_read(C2), [(1, b"other")], "logs are per collection")


def check_list_objects(s: ObjectStore) -> None:
    with_coll(s, C, C2)
    oids = [ObjectId(n, ns, snap) for ns in ("", "ns", "\u00e9") for n in ("b", "a", "a\x00", "\u4e2d", "rbd_data.1")
            for snap in (HEAD, 1, 7)]
    apply1(s, lambda t: [t.touch(C, o) for o in oids])
    apply1(s, lambda t: t.touch(C2, ObjectId("other")))
    want = sorted(oids, key=lambda o: (o.nspace.encode(), o.name.encode(), o.snap))
    expect_eq(sorted(oids), want, "ObjectId ordering matches the listing order")
    expect_eq(s.list_objects(C), (want, False), "list_objects order")
    got: list[ObjectId] = []
    after = None
    while True:
        page, more = s.list_objects(C, start_after=after, max_return=4)
        got += page
        if not more:
            break
        after = page[-1]
    expect_eq(got, want, "list_objects paged by 4")
    expect_eq(s.list_objects(C, max_return=len(want)), (want, False), "exact page: more is False")
    expect_eq(s.list_objects(C, start_after=ObjectId("aa", "ns"), max_return=2)[0],
              [o for o in want if o > ObjectId("aa", "ns")][:2], "start_after a missing object")
    expect_eq(s.list_objects(C, max_return=0), ([], True), "max_return 0")
    expect_eq(s.list_objects(C2), ([ObjectId("other")], False), "objects are per collection")
    expect_raises(NotFound, lambda: s.list_objects("9.9"), "list_objects of a missing collection")


def check_atomic_failure(s: ObjectStore) -> None:
    with_coll(s, C, C2)
    pa = _pattern(6, 150 * KiB)
    apply1(s, lambda t: (t.write(C, A, 0, pa), t.setattrs(C, A, {"x": b"1"}),
                         t.omap_setkeys(C, A, {"k": b"v"}), t.set_meta(C, "m", b"1"), t.log_append(C, 1, b"e"),
                         t.clone(C, A, ObjectId("a", snap=2))))
    before = dump_store(s)

    def good(t: Transaction) -> None:
        t.write(C, A, 1000, b"Z" * 70000)
        t.truncate(C, ObjectId("a", snap=2), 10)
        t.setattrs(C, A, {"x": b"2", "y": b"3"})
        t.omap_setkeys(C, A, {"k2": b"v2"})
        t.omap_rmkeys(C, A, ["k"])
        t.omap_setheader(C, A, b"h")
        t.set_meta(C, "m", b"2")
        t.rm_meta(C, "m")
        t.log_append(C, 2, b"e2")
        t.log_trim(C, 1)
        t.set_mtime(C, A, 3.0)
        t.touch(C, B)
        t.clone(C, A, ObjectId("c"))
        t.create_collection("5.5")
        t.write("5.5", A, 0, b"new coll")
        t.remove(C, ObjectId("a", snap=2))
        t.zero(C, A, 0, 5)

    failures: list[tuple[str, Callable[[Transaction], None], type[ShoalError]]] = [
        ("write to a missing collection", lambda t: t.write("9.9", A, 0, b"x"), NotFound),
        ("setattrs on a missing object", lambda t: t.setattrs(C, ObjectId("nope"), {"a": b""}), NotFound),
        ("log seq going back", lambda t: t.log_append(C, 1, b"x"), InvalidArgument),
        ("create of an existing collection", lambda t: t.create_collection(C), Exists),
        ("remove of a missing collection", lambda t: t.remove_collection("9.9"), NotFound),
        ("clone of a missing object", lambda t: t.clone(C, ObjectId("nope"), B), NotFound),
    ]
    for what, bad, exc in failures:
        # the failing op last, in a later transaction of the batch, after a collection removal
        expect_raises(exc, lambda bad=bad: s.apply([txn(good), txn(lambda t: t.remove_collection(C2)), txn(bad)]),
                      what)
        expect_eq(dump_store(s), before, f"store after a batch failing on {what}")
    # the same batch without the failure applies, and reads its own earlier writes
    s.apply([txn(good), txn(lambda t: t.remove_collection(C2)), txn(lambda t: t.write("5.5", B, 0, b"more"))])
    expect_eq(s.read("5.5", A, 0, 0), b"new coll", "write to a collection created earlier in the batch")
    expect_eq(s.read(C, ObjectId("c"), 0, 7000)[995:1010], pa[995:1000] + b"Z" * 10,
              "clone sees writes made earlier in the batch")
    expect(not s.collection_exists(C2), "collection removed by the batch")


def check_checksum(s: ObjectStore) -> None:
    with_coll(s)
    x, y = ObjectId("x"), ObjectId("y")
    data = _pattern(7, 100 * KiB)
    # same content built differently: explicit zeros vs a hole, in a different order
    apply1(s, lambda t: (t.write(C, x, 0, data[:50000]), t.write(C, x, 60000, data[60000:]),
                         t.setattrs(C, x, {"b": b"2", "a": b"1"}), t.omap_setkeys(C, x, {"k": b"v"})))
    apply1(s, lambda t: (t.write(C, y, 60000, data[60000:]), t.write(C, y, 0, data[:50000] + bytes(10000)),
                         t.setattrs(C, y, {"a": b"1"}), t.setattrs(C, y, {"b": b"2"}),
                         t.omap_setkeys(C, y, {"k": b"v"}), t.set_mtime(C, y, 77.0)))
    expect_eq(s.checksum(C, x), s.checksum(C, y), "checksum of equal objects (mtime excluded)")
    base = s.checksum(C, x)
    for what, fn in [("data", lambda t: t.write(C, y, 5, b"\x01")), ("xattr", lambda t: t.setattrs(C, y, {"c": b""})),
                     ("omap", lambda t: t.omap_setkeys(C, y, {"k": b"w"})),
                     ("header", lambda t: t.omap_setheader(C, y, b"h")), ("size", lambda t: t.truncate(C, y, 200000))]:
        apply1(s, lambda t: t.clone(C, x, y))
        apply1(s, fn)
        expect(s.checksum(C, y) != base, f"checksum must change with the {what}")
    expect_raises(NotFound, lambda: s.checksum(C, B), "checksum of a missing object")


def check_statfs(s: ObjectStore) -> None:
    with_coll(s)
    total, used, avail = s.statfs()
    expect(all(isinstance(v, int) and v >= 0 for v in (total, used, avail)), "statfs returns three ints >= 0")
    expect(used <= total and avail <= total, f"statfs consistent: {(total, used, avail)}")
    apply1(s, lambda t: t.write(C, A, 0, _pattern(8, 2 * MiB)))
    expect(s.statfs()[1] >= used + MiB, "statfs used grows with data")


def check_read_args_and_messages(s: ObjectStore) -> None:
    with_coll(s)
    e = expect_raises(NotFound, lambda: s.apply([txn(lambda t: t.omap_setkeys(C, ObjectId("rbd_header.1"), {}))]),
                      "omap_setkeys on a missing object")
    expect("rbd_header.1" in str(e) and C in str(e), f"error names object and collection: {e}")
    for fn in (lambda: s.omap_get_vals(C, A, max_return=-1), lambda: s.list_objects(C, max_return=-1),
               lambda: s.log_read(C, after_seq=-1), lambda: s.read(C, A, 0, -1)):
        expect_raises(InvalidArgument, fn, "bad read argument")


def check_concurrent_reads(s: ObjectStore) -> None:
    """Readers in several threads during applies see whole batches only."""
    with_coll(s)
    size = 3 * 64 * KiB + 1000

    def batch(i: int) -> list[Transaction]:
        v = bytes([i % 251])
        t1 = Transaction()
        t1.write(C, A, 0, v * size)
        t1.truncate(C, A, size + (i % 3))
        t2 = Transaction()
        t2.omap_setkeys(C, A, {f"k{j}": v for j in range(20)})
        t2.set_meta(C, "v", v)
        t2.write(C, B, 0, v * 100)
        return [t1, t2]

    s.apply(batch(0))
    stop = threading.Event()
    errors: list[str] = []
    reads = [0]

    def reader() -> None:
        try:
            while not stop.is_set():
                d = s.read(C, A, 0, 0)
                if len(d) not in (size, size + 1, size + 2) or d[:size] != d[:1] * size:
                    errors.append(f"torn object read: len {len(d)}, bytes {set(d[:size])}")
                vals = {v for _, v in s.omap_get_vals(C, A)[0]}
                if len(vals) != 1:
                    errors.append(f"torn omap read: {vals}")
                reads[0] += 1
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for th in threads:
        th.start()
    try:
        deadline = time.monotonic() + 1.0
        i = 1
        while time.monotonic() < deadline or i < 20:
            s.apply(batch(i))
            i += 1
    finally:
        stop.set()
        for th in threads:
            th.join(10)
    expect(not errors, f"concurrent readers saw: {errors[:3]}")
    expect(reads[0] > 0, "readers made progress")


def check_concurrent_applies(s: ObjectStore) -> None:
    """apply() is thread-safe: batches from several threads all land."""
    with_coll(s)
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for i in range(25):
                t = Transaction()
                t.write(C, ObjectId(f"w{w}"), i * 10, b"%09d\n" % i)
                t.omap_setkeys(C, ObjectId(f"w{w}"), {f"{i:03d}": b""})
                s.apply([t])
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    expect(not errors, f"concurrent applies raised {errors[:3]}")
    for w in range(4):
        expect_eq(s.read(C, ObjectId(f"w{w}"), 0, 0), b"".join(b"%09d\n" % i for i in range(25)), f"writer {w} data")
        expect_eq(len(s.omap_get_keys(C, ObjectId(f"w{w}"))[0]), 25, f"writer {w} omap")


CHECKS: dict[str, Callable[[ObjectStore], None]] = {
    name[len("check_"):]: fn for name, fn in sorted(globals().items())
    if name.startswith("check_") and callable(fn) and name != "check_object_store"
}


def check_object_store(make_store: Callable[[], ObjectStore], only: list[str] | None = None) -> None:
    """Runs every check (or those named in `only`), each on a fresh mounted store."""
    for name in CHECKS:
        if only is not None and name not in only:
            continue
        run_check(make_store, name)


def run_check(make_store: Callable[[], ObjectStore], name: str) -> None:
    store = make_store()
    store.mount()
    try:
        CHECKS[name](store)
    except AssertionError as e:
        raise AssertionError(f"{type(store).__name__} fails conformance check {name}: {e}") from e
    finally:
        store.umount()

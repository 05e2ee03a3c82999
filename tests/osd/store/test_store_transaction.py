"""Transaction building, validation and the wire form."""

from __future__ import annotations

import msgpack
import pytest

from shoal.errors import InvalidArgument
from shoal.osd.store.memory import MemoryStore
from shoal.osd.store.transaction import HEAD, MAX_OBJECT_SIZE, TXN_WIRE_VERSION, ObjectId, Transaction

C = "2.1f"
A = ObjectId("rbd_data.1.0000000000000000", "ns", HEAD)


def every_op() -> Transaction:
    t = Transaction()
    t.create_collection(C)
    t.touch(C, A)
    t.write(C, A, 10, b"payload")
    t.write(C, A, 100, memoryview(bytearray(b"view")))
    t.zero(C, A, 0, 5)
    t.truncate(C, A, 90)
    t.setattrs(C, A, {"_": b"oi", "snapset": b""})
    t.rmattr(C, A, "snapset")
    t.omap_setkeys(C, A, {"k1": b"v1", "k2": b"v2", "k3": b"v3"})
    t.omap_rmkeys(C, A, ["k1"])
    t.omap_rmkeyrange(C, A, "k3", "k4")
    t.omap_setheader(C, A, b"hdr")
    t.clone(C, A, ObjectId(A.name, A.nspace, 4))
    t.set_mtime(C, A, 1700000000.25)
    t.set_meta(C, "info", b"\x01")
    t.rm_meta(C, "gone")
    t.log_append(C, 1, b"entry")
    t.log_trim(C, 0)
    t.touch(C, ObjectId("x"))
    t.omap_clear(C, ObjectId(A.name, A.nspace, 4))
    t.remove(C, ObjectId("x"))
    return t


def test_store_txn_wire_round_trip_through_msgpack() -> None:
    t = every_op()
    wire = msgpack.unpackb(msgpack.packb(t.to_wire()), raw=False)
    assert wire[0] == TXN_WIRE_VERSION
    t2 = Transaction.from_wire(wire)
    assert len(t2) == len(t) == 21 and not t2.empty()
    assert [op[0] for op in t2] == [op[0] for op in t]
    a, b = MemoryStore(), MemoryStore()
    with a, b:
        a.apply([t])
        b.apply([t2])
        from shoal.osd.store.conformance import dump_store
        assert dump_store(a) == dump_store(b)
        assert dump_store(a)[C]["objects"][A]["data"] == bytes(90)[:10] + b"payload" + bytes(73)


@pytest.mark.parametrize("wire", [
    None, [], [2], [TXN_WIRE_VERSION, ["nope", C]], [TXN_WIRE_VERSION, "write"],
    [TXN_WIRE_VERSION, ["write", C, ["a", "", -2], 0]],
    [TXN_WIRE_VERSION, ["write", C, ["a", ""], 0, b"x"]],
    [TXN_WIRE_VERSION, ["write", C, ["a", "", -2], -1, b"x"]],
    [TXN_WIRE_VERSION, ["write", C, ["a", "", -2], 0, "not bytes"]],
    [TXN_WIRE_VERSION, ["setattrs", C, ["a", "", -2], {"k": 5}]],
    [TXN_WIRE_VERSION, ["touch", "", ["a", "", -2]]],
    [TXN_WIRE_VERSION, ["log_append", C, 0, b""]],
])
def test_store_txn_from_wire_rejects_malformed(wire: object) -> None:
    with pytest.raises(InvalidArgument):
        Transaction.from_wire(wire)


@pytest.mark.parametrize("build", [
    lambda t: t.write(C, A, -1, b"x"),
    lambda t: t.write(C, A, MAX_OBJECT_SIZE, b"x"),
    lambda t: t.write(C, A, 0, "text"),
    lambda t: t.write(C, "a", 0, b"x"),
    lambda t: t.write("", A, 0, b"x"),
    lambda t: t.write(C, ObjectId("\udc80"), 0, b"x"),
    lambda t: t.zero(C, A, 0, -1),
    lambda t: t.truncate(C, A, True),
    lambda t: t.setattrs(C, A, {1: b"x"}),
    lambda t: t.omap_setkeys(C, A, {"": b"x"}),
    lambda t: t.omap_rmkeys(C, A, "abc"),
    lambda t: t.clone(C, A, A),
    lambda t: t.set_mtime(C, A, "now"),
    lambda t: t.log_append(C, 0, b"x"),
])
def test_store_txn_rejects_bad_arguments_when_built(build) -> None:  # type: ignore[no-untyped-def]
    t = Transaction()
    with pytest.raises(InvalidArgument):
        build(t)
    assert t.empty()


def test_store_txn_payload_is_not_copied_and_views_are_flattened() -> None:
    import array

    buf = bytearray(b"abcd")
    t = Transaction()
    t.write(C, A, 0, buf)
    t.write(C, A, 0, memoryview(array.array("I", [1, 2])))  # 8 bytes, not 2 items
    assert t.ops[0][4].obj is buf
    assert len(t.ops[1][4]) == 8


def test_store_txn_append_and_repr() -> None:
    t1, t2 = Transaction(), Transaction()
    t1.touch(C, A)
    t2.remove(C, A)
    t1.append(t2)
    assert [op[0] for op in t1] == ["touch", "remove"]
    assert "2 ops" in repr(t1)


def test_store_object_id_order_is_listing_order() -> None:
    ids = [ObjectId("b"), ObjectId("a", "ns"), ObjectId("a", "", 3), ObjectId("a")]
    assert sorted(ids) == [ObjectId("a"), ObjectId("a", "", 3), ObjectId("b"), ObjectId("a", "ns")]
    assert str(ObjectId("a", "ns", 3)) == "ns/a@3" and str(ObjectId("a")) == "a@head"

"""ObjectStore transactions: an ordered list of mutations applied all-or-nothing.

A `Transaction` is built by the PG primary, applied to its local store, and sent to
every replica, which rebuilds it with `Transaction.from_wire` and applies the same ops.
Arguments are validated when an op is added (so a bad call fails at the caller, not
later inside `apply()` on some replica); facts that depend on the store's state (does
the collection exist, is the log seq increasing) are checked by the store in `apply()`.

Payloads are kept as given, not copied: the caller must not mutate a bytearray or the
buffer behind a memoryview until `apply()` (and any `to_wire()` send) has returned.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from shoal.errors import InvalidArgument

HEAD = -2  # snap id of the head object; clones carry their snap id (>= 1)

# Version of the list produced by `to_wire`; `from_wire` refuses any other.
TXN_WIRE_VERSION = 1

# Largest object the store accepts (BlueStore's OBJECT_MAX_SIZE is 4 GiB as well).
MAX_OBJECT_SIZE = 1 << 32

_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1

Buffer = bytes | bytearray | memoryview


@functools.total_ordering
@dataclass(frozen=True)
class ObjectId:
    """An object inside a collection.

    Instances order the way `list_objects` lists them: by (nspace, name, snap), which
    is also the bytewise UTF-8 order of the strings.
    """

    name: str
    nspace: str = ""
    snap: int = HEAD

    def sort_key(self) -> tuple[str, str, int]:
        return (self.nspace, self.name, self.snap)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, ObjectId):
            return NotImplemented
        return self.sort_key() < other.sort_key()

    def __str__(self) -> str:
        snap = "head" if self.snap == HEAD else str(self.snap)
        return f"{self.nspace + '/' if self.nspace else ''}{self.name}@{snap}"


# ---- argument checks (shared with the stores, which check reads the same way) ----

def check_str(what: str, value: object, *, allow_empty: bool = True) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(f"{what} must be a str, not {type(value).__name__}")
    if not allow_empty and not value:
        raise InvalidArgument(f"{what} must not be empty")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        # Lone surrogates have no UTF-8 form, so they could not be ordered bytewise.
        raise InvalidArgument(f"{what} {value!r} is not valid UTF-8 text") from e
    return value


def check_coll(coll: object) -> str:
    return check_str("collection name", coll, allow_empty=False)


def check_oid(oid: object) -> ObjectId:
    if not isinstance(oid, ObjectId):
        raise InvalidArgument(f"object id must be an ObjectId, not {type(oid).__name__}")
    check_str("object name", oid.name)
    check_str("object namespace", oid.nspace)
    check_int("snap id", oid.snap, lo=_INT64_MIN)
    return oid


def check_int(what: str, value: object, *, lo: int = 0, hi: int = _INT64_MAX) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgument(f"{what} must be an int, not {type(value).__name__}")
    if not lo <= value <= hi:
        raise InvalidArgument(f"{what} {value} is out of range [{lo}, {hi}]")
    return value


def check_bytes(what: str, value: object) -> bytes | memoryview:
    """Accept any bytes-like payload without copying it; memoryviews become flat bytes views."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        mv = memoryview(value)
        if mv.format != "B" or mv.ndim != 1:
            if not mv.contiguous:
                raise InvalidArgument(f"{what} must be a contiguous buffer")
            mv = mv.cast("B")
        return mv
    raise InvalidArgument(f"{what} must be bytes-like, not {type(value).__name__}")


def check_value_bytes(what: str, value: object) -> bytes:
    """Small values (xattrs, omap, meta, log) are copied to immutable bytes: they are kept."""
    return bytes(check_bytes(what, value))


def check_extent(offset: object, length: int, what: str = "offset") -> int:
    check_int(what, offset)
    assert isinstance(offset, int)
    if offset + length > MAX_OBJECT_SIZE:
        raise InvalidArgument(
            f"extent {offset}~{length} goes past the maximum object size {MAX_OBJECT_SIZE}"
        )
    return offset


# ---- the transaction ----

class Transaction:
    """Ops are tuples `(name, coll, *args)`; stores dispatch on the name."""

    __slots__ = ("_ops",)

    def __init__(self) -> None:
        self._ops: list[tuple[Any, ...]] = []

    # -- collections --
    def create_collection(self, coll: str) -> None:
        self._ops.append(("create_collection", check_coll(coll)))

    def remove_collection(self, coll: str) -> None:
        """Removes the collection with all its objects, metadata and log."""
        self._ops.append(("remove_collection", check_coll(coll)))

    # -- object data --
    def touch(self, coll: str, oid: ObjectId) -> None:
        self._ops.append(("touch", check_coll(coll), check_oid(oid)))

    def write(self, coll: str, oid: ObjectId, offset: int, data: Buffer) -> None:
        """Creates the object if missing and extends its size; skipped ranges read as zeros."""
        payload = check_bytes("data", data)
        self._ops.append(("write", check_coll(coll), check_oid(oid),
                          check_extent(offset, len(payload)), payload))

    def zero(self, coll: str, oid: ObjectId, offset: int, length: int) -> None:
        """Zeroes [offset, offset+length) clipped to the object size: never extends it."""
        check_int("length", length)
        self._ops.append(("zero", check_coll(coll), check_oid(oid),
                          check_extent(offset, length), length))

    def truncate(self, coll: str, oid: ObjectId, size: int) -> None:
        """Sets the size (creating the object if missing); growth reads as zeros."""
        check_extent(size, 0, "size")
        self._ops.append(("truncate", check_coll(coll), check_oid(oid), size))

    def remove(self, coll: str, oid: ObjectId) -> None:
        """Removes data, xattrs and omap; removing a missing object is a no-op."""
        self._ops.append(("remove", check_coll(coll), check_oid(oid)))

    def clone(self, coll: str, src: ObjectId, dst: ObjectId) -> None:
        """Makes dst a full copy of src (data, size, mtime, xattrs, omap, header)."""
        if check_oid(src) == check_oid(dst):
            raise InvalidArgument(f"clone of {src} onto itself")
        self._ops.append(("clone", check_coll(coll), src, dst))

    def set_mtime(self, coll: str, oid: ObjectId, mtime: float) -> None:
        if not isinstance(mtime, int | float) or isinstance(mtime, bool):
            raise InvalidArgument(f"mtime must be a number, not {type(mtime).__name__}")
        self._ops.append(("set_mtime", check_coll(coll), check_oid(oid), float(mtime)))

    # -- xattrs --
    def setattrs(self, coll: str, oid: ObjectId, attrs: dict[str, bytes]) -> None:
        self._ops.append(("setattrs", check_coll(coll), check_oid(oid), _check_kv("xattr", attrs)))

    def rmattr(self, coll: str, oid: ObjectId, name: str) -> None:
        self._ops.append(("rmattr", check_coll(coll), check_oid(oid), check_str("xattr name", name)))

    # -- omap --
    def omap_setkeys(self, coll: str, oid: ObjectId, kv: dict[str, bytes]) -> None:
        # Empty keys are refused: start_after="" means "from the first key", and paging
        # could not step past an empty key.
        items = _check_kv("omap", kv)
        if "" in items:
            raise InvalidArgument("omap keys must not be empty")
        self._ops.append(("omap_setkeys", check_coll(coll), check_oid(oid), items))

    def omap_rmkeys(self, coll: str, oid: ObjectId, keys: list[str]) -> None:
        if not isinstance(keys, list | tuple | set | frozenset):
            raise InvalidArgument(f"omap keys must be a list, not {type(keys).__name__}")
        ks = [check_str("omap key", k) for k in keys]
        self._ops.append(("omap_rmkeys", check_coll(coll), check_oid(oid), ks))

    def omap_rmkeyrange(self, coll: str, oid: ObjectId, first: str, last: str) -> None:
        """Removes keys in [first, last)."""
        self._ops.append(("omap_rmkeyrange", check_coll(coll), check_oid(oid),
                          check_str("omap key", first), check_str("omap key", last)))

    def omap_clear(self, coll: str, oid: ObjectId) -> None:
        """Removes every omap key and the omap header."""
        self._ops.append(("omap_clear", check_coll(coll), check_oid(oid)))

    def omap_setheader(self, coll: str, oid: ObjectId, header: bytes) -> None:
        self._ops.append(("omap_setheader", check_coll(coll), check_oid(oid),
                          check_value_bytes("omap header", header)))

    # -- per-collection metadata and log --
    def set_meta(self, coll: str, key: str, value: bytes) -> None:
        self._ops.append(("set_meta", check_coll(coll), check_str("meta key", key),
                          check_value_bytes("meta value", value)))

    def rm_meta(self, coll: str, key: str) -> None:
        self._ops.append(("rm_meta", check_coll(coll), check_str("meta key", key)))

    def log_append(self, coll: str, seq: int, entry: bytes) -> None:
        """Appends to the collection's log; seq >= 1, strictly above every earlier seq."""
        self._ops.append(("log_append", check_coll(coll), check_int("log seq", seq, lo=1),
                          check_value_bytes("log entry", entry)))

    def log_trim(self, coll: str, upto_seq: int) -> None:
        """Drops log entries with seq <= upto_seq."""
        self._ops.append(("log_trim", check_coll(coll), check_int("log seq", upto_seq)))

    # -- container behaviour --
    @property
    def ops(self) -> list[tuple[Any, ...]]:
        """The op tuples, for store implementations."""
        return self._ops

    def append(self, other: Transaction) -> None:
        """Adds every op of `other` after ours."""
        self._ops.extend(other._ops)

    def __len__(self) -> int:
        return len(self._ops)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self._ops)

    def empty(self) -> bool:
        return not self._ops

    def __repr__(self) -> str:
        names = ", ".join(f"{op[0]}({op[1]})" for op in self._ops[:8])
        more = f", +{len(self._ops) - 8}" if len(self._ops) > 8 else ""
        return f"<Transaction {len(self._ops)} ops: {names}{more}>"

    # -- wire form --
    def to_wire(self) -> list[Any]:
        """A msgpack-able list `[version, [name, coll, *args], ...]` (payloads not copied)."""
        out: list[Any] = [TXN_WIRE_VERSION]
        for op in self._ops:
            out.append([_oid_to_wire(a) if isinstance(a, ObjectId) else a for a in op])
        return out

    @classmethod
    def from_wire(cls, wire: object) -> Transaction:
        """Rebuilds a transaction, validating every op as if it was built locally."""
        if not isinstance(wire, list | tuple) or not wire:
            raise InvalidArgument("transaction wire form must be a non-empty list")
        if wire[0] != TXN_WIRE_VERSION:
            raise InvalidArgument(
                f"transaction wire version {wire[0]!r} is not supported (expected {TXN_WIRE_VERSION})"
            )
        t = cls()
        for i, op in enumerate(wire[1:]):
            if not isinstance(op, list | tuple) or not op or op[0] not in _WIRE_OID_ARGS:
                raise InvalidArgument(f"transaction op #{i} is malformed: {_short(op)}")
            name, args = op[0], list(op[1:])
            expected = _ARITY[name]
            if len(args) != expected:
                raise InvalidArgument(f"transaction op #{i} {name} takes {expected} args, got {len(args)}")
            for j in _WIRE_OID_ARGS[name]:
                args[j] = _oid_from_wire(args[j])
            getattr(t, name)(*args)
        return t


def _check_kv(what: str, kv: object) -> dict[str, bytes]:
    if not isinstance(kv, dict):
        raise InvalidArgument(f"{what} items must be a dict, not {type(kv).__name__}")
    return {check_str(f"{what} key", k): check_value_bytes(f"{what} value", v) for k, v in kv.items()}


def _oid_to_wire(oid: ObjectId) -> list[Any]:
    return [oid.name, oid.nspace, oid.snap]


def _oid_from_wire(w: object) -> ObjectId:
    if not isinstance(w, list | tuple) or len(w) != 3:
        raise InvalidArgument(f"object id on the wire must be [name, nspace, snap]: {_short(w)}")
    return check_oid(ObjectId(w[0], w[1], w[2]))


def _short(x: object) -> str:
    r = repr(x)
    return r if len(r) <= 80 else r[:77] + "..."


# Positions (within args after the collection-less op name) holding ObjectIds, and arity.
_WIRE_OID_ARGS: dict[str, tuple[int, ...]] = {
    "create_collection": (), "remove_collection": (),
    "touch": (1,), "write": (1,), "zero": (1,), "truncate": (1,), "remove": (1,),
    "clone": (1, 2), "set_mtime": (1,), "setattrs": (1,), "rmattr": (1,),
    "omap_setkeys": (1,), "omap_rmkeys": (1,), "omap_rmkeyrange": (1,), "omap_clear": (1,),
    "omap_setheader": (1,), "set_meta": (), "rm_meta": (), "log_append": (), "log_trim": (),
}
_ARITY: dict[str, int] = {
    "create_collection": 1, "remove_collection": 1, "touch": 2, "write": 4, "zero": 4,
    "truncate": 3, "remove": 2, "clone": 3, "set_mtime": 3, "setattrs": 3, "rmattr": 3,
    "omap_setkeys": 3, "omap_rmkeys": 3, "omap_rmkeyrange": 4, "omap_clear": 2,
    "omap_setheader": 3, "set_meta": 3, "rm_meta": 2, "log_append": 3, "log_trim": 2,
}
OP_NAMES = frozenset(_ARITY)

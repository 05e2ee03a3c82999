"""Random op sequences on each store, compared after every batch with a tiny model.

The model is deliberately naive (dense bytearrays, dicts, deepcopy for atomicity) so
that it is obviously right; the stores must agree with it on contents, on which
batches fail, and on the error class of a failing batch.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from typing import Any

import msgpack
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from shoal.errors import Exists, InvalidArgument, NotFound, ShoalError
from shoal.osd.store.base import ObjectStore, object_checksum
from shoal.osd.store.conformance import dump_store
from shoal.osd.store.memory import MemoryStore
from shoal.osd.store.sqlite_store import SqliteStore
from shoal.osd.store.transaction import ObjectId, Transaction

Op = tuple[Any, ...]


class Model:
    def __init__(self) -> None:
        self.colls: dict[str, dict[str, Any]] = {}

    def coll(self, c: str) -> dict[str, Any]:
        if c not in self.colls:
            raise NotFound(c)
        return self.colls[c]

    def obj(self, c: str, oid: ObjectId, create: bool = False) -> dict[str, Any]:
        objs = self.coll(c)["objs"]
        if oid not in objs:
            if not create:
                raise NotFound(str(oid))
            objs[oid] = {"data": bytearray(), "mtime": 0.0, "xattrs": {}, "omap": {}, "header": b""}
        return objs[oid]

    def apply(self, batch: list[list[Op]]) -> None:
        for txn in batch:
            for op in txn:
                getattr(self, "op_" + op[0])(*op[1:])

    def op_create_collection(self, c: str) -> None:
        if c in self.colls:
            raise Exists(c)
        self.colls[c] = {"objs": {}, "meta": {}, "log": {}, "last": 0}

    def op_remove_collection(self, c: str) -> None:
        self.coll(c)
        del self.colls[c]

    def op_touch(self, c: str, oid: ObjectId) -> None:
        self.obj(c, oid, True)

    def op_write(self, c: str, oid: ObjectId, off: int, data: bytes) -> None:
        d = self.obj(c, oid, True)["data"]
        if data:
            if len(d) < off:
                d.extend(bytes(off - len(d)))
            d[off:off + len(data)] = data

    def op_zero(self, c: str, oid: ObjectId, off: int, n: int) -> None:
        d = self.obj(c, oid, True)["data"]
        end = min(off + n, len(d))
        if end > off:
            d[off:end] = bytes(end - off)

    def op_truncate(self, c: str, oid: ObjectId, size: int) -> None:
        d = self.obj(c, oid, True)["data"]
        del d[size:]
        d.extend(bytes(size - len(d)))

    def op_remove(self, c: str, oid: ObjectId) -> None:
        self.coll(c)["objs"].pop(oid, None)

    def op_clone(self, c: str, src: ObjectId, dst: ObjectId) -> None:
        self.coll(c)["objs"][dst] = copy.deepcopy(self.obj(c, src))

    def op_set_mtime(self, c: str, oid: ObjectId, t: float) -> None:
        self.obj(c, oid)["mtime"] = t

    def op_setattrs(self, c: str, oid: ObjectId, kv: dict[str, bytes]) -> None:
        self.obj(c, oid)["xattrs"].update(kv)

    def op_rmattr(self, c: str, oid: ObjectId, k: str) -> None:
        self.obj(c, oid)["xattrs"].pop(k, None)

    def op_omap_setkeys(self, c: str, oid: ObjectId, kv: dict[str, bytes]) -> None:
        self.obj(c, oid)["omap"].update(kv)

    def op_omap_rmkeys(self, c: str, oid: ObjectId, keys: list[str]) -> None:
        for k in keys:
            self.obj(c, oid)["omap"].pop(k, None)
        self.obj(c, oid)

    def op_omap_rmkeyrange(self, c: str, oid: ObjectId, first: str, last: str) -> None:
        o = self.obj(c, oid)
        o["omap"] = {k: v for k, v in o["omap"].items() if not first <= k < last}

    def op_omap_clear(self, c: str, oid: ObjectId) -> None:
        o = self.obj(c, oid)
        o["omap"], o["header"] = {}, b""

    def op_omap_setheader(self, c: str, oid: ObjectId, h: bytes) -> None:
        self.obj(c, oid)["header"] = h

    def op_set_meta(self, c: str, k: str, v: bytes) -> None:
        self.coll(c)["meta"][k] = v

    def op_rm_meta(self, c: str, k: str) -> None:
        self.coll(c)["meta"].pop(k, None)

    def op_log_append(self, c: str, seq: int, e: bytes) -> None:
        col = self.coll(c)
        if seq <= col["last"]:
            raise InvalidArgument("seq")
        col["log"][seq] = e
        col["last"] = seq

    def op_log_trim(self, c: str, upto: int) -> None:
        col = self.coll(c)
        col["log"] = {s: e for s, e in col["log"].items() if s > upto}

    def dump(self) -> dict[str, Any]:
        def ordered(d: dict[str, bytes]) -> list[tuple[str, bytes]]:
            return sorted(d.items(), key=lambda kv: kv[0].encode())

        return {c: {"objects": {oid: {"size": len(o["data"]), "mtime": o["mtime"], "data": bytes(o["data"]),
                                      "xattrs": dict(o["xattrs"]), "omap": ordered(o["omap"]),
                                      "header": o["header"]} for oid, o in col["objs"].items()},
                    "meta": dict(col["meta"]), "log": sorted(col["log"].items())}
                for c, col in self.colls.items()}


# ---- strategies ----
COLLS = ["1.0", "1.1"]
OIDS = [ObjectId("a"), ObjectId("a", snap=1), ObjectId("a", snap=2), ObjectId("b"), ObjectId("b", "ns"),
        ObjectId("c", snap=1)]
colls = st.sampled_from(COLLS)
oids = st.sampled_from(OIDS)
keys = st.sampled_from(["a", "a\x00", "b", "bb", "c", "\u00e9", "\u4e2d"])
vals = st.binary(max_size=6)
offs = st.integers(0, 120)

# (op name, weight, argument strategies after the collection; "OID" = an object, which
# is usually one that exists, "SEQ" = a log seq, usually above the last one)
OPS: list[tuple[str, int, tuple[Any, ...]]] = [
    ("create_collection", 1, ()),
    ("remove_collection", 1, ()),
    ("touch", 2, ("NEWOID",)),
    ("write", 6, ("NEWOID", offs, st.binary(max_size=60))),
    ("zero", 2, ("NEWOID", offs, offs)),
    ("truncate", 2, ("NEWOID", offs)),
    ("remove", 2, ("NEWOID",)),
    ("clone", 4, ("OID", "NEWOID")),
    ("set_mtime", 1, ("OID", st.sampled_from([1.5, 2.0]))),
    ("setattrs", 2, ("OID", st.dictionaries(keys, vals, max_size=3))),
    ("rmattr", 1, ("OID", keys)),
    ("omap_setkeys", 3, ("OID", st.dictionaries(keys, vals, max_size=4))),
    ("omap_rmkeys", 1, ("OID", st.lists(keys, max_size=3))),
    ("omap_rmkeyrange", 1, ("OID", keys, keys)),
    ("omap_clear", 1, ("OID",)),
    ("omap_setheader", 1, ("OID", vals)),
    ("set_meta", 1, (keys, vals)),
    ("rm_meta", 1, (keys,)),
    ("log_append", 2, ("SEQ", vals)),
    ("log_trim", 1, (st.integers(0, 60),)),
]
op_names = st.sampled_from([name for name, w, _ in OPS for _ in range(w)])
OP_ARGS = {name: args for name, _, args in OPS}


def draw_op(data: st.DataObject, model: Model) -> Op:
    """An op that usually succeeds on the model as it was before the batch."""
    name = data.draw(op_names)
    if name == "create_collection":
        missing = [c for c in COLLS if c not in model.colls]
        if missing or not data.draw(st.integers(0, 4)):
            return (name, data.draw(st.sampled_from(missing or COLLS)))
        name = "write"
    existing = [c for c in COLLS if c in model.colls]
    c = data.draw(st.sampled_from(existing) if existing and data.draw(st.integers(0, 9)) else colls)
    objs = sorted(model.colls.get(c, {}).get("objs", {}))
    args: list[Any] = []
    for a in OP_ARGS[name]:
        if a == "OID":
            args.append(data.draw(st.sampled_from(objs) if objs and data.draw(st.integers(0, 9)) else oids))
        elif a == "NEWOID":
            args.append(data.draw(oids))
        elif a == "SEQ":
            last = model.colls.get(c, {}).get("last", 0)
            args.append(data.draw(st.integers(max(1, last - 2), last + 3)))
        else:
            args.append(data.draw(a))
    if name == "clone" and args[0] == args[1]:
        args[1] = OIDS[(OIDS.index(args[0]) + 1) % len(OIDS)] if args[0] in OIDS else OIDS[0]
    return (name, c, *args)


class StoreVsModel(RuleBasedStateMachine):
    via_wire = False

    def make(self, path: str) -> ObjectStore:
        raise NotImplementedError

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="shoal-model-")
        self.store = self.make(self.dir)
        self.store.mount()
        self.model = Model()
        self.mounted = True
        # both collections exist at first, so that most batches succeed
        boot = [("create_collection", "1.0"), ("create_collection", "1.1")]
        self.model.apply([boot])
        t = Transaction()
        for op in boot:
            t.create_collection(op[1])
        self.store.apply([t])

    def teardown(self) -> None:
        if self.mounted:
            self.store.umount()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(data=st.data())
    def apply(self, data: st.DataObject) -> None:
        n_txns = data.draw(st.integers(1, 2))
        batch = [[draw_op(data, self.model) for _ in range(data.draw(st.integers(1, 4)))] for _ in range(n_txns)]
        txns = []
        for ops_ in batch:
            t = Transaction()
            for op in ops_:
                getattr(t, op[0])(*op[1:])
            if self.via_wire:  # what a replica applies: the primary's txn through msgpack
                t = Transaction.from_wire(msgpack.unpackb(msgpack.packb(t.to_wire()), raw=False))
            txns.append(t)
        new = copy.deepcopy(self.model)
        want_err: type | None = None
        try:
            new.apply(batch)
        except ShoalError as e:
            want_err = type(e)
        got_err: type | None = None
        try:
            self.store.apply(txns)
        except ShoalError as e:
            got_err = type(e)
        assert got_err is want_err, (got_err, want_err)
        if want_err is None:
            self.model = new

    @precondition(lambda self: self.mounted)
    @rule()
    def remount(self) -> None:
        self.store.umount()
        self.store.mount()

    @rule(data=st.data())
    def apply_more(self, data: st.DataObject) -> None:
        self.apply(data)  # a second rule name doubles how often batches are drawn

    @rule(c=colls, oid=oids, off=st.integers(0, 200), n=st.integers(0, 100),
          after=st.sampled_from(["", "a", "b", "c"]), prefix=st.sampled_from(["", "a", "b"]),
          page=st.integers(0, 4), after_oid=oids)
    def query(self, c: str, oid: ObjectId, off: int, n: int, after: str, prefix: str, page: int,
              after_oid: ObjectId) -> None:
        """Reads with offsets and paging the invariant's full dump does not exercise."""
        if c not in self.model.colls:
            return
        objs = self.model.colls[c]["objs"]
        match_oids = sorted(o for o in objs if o > after_oid)
        assert self.store.list_objects(c, after_oid, page) == (match_oids[:page], len(match_oids) > page)
        o = objs.get(oid)
        if o is None:
            return
        assert self.store.read(c, oid, off, n) == bytes(o["data"][off:off + n] if n else o["data"][off:])
        match = sorted((k for k in o["omap"] if k > after and k.startswith(prefix)), key=str.encode)
        assert self.store.omap_get_keys(c, oid, after, prefix, page) == (match[:page], len(match) > page)

    @invariant()
    def same_contents(self) -> None:
        assert dump_store(self.store) == self.model.dump()
        for c, col in self.model.colls.items():
            for oid, o in col["objs"].items():
                want = object_checksum(len(o["data"]), [bytes(o["data"])], o["xattrs"], o["omap"], o["header"])
                assert self.store.checksum(c, oid) == want
        fsck = getattr(self.store, "fsck", None)
        if fsck is not None:
            assert fsck() == []


class MemoryVsModel(StoreVsModel):
    def make(self, path: str) -> ObjectStore:
        return MemoryStore()


class SqliteVsModel(StoreVsModel):
    via_wire = True

    def make(self, path: str) -> ObjectStore:
        # 16-byte blocks: the model's small objects span many blocks and boundaries
        return SqliteStore(path, block_size=16, fsync=False)


_settings = settings(max_examples=80, stateful_step_count=30, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
MemoryVsModel.TestCase.settings = _settings
SqliteVsModel.TestCase.settings = _settings
TestStoreModelMemory = MemoryVsModel.TestCase
TestStoreModelSqlite = SqliteVsModel.TestCase

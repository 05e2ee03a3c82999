"""MemoryStore: the in-memory twin of SqliteStore, for fast unit tests.

Deliberately built differently from the durable store (one bytearray per object instead
of checksummed blocks) so that the conformance suite run against both is a differential
test. Contents survive umount/mount (like a disk), not the process. Data is held
densely up to the last written byte: a write at a huge offset allocates the hole; a
truncate that grows the object does not.

Atomicity: a batch runs under the store lock with an undo list. The first time a batch
touches an object, metadata dict or log it works on a copy (an object's copy shares its
data bytearray: copying 4 MiB for a 4 KiB write would make the twin slow), and each
data change records the bytes it replaces. Rolling back replays the undo list
backwards. Readers take the same lock and never see a half-applied batch.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable
from typing import Any

from shoal.errors import Exists, NoData, Shutdown
from shoal.osd.store.base import (
    ALL,
    ObjectStat,
    ObjectStore,
    bad_argument,
    check_paging,
    check_read_args,
    not_found,
    object_checksum,
    read_range,
    zero_chunks,
)
from shoal.osd.store.transaction import (
    ObjectId,
    Transaction,
    check_coll,
    check_int,
    check_oid,
    check_str,
)


class _Obj:
    __slots__ = ("data", "size", "mtime", "xattrs", "omap", "header")

    def __init__(self) -> None:
        self.data = bytearray()  # len(data) <= size; bytes past it up to size are zeros
        self.size = 0
        self.mtime = 0.0
        self.xattrs: dict[str, bytes] = {}
        self.omap: dict[str, bytes] = {}
        self.header = b""

    def copy(self, share_data: bool = False) -> _Obj:
        o = _Obj()
        o.data = self.data if share_data else bytearray(self.data)
        o.size, o.mtime, o.header = self.size, self.mtime, self.header
        o.xattrs, o.omap = dict(self.xattrs), dict(self.omap)
        return o


class _Coll:
    __slots__ = ("objects", "meta", "log", "log_last")

    def __init__(self) -> None:
        self.objects: dict[ObjectId, _Obj] = {}
        self.meta: dict[str, bytes] = {}
        self.log: dict[int, bytes] = {}  # insertion order == ascending seq
        self.log_last = 0  # highest seq ever appended, survives trims


class _Batch:
    """Undo bookkeeping of one apply() call."""

    def __init__(self) -> None:
        self.undo: list[Callable[[], None]] = []
        self.copied: set[tuple[int, Any]] = set()  # (id(coll), oid | "meta" | "log")


class MemoryStore(ObjectStore):
    def __init__(self, capacity: int = 1 << 40) -> None:
        self._lock = threading.RLock()
        self._colls: dict[str, _Coll] = {}
        self._mounted = False
        self._capacity = capacity
        self._ops: dict[str, Callable[..., None]] = {
            name[4:]: getattr(self, name) for name in dir(self) if name.startswith("_op_")
        }

    # -- lifecycle --
    def mount(self) -> None:
        with self._lock:
            self._mounted = True

    def umount(self) -> None:
        with self._lock:
            self._mounted = False

    def _check_mounted(self) -> None:
        if not self._mounted:
            raise Shutdown("object store is not mounted")

    # -- apply --
    def apply(self, txns: list[Transaction]) -> None:
        with self._lock:
            self._check_mounted()
            b = _Batch()
            try:
                for t in txns:
                    for op in t.ops:
                        self._ops[op[0]](b, *op[1:])
            except BaseException:
                for undo in reversed(b.undo):
                    undo()
                raise

    # batch helpers: look up, and register undo before the first change
    def _coll(self, coll: str, op: str) -> _Coll:
        c = self._colls.get(coll)
        if c is None:
            raise not_found(coll, op=op)
        return c

    def _obj(self, b: _Batch, coll: str, oid: ObjectId, op: str, create: bool = False) -> _Obj:
        c = self._coll(coll, op)
        o = c.objects.get(oid)
        key = (id(c), oid)
        if key not in b.copied:
            if o is None and not create:
                raise not_found(coll, oid, op)
            b.copied.add(key)
            b.undo.append(_restore_obj(c, oid, o))
            if o is not None:
                o = c.objects[oid] = o.copy(share_data=True)
        if o is None:
            if not create:
                raise not_found(coll, oid, op)
            o = c.objects[oid] = _Obj()
        return o

    def _meta(self, b: _Batch, coll: str, op: str) -> _Coll:
        c = self._coll(coll, op)
        if (id(c), "meta") not in b.copied:
            b.copied.add((id(c), "meta"))
            old = c.meta
            b.undo.append(lambda: setattr(c, "meta", old))
            c.meta = dict(old)
        return c

    def _log(self, b: _Batch, coll: str, op: str) -> _Coll:
        c = self._coll(coll, op)
        if (id(c), "log") not in b.copied:
            b.copied.add((id(c), "log"))
            old, old_last = c.log, c.log_last
            b.undo.append(lambda: (setattr(c, "log", old), setattr(c, "log_last", old_last)))
            c.log = dict(old)
        return c

    # -- ops (named _op_<transaction method>) --
    def _op_create_collection(self, b: _Batch, coll: str) -> None:
        if coll in self._colls:
            raise Exists(f"create_collection: collection {coll} already exists")
        self._colls[coll] = _Coll()
        b.undo.append(lambda: self._colls.pop(coll))

    def _op_remove_collection(self, b: _Batch, coll: str) -> None:
        c = self._coll(coll, "remove_collection")
        del self._colls[coll]
        b.undo.append(lambda: self._colls.__setitem__(coll, c))

    def _op_touch(self, b: _Batch, coll: str, oid: ObjectId) -> None:
        self._obj(b, coll, oid, "touch", create=True)

    def _op_write(self, b: _Batch, coll: str, oid: ObjectId, offset: int, data: Any) -> None:
        o = self._obj(b, coll, oid, "write", create=True)
        if not len(data):
            return  # like Ceph: a zero-length write creates the object, nothing more
        _save_range(b, o, offset, offset + len(data))
        if len(o.data) < offset:
            o.data.extend(bytes(offset - len(o.data)))
        o.data[offset:offset + len(data)] = data
        o.size = max(o.size, offset + len(data))

    def _op_zero(self, b: _Batch, coll: str, oid: ObjectId, offset: int, length: int) -> None:
        o = self._obj(b, coll, oid, "zero", create=True)
        end = min(offset + length, o.size)
        if end <= offset:
            return
        _save_range(b, o, offset, end if end < len(o.data) else len(o.data))
        if end >= len(o.data):
            del o.data[offset:]  # the tail reads as zeros anyway
        else:
            o.data[offset:end] = bytes(end - offset)

    def _op_truncate(self, b: _Batch, coll: str, oid: ObjectId, size: int) -> None:
        o = self._obj(b, coll, oid, "truncate", create=True)
        _save_range(b, o, size, len(o.data))
        del o.data[size:]
        o.size = size

    def _op_remove(self, b: _Batch, coll: str, oid: ObjectId) -> None:
        c = self._coll(coll, "remove")
        o = c.objects.pop(oid, None)
        if o is not None and (id(c), oid) not in b.copied:
            b.copied.add((id(c), oid))
            b.undo.append(_restore_obj(c, oid, o))

    def _op_clone(self, b: _Batch, coll: str, src: ObjectId, dst: ObjectId) -> None:
        c = self._coll(coll, "clone")
        s = c.objects.get(src)
        if s is None:
            raise not_found(coll, src, "clone")
        self._obj(b, coll, dst, "clone", create=True)  # registers the undo for dst
        c.objects[dst] = s.copy()

    def _op_set_mtime(self, b: _Batch, coll: str, oid: ObjectId, mtime: float) -> None:
        self._obj(b, coll, oid, "set_mtime").mtime = mtime

    def _op_setattrs(self, b: _Batch, coll: str, oid: ObjectId, attrs: dict[str, bytes]) -> None:
        self._obj(b, coll, oid, "setattrs").xattrs.update(attrs)

    def _op_rmattr(self, b: _Batch, coll: str, oid: ObjectId, name: str) -> None:
        self._obj(b, coll, oid, "rmattr").xattrs.pop(name, None)

    def _op_omap_setkeys(self, b: _Batch, coll: str, oid: ObjectId, kv: dict[str, bytes]) -> None:
        self._obj(b, coll, oid, "omap_setkeys").omap.update(kv)

    def _op_omap_rmkeys(self, b: _Batch, coll: str, oid: ObjectId, keys: list[str]) -> None:
        o = self._obj(b, coll, oid, "omap_rmkeys")
        for k in keys:
            o.omap.pop(k, None)

    def _op_omap_rmkeyrange(self, b: _Batch, coll: str, oid: ObjectId, first: str, last: str) -> None:
        o = self._obj(b, coll, oid, "omap_rmkeyrange")
        for k in [k for k in o.omap if first <= k < last]:
            del o.omap[k]

    def _op_omap_clear(self, b: _Batch, coll: str, oid: ObjectId) -> None:
        o = self._obj(b, coll, oid, "omap_clear")
        o.omap.clear()
        o.header = b""

    def _op_omap_setheader(self, b: _Batch, coll: str, oid: ObjectId, header: bytes) -> None:
        self._obj(b, coll, oid, "omap_setheader").header = header

    def _op_set_meta(self, b: _Batch, coll: str, key: str, value: bytes) -> None:
        self._meta(b, coll, "set_meta").meta[key] = value

    def _op_rm_meta(self, b: _Batch, coll: str, key: str) -> None:
        self._meta(b, coll, "rm_meta").meta.pop(key, None)

    def _op_log_append(self, b: _Batch, coll: str, seq: int, entry: bytes) -> None:
        c = self._log(b, coll, "log_append")
        if seq <= c.log_last:
            raise bad_argument(f"log seq {seq} in collection {coll} is not above the last seq {c.log_last}",
                               "log_append")
        c.log[seq] = entry
        c.log_last = seq

    def _op_log_trim(self, b: _Batch, coll: str, upto_seq: int) -> None:
        c = self._log(b, coll, "log_trim")
        for seq in [s for s in c.log if s <= upto_seq]:
            del c.log[seq]

    # -- reads --
    def _read_obj(self, coll: str, oid: ObjectId, op: str) -> _Obj:
        self._check_mounted()
        check_coll(coll)
        check_oid(oid)
        o = self._coll(coll, op).objects.get(oid)
        if o is None:
            raise not_found(coll, oid, op)
        return o

    def list_collections(self) -> list[str]:
        with self._lock:
            self._check_mounted()
            return sorted(self._colls)

    def collection_exists(self, coll: str) -> bool:
        with self._lock:
            self._check_mounted()
            return check_coll(coll) in self._colls

    def exists(self, coll: str, oid: ObjectId) -> bool:
        with self._lock:
            self._check_mounted()
            c = self._colls.get(check_coll(coll))
            return c is not None and check_oid(oid) in c.objects

    def stat(self, coll: str, oid: ObjectId) -> ObjectStat:
        with self._lock:
            o = self._read_obj(coll, oid, "stat")
            return ObjectStat(o.size, o.mtime)

    def read(self, coll: str, oid: ObjectId, offset: int, length: int) -> bytes:
        check_read_args(coll, oid, offset, length)
        with self._lock:
            o = self._read_obj(coll, oid, "read")
            start, end = read_range(o.size, offset, length)
            out = bytes(o.data[start:end])
            return out + bytes(end - start - len(out))

    def getattr(self, coll: str, oid: ObjectId, name: str) -> bytes:
        check_str("xattr name", name)
        with self._lock:
            v = self._read_obj(coll, oid, "getattr").xattrs.get(name)
            if v is None:
                raise NoData(f"getattr: object {oid} in collection {coll} has no xattr {name!r}")
            return v

    def getattrs(self, coll: str, oid: ObjectId) -> dict[str, bytes]:
        with self._lock:
            return dict(sorted(self._read_obj(coll, oid, "getattrs").xattrs.items()))

    def omap_get_header(self, coll: str, oid: ObjectId) -> bytes:
        with self._lock:
            return self._read_obj(coll, oid, "omap_get_header").header

    def omap_get_vals(
        self, coll: str, oid: ObjectId, start_after: str = "", filter_prefix: str = "",
        max_return: int = ALL,
    ) -> tuple[list[tuple[str, bytes]], bool]:
        check_paging(start_after, filter_prefix, max_return)
        with self._lock:
            omap = self._read_obj(coll, oid, "omap_get_vals").omap
            keys = sorted(k for k in omap if k > start_after and k.startswith(filter_prefix))
            return [(k, omap[k]) for k in keys[:max_return]], len(keys) > max_return

    def omap_get_keys(
        self, coll: str, oid: ObjectId, start_after: str = "", filter_prefix: str = "",
        max_return: int = ALL,
    ) -> tuple[list[str], bool]:
        items, more = self.omap_get_vals(coll, oid, start_after, filter_prefix, max_return)
        return [k for k, _ in items], more

    def omap_get_vals_by_keys(self, coll: str, oid: ObjectId, keys: Iterable[str]) -> dict[str, bytes]:
        keys = [check_str("omap key", k) for k in keys]
        with self._lock:
            omap = self._read_obj(coll, oid, "omap_get_vals_by_keys").omap
            return {k: omap[k] for k in sorted(set(keys)) if k in omap}

    def list_objects(
        self, coll: str, start_after: ObjectId | None = None, max_return: int = ALL,
    ) -> tuple[list[ObjectId], bool]:
        check_coll(coll)
        check_int("max_return", max_return)
        if start_after is not None:
            check_oid(start_after)
        with self._lock:
            self._check_mounted()
            oids = sorted(self._coll(coll, "list_objects").objects)
        if start_after is not None:
            oids = [o for o in oids if o > start_after]
        return oids[:max_return], len(oids) > max_return

    def get_meta(self, coll: str, key: str) -> bytes | None:
        check_str("meta key", key)
        with self._lock:
            self._check_mounted()
            return self._coll(check_coll(coll), "get_meta").meta.get(key)

    def get_all_meta(self, coll: str) -> dict[str, bytes]:
        with self._lock:
            self._check_mounted()
            return dict(sorted(self._coll(check_coll(coll), "get_all_meta").meta.items()))

    def log_read(self, coll: str, after_seq: int = 0, max_entries: int = ALL) -> list[tuple[int, bytes]]:
        check_int("after_seq", after_seq)
        check_int("max_entries", max_entries)
        with self._lock:
            self._check_mounted()
            log = self._coll(check_coll(coll), "log_read").log
            return list(itertools.islice(((s, e) for s, e in log.items() if s > after_seq), max_entries))

    def statfs(self) -> tuple[int, int, int]:
        with self._lock:
            self._check_mounted()
            used = 0
            for c in self._colls.values():
                used += sum(len(e) for e in c.log.values()) + sum(len(v) for v in c.meta.values())
                for o in c.objects.values():
                    used += len(o.data) + len(o.header) + sum(len(v) for v in o.xattrs.values())
                    used += sum(len(v) for v in o.omap.values())
        return self._capacity, used, max(0, self._capacity - used)

    def checksum(self, coll: str, oid: ObjectId) -> int:
        with self._lock:
            o = self._read_obj(coll, oid, "checksum")
            chunks = itertools.chain([bytes(o.data)], zero_chunks(o.size - len(o.data)))
            return object_checksum(o.size, chunks, o.xattrs, o.omap, o.header)


def _save_range(b: _Batch, o: _Obj, start: int, end: int) -> None:
    """Records how to put back o.data's length and its bytes [start, end) as they are now."""
    data, old_len = o.data, len(o.data)
    saved = bytes(data[start:min(end, old_len)])

    def undo() -> None:
        if len(data) > old_len:
            del data[old_len:]
        elif len(data) < old_len:
            data.extend(bytes(old_len - len(data)))
        data[start:start + len(saved)] = saved

    b.undo.append(undo)


def _restore_obj(c: _Coll, oid: ObjectId, original: _Obj | None) -> Callable[[], None]:
    def undo() -> None:
        if original is None:
            c.objects.pop(oid, None)
        else:
            c.objects[oid] = original
    return undo


"""One object as an op vector sees it: stored state plus the vector's pending changes.

Every mutation is recorded twice: in an overlay (so later ops of the same vector, and
object-class methods, read their own writes) and as physical store operations in a
`Transaction`, which the primary commits locally and ships to replicas unchanged.
Nothing touches the store until the whole vector succeeded, so a failing op leaves
the object as it was.
"""

from __future__ import annotations

import time

from shoal.errors import Exists, InvalidArgument, NoData, NotFound
from shoal.osd.store.base import ObjectId, ObjectStore
from shoal.osd.store.transaction import Transaction

MAX_OBJECT_SIZE = 128 << 20  # osd_max_object_size, as in Ceph


class ObjectContext:
    def __init__(self, store: ObjectStore, coll: str, oid: ObjectId) -> None:
        self.store = store
        self.coll = coll
        self.oid = oid
        self.txn = Transaction()
        try:
            st = store.stat(coll, oid)
            self.existed, self.orig_size, self.mtime = True, st.size, st.mtime
        except NotFound:
            self.existed, self.orig_size, self.mtime = False, 0, 0.0
        self.exists = self.existed
        self.size = self.orig_size
        self.removed = False  # the stored object was removed by this vector
        # Pending data changes, in order: ("w", off, bytes) | ("z", off, len) | ("t", size)
        # Payloads are kept as given (often a slice of the received frame, which nobody
        # modifies afterwards): no copy on the write path.
        self._data_ops: list[tuple[str, int, bytes | memoryview | int]] = []
        self._xattrs: dict[str, bytes | None] = {}  # None = removed
        self._omap: dict[str, bytes | None] = {}
        self._omap_cleared = False
        self._omap_header: bytes | None = None
        self.modified = False

    # -- checks -----------------------------------------------------------------------
    def require_exists(self) -> None:
        if not self.exists:
            raise NotFound(f"object {self.oid.name!r} does not exist")

    def _touch(self) -> None:
        if not self.exists:
            self.exists = True
            self.txn.touch(self.coll, self.oid)
        self.modified = True

    # -- data -------------------------------------------------------------------------
    def read(self, offset: int, length: int) -> bytes:
        self.require_exists()
        if offset >= self.size:
            return b""
        end = self.size if length == 0 else min(self.size, offset + length)
        if self.removed:
            base = bytearray(end - offset)
        else:
            base = bytearray(self.store.read(self.coll, self.oid, offset, end - offset))
            base.extend(bytes(end - offset - len(base)))
        for kind, off, arg in self._data_ops:
            if kind == "w":
                assert isinstance(arg, (bytes, memoryview))
                lo, hi = max(off, offset), min(off + len(arg), end)
                if lo < hi:
                    base[lo - offset:hi - offset] = arg[lo - off:hi - off]
            elif kind == "z":
                assert isinstance(arg, int)
                lo, hi = max(off, offset), min(off + arg, end)
                if lo < hi:
                    base[lo - offset:hi - offset] = bytes(hi - lo)
            else:  # truncate: bytes past it were zeroed, later writes re-apply on top
                lo = max(off, offset)
                if lo < end:
                    base[lo - offset:] = bytes(end - lo)
        return bytes(base)

    def write(self, offset: int, data: bytes | memoryview) -> None:
        if offset < 0 or offset + len(data) > MAX_OBJECT_SIZE:
            raise InvalidArgument(f"write beyond the maximum object size at {offset}+{len(data)}")
        self._touch()
        if data:
            self.txn.write(self.coll, self.oid, offset, data)
            self._data_ops.append(("w", offset, data))
            self.size = max(self.size, offset + len(data))
        self.mtime = time.time()

    def write_full(self, data: bytes) -> None:
        self.truncate(0)
        self.write(0, data)

    def append(self, data: bytes) -> None:
        self.write(self.size, data)

    def truncate(self, size: int) -> None:
        if size < 0 or size > MAX_OBJECT_SIZE:
            raise InvalidArgument(f"invalid truncate size {size}")
        self._touch()
        self.txn.truncate(self.coll, self.oid, size)
        self._data_ops.append(("t", size, 0))
        self.size = size
        self.mtime = time.time()

    def zero(self, offset: int, length: int) -> None:
        self.require_exists()
        end = min(offset + length, self.size)  # zeroing never extends the object
        if end > offset:
            self.txn.zero(self.coll, self.oid, offset, end - offset)
            self._data_ops.append(("z", offset, end - offset))
        self.modified = True
        self.mtime = time.time()

    def create(self, exclusive: bool) -> None:
        if self.exists and exclusive:
            raise Exists(f"object {self.oid.name!r} already exists")
        self._touch()

    def remove(self) -> None:
        self.require_exists()
        self.txn.remove(self.coll, self.oid)
        self.exists, self.size, self.removed, self.modified = False, 0, True, True
        self._data_ops.clear()
        self._xattrs = {}
        self._omap = {}
        self._omap_cleared = True
        self._omap_header = b""

    # -- xattrs -----------------------------------------------------------------------
    def getxattr(self, name: str) -> bytes:
        self.require_exists()
        if name in self._xattrs:
            value = self._xattrs[name]
            if value is None:
                raise NoData(f"no xattr {name!r} on {self.oid.name!r}")
            return value
        if self.removed:
            raise NoData(f"no xattr {name!r} on {self.oid.name!r}")
        return self.store.getattr(self.coll, self.oid, name)

    def getxattrs(self) -> dict[str, bytes]:
        self.require_exists()
        attrs = {} if self.removed else self.store.getattrs(self.coll, self.oid)
        for name, value in self._xattrs.items():
            if value is None:
                attrs.pop(name, None)
            else:
                attrs[name] = value
        return attrs

    def setxattr(self, name: str, value: bytes) -> None:
        self._touch()
        self.txn.setattrs(self.coll, self.oid, {name: value})
        self._xattrs[name] = value

    def rmxattr(self, name: str) -> None:
        self.require_exists()
        self.txn.rmattr(self.coll, self.oid, name)
        self._xattrs[name] = None
        self.modified = True

    # -- omap -------------------------------------------------------------------------
    def omap_get_vals(self, start_after: str, prefix: str, max_return: int) -> tuple[list[tuple[str, bytes]], bool]:
        self.require_exists()
        if self._omap_cleared:
            stored: list[tuple[str, bytes]] = []
        elif not self._omap:
            return self.store.omap_get_vals(self.coll, self.oid, start_after, prefix, max_return)
        else:
            stored, _ = self.store.omap_get_vals(self.coll, self.oid, start_after, prefix, 1 << 30)
        merged = dict(stored)
        for key, value in self._omap.items():
            if key > start_after and key.startswith(prefix):
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
        items = sorted(merged.items(), key=lambda kv: kv[0].encode())
        return items[:max_return], len(items) > max_return

    def omap_get_vals_by_keys(self, keys: list[str]) -> dict[str, bytes]:
        self.require_exists()
        missing = [k for k in keys if k not in self._omap]
        out = {} if self._omap_cleared else self.store.omap_get_vals_by_keys(self.coll, self.oid, missing)
        for key in keys:
            if key in self._omap:
                value = self._omap[key]
                if value is None:
                    out.pop(key, None)
                else:
                    out[key] = value
        return out

    def omap_get_header(self) -> bytes:
        self.require_exists()
        if self._omap_header is not None:
            return self._omap_header
        return self.store.omap_get_header(self.coll, self.oid)

    def omap_set(self, kv: dict[str, bytes]) -> None:
        self._touch()
        self.txn.omap_setkeys(self.coll, self.oid, kv)
        self._omap.update(kv)

    def omap_rm(self, keys: list[str]) -> None:
        self.require_exists()
        self.txn.omap_rmkeys(self.coll, self.oid, list(keys))
        for key in keys:
            self._omap[key] = None
        self.modified = True

    def omap_clear(self) -> None:
        self.require_exists()
        self.txn.omap_clear(self.coll, self.oid)
        self._omap = {}
        self._omap_cleared = True
        self.modified = True

    def omap_set_header(self, header: bytes) -> None:
        self._touch()
        self.txn.omap_setheader(self.coll, self.oid, header)
        self._omap_header = header

    def finish(self) -> None:
        """Stamp the mtime of a modified, still existing object."""
        if self.modified and self.exists:
            self.txn.set_mtime(self.coll, self.oid, self.mtime or time.time())

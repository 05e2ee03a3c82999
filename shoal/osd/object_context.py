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
from shoal.osd.snaps import (
    OVERLAP_END,
    SNAPSET_KEY,
    SnapSet,
    clone_for_write,
    clone_oid,
    resolve_read,
    snapdir_of,
    subtract,
)
from shoal.osd.store.base import HEAD, ObjectId, ObjectStore
from shoal.osd.store.transaction import Transaction

MAX_OBJECT_SIZE = 128 << 20  # osd_max_object_size, as in Ceph


class ObjectContext:
    """`snapc` is the writer's SnapContext (seq, snaps descending); `snapshots` says the
    object may have a SnapSet (its pool has handed out snap ids), so that objects of
    pools that never snapshot skip the lookup; `removed_snaps` are the pool's deleted ids."""

    def __init__(self, store: ObjectStore, coll: str, oid: ObjectId,
                 snapc: tuple[int, list[int]] | None = None, snapshots: bool = False,
                 removed_snaps: frozenset[int] = frozenset()) -> None:
        self.store = store
        self.coll = coll
        self.oid = oid
        self.src = oid  # where the stored state is read from (a clone after a rollback)
        self.txn = Transaction()
        self._snapc = snapc or (0, [])
        self._snapshots = snapshots or bool(snapc and snapc[0])
        self._removed_snaps = removed_snaps
        self._snapset: SnapSet | None = None
        self._snapset_stored = False
        self._snapset_loaded = False
        self._prepared = False
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
        self.origin = ""  # the calling client's address (cls_get_request_origin), set by the OSD

    # -- checks -----------------------------------------------------------------------
    def require_exists(self) -> None:
        if not self.exists:
            raise NotFound(f"object {self.oid.name!r} does not exist")

    @property
    def _fresh(self) -> bool:
        """Nothing stored backs this object's state: it was removed, or created by this vector."""
        return self.removed or (not self.existed and self.src is self.oid)

    def _touch(self) -> None:
        self._prepare()
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
        if self._fresh:
            base = bytearray(end - offset)
        else:
            base = bytearray(self.store.read(self.coll, self.src, offset, end - offset))
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
        self._prepare()
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
        self._prepare()
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
        if self._fresh:
            raise NoData(f"no xattr {name!r} on {self.oid.name!r}")
        return self.store.getattr(self.coll, self.src, name)

    def getxattrs(self) -> dict[str, bytes]:
        self.require_exists()
        attrs = {} if self._fresh else self.store.getattrs(self.coll, self.src)
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
        self._prepare()
        self.txn.rmattr(self.coll, self.oid, name)
        self._xattrs[name] = None
        self.modified = True

    # -- omap -------------------------------------------------------------------------
    def omap_get_vals(self, start_after: str, prefix: str, max_return: int) -> tuple[list[tuple[str, bytes]], bool]:
        self.require_exists()
        if self._omap_cleared or self._fresh:
            stored: list[tuple[str, bytes]] = []
        elif not self._omap:
            return self.store.omap_get_vals(self.coll, self.src, start_after, prefix, max_return)
        else:
            stored, _ = self.store.omap_get_vals(self.coll, self.src, start_after, prefix, 1 << 30)
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
        out = {} if self._omap_cleared or self._fresh else self.store.omap_get_vals_by_keys(self.coll, self.src, missing)
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
        if self._fresh:
            return b""
        return self.store.omap_get_header(self.coll, self.src)

    def omap_set(self, kv: dict[str, bytes]) -> None:
        self._touch()
        self.txn.omap_setkeys(self.coll, self.oid, kv)
        self._omap.update(kv)

    def omap_rm(self, keys: list[str]) -> None:
        self.require_exists()
        self._prepare()
        self.txn.omap_rmkeys(self.coll, self.oid, list(keys))
        for key in keys:
            self._omap[key] = None
        self.modified = True

    def omap_clear(self) -> None:
        self.require_exists()
        self._prepare()
        self.txn.omap_clear(self.coll, self.oid)
        self._omap = {}
        self._omap_cleared = True
        self.modified = True

    def omap_set_header(self, header: bytes) -> None:
        self._touch()
        self.txn.omap_setheader(self.coll, self.oid, header)
        self._omap_header = header

    # -- snapshots (decision record 0005) -----------------------------------------------
    def snapset(self) -> SnapSet | None:
        """The object's SnapSet, None if it never had one (or its pool never snapshots)."""
        if not self._snapset_loaded:
            self._snapset_loaded = True
            if self._snapshots:
                try:  # one store lookup: a missing snapdir is the common case
                    raw = self.store.omap_get_vals_by_keys(self.coll, snapdir_of(self.oid), [SNAPSET_KEY])
                except NotFound:
                    raw = {}
                if SNAPSET_KEY in raw:
                    self._snapset = SnapSet.decode(raw[SNAPSET_KEY])
                    self._snapset_stored = True
        return self._snapset

    def _prepare(self) -> None:
        """Before the vector's first mutation: preserve the head for newer snapshots."""
        if self._prepared:
            return
        self._prepared = True
        seq, snaps = self._snapc
        ss = self.snapset()
        if ss is None:
            if not seq:
                return
            ss = self._snapset = SnapSet()
        elif ss.seq > seq:  # a stale writer: the object already knows newer snapshots
            seq, snaps = ss.seq, []
        clone = clone_for_write(ss, self.existed, self.orig_size, seq, snaps, self._removed_snaps)
        if clone is not None:
            self.txn.clone(self.coll, self.oid, clone_oid(self.oid, clone.id))

    def list_snaps(self) -> dict[str, object]:
        ss = self.snapset() or SnapSet()
        if not ss.clones and not self.exists:
            raise NotFound(f"object {self.oid.name!r} does not exist")
        return ss.to_reply(self.size if self.exists else None)

    def rollback(self, snapid: int) -> None:
        """Make the head what the object was at `snapid` (Ceph's rollback op)."""
        ss = self.snapset()
        version = resolve_read(ss, self.existed, snapid)
        if version == HEAD:
            return  # the head is what the snapshot saw: nothing to do
        if version is None:
            if self.exists:
                self.remove()
            return
        assert ss is not None
        self._prepare()
        src = clone_oid(self.oid, version)
        st = self.store.stat(self.coll, src)
        self.txn.clone(self.coll, src, self.oid)
        self.src, self.exists, self.removed, self.modified = src, True, False, True
        self.size, self.mtime = st.size, st.mtime
        self._data_ops = [("t", 0, 0)]  # for the overlap: every byte of the head changed
        self._xattrs, self._omap, self._omap_cleared, self._omap_header = {}, {}, False, None

    def _changed_extents(self) -> list[tuple[int, int]]:
        if self.removed:
            return [(0, OVERLAP_END)]
        out = []
        for kind, off, arg in self._data_ops:
            if kind == "t":
                out.append((off, OVERLAP_END))
            else:
                out.append((off, len(arg) if isinstance(arg, (bytes, memoryview)) else int(arg)))
        return out

    def _finish_snapset(self) -> None:
        ss = self._snapset
        if ss is None:
            return
        if ss.clones:
            newest = ss.clones[-1]
            for off, length in self._changed_extents():
                newest.overlap = subtract(newest.overlap, off, length)
        snapdir = snapdir_of(self.oid)
        if not ss.clones and not self.exists:
            if self._snapset_stored:
                self.txn.remove(self.coll, snapdir)
            return
        if not self._snapset_stored:
            self.txn.touch(self.coll, snapdir)
        self.txn.omap_setkeys(self.coll, snapdir, {SNAPSET_KEY: ss.encode()})

    def finish(self) -> None:
        """Stamp the mtime of a modified, still existing object; persist its SnapSet."""
        if self.modified and self.exists:
            self.txn.set_mtime(self.coll, self.oid, self.mtime or time.time())
        if self.modified:
            self._finish_snapset()


def context_at_snap(store: ObjectStore, coll: str, oid: ObjectId, snapid: int) -> ObjectContext | None:
    """A read-only context on the version of `oid` a read at `snapid` sees (None: ENOENT)."""
    head = ObjectContext(store, coll, oid, snapshots=True)
    version = resolve_read(head.snapset(), head.existed, snapid)
    if version is None:
        return None
    if version == HEAD:
        return head
    return ObjectContext(store, coll, clone_oid(oid, version))

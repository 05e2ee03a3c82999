"""SqliteStore: the durable ObjectStore, one SQLite database in WAL mode.

Why this shape (docs/decisions/0001-object-store.md has the measurements):

* One `apply()` batch is one SQLite transaction: data, xattrs, omap, PG log and PG
  meta commit together with one WAL fsync (`synchronous=FULL`), so a batch is wholly
  present or wholly absent after `kill -9` or power loss.
* Object data lives in fixed-size blocks (16 KiB by default), each with a crc32c that
  every read verifies. An overwrite rewrites only the blocks it touches, reading only
  the partially covered ones; a block that was never written is a hole (zeros).
* Blocks are reached through an extent table (object, block number) -> block id;
  blocks mapped more than once carry a reference count in a side table, so `clone`
  (snapshot clones) shares every block instead of copying it, and a write to a shared
  block copies that one block first.
* The single writer connection is serialised by a lock; each reader thread has its own
  connection (WAL readers never wait for the writer) and reads inside a read
  transaction, so a multi-statement read sees one committed state.

Layout on disk: `<path>/objectstore.db` (+ `-wal`, `-shm`), and `<path>/LOCK`, held with
flock while mounted so two daemons cannot open the same store.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import crc32c

from shoal.errors import Busy, Corrupt, Exists, NoData, NotSupported, ShoalError, Shutdown
from shoal.osd.store.base import (
    ALL,
    ObjectStat,
    ObjectStore,
    bad_argument,
    check_paging,
    check_read_args,
    not_found,
    object_checksum,
    prefix_successor,
    read_range,
    zero_chunks,
)
from shoal.osd.store.transaction import (
    MAX_OBJECT_SIZE,
    ObjectId,
    Transaction,
    check_coll,
    check_int,
    check_oid,
    check_str,
)

MAGIC = "shoal-objectstore"
FORMAT_VERSION = 1
DB_NAME = "objectstore.db"
log = logging.getLogger("shoal.osd.store")
READER_CACHE_KIB = 8 * 1024
CHECKPOINT_INTERVAL = 0.2  # seconds between background checkpoint attempts
CHECKPOINT_MIN_WAL = 4 << 20  # do not bother below this WAL size
WAL_HARD_LIMIT = 512 << 20  # beyond this, checkpoint even if it makes commits wait
DEFAULT_BLOCK_SIZE = 16 * 1024  # measured against 32/64/256 KiB: docs/decisions/0001-object-store.md

# Strings that take part in keys are stored as UTF-8 BLOBs: BLOB comparison is memcmp,
# which is exactly the bytewise order the interface promises, and a NUL is just a byte.
_SCHEMA = [
    "CREATE TABLE store_meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID",
    "CREATE TABLE collections(cid INTEGER PRIMARY KEY, name BLOB NOT NULL UNIQUE,"
    " log_last INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE objects(oid INTEGER PRIMARY KEY, cid INTEGER NOT NULL, nspace BLOB NOT NULL,"
    " name BLOB NOT NULL, snap INTEGER NOT NULL, size INTEGER NOT NULL, mtime REAL NOT NULL,"
    " header BLOB NOT NULL)",
    "CREATE UNIQUE INDEX objects_by_key ON objects(cid, nspace, name, snap)",
    # extent rows are tiny and keyed by (object, block number): WITHOUT ROWID clusters them
    "CREATE TABLE extents(oid INTEGER NOT NULL, blkno INTEGER NOT NULL, bid INTEGER NOT NULL,"
    " PRIMARY KEY(oid, blkno)) WITHOUT ROWID",
    # blocks are large rows: a rowid table keeps them out of interior b-tree pages.
    # SQLite rewrites a whole row (overflow pages too) on any UPDATE, so nothing that
    # changes without the data (reference counts) may live in this table.
    "CREATE TABLE blocks(bid INTEGER PRIMARY KEY, crc INTEGER NOT NULL, data BLOB NOT NULL)",
    # reference counts of blocks mapped by more than one extent (after a clone); a
    # block without a row here has exactly one reference
    "CREATE TABLE shared(bid INTEGER PRIMARY KEY, refs INTEGER NOT NULL CHECK (refs >= 2))",
    "CREATE TABLE xattrs(oid INTEGER NOT NULL, name BLOB NOT NULL, value BLOB NOT NULL,"
    " PRIMARY KEY(oid, name)) WITHOUT ROWID",
    "CREATE TABLE omap(oid INTEGER NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,"
    " PRIMARY KEY(oid, key)) WITHOUT ROWID",
    "CREATE TABLE cmeta(cid INTEGER NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,"
    " PRIMARY KEY(cid, key)) WITHOUT ROWID",
    "CREATE TABLE pglog(cid INTEGER NOT NULL, seq INTEGER NOT NULL, entry BLOB NOT NULL,"
    " PRIMARY KEY(cid, seq)) WITHOUT ROWID",
]

_READ = (
    "SELECT o.size, e.blkno, b.crc, b.data FROM collections c JOIN objects o ON o.cid = c.cid"
    " LEFT JOIN extents e ON e.oid = o.oid AND e.blkno BETWEEN ? AND ? LEFT JOIN blocks b ON b.bid = e.bid"
    " WHERE c.name = ? AND o.nspace = ? AND o.name = ? AND o.snap = ? ORDER BY e.blkno"
)
_OBJ_BY_NAME = (
    "SELECT o.oid, o.size, o.mtime, o.header FROM collections c JOIN objects o ON o.cid = c.cid"
    " WHERE c.name = ? AND o.nspace = ? AND o.name = ? AND o.snap = ?"
)


def _u(s: str) -> bytes:
    return s.encode("utf-8")


def _key(oid: ObjectId) -> tuple[bytes, bytes, int]:
    return _u(oid.nspace), _u(oid.name), oid.snap


class SqliteStore(ObjectStore):
    def __init__(
        self,
        path: str,
        *,
        block_size: int = DEFAULT_BLOCK_SIZE,
        page_size: int = 4096,
        cache_size_kib: int = 32 * 1024,
        wal_autocheckpoint: int = 4096,
        fsync: bool = True,
        background_checkpoint: bool = True,
    ) -> None:
        """`path` is a directory (created by mount). block_size and page_size apply
        when the store is created; an existing store keeps its own. `fsync=False`
        (synchronous=NORMAL: atomic but not durable across power loss) is for tests."""
        check_int("block_size", block_size, lo=1, hi=1 << 20)
        self.path = path
        self.db_path = os.path.join(path, DB_NAME)
        self._bs = block_size
        self._page_size = page_size
        self._cache_kib = cache_size_kib
        # With a background checkpointer the committing thread never copies WAL pages into
        # the database itself: that work (a second write of every byte) leaves the commit path.
        self._autockpt = 0 if background_checkpoint else wal_autocheckpoint
        self._bg_checkpoint = background_checkpoint
        self._ckpt_stop = threading.Event()
        self._ckpt_thread: threading.Thread | None = None
        self._sync = "FULL" if fsync else "NORMAL"
        self._wlock = threading.Lock()
        self._w: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self._local = threading.local()
        self._rconns: list[sqlite3.Connection] = []
        self._rconns_lock = threading.Lock()
        self._gen = 0  # bumped by umount so threads drop connections of an earlier mount
        self._failed: BaseException | None = None
        self._ops = {name[4:]: getattr(self, name) for name in dir(self) if name.startswith("_op_")}

    @property
    def block_size(self) -> int:
        return self._bs

    # ---------------------------------------------------------------- lifecycle
    def mount(self) -> None:
        with self._wlock:
            if self._w is not None:
                return
            os.makedirs(self.path, exist_ok=True)
            fd = os.open(os.path.join(self.path, "LOCK"), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise Busy(f"object store {self.path} is mounted by another process") from None
            try:
                self._w = self._open_writer()
            except BaseException:
                os.close(fd)
                raise
            self._lock_fd = fd
            self._failed = None
            if self._bg_checkpoint:
                self._ckpt_stop.clear()
                self._ckpt_thread = threading.Thread(target=self._checkpointer, name="checkpoint", daemon=True)
                self._ckpt_thread.start()

    def _connect(self) -> sqlite3.Connection:
        # check_same_thread=False only so umount can close every connection; each
        # connection is still used by one thread at a time (writer lock / thread-local).
        c = sqlite3.connect(self.db_path, isolation_level=None, check_same_thread=False,
                            cached_statements=256)
        c.execute("PRAGMA busy_timeout=10000")
        c.execute(f"PRAGMA cache_size=-{self._cache_kib}")
        return c

    def _open_writer(self) -> sqlite3.Connection:
        try:
            c = self._connect()
        except sqlite3.DatabaseError as e:
            raise Corrupt(f"object store {self.db_path} cannot be opened: {e}") from e
        try:
            if c.execute("PRAGMA page_count").fetchone()[0] == 0:  # a new, empty database
                c.execute(f"PRAGMA page_size={self._page_size}")
            mode = c.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise ShoalError(f"object store {self.db_path}: cannot enable WAL mode (got {mode})")
            c.execute(f"PRAGMA synchronous={self._sync}")
            c.execute(f"PRAGMA wal_autocheckpoint={self._autockpt}")
            c.execute("PRAGMA journal_size_limit=67108864")
            self._init_or_check_format(c)
        except sqlite3.DatabaseError as e:
            c.close()
            raise Corrupt(f"object store {self.db_path} cannot be opened: {e}") from e
        except BaseException:
            c.close()
            raise
        return c

    def _init_or_check_format(self, c: sqlite3.Connection) -> None:
        tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            c.execute("BEGIN IMMEDIATE")
            for stmt in _SCHEMA:
                c.execute(stmt)
            c.executemany("INSERT INTO store_meta VALUES (?, ?)", [
                ("magic", MAGIC), ("format_version", FORMAT_VERSION),
                ("block_size", self._bs), ("created", time.time()),
            ])
            c.execute("COMMIT")
            # the new files' directory entries must survive a power loss too
            for d in (self.path, os.path.dirname(os.path.abspath(self.path))):
                fd = os.open(d, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            return
        if "store_meta" not in tables:
            raise Corrupt(f"{self.db_path} is a SQLite database but not a Shoal object store")
        meta = dict(c.execute("SELECT key, value FROM store_meta"))
        if meta.get("magic") != MAGIC:
            raise Corrupt(f"{self.db_path} is not a Shoal object store (magic {meta.get('magic')!r})")
        version = meta.get("format_version")
        if version != FORMAT_VERSION:
            raise NotSupported(
                f"object store {self.db_path} has format version {version!r}; this Shoal reads "
                f"version {FORMAT_VERSION} only",
                errno.EOPNOTSUPP,
            )
        self._bs = int(meta["block_size"])

    def _checkpointer(self) -> None:
        """Copy committed WAL pages into the database without blocking commits (PASSIVE);
        only a WAL past WAL_HARD_LIMIT gets a RESTART checkpoint, which waits for writers."""
        c = self._connect()
        wal = self.db_path + "-wal"
        try:
            while not self._ckpt_stop.wait(CHECKPOINT_INTERVAL):
                try:
                    size = os.path.getsize(wal)
                except OSError:
                    continue
                if size < CHECKPOINT_MIN_WAL:
                    continue
                mode = "RESTART" if size > WAL_HARD_LIMIT else "PASSIVE"
                try:
                    c.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
                except sqlite3.Error as e:  # retried next round; commits are unaffected
                    log.warning("event=checkpoint_failed store=%s error=%s", self.path, e)
        finally:
            c.close()

    def umount(self) -> None:
        if self._ckpt_thread is not None:
            self._ckpt_stop.set()
            self._ckpt_thread.join()
            self._ckpt_thread = None
        with self._wlock:
            if self._w is None:
                return
            self._gen += 1
            with self._rconns_lock:
                for rc in self._rconns:
                    rc.close()
                self._rconns.clear()
            try:
                self._w.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                self._w.close()
                self._w = None
                if self._lock_fd is not None:
                    os.close(self._lock_fd)  # releases the flock
                    self._lock_fd = None

    # ---------------------------------------------------------------- apply
    def apply(self, txns: list[Transaction]) -> None:
        with self._wlock:
            w = self._w
            if w is None:
                raise Shutdown(f"object store {self.path} is not mounted")
            if self._failed is not None:
                raise ShoalError(f"object store {self.path} failed earlier ({self._failed}); remount it",
                                 errno.EIO)
            if all(t.empty() for t in txns):
                return
            committing = False
            try:
                w.execute("BEGIN IMMEDIATE")
                for t in txns:
                    for op in t.ops:
                        self._ops[op[0]](w, *op[1:])
                committing = True
                w.execute("COMMIT")  # the WAL fsync: the batch is durable past this line
            except BaseException as e:
                if w.in_transaction:
                    w.execute("ROLLBACK")
                if committing:
                    # After a failed commit (fsync error...) the on-disk state is unknown
                    # to us: refuse further writes until a remount re-reads it.
                    self._failed = e
                if isinstance(e, sqlite3.Error):
                    raise _sqlite_error(e, "apply") from e
                raise

    # -- lookups inside a write transaction --
    def _cid(self, w: sqlite3.Connection, coll: str, op: str) -> int:
        r = w.execute("SELECT cid FROM collections WHERE name = ?", (_u(coll),)).fetchone()
        if r is None:
            raise not_found(coll, op=op)
        return int(r[0])

    def _obj(self, w: sqlite3.Connection, coll: str, oid: ObjectId, op: str,
             create: bool = False) -> tuple[int, int]:
        """(object row id, size); creates the object when asked, else NotFound."""
        cid = self._cid(w, coll, op)
        r = w.execute("SELECT oid, size FROM objects WHERE cid=? AND nspace=? AND name=? AND snap=?",
                      (cid, *_key(oid))).fetchone()
        if r is not None:
            return int(r[0]), int(r[1])
        if not create:
            raise not_found(coll, oid, op)
        cur = w.execute("INSERT INTO objects(cid, nspace, name, snap, size, mtime, header)"
                        " VALUES (?, ?, ?, ?, 0, 0.0, x'')", (cid, *_key(oid)))
        assert cur.lastrowid is not None
        return cur.lastrowid, 0

    def _find(self, w: sqlite3.Connection, coll: str, oid: ObjectId, op: str) -> int | None:
        cid = self._cid(w, coll, op)
        r = w.execute("SELECT oid FROM objects WHERE cid=? AND nspace=? AND name=? AND snap=?",
                      (cid, *_key(oid))).fetchone()
        return None if r is None else int(r[0])

    # -- block helpers --
    def _extent(self, w: sqlite3.Connection, orow: int, blkno: int) -> tuple[int, int] | None:
        """(block id, reference count) mapped at blkno, if any."""
        r = w.execute("SELECT e.bid, s.refs FROM extents e LEFT JOIN shared s ON s.bid = e.bid"
                      " WHERE e.oid = ? AND e.blkno = ?", (orow, blkno)).fetchone()
        return None if r is None else (int(r[0]), int(r[1] or 1))

    def _load_block(self, w: sqlite3.Connection, bid: int, what: str) -> bytes:
        crc, data = w.execute("SELECT crc, data FROM blocks WHERE bid = ?", (bid,)).fetchone()
        # Verify before a read-modify-write: otherwise a new crc would launder bad bytes.
        if crc32c.crc32c(data) != crc:
            raise Corrupt(f"{what}: checksum mismatch in stored block {bid}")
        return bytes(data)

    def _store_block(self, w: sqlite3.Connection, orow: int, blkno: int,
                     ext: tuple[int, int] | None, data: Any) -> None:
        """Puts `data` as block blkno of the object, copying on write if it is shared."""
        crc = crc32c.crc32c(data)
        if ext is not None and ext[1] == 1:
            w.execute("UPDATE blocks SET crc = ?, data = ? WHERE bid = ?", (crc, data, ext[0]))
            return
        cur = w.execute("INSERT INTO blocks(crc, data) VALUES (?, ?)", (crc, data))
        if ext is None:
            w.execute("INSERT INTO extents VALUES (?, ?, ?)", (orow, blkno, cur.lastrowid))
        else:
            if ext[1] == 2:
                w.execute("DELETE FROM shared WHERE bid = ?", (ext[0],))
            else:
                w.execute("UPDATE shared SET refs = refs - 1 WHERE bid = ?", (ext[0],))
            w.execute("UPDATE extents SET bid = ? WHERE oid = ? AND blkno = ?",
                      (cur.lastrowid, orow, blkno))

    def _drop_extents(self, w: sqlite3.Connection, orow: int, lo: int = 0, hi: int | None = None) -> None:
        """Unmaps blocks lo..hi (inclusive; hi None = to the end), freeing unshared ones.

        `bid IN (...)` counts each block once: correct because one object never maps
        the same block twice (clones map it from different objects)."""
        rng = "oid = ? AND blkno >= ?" + ("" if hi is None else " AND blkno <= ?")
        args = (orow, lo) if hi is None else (orow, lo, hi)
        sel = f"SELECT bid FROM extents WHERE {rng}"
        w.execute(f"DELETE FROM blocks WHERE bid IN ({sel}) AND bid NOT IN (SELECT bid FROM shared)", args)
        # 2 -> 1 reference: the block becomes unshared; this must run before the decrement
        w.execute(f"DELETE FROM shared WHERE bid IN ({sel}) AND refs = 2", args)
        w.execute(f"UPDATE shared SET refs = refs - 1 WHERE bid IN ({sel}) AND refs > 2", args)
        w.execute(f"DELETE FROM extents WHERE {rng}", args)

    def _set_size(self, w: sqlite3.Connection, orow: int, size: int) -> None:
        w.execute("UPDATE objects SET size = ? WHERE oid = ?", (size, orow))

    # ---------------------------------------------------------------- ops
    def _op_create_collection(self, w: sqlite3.Connection, coll: str) -> None:
        if w.execute("SELECT 1 FROM collections WHERE name = ?", (_u(coll),)).fetchone():
            raise Exists(f"create_collection: collection {coll} already exists")
        w.execute("INSERT INTO collections(name) VALUES (?)", (_u(coll),))

    def _op_remove_collection(self, w: sqlite3.Connection, coll: str) -> None:
        cid = self._cid(w, coll, "remove_collection")
        for (orow,) in w.execute("SELECT oid FROM objects WHERE cid = ?", (cid,)).fetchall():
            self._remove_row(w, orow)
        w.execute("DELETE FROM cmeta WHERE cid = ?", (cid,))
        w.execute("DELETE FROM pglog WHERE cid = ?", (cid,))
        w.execute("DELETE FROM collections WHERE cid = ?", (cid,))

    def _op_touch(self, w: sqlite3.Connection, coll: str, oid: ObjectId) -> None:
        self._obj(w, coll, oid, "touch", create=True)

    def _op_write(self, w: sqlite3.Connection, coll: str, oid: ObjectId, offset: int, data: Any) -> None:
        orow, size = self._obj(w, coll, oid, "write", create=True)
        n = len(data)
        if n == 0:
            return  # like Ceph: a zero-length write creates the object, nothing more
        bs, end, mv = self._bs, offset + n, memoryview(data)
        first, last = offset // bs, (end - 1) // bs
        existing = {int(b): (int(bid), int(refs or 1)) for b, bid, refs in w.execute(
            "SELECT e.blkno, e.bid, s.refs FROM extents e LEFT JOIN shared s ON s.bid = e.bid"
            " WHERE e.oid = ? AND e.blkno BETWEEN ? AND ?", (orow, first, last))}
        for blkno in range(first, last + 1):
            bstart = blkno * bs
            s = max(offset, bstart) - bstart
            e = min(end, bstart + bs) - bstart
            piece = mv[bstart + s - offset:bstart + e - offset]
            ext = existing.get(blkno)
            stored_max = max(0, min(bs, size - bstart))  # a block never holds bytes past size
            if ext is None:
                block: Any = piece if s == 0 else bytes(s) + piece
            elif s == 0 and e >= stored_max:
                block = piece  # covers everything stored: no read needed
            else:
                old = bytearray(self._load_block(w, ext[0], f"write {oid} in {coll}"))
                if len(old) < s:
                    old.extend(bytes(s - len(old)))
                old[s:e] = piece
                block = old
            self._store_block(w, orow, blkno, ext, block)
        if end > size:
            self._set_size(w, orow, end)

    def _op_zero(self, w: sqlite3.Connection, coll: str, oid: ObjectId, offset: int, length: int) -> None:
        orow, size = self._obj(w, coll, oid, "zero", create=True)
        end = min(offset + length, size)
        if end <= offset:
            return
        bs = self._bs
        first, last = offset // bs, (end - 1) // bs
        # whole blocks (or whole stored tails) become holes; at most two edges need RMW
        lo = first if offset % bs == 0 else first + 1
        hi = last if (end % bs == 0 or end == size) else last - 1
        for blkno in sorted(b for b in {first, last} if not lo <= b <= hi):
            ext = self._extent(w, orow, blkno)
            if ext is None:
                continue
            bstart = blkno * bs
            s, e = max(offset, bstart) - bstart, min(end, bstart + bs) - bstart
            old = bytearray(self._load_block(w, ext[0], f"zero {oid} in {coll}"))
            if s >= len(old):
                continue
            e = min(e, len(old))
            old[s:e] = bytes(e - s)
            if old.count(0) == len(old):
                self._drop_extents(w, orow, blkno, blkno)
            else:
                self._store_block(w, orow, blkno, ext, old)
        if lo <= hi:
            self._drop_extents(w, orow, lo, hi)

    def _op_truncate(self, w: sqlite3.Connection, coll: str, oid: ObjectId, size: int) -> None:
        orow, old_size = self._obj(w, coll, oid, "truncate", create=True)
        if size < old_size:
            bs = self._bs
            self._drop_extents(w, orow, -(-size // bs))
            cut = size % bs
            if cut:
                ext = self._extent(w, orow, size // bs)
                if ext is not None:
                    old = self._load_block(w, ext[0], f"truncate {oid} in {coll}")
                    if len(old) > cut:
                        self._store_block(w, orow, size // bs, ext, old[:cut])
        if size != old_size:
            self._set_size(w, orow, size)

    def _remove_row(self, w: sqlite3.Connection, orow: int) -> None:
        self._drop_extents(w, orow)
        w.execute("DELETE FROM xattrs WHERE oid = ?", (orow,))
        w.execute("DELETE FROM omap WHERE oid = ?", (orow,))
        w.execute("DELETE FROM objects WHERE oid = ?", (orow,))

    def _op_remove(self, w: sqlite3.Connection, coll: str, oid: ObjectId) -> None:
        orow = self._find(w, coll, oid, "remove")
        if orow is not None:
            self._remove_row(w, orow)

    def _op_clone(self, w: sqlite3.Connection, coll: str, src: ObjectId, dst: ObjectId) -> None:
        srow, _ = self._obj(w, coll, src, "clone")
        drow = self._find(w, coll, dst, "clone")
        if drow is not None:
            self._remove_row(w, drow)
        cur = w.execute("INSERT INTO objects(cid, nspace, name, snap, size, mtime, header)"
                        " SELECT cid, ?, ?, ?, size, mtime, header FROM objects WHERE oid = ?",
                        (*_key(dst), srow))
        drow = cur.lastrowid
        # share the blocks: one more reference each, no data copied
        w.execute("INSERT INTO shared(bid, refs) SELECT bid, 2 FROM extents WHERE oid = ? AND true"
                  " ON CONFLICT(bid) DO UPDATE SET refs = refs + 1", (srow,))
        w.execute("INSERT INTO extents SELECT ?, blkno, bid FROM extents WHERE oid = ?", (drow, srow))
        w.execute("INSERT INTO xattrs SELECT ?, name, value FROM xattrs WHERE oid = ?", (drow, srow))
        w.execute("INSERT INTO omap SELECT ?, key, value FROM omap WHERE oid = ?", (drow, srow))

    def _op_set_mtime(self, w: sqlite3.Connection, coll: str, oid: ObjectId, mtime: float) -> None:
        orow, _ = self._obj(w, coll, oid, "set_mtime")
        w.execute("UPDATE objects SET mtime = ? WHERE oid = ?", (mtime, orow))

    def _op_setattrs(self, w: sqlite3.Connection, coll: str, oid: ObjectId, attrs: dict[str, bytes]) -> None:
        orow, _ = self._obj(w, coll, oid, "setattrs")
        w.executemany("INSERT OR REPLACE INTO xattrs VALUES (?, ?, ?)",
                      [(orow, _u(k), v) for k, v in attrs.items()])

    def _op_rmattr(self, w: sqlite3.Connection, coll: str, oid: ObjectId, name: str) -> None:
        orow, _ = self._obj(w, coll, oid, "rmattr")
        w.execute("DELETE FROM xattrs WHERE oid = ? AND name = ?", (orow, _u(name)))

    def _op_omap_setkeys(self, w: sqlite3.Connection, coll: str, oid: ObjectId, kv: dict[str, bytes]) -> None:
        orow, _ = self._obj(w, coll, oid, "omap_setkeys")
        w.executemany("INSERT OR REPLACE INTO omap VALUES (?, ?, ?)", [(orow, _u(k), v) for k, v in kv.items()])

    def _op_omap_rmkeys(self, w: sqlite3.Connection, coll: str, oid: ObjectId, keys: list[str]) -> None:
        orow, _ = self._obj(w, coll, oid, "omap_rmkeys")
        w.executemany("DELETE FROM omap WHERE oid = ? AND key = ?", [(orow, _u(k)) for k in keys])

    def _op_omap_rmkeyrange(self, w: sqlite3.Connection, coll: str, oid: ObjectId, first: str, last: str) -> None:
        orow, _ = self._obj(w, coll, oid, "omap_rmkeyrange")
        w.execute("DELETE FROM omap WHERE oid = ? AND key >= ? AND key < ?", (orow, _u(first), _u(last)))

    def _op_omap_clear(self, w: sqlite3.Connection, coll: str, oid: ObjectId) -> None:
        orow, _ = self._obj(w, coll, oid, "omap_clear")
        w.execute("DELETE FROM omap WHERE oid = ?", (orow,))
        w.execute("UPDATE objects SET header = x'' WHERE oid = ?", (orow,))

    def _op_omap_setheader(self, w: sqlite3.Connection, coll: str, oid: ObjectId, header: bytes) -> None:
        orow, _ = self._obj(w, coll, oid, "omap_setheader")
        w.execute("UPDATE objects SET header = ? WHERE oid = ?", (header, orow))

    def _op_set_meta(self, w: sqlite3.Connection, coll: str, key: str, value: bytes) -> None:
        cid = self._cid(w, coll, "set_meta")
        w.execute("INSERT OR REPLACE INTO cmeta VALUES (?, ?, ?)", (cid, _u(key), value))

    def _op_rm_meta(self, w: sqlite3.Connection, coll: str, key: str) -> None:
        cid = self._cid(w, coll, "rm_meta")
        w.execute("DELETE FROM cmeta WHERE cid = ? AND key = ?", (cid, _u(key)))

    def _op_log_append(self, w: sqlite3.Connection, coll: str, seq: int, entry: bytes) -> None:
        r = w.execute("SELECT cid, log_last FROM collections WHERE name = ?", (_u(coll),)).fetchone()
        if r is None:
            raise not_found(coll, op="log_append")
        cid, last = r
        if seq <= last:
            raise bad_argument(f"log seq {seq} in collection {coll} is not above the last seq {last}",
                               "log_append")
        w.execute("INSERT INTO pglog VALUES (?, ?, ?)", (cid, seq, entry))
        w.execute("UPDATE collections SET log_last = ? WHERE cid = ?", (seq, cid))

    def _op_log_trim(self, w: sqlite3.Connection, coll: str, upto_seq: int) -> None:
        cid = self._cid(w, coll, "log_trim")
        w.execute("DELETE FROM pglog WHERE cid = ? AND seq <= ?", (cid, upto_seq))

    # ---------------------------------------------------------------- reads
    def _rconn(self) -> sqlite3.Connection:
        loc = self._local
        c = getattr(loc, "conn", None)
        if c is not None and loc.gen == self._gen:
            return c
        if self._w is None:
            raise Shutdown(f"object store {self.path} is not mounted")
        c = self._connect()
        c.execute("PRAGMA query_only=1")  # a reader never writes, by construction
        # Readers are several (event loop + reader pool); the OS page cache already holds
        # hot blocks, so a small private cache each keeps the OSD's memory bounded.
        c.execute(f"PRAGMA cache_size=-{min(self._cache_kib, READER_CACHE_KIB)}")
        with self._rconns_lock:
            self._rconns.append(c)
        loc.conn, loc.gen = c, self._gen
        return c

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every statement inside sees the same committed state."""
        c = self._rconn()
        c.execute("BEGIN")
        try:
            yield c
        except sqlite3.Error as e:
            raise _sqlite_error(e, "read") from e
        finally:
            if c.in_transaction:
                c.execute("COMMIT")

    def _row(self, c: sqlite3.Connection, coll: str, oid: ObjectId, op: str) -> tuple[int, int, float, bytes]:
        check_coll(coll)
        check_oid(oid)
        r = c.execute(_OBJ_BY_NAME, (_u(coll), *_key(oid))).fetchone()
        if r is None:
            if not c.execute("SELECT 1 FROM collections WHERE name = ?", (_u(coll),)).fetchone():
                raise not_found(coll, op=op)
            raise not_found(coll, oid, op)
        return int(r[0]), int(r[1]), float(r[2]), bytes(r[3])

    def _cid_r(self, c: sqlite3.Connection, coll: str, op: str) -> int:
        r = c.execute("SELECT cid FROM collections WHERE name = ?", (_u(check_coll(coll)),)).fetchone()
        if r is None:
            raise not_found(coll, op=op)
        return int(r[0])

    def list_collections(self) -> list[str]:
        with self._snapshot() as c:
            return [bytes(n).decode() for (n,) in c.execute("SELECT name FROM collections ORDER BY name")]

    def collection_exists(self, coll: str) -> bool:
        with self._snapshot() as c:
            return c.execute("SELECT 1 FROM collections WHERE name = ?", (_u(check_coll(coll)),)).fetchone() \
                is not None

    def exists(self, coll: str, oid: ObjectId) -> bool:
        check_coll(coll)
        check_oid(oid)
        with self._snapshot() as c:
            return c.execute(_OBJ_BY_NAME, (_u(coll), *_key(oid))).fetchone() is not None

    def stat(self, coll: str, oid: ObjectId) -> ObjectStat:
        with self._snapshot() as c:
            _, size, mtime, _ = self._row(c, coll, oid, "stat")
            return ObjectStat(size, mtime)

    def read(self, coll: str, oid: ObjectId, offset: int, length: int) -> bytes:
        check_read_args(coll, oid, offset, length)
        bs = self._bs
        hi = (offset + length - 1) // bs if length else MAX_OBJECT_SIZE // bs
        # One statement (its own read transaction, so one consistent state) instead of
        # BEGIN + object lookup + block query + COMMIT: small reads are Python-bound.
        c = self._rconn()
        try:
            rows = c.execute(_READ, (offset // bs, hi, _u(coll), *_key(oid))).fetchall()
        except sqlite3.Error as e:
            raise _sqlite_error(e, "read") from e
        if not rows:
            with self._snapshot() as c2:
                if not c2.execute("SELECT 1 FROM collections WHERE name = ?", (_u(coll),)).fetchone():
                    raise not_found(coll, op="read")
            raise not_found(coll, oid, "read")
        start, end = read_range(int(rows[0][0]), offset, length)
        if start == end:
            return b""
        blocks = [(b, crc, data) for _, b, crc, data in rows if b is not None]
        return b"".join(self._pieces(coll, oid, blocks, start, end))

    def _data(self, c: sqlite3.Connection, coll: str, oid: ObjectId, orow: int,
              start: int, end: int) -> Iterator[bytes | memoryview]:
        blocks = c.execute("SELECT e.blkno, b.crc, b.data FROM extents e JOIN blocks b ON b.bid = e.bid"
                           " WHERE e.oid = ? AND e.blkno BETWEEN ? AND ?",
                           (orow, start // self._bs, (end - 1) // self._bs))
        return self._pieces(coll, oid, blocks, start, end)

    def _pieces(self, coll: str, oid: ObjectId, blocks: Iterable[tuple[int, int, bytes]],
                start: int, end: int) -> Iterator[bytes | memoryview]:
        """Pieces covering [start, end) from blocks in ascending order, holes as zeros,
        every block's crc verified."""
        bs = self._bs
        pos = start
        for blkno, crc, data in blocks:
            if crc32c.crc32c(data) != crc:
                raise Corrupt(f"read: object {oid} in collection {coll}: block {blkno} "
                              f"(bytes {blkno * bs}~{bs}) fails its crc32c check")
            bstart = blkno * bs
            a, b = max(start, bstart), min(end, bstart + len(data))
            if a > pos:
                yield from zero_chunks(a - pos)
            if b > a:
                yield memoryview(data)[a - bstart:b - bstart]
                pos = b
        if end > pos:
            yield from zero_chunks(end - pos)

    def getattr(self, coll: str, oid: ObjectId, name: str) -> bytes:
        check_str("xattr name", name)
        with self._snapshot() as c:
            orow = self._row(c, coll, oid, "getattr")[0]
            r = c.execute("SELECT value FROM xattrs WHERE oid = ? AND name = ?", (orow, _u(name))).fetchone()
            if r is None:
                raise NoData(f"getattr: object {oid} in collection {coll} has no xattr {name!r}")
            return bytes(r[0])

    def getattrs(self, coll: str, oid: ObjectId) -> dict[str, bytes]:
        with self._snapshot() as c:
            orow = self._row(c, coll, oid, "getattrs")[0]
            return {bytes(k).decode(): bytes(v) for k, v in
                    c.execute("SELECT name, value FROM xattrs WHERE oid = ? ORDER BY name", (orow,))}

    def omap_get_header(self, coll: str, oid: ObjectId) -> bytes:
        with self._snapshot() as c:
            return self._row(c, coll, oid, "omap_get_header")[3]

    def omap_get_vals(
        self, coll: str, oid: ObjectId, start_after: str = "", filter_prefix: str = "",
        max_return: int = ALL,
    ) -> tuple[list[tuple[str, bytes]], bool]:
        check_paging(start_after, filter_prefix, max_return)
        sql = "SELECT key, value FROM omap WHERE oid = ? AND key > ?"
        prefix = _u(filter_prefix)
        args: list[Any] = [_u(start_after)]
        if prefix:
            sql += " AND key >= ?"
            args.append(prefix)
            upper = prefix_successor(prefix)
            if upper is not None:
                sql += " AND key < ?"
                args.append(upper)
        sql += " ORDER BY key LIMIT ?"
        with self._snapshot() as c:
            orow = self._row(c, coll, oid, "omap_get_vals")[0]
            rows = c.execute(sql, (orow, *args, max_return + 1)).fetchall()
        items = [(bytes(k).decode(), bytes(v)) for k, v in rows[:max_return]]
        return items, len(rows) > max_return

    def omap_get_keys(
        self, coll: str, oid: ObjectId, start_after: str = "", filter_prefix: str = "",
        max_return: int = ALL,
    ) -> tuple[list[str], bool]:
        items, more = self.omap_get_vals(coll, oid, start_after, filter_prefix, max_return)
        return [k for k, _ in items], more

    def omap_get_vals_by_keys(self, coll: str, oid: ObjectId, keys: Iterable[str]) -> dict[str, bytes]:
        wanted = sorted({check_str("omap key", k) for k in keys})
        out: dict[str, bytes] = {}
        with self._snapshot() as c:
            orow = self._row(c, coll, oid, "omap_get_vals_by_keys")[0]
            for k in wanted:
                r = c.execute("SELECT value FROM omap WHERE oid = ? AND key = ?", (orow, _u(k))).fetchone()
                if r is not None:
                    out[k] = bytes(r[0])
        return out

    def list_objects(
        self, coll: str, start_after: ObjectId | None = None, max_return: int = ALL,
    ) -> tuple[list[ObjectId], bool]:
        check_int("max_return", max_return)
        sql = "SELECT nspace, name, snap FROM objects WHERE cid = ?"
        args: list[Any] = []
        if start_after is not None:
            sql += " AND (nspace, name, snap) > (?, ?, ?)"
            args.extend(_key(check_oid(start_after)))
        sql += " ORDER BY nspace, name, snap LIMIT ?"
        with self._snapshot() as c:
            cid = self._cid_r(c, coll, "list_objects")
            rows = c.execute(sql, (cid, *args, max_return + 1)).fetchall()
        oids = [ObjectId(bytes(n).decode(), bytes(ns).decode(), int(s)) for ns, n, s in rows[:max_return]]
        return oids, len(rows) > max_return

    def get_meta(self, coll: str, key: str) -> bytes | None:
        check_str("meta key", key)
        with self._snapshot() as c:
            cid = self._cid_r(c, coll, "get_meta")
            r = c.execute("SELECT value FROM cmeta WHERE cid = ? AND key = ?", (cid, _u(key))).fetchone()
            return None if r is None else bytes(r[0])

    def get_all_meta(self, coll: str) -> dict[str, bytes]:
        with self._snapshot() as c:
            cid = self._cid_r(c, coll, "get_all_meta")
            return {bytes(k).decode(): bytes(v) for k, v in
                    c.execute("SELECT key, value FROM cmeta WHERE cid = ? ORDER BY key", (cid,))}

    def log_read(self, coll: str, after_seq: int = 0, max_entries: int = ALL) -> list[tuple[int, bytes]]:
        check_int("after_seq", after_seq)
        check_int("max_entries", max_entries)
        with self._snapshot() as c:
            cid = self._cid_r(c, coll, "log_read")
            return [(int(s), bytes(e)) for s, e in c.execute(
                "SELECT seq, entry FROM pglog WHERE cid = ? AND seq > ? ORDER BY seq LIMIT ?",
                (cid, after_seq, max_entries))]

    def statfs(self) -> tuple[int, int, int]:
        with self._snapshot() as c:
            page = c.execute("PRAGMA page_size").fetchone()[0]
            pages = c.execute("PRAGMA page_count").fetchone()[0]
            free = c.execute("PRAGMA freelist_count").fetchone()[0]
        st = os.statvfs(self.path)
        total = st.f_blocks * st.f_frsize
        try:
            wal = os.path.getsize(self.db_path + "-wal")
        except OSError:
            wal = 0
        used = (pages - free) * page + wal
        return total, used, st.f_bavail * st.f_frsize + free * page

    def checksum(self, coll: str, oid: ObjectId) -> int:
        with self._snapshot() as c:
            orow, size, _, header = self._row(c, coll, oid, "checksum")
            xattrs = {bytes(k).decode(): bytes(v) for k, v in
                      c.execute("SELECT name, value FROM xattrs WHERE oid = ?", (orow,))}
            omap = {bytes(k).decode(): bytes(v) for k, v in
                    c.execute("SELECT key, value FROM omap WHERE oid = ?", (orow,))}
            data = list(self._data(c, coll, oid, orow, 0, size)) if size else []
        return object_checksum(size, data, xattrs, omap, header)

    # ---------------------------------------------------------------- maintenance
    def fsck(self) -> list[str]:
        """Deep check of the whole store: every block's crc, reference counts, no block
        past its object's size, no orphans. Returns the problems found (empty = clean)."""
        problems: list[str] = []
        with self._snapshot() as c:
            for (res,) in c.execute("PRAGMA integrity_check"):
                if res != "ok":
                    problems.append(f"sqlite: {res}")
            mapped = dict(c.execute("SELECT bid, count(*) FROM extents GROUP BY bid").fetchall())
            shared = dict(c.execute("SELECT bid, refs FROM shared").fetchall())
            for bid, crc, data in c.execute("SELECT bid, crc, data FROM blocks"):
                if crc32c.crc32c(data) != crc:
                    problems.append(f"block {bid}: crc mismatch")
                if len(data) > self._bs:
                    problems.append(f"block {bid}: {len(data)} bytes exceed the block size {self._bs}")
                refs, n = shared.pop(bid, 1), mapped.pop(bid, 0)
                if refs != n:
                    problems.append(f"block {bid}: refs {refs} but mapped by {n} extents")
            for bid in mapped:
                problems.append(f"extent points at missing block {bid}")
            for bid in shared:
                problems.append(f"reference count of missing block {bid}")
            for orow, blkno, size, ln in c.execute(
                    "SELECT e.oid, e.blkno, o.size, length(b.data) FROM extents e"
                    " JOIN objects o ON o.oid = e.oid JOIN blocks b ON b.bid = e.bid"):
                if blkno * self._bs + ln > size:
                    problems.append(f"object row {orow}: block {blkno} extends past size {size}")
            for (orow,) in c.execute("SELECT DISTINCT oid FROM extents WHERE oid NOT IN (SELECT oid FROM objects)"):
                problems.append(f"extents of missing object row {orow}")
        return problems


def _sqlite_error(e: sqlite3.Error, op: str) -> ShoalError:
    msg = str(e)
    if "full" in msg:
        return ShoalError(f"{op}: object store is full: {msg}", errno.ENOSPC)
    if isinstance(e, sqlite3.DatabaseError) and "malformed" in msg:
        return Corrupt(f"{op}: object store database is damaged: {msg}")
    return ShoalError(f"{op}: object store error: {msg}", errno.EIO)

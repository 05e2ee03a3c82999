"""What only the durable store has: checksummed blocks on disk, block sharing, the
on-disk format guard, the mount lock, WAL readers."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from shoal.errors import Busy, Corrupt, NotSupported
from shoal.osd.store.conformance import dump_store
from shoal.osd.store.sqlite_store import DB_NAME, SqliteStore
from shoal.osd.store.transaction import ObjectId, Transaction

C = "1.0"
A = ObjectId("a")
MiB = 1 << 20


def _store(tmp_path: Path, **kw: object) -> SqliteStore:
    s = SqliteStore(str(tmp_path / "osd"), **kw)  # type: ignore[arg-type]
    s.mount()
    t = Transaction()
    t.create_collection(C)
    s.apply([t])
    return s


def _write(s: SqliteStore, oid: ObjectId, off: int, data: bytes) -> None:
    t = Transaction()
    t.write(C, oid, off, data)
    s.apply([t])


def _raw(s: SqliteStore) -> sqlite3.Connection:
    return sqlite3.connect(s.db_path, isolation_level=None)


def _blocks(s: SqliteStore) -> int:
    with _raw(s) as c:
        return c.execute("SELECT count(*) FROM blocks").fetchone()[0]


def _wal_growth(s: SqliteStore, fn) -> int:  # type: ignore[no-untyped-def]
    """WAL bytes appended by fn(): what one commit wrote."""
    c = _raw(s)
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    before = os.path.getsize(s.db_path + "-wal")
    fn()
    return os.path.getsize(s.db_path + "-wal") - before


def test_store_sqlite_detects_a_corrupt_block(tmp_path: Path) -> None:
    s = _store(tmp_path, block_size=65536)
    data = os.urandom(200 * 1024)
    _write(s, A, 0, data)
    with _raw(s) as c:  # flip one byte of the second block, leaving its crc as it was
        bid, blob = c.execute("SELECT b.bid, b.data FROM extents e JOIN blocks b ON b.bid = e.bid"
                              " WHERE e.blkno = 1").fetchone()
        bad = bytearray(blob)
        bad[100] ^= 0x40
        c.execute("UPDATE blocks SET data = ? WHERE bid = ?", (bytes(bad), bid))
    assert s.read(C, A, 0, 65536) == data[:65536]  # untouched blocks still read
    with pytest.raises(Corrupt, match=r"object a@head in collection 1\.0: block 1"):
        s.read(C, A, 60000, 10000)
    with pytest.raises(Corrupt):
        s.checksum(C, A)
    with pytest.raises(Corrupt):  # a partial overwrite must not launder the bad block
        _write(s, A, 70000, b"x")
    _write(s, A, 65536, bytes(65536))  # a whole-block overwrite repairs it
    assert s.read(C, A, 0, 0) == data[:65536] + bytes(65536) + data[131072:]
    assert s.fsck() == []
    s.umount()


def test_store_sqlite_fsck_reports_problems(tmp_path: Path) -> None:
    s = _store(tmp_path)
    _write(s, A, 0, b"x" * 100000)
    with _raw(s) as c:
        c.execute("INSERT INTO shared VALUES ((SELECT min(bid) FROM blocks), 5)")
        c.execute("UPDATE blocks SET crc = crc + 1 WHERE bid = (SELECT max(bid) FROM blocks)")
    problems = s.fsck()
    assert any("refs 5" in p for p in problems) and any("crc mismatch" in p for p in problems)
    s.umount()


def test_store_sqlite_refuses_unknown_format_versions(tmp_path: Path) -> None:
    s = _store(tmp_path)
    s.umount()
    with _raw(s) as c:
        c.execute("UPDATE store_meta SET value = 99 WHERE key = 'format_version'")
    with pytest.raises(NotSupported, match="format version 99"):
        s.mount()
    with _raw(s) as c:
        c.execute("UPDATE store_meta SET value = 1 WHERE key = 'format_version'")
        c.execute("UPDATE store_meta SET value = 'other' WHERE key = 'magic'")
    with pytest.raises(Corrupt, match="not a Shoal object store"):
        s.mount()


def test_store_sqlite_refuses_foreign_files(tmp_path: Path) -> None:
    d = tmp_path / "garbage"
    d.mkdir()
    (d / DB_NAME).write_bytes(b"this is not a database at all" * 200)
    with pytest.raises(Corrupt):
        SqliteStore(str(d)).mount()
    d2 = tmp_path / "other"
    d2.mkdir()
    with sqlite3.connect(d2 / DB_NAME) as c:
        c.execute("CREATE TABLE t(x)")
    with pytest.raises(Corrupt, match="not a Shoal object store"):
        SqliteStore(str(d2)).mount()


def test_store_sqlite_one_mount_at_a_time(tmp_path: Path) -> None:
    s = _store(tmp_path)
    other = SqliteStore(s.path)
    with pytest.raises(Busy, match="mounted by another"):
        other.mount()
    s.umount()
    other.mount()
    assert other.list_collections() == [C]
    other.umount()


def test_store_sqlite_small_overwrite_does_not_rewrite_the_object(tmp_path: Path) -> None:
    s = _store(tmp_path)
    _write(s, A, 0, os.urandom(4 * MiB))
    grown = _wal_growth(s, lambda: _write(s, A, 2 * MiB + 100, b"y" * 4096))
    # one block plus a few b-tree pages, not 4 MiB
    assert grown < s.block_size + 128 * 1024, grown
    assert s.read(C, A, 2 * MiB + 100, 4096) == b"y" * 4096
    s.umount()


def test_store_sqlite_clones_share_blocks(tmp_path: Path) -> None:
    s = _store(tmp_path)
    data = os.urandom(4 * MiB)
    _write(s, A, 0, data)
    n = 4 * MiB // s.block_size
    assert _blocks(s) == n
    snap = ObjectId("a", snap=1)
    t = Transaction()
    t.clone(C, A, snap)
    grown = _wal_growth(s, lambda: s.apply([t]))
    assert _blocks(s) == n and grown < 256 * 1024, grown
    _write(s, A, 4096, b"z" * 4096)  # copy-on-write of one block
    assert _blocks(s) == n + 1
    assert s.read(C, snap, 0, 0) == data
    assert s.read(C, A, 0, 0) == data[:4096] + b"z" * 4096 + data[8192:]
    t = Transaction()
    t.remove(C, A)
    s.apply([t])
    assert _blocks(s) == n and s.read(C, snap, 0, 0) == data
    assert s.fsck() == []
    s.umount()


def test_store_sqlite_reads_do_not_wait_for_a_writer(tmp_path: Path) -> None:
    s = _store(tmp_path)
    _write(s, A, 0, b"committed")
    w = _raw(s)
    w.execute("BEGIN IMMEDIATE")  # another writer holds the write lock...
    w.execute("UPDATE objects SET size = 1")
    t0 = time.monotonic()
    assert s.read(C, A, 0, 0) == b"committed"  # ...readers neither wait nor see its change
    assert time.monotonic() - t0 < 1.0
    w.execute("ROLLBACK")
    w.close()
    s.umount()


def test_store_sqlite_settings_and_persistence(tmp_path: Path) -> None:
    s = _store(tmp_path, block_size=4096)
    assert s._w is not None
    assert s._w.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert s._w.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    _write(s, A, 0, b"q" * 10000)
    before = dump_store(s)
    s.umount()
    again = SqliteStore(s.path)  # default block size asked; the stored one wins
    again.mount()
    assert again.block_size == 4096 and dump_store(again) == before
    again.umount()


def test_store_sqlite_reader_threads_and_remount(tmp_path: Path) -> None:
    s = _store(tmp_path)
    _write(s, A, 0, b"abc")
    out: list[bytes] = []
    threads = [threading.Thread(target=lambda: out.append(s.read(C, A, 0, 0))) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert out == [b"abc"] * 8
    s.umount()
    s.mount()  # this thread's old reader connection was closed: a new one is made
    assert s.read(C, A, 0, 0) == b"abc"
    total, used, avail = s.statfs()
    assert 0 < used < total and avail < total
    s.umount()

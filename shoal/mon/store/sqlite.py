from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Mapping

from shoal.mon.store.base import MonStore

FORMAT_VERSION = b"1"


class SqliteMonStore(MonStore):
    """One table in a WAL-mode SQLite file; every commit is one durable transaction."""

    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")
        version = self.get("store_format")
        if version is None:
            self.commit({"store_format": FORMAT_VERSION})
        elif version != FORMAT_VERSION:
            raise RuntimeError(f"monitor store {path}: unsupported format {version!r}")

    def get(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def commit(self, puts: Mapping[str, bytes], deletes: tuple[str, ...] = ()) -> None:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("DELETE FROM kv WHERE k = ?", [(k,) for k in deletes])
            self._db.executemany("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)", list(puts.items()))

    def items(self, prefix: str = "") -> Iterator[tuple[str, bytes]]:
        rows = self._db.execute("SELECT k, v FROM kv WHERE k >= ? ORDER BY k", (prefix,))
        for key, value in rows:
            if not key.startswith(prefix):
                break
            yield key, bytes(value)

    def close(self) -> None:
        self._db.close()

"""The ObjectStore interface the OSD programs against.

A store holds collections (one per PG, named like "2.1f"). A collection holds objects
(byte data, xattrs, an omap of sorted keys plus a header, an mtime), plus per-collection
metadata (PG info) and an ordered log (PG log). All mutations go through `apply()` of
`Transaction`s; reads see committed state only.

Semantics shared by every implementation (`conformance.check_object_store` checks them):

* touch, write, zero and truncate create a missing object; setattrs, rmattr, the omap
  ops, set_mtime and a clone's source need the object to exist (NotFound otherwise);
  remove of a missing object is a no-op; rmattr / omap_rmkeys of missing names too.
* Every op needs its collection to exist (NotFound); create_collection of an existing
  one raises Exists; a log seq not above the collection's last appended seq raises
  InvalidArgument. An error anywhere in an `apply()` batch leaves the store unchanged.
* mtime changes only through set_mtime (new objects start at 0.0), so that replicas
  that apply the same transaction at different times agree.
* Orders: omap keys, xattr names and object ids sort by the bytewise UTF-8 order of
  their strings; objects list by (nspace, name, snap).
"""

from __future__ import annotations

import struct
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass

import crc32c

from shoal.errors import InvalidArgument, NotFound
from shoal.osd.store.transaction import (
    HEAD,
    MAX_OBJECT_SIZE,
    ObjectId,
    Transaction,
    check_coll,
    check_int,
    check_oid,
    check_str,
)

__all__ = [
    "HEAD", "MAX_OBJECT_SIZE", "ObjectId", "ObjectStat", "ObjectStore", "Transaction",
    "object_checksum", "prefix_successor",
]

ALL = 1 << 30  # default max_return / max_entries: "everything"


@dataclass
class ObjectStat:
    size: int
    mtime: float


class ObjectStore(ABC):
    """One interface, a durable backend (SqliteStore) and an in-memory twin (MemoryStore)."""

    # -- lifecycle --
    @abstractmethod
    def mount(self) -> None:
        """Opens (creating if missing) the store."""

    @abstractmethod
    def umount(self) -> None:
        """Flushes and closes; the store may be mounted again."""

    # -- writes --
    @abstractmethod
    def apply(self, txns: list[Transaction]) -> None:
        """Applies every transaction atomically and durably (one commit for the batch).

        Returns only once the batch is durable. Thread-safe. On error nothing of the
        batch is applied and the error (NotFound, Exists, InvalidArgument...) propagates.
        """

    # -- reads: thread-safe, concurrent with apply(), see committed state only --
    @abstractmethod
    def list_collections(self) -> list[str]: ...

    @abstractmethod
    def collection_exists(self, coll: str) -> bool: ...

    @abstractmethod
    def exists(self, coll: str, oid: ObjectId) -> bool: ...

    @abstractmethod
    def stat(self, coll: str, oid: ObjectId) -> ObjectStat:
        """Raises NotFound if the object (or collection) is missing."""

    @abstractmethod
    def read(self, coll: str, oid: ObjectId, offset: int, length: int) -> bytes:
        """Bytes [offset, offset+length), short at the end; length 0 reads to the end.

        Verifies each stored block's crc32c and raises Corrupt naming the object if one
        does not match.
        """

    @abstractmethod
    def getattr(self, coll: str, oid: ObjectId, name: str) -> bytes:
        """NotFound if the object is missing, NoData if the xattr is."""

    @abstractmethod
    def getattrs(self, coll: str, oid: ObjectId) -> dict[str, bytes]: ...

    @abstractmethod
    def omap_get_header(self, coll: str, oid: ObjectId) -> bytes: ...

    @abstractmethod
    def omap_get_vals(
        self, coll: str, oid: ObjectId, start_after: str = "", filter_prefix: str = "",
        max_return: int = ALL,
    ) -> tuple[list[tuple[str, bytes]], bool]:
        """Keys > start_after that start with filter_prefix, sorted; `more` is True when
        further matching keys exist beyond the ones returned."""

    @abstractmethod
    def omap_get_keys(
        self, coll: str, oid: ObjectId, start_after: str = "", filter_prefix: str = "",
        max_return: int = ALL,
    ) -> tuple[list[str], bool]: ...

    @abstractmethod
    def omap_get_vals_by_keys(self, coll: str, oid: ObjectId, keys: Iterable[str]) -> dict[str, bytes]:
        """The values of those keys that exist."""

    @abstractmethod
    def list_objects(
        self, coll: str, start_after: ObjectId | None = None, max_return: int = ALL,
    ) -> tuple[list[ObjectId], bool]:
        """Objects after start_after in (nspace, name, snap) order; (ids, more)."""

    @abstractmethod
    def get_meta(self, coll: str, key: str) -> bytes | None: ...

    @abstractmethod
    def get_all_meta(self, coll: str) -> dict[str, bytes]: ...

    @abstractmethod
    def log_read(self, coll: str, after_seq: int = 0, max_entries: int = ALL) -> list[tuple[int, bytes]]:
        """Log entries with seq > after_seq, ascending."""

    @abstractmethod
    def statfs(self) -> tuple[int, int, int]:
        """(total, used, avail) bytes."""

    @abstractmethod
    def checksum(self, coll: str, oid: ObjectId) -> int:
        """`object_checksum` of the object: equal on replicas holding the same object."""

    # -- conveniences built on the interface --
    def apply_one(self, txn: Transaction) -> None:
        self.apply([txn])

    def __enter__(self) -> ObjectStore:
        self.mount()
        return self

    def __exit__(self, *exc: object) -> None:
        self.umount()


# ---- helpers shared by the implementations ----

def check_read_args(coll: str, oid: ObjectId, offset: int, length: int) -> None:
    check_coll(coll)
    check_oid(oid)
    check_int("offset", offset)
    check_int("length", length)


def check_paging(start_after: str, filter_prefix: str, max_return: int) -> None:
    check_str("start_after", start_after)
    check_str("filter_prefix", filter_prefix)
    check_int("max_return", max_return)


def read_range(size: int, offset: int, length: int) -> tuple[int, int]:
    """The [start, end) actually readable from an object of `size` bytes."""
    end = size if length == 0 else min(size, offset + length)
    return offset, max(offset, end)


def prefix_successor(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with prefix, if any."""
    p = prefix.rstrip(b"\xff")
    if not p:
        return None
    return p[:-1] + bytes([p[-1] + 1])


def not_found(coll: str, oid: ObjectId | None = None, op: str = "") -> NotFound:
    where = f"object {oid} in collection {coll}" if oid is not None else f"collection {coll}"
    return NotFound(f"{op + ': ' if op else ''}{where} does not exist")


def bad_argument(msg: str, op: str = "") -> InvalidArgument:
    return InvalidArgument(f"{op + ': ' if op else ''}{msg}")


_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


def object_checksum(
    size: int,
    data_chunks: Iterable[bytes | memoryview],
    xattrs: dict[str, bytes],
    omap: dict[str, bytes],
    header: bytes,
) -> int:
    """crc32c over a canonical encoding of an object, identical for every store.

    Encoding: size (u64 LE), the `size` data bytes (holes as zeros), then xattrs and
    omap as count (u32) + sorted (u32 length + UTF-8 key, u32 length + value), then the
    omap header as u32 length + bytes. mtime is not included.
    """
    crc = crc32c.crc32c(b"shoal-object-v1")
    crc = crc32c.crc32c(_U64.pack(size), crc)
    seen = 0
    for chunk in data_chunks:
        crc = crc32c.crc32c(chunk, crc)
        seen += len(chunk)
    assert seen == size, f"checksum saw {seen} data bytes, object has {size}"
    for kv in (xattrs, omap):
        crc = crc32c.crc32c(_U32.pack(len(kv)), crc)
        for k in sorted(kv):
            kb = k.encode("utf-8")
            v = kv[k]
            crc = crc32c.crc32c(_U32.pack(len(kb)) + kb + _U32.pack(len(v)), crc)
            crc = crc32c.crc32c(v, crc)
    crc = crc32c.crc32c(_U32.pack(len(header)) + header, crc)
    return crc


def zero_chunks(n: int, chunk: int = 1 << 16) -> Iterable[bytes]:
    """n zero bytes in bounded pieces (for checksumming holes without allocating them)."""
    z = bytes(min(n, chunk))
    while n > 0:
        step = min(n, chunk)
        yield z if step == len(z) else z[:step]
        n -= step

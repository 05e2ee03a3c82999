"""python-rados compound operations: `WriteOp`/`ReadOp` (and their `...Ctx` context managers).

A WriteOp collects RADOS ops client-side; `Ioctx.operate_write_op` sends them as one op
vector, which the OSD applies all-or-nothing. After an operate the op is empty again
(librados moves the ops into the request), so one WriteOp can be reused.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from shoal.compat.rados_errors import as_text, require_bytes, require_uint
from shoal.wire.osd_op import FLAG_FAILOK

# -- librados constants (values of librados.h) --------------------------------------------------
LIBRADOS_OP_FLAG_EXCL = 0x1
LIBRADOS_OP_FLAG_FAILOK = 0x2
LIBRADOS_OP_FLAG_FADVISE_RANDOM = 0x4
LIBRADOS_OP_FLAG_FADVISE_SEQUENTIAL = 0x8
LIBRADOS_OP_FLAG_FADVISE_WILLNEED = 0x10
LIBRADOS_OP_FLAG_FADVISE_DONTNEED = 0x20
LIBRADOS_OP_FLAG_FADVISE_NOCACHE = 0x40
LIBRADOS_OP_FLAG_FADVISE_FUA = 0x80

LIBRADOS_CMPXATTR_OP_EQ = 1
LIBRADOS_CMPXATTR_OP_NE = 2
LIBRADOS_CMPXATTR_OP_GT = 3
LIBRADOS_CMPXATTR_OP_GTE = 4
LIBRADOS_CMPXATTR_OP_LT = 5
LIBRADOS_CMPXATTR_OP_LTE = 6

LIBRADOS_OPERATION_NOFLAG = 0
LIBRADOS_OPERATION_BALANCE_READS = 1
LIBRADOS_OPERATION_LOCALIZE_READS = 2
LIBRADOS_OPERATION_ORDER_READS_WRITES = 4
LIBRADOS_OPERATION_IGNORE_CACHE = 8
LIBRADOS_OPERATION_SKIPRWLOCKS = 16
LIBRADOS_OPERATION_IGNORE_OVERLAY = 32
LIBRADOS_OPERATION_FULL_TRY = 64
LIBRADOS_OPERATION_FULL_FORCE = 128
LIBRADOS_OPERATION_IGNORE_REDIRECT = 256
LIBRADOS_OPERATION_ORDERSNAP = 512

LIBRADOS_CREATE_EXCLUSIVE = 1
LIBRADOS_CREATE_IDEMPOTENT = 0

LIBRADOS_SNAP_HEAD = (1 << 64) - 2  # CEPH_NOSNAP
LIBRADOS_SNAP_DIR = (1 << 64) - 1
LIBRADOS_ALL_NSPACES = "\x01"


@dataclass
class PendingOp:
    """One op of a compound operation, before it goes on the wire.

    `name` is a wire op name (shoal/osd/ops.py), or one of the client-side pseudo ops:
    `rm_range` (removes omap keys in [begin, end), resolved by a read before sending) and
    `unsupported` (fails the whole operation with `err`).
    """

    name: str
    payload: bytes | None = None
    args: dict[str, Any] = field(default_factory=dict)
    flags: int = 0
    result: OmapIterator | None = None
    err: int = 0


class OmapIterator:
    """Iterates the (key, value) pairs an omap read op returned, once it has been operated.

    Before `operate_read_op` ran it yields nothing, as python-rados' iterator does.
    """

    def __init__(self, ioctx: Any = None) -> None:
        self.ioctx = ioctx
        self._items: list[tuple[str, bytes | None]] = []
        self._pos = 0

    def _fill(self, items: list[tuple[str, bytes | None]]) -> None:
        self._items = items
        self._pos = 0

    def __iter__(self) -> Iterator[tuple[str, bytes | None]]:
        return self

    def __next__(self) -> tuple[str, bytes | None]:
        if self._pos >= len(self._items):
            raise StopIteration
        item = self._items[self._pos]
        self._pos += 1
        return item


class _Op:
    """Shared by WriteOp and ReadOp: the op list and `set_flags`."""

    def __init__(self) -> None:
        self._ops: list[PendingOp] = []

    def create(self) -> _Op:
        self._ops = []
        return self

    def release(self) -> None:
        self._ops = []

    def _add(self, op: PendingOp) -> PendingOp:
        self._ops.append(op)
        return op

    def _take(self) -> list[PendingOp]:
        ops, self._ops = self._ops, []
        return ops

    def set_flags(self, flags: int = LIBRADOS_OPERATION_NOFLAG) -> None:
        """Flags of the last op added; only FAILOK changes what the OSD does."""
        if isinstance(flags, bool) or not isinstance(flags, int):
            raise TypeError("flags must be int")
        if self._ops and flags & LIBRADOS_OP_FLAG_FAILOK:
            self._ops[-1].flags |= FLAG_FAILOK

    def cmpext(self, cmp_buf: bytes, offset: int = 0) -> None:
        # The OSD has no compare-extent op yet: the operation fails as a whole, unapplied.
        require_bytes(cmp_buf, "cmp_buf")
        require_uint(offset, "offset")
        self._add(PendingOp("unsupported", err=errno.EOPNOTSUPP))

    def __enter__(self) -> _Op:
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.release()


class WriteOp(_Op):
    def new(self, exclusive: int | None = None) -> None:
        self._add(PendingOp("create", args={"excl": bool(exclusive)}))

    def remove(self) -> None:
        self._add(PendingOp("delete"))

    def set_xattr(self, xattr_name: str, xattr_value: bytes) -> None:
        self._add(PendingOp("setxattr", require_bytes(xattr_value, "xattr_value"),
                            {"name": as_text(xattr_name, "xattr_name")}))

    def rm_xattr(self, xattr_name: str) -> None:
        self._add(PendingOp("rmxattr", args={"name": as_text(xattr_name, "xattr_name")}))

    def append(self, to_write: bytes) -> None:
        self._add(PendingOp("append", require_bytes(to_write, "to_write")))

    def write_full(self, to_write: bytes) -> None:
        self._add(PendingOp("writefull", require_bytes(to_write, "to_write")))

    def write(self, to_write: bytes, offset: int = 0) -> None:
        self._add(PendingOp("write", require_bytes(to_write, "to_write"), {"off": require_uint(offset, "offset")}))

    def writesame(self, to_write: bytes, write_len: int, offset: int = 0) -> None:
        data = require_bytes(to_write, "to_write")
        write_len = require_uint(write_len, "write_len", "size_t")
        offset = require_uint(offset, "offset")
        if not data or write_len % len(data):
            self._add(PendingOp("unsupported", err=errno.EINVAL))  # Ceph: EINVAL for a ragged length
            return
        self._add(PendingOp("write", data * (write_len // len(data)), {"off": offset}))

    def zero(self, offset: int, length: int) -> None:
        self._add(PendingOp("zero", args={"off": require_uint(offset, "offset"),
                                          "len": require_uint(length, "length", "size_t")}))

    def truncate(self, offset: int) -> None:
        self._add(PendingOp("truncate", args={"size": require_uint(offset, "offset")}))

    def execute(self, cls: str, method: str, data: bytes) -> None:
        self._add(PendingOp("call", require_bytes(data, "data"),
                            {"cls": as_text(cls, "cls"), "method": as_text(method, "method")}))

    def assert_version(self, version: int) -> None:
        require_uint(version, "version")
        self._add(PendingOp("unsupported", err=errno.EOPNOTSUPP))

    def omap_cmp(self, key: str, val: str, cmp_op: int = LIBRADOS_CMPXATTR_OP_EQ) -> None:
        self._add(PendingOp("unsupported", err=errno.EOPNOTSUPP))


class ReadOp(_Op):
    pass


class WriteOpCtx(WriteOp):
    """Write operation context manager."""


class ReadOpCtx(ReadOp):
    """Read operation context manager."""


# python-rados' OpCtx mixin name, for code that checks isinstance against it.
OpCtx = _Op


__all__ = [
    "LIBRADOS_ALL_NSPACES", "LIBRADOS_CMPXATTR_OP_EQ", "LIBRADOS_CMPXATTR_OP_GT", "LIBRADOS_CMPXATTR_OP_GTE",
    "LIBRADOS_CMPXATTR_OP_LT", "LIBRADOS_CMPXATTR_OP_LTE", "LIBRADOS_CMPXATTR_OP_NE", "LIBRADOS_CREATE_EXCLUSIVE",
    "LIBRADOS_CREATE_IDEMPOTENT", "LIBRADOS_OPERATION_BALANCE_READS", "LIBRADOS_OPERATION_FULL_FORCE",
    "LIBRADOS_OPERATION_FULL_TRY", "LIBRADOS_OPERATION_IGNORE_CACHE", "LIBRADOS_OPERATION_IGNORE_OVERLAY",
    "LIBRADOS_OPERATION_IGNORE_REDIRECT", "LIBRADOS_OPERATION_LOCALIZE_READS", "LIBRADOS_OPERATION_NOFLAG",
    "LIBRADOS_OPERATION_ORDERSNAP", "LIBRADOS_OPERATION_ORDER_READS_WRITES", "LIBRADOS_OPERATION_SKIPRWLOCKS",
    "LIBRADOS_OP_FLAG_EXCL", "LIBRADOS_OP_FLAG_FADVISE_DONTNEED", "LIBRADOS_OP_FLAG_FADVISE_FUA",
    "LIBRADOS_OP_FLAG_FADVISE_NOCACHE", "LIBRADOS_OP_FLAG_FADVISE_RANDOM", "LIBRADOS_OP_FLAG_FADVISE_SEQUENTIAL",
    "LIBRADOS_OP_FLAG_FADVISE_WILLNEED", "LIBRADOS_OP_FLAG_FAILOK", "LIBRADOS_SNAP_DIR", "LIBRADOS_SNAP_HEAD",
    "OmapIterator", "OpCtx", "PendingOp", "ReadOp", "ReadOpCtx", "WriteOp", "WriteOpCtx",
]

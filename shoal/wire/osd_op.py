"""The object operations a client sends in one OSD_OP, in RADOS's vocabulary.

An OSD_OP frame's meta carries `ops`: a list of dicts `{"op": NAME, ...args}`; an
op's input payload lives in the frame's data segment, referenced as `"d": [off, len]`.
The reply's `outs` has one dict per op (`{"r": rval, ...}`), with output payloads
referenced the same way into the reply's data segment.
"""

from __future__ import annotations

from typing import Any

WRITE_OPS = frozenset({
    "create", "write", "writefull", "append", "truncate", "zero", "delete",
    "setxattr", "rmxattr", "omap_setkeys", "omap_rmkeys", "omap_clear", "omap_setheader",
    "rollback",
})
READ_OPS = frozenset({
    "read", "stat", "getxattr", "getxattrs", "omap_get_vals", "omap_get_keys",
    "omap_get_vals_by_keys", "omap_get_header", "assert_exists", "checksum", "list_snaps",
})
CALL = "call"  # object-class method; the OSD decides from the method's flags whether it writes
PG_OPS = frozenset({"pgls"})  # addressed to a PG, not an object
# Watch/notify, served by the primary outside the op executor (shoal/osd/watch.py), alone
# in their vector. Caps count them as reads, as Ceph lets read-only clients watch and notify.
#   watch {watch_op: watch|reconnect|unwatch|ping, cookie, timeout, gid, nonce}
#   notify {timeout, gid, d: payload} -> {notify_id, acks: [[gid, cookie, d]], timeouts: [[gid, cookie]]}
#   list_watchers -> {watchers: [{name, watcher_id, addr, cookie, timeout}]}
WATCH_OPS = frozenset({"watch", "notify", "list_watchers"})
ALL_NSPACES = "\x01"  # librados' LIBRADOS_ALL_NSPACES: a listing of every namespace

SNAP_HEAD = -2  # OSD_OP meta `snap`: read the head (librados' LIBRADOS_SNAP_HEAD)

FLAG_FAILOK = 1  # per-op: a failure of this op does not abort the vector


class OpBuilder:
    """Collects ops and their payloads into (ops, data) for one OSD_OP."""

    def __init__(self) -> None:
        self.ops: list[dict[str, Any]] = []
        self._chunks: list[bytes | memoryview] = []
        self._len = 0

    def add(self, op: str, payload: bytes | memoryview | None = None, **args: Any) -> dict[str, Any]:
        entry: dict[str, Any] = {"op": op, **args}
        if payload is not None:
            entry["d"] = [self._len, len(payload)]
            if payload:
                self._chunks.append(payload)
                self._len += len(payload)
        self.ops.append(entry)
        return entry

    def data(self) -> bytes | memoryview:
        if len(self._chunks) == 1:
            return self._chunks[0]
        return b"".join(self._chunks)

"""python-rados' `Ioctx` (an I/O context on one pool) and `Object` (a file-like object handle).

Every call runs a coroutine of the client core (`RadosClient`) on the shared loop thread
and blocks the calling thread for its result; `aio_*` calls return a `Completion` at
once. Nothing here keeps per-call state on the Ioctx except the namespace and locator a
caller sets, so any thread may use any Ioctx concurrently.
"""

from __future__ import annotations

import datetime
import errno
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from shoal.client.loop_thread import Call, _real_threading
from shoal.client.objecter import OpReply
from shoal.compat.rados_aio import Completion
from shoal.compat.rados_compound import CompoundOps
from shoal.compat.rados_errors import (
    MAX_ERRNO,
    Error,
    IoctxStateError,
    LogicError,
    ObjectStateError,
    as_text,
    cstr,
    from_shoal,
    make_ex,
    require_bytes,
    require_str,
    require_uint,
)
from shoal.compat.rados_ioctx_aio import AioOps
from shoal.compat.rados_ops import (
    LIBRADOS_ALL_NSPACES,
    LIBRADOS_SNAP_HEAD,
)
from shoal.errors import ShoalError
from shoal.wire.osd_op import OpBuilder

if TYPE_CHECKING:
    from shoal.compat.rados import Rados

_threading = _real_threading()  # native locks even under eventlet: callers are native threads
_LIST_CHUNK = 1024  # objects fetched per loop-thread round trip while listing


class Ioctx(CompoundOps, AioOps):
    """An I/O context: a pool, plus the namespace and locator key used for its objects.

    Compound operations come from `CompoundOps` (rados_compound.py) and asynchronous calls
    from `AioOps` (rados_ioctx_aio.py).
    """

    def __init__(self, rados: Rados, name: str, pool_id: int) -> None:
        self.rados = rados
        self.name = name
        self.pool_id = pool_id
        self.state = "open"
        self.locator_key = ""
        self.nspace = ""
        self.lock = _threading.Lock()
        self._pending: set[Completion] = set()
        self._pending_lock = _threading.Lock()
        self._last_version = 0
        self._snapc: tuple[int, list[int]] | None = None  # the write SnapContext
        self._read_snap: int | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> Ioctx:
        return self

    def __exit__(self, *exc: object) -> bool:
        self.close()
        return False

    def close(self) -> None:
        """Idempotent; never raises."""
        self.state = "closed"

    def require_ioctx_open(self) -> None:
        if self.state != "open":
            raise IoctxStateError(f"The pool is {self.state}")

    def _ready(self) -> None:
        self.require_ioctx_open()
        self.rados.require_state("connected")

    def dup(self) -> Ioctx:
        io = self.rados.open_ioctx2(self.pool_id)
        io.set_namespace(self.nspace)
        return io

    def __repr__(self) -> str:
        return f"<rados.Ioctx pool={self.name!r} nspace={self.nspace!r} state={self.state}>"

    # -- context settings ---------------------------------------------------------------
    def set_namespace(self, nspace: str | None) -> None:
        self.require_ioctx_open()
        if nspace is None:
            nspace = ""
        self.nspace = require_str(nspace, "nspace")

    def get_namespace(self) -> str:
        return self.nspace

    def set_locator_key(self, loc_key: str) -> None:
        # Placement here hashes the object name only; the key is kept for callers that read it back.
        self.require_ioctx_open()
        self.locator_key = require_str(loc_key, "loc_key")

    def get_locator_key(self) -> str:
        return self.locator_key

    def set_read(self, snap_id: int) -> None:
        """Read at this self-managed snap id from now on (LIBRADOS_SNAP_HEAD: the head);
        writes through this ioctx then fail with EROFS, as in librados."""
        self.require_ioctx_open()
        snap_id = require_uint(snap_id, "snap_id")
        self._read_snap = None if snap_id == LIBRADOS_SNAP_HEAD else snap_id

    def get_pool_id(self) -> int:
        return self.pool_id

    def get_pool_name(self) -> str:
        name = self.rados._pool_name(self.pool_id)
        if name is None:
            raise make_ex(errno.ENOENT, "get pool name error")
        return name

    def alignment(self) -> int | None:
        return None  # replicated pools only: no alignment requirement

    def get_last_version(self) -> int:
        self.require_ioctx_open()
        return self._last_version

    # -- plumbing ---------------------------------------------------------------------------
    def _run(self, coro: Coroutine[Any, Any, Any], what: str) -> Any:
        try:
            return self.rados._loop.run(coro)
        except ShoalError as exc:
            raise from_shoal(exc, what) from exc

    async def _operate(self, oid: str, builder: OpBuilder, nspace: str) -> OpReply:
        reply = await self.rados._client.operate(self.pool_id, oid, builder, nspace, snapc=self._snapc,
                                                 snap=self._read_snap)
        if reply.version:
            self._last_version = int(reply.version[-1])
        return reply

    def _sync(self, oid: str, builder: OpBuilder, nspace: str, what: str) -> OpReply:
        reply = self._run(self._operate(oid, builder, nspace), what)
        if reply.result < 0:
            raise make_ex(reply.result, what)
        return reply

    def _ns(self) -> str:
        return self.nspace

    # -- data -------------------------------------------------------------------------------
    def write(self, key: str, data: bytes, offset: int = 0) -> int:
        self._ready()
        return self._write(require_str(key, "key"), require_bytes(data, "data"),
                           require_uint(offset, "offset"), self.nspace)

    def _write(self, key: str, data: bytes, offset: int, nspace: str) -> int:
        b = OpBuilder()
        b.add("write", data, off=offset)
        self._sync(key, b, nspace, f"Ioctx.write({self.name}): failed to write {key}")
        return 0

    def write_full(self, key: str, data: bytes) -> int:
        self._ready()
        key, data = require_str(key, "key"), require_bytes(data, "data")
        b = OpBuilder()
        b.add("writefull", data)
        self._sync(key, b, self.nspace, f"Ioctx.write_full({self.name}): failed to write {key}")
        return 0

    def writesame(self, key: str, data: bytes, write_len: int, offset: int = 0) -> None:
        self._ready()
        key, data = require_str(key, "key"), require_bytes(data, "data")
        write_len, offset = require_uint(write_len, "write_len", "size_t"), require_uint(offset, "offset")
        what = f"Ioctx.writesame({self.name}): failed to write {key}"
        if not data or write_len % len(data):
            raise make_ex(errno.EINVAL, what)
        self._write(key, data * (write_len // len(data)), offset, self.nspace)

    def append(self, key: str, data: bytes) -> int:
        self._ready()
        key, data = require_str(key, "key"), require_bytes(data, "data")
        b = OpBuilder()
        b.add("append", data)
        self._sync(key, b, self.nspace, f"Ioctx.append({self.name}): failed to append {key}")
        return 0

    def read(self, key: str, length: int = 8192, offset: int = 0) -> bytes:
        self._ready()
        return self._read(require_str(key, "key"), require_uint(length, "length", "size_t"),
                          require_uint(offset, "offset"), self.nspace)

    def _read(self, key: str, length: int, offset: int, nspace: str) -> bytes:
        what = f"Ioctx.read({self.name}): failed to read {key}"
        b = OpBuilder()
        if length == 0:
            # The OSD reads "to the end" for length 0; librados' zero-byte buffer gets nothing.
            b.add("assert_exists")
            self._sync(key, b, nspace, what)
            return b""
        b.add("read", off=offset, len=length)
        return self._sync(key, b, nspace, what).out_data(0)

    def trunc(self, key: str, size: int) -> int:
        self._ready()
        key, size = require_str(key, "key"), require_uint(size, "size")
        b = OpBuilder()
        b.add("truncate", size=size)
        self._sync(key, b, self.nspace, f"Ioctx.trunc({self.name}): failed to truncate {key}")
        return 0

    def remove_object(self, key: str) -> bool:
        self._ready()
        return self._remove(require_str(key, "key"), self.nspace)

    def _remove(self, key: str, nspace: str) -> bool:
        b = OpBuilder()
        b.add("delete")
        self._sync(key, b, nspace, f"Failed to remove '{key}'")
        return True

    def stat(self, key: str) -> tuple[int, time.struct_time]:
        self._ready()
        return self._stat(require_str(key, "key"), self.nspace)

    def _stat(self, key: str, nspace: str) -> tuple[int, time.struct_time]:
        b = OpBuilder()
        b.add("stat")
        out = self._sync(key, b, nspace, f"Failed to stat {key!r}").outs[0]
        return int(out["size"]), time.localtime(int(out["mtime"]))

    def cmpext(self, key: str, cmp_buf: bytes, offset: int = 0) -> int:
        """0 if the object holds `cmp_buf` at `offset`, else -(MAX_ERRNO + first differing offset).

        Read-and-compare on the client (the OSD has no compare op yet), so not atomic with writes.
        """
        self._ready()
        key, cmp_buf = require_str(key, "key"), require_bytes(cmp_buf, "cmp_buf")
        offset = require_uint(offset, "offset")
        have = self._read(key, len(cmp_buf), offset, self.nspace) if cmp_buf else b""
        have = have.ljust(len(cmp_buf), b"\0")  # past the end counts as zeros, as in Ceph
        for i, (a, b) in enumerate(zip(have, cmp_buf, strict=True)):
            if a != b:
                return -MAX_ERRNO - i
        return 0

    # -- xattrs -------------------------------------------------------------------------------
    def get_xattr(self, key: str, xattr_name: str) -> bytes:
        self._ready()
        return self._get_xattr(require_str(key, "key"), require_str(xattr_name, "xattr_name"), self.nspace)

    def _get_xattr(self, key: str, name: str, nspace: str) -> bytes:
        b = OpBuilder()
        b.add("getxattr", name=name)
        return self._sync(key, b, nspace, f"Failed to get xattr {name!r}").out_data(0)

    def get_xattrs(self, oid: str) -> Iterator[tuple[str, bytes]]:
        self._ready()
        return self._get_xattrs(require_str(oid, "oid"), self.nspace)

    def _get_xattrs(self, oid: str, nspace: str) -> Iterator[tuple[str, bytes]]:
        b = OpBuilder()
        b.add("getxattrs")
        attrs = self._sync(oid, b, nspace, f"Failed to get rados xattrs for object {oid!r}").outs[0]["attrs"]
        return iter(sorted((str(k), bytes(v)) for k, v in attrs.items()))

    def set_xattr(self, key: str, xattr_name: str, xattr_value: bytes) -> bool:
        self._ready()
        return self._set_xattr(require_str(key, "key"), require_str(xattr_name, "xattr_name"),
                               require_bytes(xattr_value, "xattr_value"), self.nspace)

    def _set_xattr(self, key: str, name: str, value: bytes, nspace: str) -> bool:
        b = OpBuilder()
        b.add("setxattr", value, name=name)
        self._sync(key, b, nspace, f"Failed to set xattr {name!r}")
        return True

    def rm_xattr(self, key: str, xattr_name: str) -> bool:
        self._ready()
        return self._rm_xattr(require_str(key, "key"), require_str(xattr_name, "xattr_name"), self.nspace)

    def _rm_xattr(self, key: str, name: str, nspace: str) -> bool:
        b = OpBuilder()
        b.add("rmxattr", name=name)
        self._sync(key, b, nspace, f"Failed to delete key {key!r} xattr {name!r}")
        return True

    # -- object classes -------------------------------------------------------------------------
    def execute(self, key: str, cls: str, method: str, data: bytes, length: int = 8192) -> tuple[int, bytes]:
        """Run an object-class method; returns (length of its output, output)."""
        self._ready()
        key, cls, method = require_str(key, "key"), require_str(cls, "cls"), require_str(method, "method")
        data, length = require_bytes(data, "data"), require_uint(length, "length", "size_t")
        what = f"Ioctx.read({self.name}): failed to read {key}"
        b = OpBuilder()
        b.add("call", data, cls=cls, method=method)
        out = self._sync(key, b, self.nspace, what).out_data(0)
        if len(out) > length:
            raise make_ex(errno.ERANGE, what)  # librados: the output does not fit the buffer
        return len(out), out

    # -- listing ----------------------------------------------------------------------------------
    def list_objects(self) -> ObjectIterator:
        self._ready()
        return ObjectIterator(self)

    # -- pool applications and stats ------------------------------------------------------------
    def application_enable(self, app_name: str, force: bool = False) -> None:
        self._ready()
        cmd = {"prefix": "osd pool application enable", "pool": self.name,
               "app": require_str(app_name, "app_name")}
        if force:
            cmd["yes_i_really_mean_it"] = True
        ret, _, outs = self.rados._mon(cmd)
        if ret < 0:
            raise make_ex(ret, "error enabling application")

    def application_list(self) -> list[str]:
        self._ready()
        pool = self.rados._pool(self.pool_id)
        if pool is None:
            raise make_ex(errno.ENOENT, "error listing applications")
        return sorted(pool.application)

    def application_metadata_get(self, app_name: str, key: str) -> str:
        self._ready()
        pool = self.rados._pool(self.pool_id)
        meta = pool.application.get(app_name) if pool is not None else None
        if meta is None:
            raise make_ex(errno.ENOENT, f"error getting metadata {key} for application {app_name}")
        if key not in meta:
            raise KeyError(f"no metadata {key} for application {app_name}")
        return str(meta[key])

    def application_metadata_set(self, app_name: str, key: str, value: str) -> None:
        self._ready()
        ret, _, _ = self.rados._mon({"prefix": "osd pool application set", "pool": self.name,
                                     "app": require_str(app_name, "app_name"), "key": require_str(key, "key"),
                                     "value": require_str(value, "value")})
        if ret < 0:
            raise make_ex(ret, "error setting application metadata")

    def application_metadata_remove(self, app_name: str, key: str) -> None:
        self._ready()
        ret, _, _ = self.rados._mon({"prefix": "osd pool application rm", "pool": self.name,
                                     "app": require_str(app_name, "app_name"), "key": require_str(key, "key")})
        if ret < 0:
            raise make_ex(ret, "error removing application metadata")

    def application_metadata_list(self, app_name: str) -> list[tuple[str, str]]:
        self._ready()
        pool = self.rados._pool(self.pool_id)
        meta = pool.application.get(app_name) if pool is not None else None
        if meta is None:
            raise make_ex(errno.ENOENT, "error listing application metadata")
        return sorted((str(k), str(v)) for k, v in meta.items())

    def get_stats(self) -> dict[str, int]:
        self._ready()
        stats = self.rados._pool_stats().get(self.name)
        if stats is None:
            raise make_ex(errno.ENOENT, f"Ioctx.get_stats({self.name}): get_stats failed")
        return stats

    def set_osdmap_full_try(self) -> None:
        pass  # no full-cluster write blocking to bypass yet

    def unset_osdmap_full_try(self) -> None:
        pass

    # -- not supported yet: fail clearly with ENOSYS/EOPNOTSUPP -------------------------------------
    def _unsupported(self, what: str, err: int = errno.ENOSYS) -> Error:
        return make_ex(err, f"{what}: not supported by this cluster yet")

    # -- self-managed snapshots ------------------------------------------------------------
    def create_self_managed_snap(self) -> int:
        self._ready()
        return int(self._run(self.rados._client.selfmanaged_snap_create(self.pool_id),
                             "Failed to create self-managed snapshot"))

    def remove_self_managed_snap(self, snap_id: int) -> None:
        self._ready()
        self._run(self.rados._client.selfmanaged_snap_remove(self.pool_id, require_uint(snap_id, "snap_id")),
                  "Failed to remove self-managed snapshot")

    def set_self_managed_snap_write(self, snaps: Sequence[int | str]) -> None:
        """The SnapContext of later writes: seq is the newest of `snaps` (python-rados' rule)."""
        self.require_ioctx_open()
        ordered = sorted((int(s) for s in snaps), reverse=True)
        if any(s <= 0 for s in ordered) or len(set(ordered)) != len(ordered):
            raise make_ex(errno.EINVAL, "Failed to update snapshot write context")
        self._snapc = (ordered[0], ordered) if ordered else None

    def rollback_self_managed_snap(self, oid: str, snap_id: int) -> None:
        self._ready()
        b = OpBuilder()
        b.add("rollback", snapid=require_uint(snap_id, "snap_id"))
        self._sync(require_str(oid, "oid"), b, self.nspace, f"Failed to rollback {oid}")

    def create_snap(self, snap_name: str) -> None:
        raise self._unsupported(f"Failed to create snap {snap_name}", errno.EOPNOTSUPP)

    def remove_snap(self, snap_name: str) -> None:
        raise self._unsupported(f"Failed to remove snap {snap_name}", errno.EOPNOTSUPP)

    def lookup_snap(self, snap_name: str) -> Any:
        raise self._unsupported(f"Failed to lookup snap {snap_name}", errno.EOPNOTSUPP)

    def list_snaps(self) -> Iterator[Any]:
        return iter(())  # no pool snapshots exist

    def snap_rollback(self, oid: str, snap_name: str) -> None:
        raise self._unsupported(f"Failed to rollback {oid}", errno.EOPNOTSUPP)

    # -- watch/notify ----------------------------------------------------------------------------
    def watch(self, obj: str, callback: Callable[..., Any], error_callback: Callable[..., Any] | None = None,
              timeout: int | None = None) -> Watch:
        """Watch `obj`. `callback(notify_id, notifier_id, watch_id, data)` runs on the client's
        callback thread for every notify; what it returns (str/bytes) is the ack's reply.
        `error_callback(watch_id, -errno)` runs if the watch is lost. `timeout` (s): how long
        the OSD keeps the watch without hearing from this client (None: 30 s)."""
        self.require_ioctx_open()
        return Watch(self, obj, callback, error_callback, timeout)

    async def _notify(self, obj: str, payload: bytes, timeout_ms: int) -> tuple[dict[tuple[int, int], bytes],
                                                                             list[tuple[int, int]]]:
        return await self.rados._client.notify(self.pool_id, obj, self.nspace, payload, timeout_ms / 1000.0)

    def notify(self, obj: str, msg: str = "", timeout_ms: int = 5000) -> bool:
        """Notify every watcher of `obj` and wait for their acks; TimedOut if one did not ack
        within `timeout_ms` (0: the OSD's 30 s)."""
        self.require_ioctx_open()
        what = f"Failed to notify {obj!r}"
        key, payload = as_text(obj, "obj"), cstr(msg, "msg") or b""
        _, timeouts = self._run(self._notify(key, payload, require_uint(timeout_ms, "timeout_ms")), what)
        if timeouts:
            raise make_ex(errno.ETIMEDOUT, what)
        return True

    def aio_notify(self, obj: str, oncomplete: Callable[..., Any], msg: str = "",
                   timeout_ms: int = 5000) -> Completion:
        """`oncomplete(completion, 0, [(notifier_id, cookie, reply)], [(notifier_id, cookie)])`,
        or `(completion, -errno, None, None)` on failure (a missed ack is -ETIMEDOUT)."""
        self.require_ioctx_open()
        key, payload = as_text(obj, "obj"), cstr(msg, "msg") or b""
        timeout_ms = require_uint(timeout_ms, "timeout_ms")

        async def run() -> tuple[int, tuple[Any, ...]]:
            try:
                acks, timeouts = await self._notify(key, payload, timeout_ms)
            except ShoalError as exc:
                return -exc.errno, (-exc.errno, None, None)
            if timeouts:
                return -errno.ETIMEDOUT, (-errno.ETIMEDOUT, None, None)
            ack_list = [(gid, cookie, reply or "") for (gid, cookie), reply in sorted(acks.items())]
            return 0, (0, ack_list, [])

        return self._submit(run(), oncomplete, None)

    def lock_exclusive(self, key: str, name: str, cookie: str, desc: str = "",
                       duration: int | None = None, flags: int = 0) -> None:
        raise self._unsupported(f"Ioctx.rados_lock_exclusive({self.name}): failed to set lock {name} on {key}")

    def lock_shared(self, key: str, name: str, cookie: str, tag: str, desc: str = "",
                    duration: int | None = None, flags: int = 0) -> None:
        raise self._unsupported(f"Ioctx.rados_lock_exclusive({self.name}): failed to set lock {name} on {key}")

    def unlock(self, key: str, name: str, cookie: str) -> None:
        raise self._unsupported(f"Ioctx.rados_lock_exclusive({self.name}): failed to set lock {name} on {key}")


class ObjectIterator:
    """Objects of a pool (one namespace, or all with LIBRADOS_ALL_NSPACES), fetched in chunks."""

    def __init__(self, ioctx: Ioctx) -> None:
        self.ioctx = ioctx
        nspace = ioctx.nspace
        self._agen = ioctx.rados._client.list_objects(ioctx.pool_id,
                                                      None if nspace == LIBRADOS_ALL_NSPACES else nspace)
        self._buf: list[tuple[str, str]] = []
        self._done = False

    def __iter__(self) -> ObjectIterator:
        return self

    async def _pull(self) -> tuple[list[tuple[str, str]], bool]:
        items: list[tuple[str, str]] = []
        try:
            while len(items) < _LIST_CHUNK:
                items.append(await self._agen.__anext__())
        except StopAsyncIteration:
            return items, True
        return items, False

    def __next__(self) -> Object:
        while not self._buf:
            if self._done:
                raise StopIteration
            try:
                self._buf, self._done = self.ioctx.rados._loop.run(self._pull())
            except ShoalError:
                # python-rados ends the iteration on a listing error rather than raising.
                self._done = True
                raise StopIteration from None
            self._buf.reverse()
        nspace, name = self._buf.pop()
        return Object(self.ioctx, name, "", nspace)

    def __del__(self) -> None:
        if not self._done:
            try:
                Call(self.ioctx.rados._loop, _aclose(self._agen))
            except RuntimeError:
                pass  # the loop is already gone at interpreter exit


async def _aclose(agen: Any) -> None:
    await agen.aclose()


class Object:
    """A rados object used like a file: reads and writes advance `offset`."""

    def __init__(self, ioctx: Ioctx, key: str, locator_key: str | None = None, nspace: str | None = None) -> None:
        self.key = key
        self.ioctx = ioctx
        self.offset = 0
        self.state = "exists"
        self.locator_key = locator_key
        self.nspace = "" if nspace is None else nspace

    def __str__(self) -> str:
        ns = "--default--" if self.nspace == "" else self.nspace
        return f"rados.Object(ioctx={self.ioctx},key={self.key},nspace={ns},locator={self.locator_key})"

    def require_object_exists(self) -> None:
        if self.state != "exists":
            raise ObjectStateError(f"The object is {self.state}")

    def _io(self) -> Ioctx:
        # Operations name the namespace explicitly instead of switching the shared Ioctx's,
        # so concurrent users of the Ioctx are not affected.
        if self.nspace is None:
            raise LogicError("Namespace not set properly in context")
        self.ioctx._ready()
        return self.ioctx

    def read(self, length: int = 1024 * 1024) -> bytes:
        self.require_object_exists()
        io = self._io()
        ret = io._read(require_str(self.key, "key"), require_uint(length, "length", "size_t"), self.offset,
                       self.nspace)
        self.offset += len(ret)
        return ret

    def write(self, string_to_write: bytes) -> int:
        self.require_object_exists()
        io = self._io()
        ret = io._write(require_str(self.key, "key"), require_bytes(string_to_write, "data"), self.offset,
                        self.nspace)
        if ret == 0:
            self.offset += len(string_to_write)
        return ret

    def remove(self) -> None:
        self.require_object_exists()
        self._io()._remove(self.key, self.nspace)
        self.state = "removed"

    def stat(self) -> tuple[int, time.struct_time]:
        self.require_object_exists()
        return self._io()._stat(self.key, self.nspace)

    def seek(self, position: int) -> None:
        self.require_object_exists()
        self.offset = position

    def get_xattr(self, xattr_name: str) -> bytes:
        self.require_object_exists()
        return self._io()._get_xattr(self.key, require_str(xattr_name, "xattr_name"), self.nspace)

    def get_xattrs(self) -> Iterator[tuple[str, bytes]]:
        self.require_object_exists()
        return self._io()._get_xattrs(self.key, self.nspace)

    def set_xattr(self, xattr_name: str, xattr_value: bytes) -> bool:
        self.require_object_exists()
        return self._io()._set_xattr(self.key, require_str(xattr_name, "xattr_name"),
                                     require_bytes(xattr_value, "xattr_value"), self.nspace)

    def rm_xattr(self, xattr_name: str) -> bool:
        self.require_object_exists()
        return self._io()._rm_xattr(self.key, require_str(xattr_name, "xattr_name"), self.nspace)


class Watch:
    """A registered watch on one object (python-rados' `Watch`, made by `Ioctx.watch`)."""

    def __init__(self, ioctx: Ioctx, obj: str, callback: Callable[..., Any],
                 error_callback: Callable[..., Any] | None, timeout: int | None) -> None:
        self.id = 0
        self.oid = as_text(obj, "oid")
        self.callback = callback
        self.error_callback = error_callback
        seconds = 0 if timeout is None else require_uint(timeout, "timeout", "uint32_t")
        self.ioctx = ioctx.dup()  # the watch keeps its own context, as python-rados' does
        client = self.ioctx.rados._client
        try:
            self.id = int(self.ioctx._run(client.watch(self.ioctx.pool_id, self.oid, self.ioctx.nspace,
                                                       self._callback, self._error_callback, seconds),
                                          "watch error"))
        except BaseException:
            self.ioctx.close()
            raise

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> bool:
        self.close()
        return False

    def __repr__(self) -> str:
        return f"<rados.Watch id={self.id} oid={self.oid!r}>"

    # On the client's callback thread: the callback's value becomes the ack's reply (raising: no ack).
    def _callback(self, notify_id: int, notifier_id: int, watch_id: int, data: bytes) -> bytes | None:
        reply = self.callback(notify_id, notifier_id, watch_id, data)
        return None if reply is None else cstr(reply, "replay")

    def _error_callback(self, watch_id: int, error: int) -> None:
        if self.error_callback is not None:
            self.error_callback(watch_id, error)

    def get_id(self) -> int:
        return self.id

    def check(self) -> datetime.timedelta:
        """Time since the OSD last confirmed the watch; raises (NotConnected…) if it is lost."""
        self.ioctx.require_ioctx_open()
        ms = self.ioctx._run(self.ioctx.rados._client.watch_check(self.id), "check error")
        return datetime.timedelta(milliseconds=ms)

    def close(self) -> None:
        """Unwatch, then wait for callbacks already queued (librados' watch_flush)."""
        if self.id == 0:
            return
        self.ioctx.require_ioctx_open()
        if self.ioctx.rados.state != "connected":
            self.id = 0  # the handle was shut down: its sessions, and so the watch, are gone
            return
        client = self.ioctx.rados._client
        try:
            self.ioctx.rados._loop.run(client.unwatch(self.id))
        except ShoalError as exc:
            if exc.errno != errno.ENOENT:
                raise from_shoal(exc, "unwatch error") from exc
        self.id = 0
        client.watch_flush()
        self.ioctx.close()

    def __del__(self) -> None:
        cookie = getattr(self, "id", 0)
        ioctx = getattr(self, "ioctx", None)
        if not cookie or ioctx is None or ioctx.rados.state != "connected":
            return
        try:  # never block (or raise) in a finalizer: the unwatch runs on the loop thread
            Call(ioctx.rados._loop, ioctx.rados._client.unwatch(cookie))
        except Exception:  # noqa: BLE001 - interpreter exit: the session close drops the watch anyway
            pass


__all__ = ["Ioctx", "Object", "ObjectIterator", "Watch"]

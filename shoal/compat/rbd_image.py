"""python-rbd's `Image` (an open image) and the iterators its methods return.

Names and messages in errors follow python-rbd: the image name is the bytes given (so
messages read "error writing to b'vol'"), every method of a closed image raises
InvalidArgument("image is closed"), and results have python-rbd's shapes.
"""

from __future__ import annotations

import errno
import functools
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, TypeVar

from shoal.client.loop_thread import Call, _real_threading
from shoal.compat.rados_aio import Completion
from shoal.compat.rbd_calls import aclose, anext_, core_io, loop_of, management_ops, run, run_with_progress
from shoal.compat.rbd_errors import (
    IncompleteWriteError,
    InvalidArgument,
    LogicError,
    cstr,
    make_ex,
    opt_text,
    text,
    uint,
)
from shoal.errors import ShoalError
from shoal.rbd import children, image_admin, image_meta, layering, resize, snapshots
from shoal.rbd import copy as rbd_copy
from shoal.rbd import diff as rbd_diff
from shoal.rbd import io as rbd_io
from shoal.rbd.create import CreateOptions
from shoal.rbd.image import ImageCtx, open_image
from shoal.rbd.ioctx import CEPH_NOSNAP
from shoal.rbd.pool_ops import image_watchers

_threading = _real_threading()
F = TypeVar("F", bound=Callable[..., Any])

RBD_SNAP_NAMESPACE_TYPE_USER, RBD_SNAP_NAMESPACE_TYPE_GROUP = 0, 1
RBD_SNAP_NAMESPACE_TYPE_TRASH, RBD_SNAP_NAMESPACE_TYPE_MIRROR = 2, 3
RBD_SNAP_REMOVE_UNPROTECT, RBD_SNAP_REMOVE_FLATTEN = 1 << 0, 1 << 1
RBD_LOCK_MODE_EXCLUSIVE, RBD_LOCK_MODE_SHARED = 0, 1
NO_PARENT_POOL = (1 << 64) - 1  # stat()'s deprecated parent_pool: always -1 as uint64


def requires_not_closed(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(self: Image, *args: Any, **kwargs: Any) -> Any:
        self.require_not_closed()
        return fn(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


class Image:
    """An open RBD image (python-rbd's `rbd.Image`); use as a context manager or close()."""

    def __init__(self, ioctx: Any, name: Any = None, snapshot: Any = None, read_only: bool = False,
                 image_id: Any = None) -> None:
        name = cstr(name, "name", opt=True)
        image_id = cstr(image_id, "image_id", opt=True)
        snapshot = cstr(snapshot, "snapshot", opt=True)
        self.closed = True
        if name is not None and image_id is not None:
            raise InvalidArgument("only need to specify image name or image id")
        if name is None and image_id is None:
            raise InvalidArgument("image name or image id was not specified")
        self.name: Any = name if name is not None else image_id
        self.ioctx = ioctx
        io = core_io(ioctx)
        self._loop = loop_of(ioctx)
        self._rados = ioctx.rados
        self._mgmt = management_ops(io)
        self._pending: set[Completion] = set()
        self._pending_lock = _threading.Lock()
        self._ictx: ImageCtx = run(self._loop, open_image(
            io, name=None if name is None else name.decode(), image_id=None if image_id is None else image_id.decode(),
            snapshot=None if snapshot is None else snapshot.decode(), read_only=bool(read_only)),
            f"error opening image {self.name} at snapshot {snapshot}")
        self.closed = False
        if name is None:
            self.name = self.get_name()

    # -- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> Image:
        return self

    def __exit__(self, *exc: object) -> bool:
        self.close()
        return False

    def __repr__(self) -> str:
        return f"rbd.Image(ioctx, {self.name!r})"

    def require_not_closed(self) -> None:
        if self.closed:
            raise InvalidArgument("image is closed")

    def close(self) -> None:
        """Wait for this image's asynchronous calls, then release it; idempotent."""
        if self.closed:
            return
        self.closed = True
        with self._pending_lock:
            pending = list(self._pending)
        for comp in pending:
            comp.wait_for_complete()
        run(self._loop, self._ictx.close(), f"error while closing image {self.name}")

    def __del__(self) -> None:
        if getattr(self, "closed", True) is False:
            self.closed = True
            try:
                Call(self._loop, self._ictx.close())
            except Exception:  # noqa: BLE001 - interpreter exit: nothing to report to
                pass

    def _run(self, coro: Any, what: str) -> Any:
        return run(self._loop, coro, what)

    # -- basic facts ------------------------------------------------------------------------
    @requires_not_closed
    def get_name(self) -> str:
        name = self._ictx.name
        if name is None:
            raise make_ex(errno.ENOENT, f"error getting name for image {self.name}")
        return name

    @requires_not_closed
    def id(self) -> str:  # noqa: A003 - python-rbd's method name
        return self._ictx.id

    @requires_not_closed
    def block_name_prefix(self) -> str:
        return self._ictx.object_prefix

    @requires_not_closed
    def data_pool_id(self) -> int:
        return self._ictx.data_io.pool_id

    @requires_not_closed
    def size(self) -> int:
        self._run(self._ictx.refresh_if_needed(), f"error getting size for image {self.name}")
        return self._ictx.size

    @requires_not_closed
    def stat(self) -> dict[str, Any]:
        ictx = self._ictx
        self._run(ictx.refresh_if_needed(), f"error getting info for image {self.name}")
        return {"size": ictx.size, "obj_size": ictx.layout.object_size,
                "num_objs": ictx.layout.object_count(ictx.size), "order": ictx.st.order,
                "block_name_prefix": ictx.object_prefix, "parent_pool": NO_PARENT_POOL, "parent_name": b""}

    @requires_not_closed
    def features(self) -> int:
        return self._ictx.st.features

    @requires_not_closed
    def op_features(self) -> int:
        return self._ictx.st.op_features

    @requires_not_closed
    def flags(self) -> int:
        ictx = self._ictx
        return ictx.st.flags if ictx.snap_id is None else ictx.snap_info(ictx.snap_id).flags

    @requires_not_closed
    def old_format(self) -> bool:
        return False

    @requires_not_closed
    def stripe_unit(self) -> int:
        return self._ictx.layout.stripe_unit

    @requires_not_closed
    def stripe_count(self) -> int:
        return self._ictx.layout.stripe_count

    @requires_not_closed
    def overlap(self) -> int:
        return self._ictx.parent_overlap_at(self._ictx.snap_id)

    @requires_not_closed
    def group(self) -> dict[str, Any]:
        return {"pool": -1, "name": ""}  # groups are not supported: no image is in one

    def _timestamp(self, which: str, utc: bool) -> datetime:
        sec, _ = self._run(self._ictx.header.timestamp(which),
                           f"error getting {which} timestamp for image: {self.name}")
        return datetime.utcfromtimestamp(sec) if utc else datetime.fromtimestamp(sec)

    @requires_not_closed
    def create_timestamp(self) -> datetime:
        return self._timestamp("create", utc=True)

    @requires_not_closed
    def access_timestamp(self) -> datetime:
        return self._timestamp("access", utc=False)

    @requires_not_closed
    def modify_timestamp(self) -> datetime:
        return self._timestamp("modify", utc=False)

    @requires_not_closed
    def update_features(self, features: int, enabled: bool) -> None:
        self._run(image_admin.update_features(self._ictx, uint(features), bool(enabled)),
                  f"error updating features for image {self.name}")

    @requires_not_closed
    def rebuild_object_map(self) -> None:
        self._run(image_admin.rebuild_object_map(self._ictx, self._mgmt), f"error rebuilding object map {self.name}")

    @requires_not_closed
    def invalidate_cache(self) -> None:
        # The cache holds only dirty bytes (shoal/rbd/cache.py): librbd writes them back
        # before dropping the cache, and then there is nothing left to drop.
        self._run(self._ictx.flush_cache(), f"error invalidating cache for image {self.name}")

    # -- I/O ----------------------------------------------------------------------------------
    @requires_not_closed
    def read(self, offset: int, length: int, fadvise_flags: int = 0) -> bytes:
        offset, length = uint(offset), uint(length, "size_t")
        return self._run(rbd_io.read(self._ictx, offset, length),  # type: ignore[no-any-return]
                         f"error reading {self.name} {offset}~{length}")

    @requires_not_closed
    def write(self, data: bytes, offset: int, fadvise_flags: int = 0) -> int:
        if not isinstance(data, bytes):
            raise TypeError("data must be a byte string")
        offset, length = uint(offset), len(data)
        written = self._run(rbd_io.write(self._ictx, offset, data), f"error writing to {self.name}")
        if written == length:
            return written  # type: ignore[no-any-return]
        if written < length:
            raise IncompleteWriteError(f"Wrote only {written} out of {length} bytes")
        raise LogicError(f"logic error: rbd_write({self.name}) returned {written}, but {length} was the maximum "
                         "number of bytes it could have written.")

    @requires_not_closed
    def discard(self, offset: int, length: int) -> None:
        offset, length = uint(offset), uint(length)
        self._run(rbd_io.discard(self._ictx, offset, length), f"error discarding region {offset}~{length}")

    @requires_not_closed
    def write_zeroes(self, offset: int, length: int, zero_flags: int = 0) -> None:
        offset, length = uint(offset), uint(length)
        self._run(rbd_io.write_zeroes(self._ictx, offset, length), f"error zeroing region {offset}~{length}")

    @requires_not_closed
    def flush(self) -> None:
        self._run(rbd_io.flush(self._ictx), "error flushing image")

    @requires_not_closed
    def resize(self, size: int, allow_shrink: bool = True) -> None:
        size = uint(size)
        old_size = self.size()
        if old_size == size:
            return
        if not allow_shrink and old_size > size:
            raise InvalidArgument("error allow_shrink is False but old_size > new_size")
        self._run(resize.resize(self._ictx, size, bool(allow_shrink), None, self._mgmt),
                  f"error resizing image {self.name}")

    # -- asynchronous I/O -------------------------------------------------------------------------
    def _untrack(self, comp: Completion) -> None:
        with self._pending_lock:
            self._pending.discard(comp)

    def _submit(self, coro: Any, oncomplete: Callable[..., Any] | None) -> Completion:
        comp = Completion(self, oncomplete, None)
        with self._pending_lock:
            self._pending.add(comp)
        comp._attach(Call(self._loop, coro), self._rados._finisher_for_callbacks())
        return comp

    @requires_not_closed
    def aio_read(self, offset: int, length: int, oncomplete: Callable[..., Any], fadvise_flags: int = 0) -> Completion:
        offset, length = uint(offset), uint(length, "size_t")

        async def go() -> tuple[int, tuple[Any, ...]]:
            try:
                data = await rbd_io.read(self._ictx, offset, length)
            except ShoalError as exc:
                return -exc.errno, (None,)
            return len(data), (data,)

        return self._submit(go(), oncomplete)

    async def _aio(self, coro: Any) -> tuple[int, tuple[Any, ...]]:
        try:
            await coro
        except ShoalError as exc:
            return -exc.errno, ()
        return 0, ()

    @requires_not_closed
    def aio_write(self, data: bytes, offset: int, oncomplete: Callable[..., Any], fadvise_flags: int = 0) -> Completion:
        if not isinstance(data, bytes):
            raise TypeError("data must be a byte string")
        return self._submit(self._aio(rbd_io.write(self._ictx, uint(offset), data)), oncomplete)

    @requires_not_closed
    def aio_discard(self, offset: int, length: int, oncomplete: Callable[..., Any]) -> Completion:
        return self._submit(self._aio(rbd_io.discard(self._ictx, uint(offset), uint(length))), oncomplete)

    @requires_not_closed
    def aio_write_zeroes(self, offset: int, length: int, oncomplete: Callable[..., Any],
                         zero_flags: int = 0) -> Completion:
        return self._submit(self._aio(rbd_io.write_zeroes(self._ictx, uint(offset), uint(length))), oncomplete)

    @requires_not_closed
    def aio_flush(self, oncomplete: Callable[..., Any]) -> Completion:
        return self._submit(self._aio(rbd_io.flush(self._ictx)), oncomplete)

    # -- snapshots ----------------------------------------------------------------------------
    @requires_not_closed
    def list_snaps(self) -> SnapIterator:
        return SnapIterator(self)

    @requires_not_closed
    def create_snap(self, name: Any, flags: int = 0) -> None:
        bname = cstr(name, "name")
        self._run(snapshots.create(self._ictx, text(name, "name")),
                  f"error creating snapshot {bname} from {self.name}")

    @requires_not_closed
    def remove_snap(self, name: Any) -> None:
        bname = cstr(name, "name")
        self._run(snapshots.remove(self._ictx, name=text(name, "name")),
                  f"error removing snapshot {bname} from {self.name}")

    @requires_not_closed
    def remove_snap2(self, name: Any, flags: int) -> None:
        bname = cstr(name, "name")
        what = f"error removing snapshot {bname} from {self.name} with flags {flags:x}"
        snap = text(name, "name")
        if flags & RBD_SNAP_REMOVE_UNPROTECT and self.is_protected_snap(name):
            self._run(snapshots.unprotect(self._ictx, snap, self._mgmt), what)
        self._run(snapshots.remove(self._ictx, name=snap), what)

    @requires_not_closed
    def remove_snap_by_id(self, snap_id: int) -> None:
        self._run(snapshots.remove(self._ictx, snap_id=uint(snap_id)),
                  f"error removing snapshot {snap_id} from {self.name}")

    @requires_not_closed
    def rename_snap(self, srcname: Any, dstname: Any) -> None:
        src, dst = cstr(srcname, "srcname"), cstr(dstname, "dstname")
        self._run(snapshots.rename(self._ictx, text(srcname, "srcname"), text(dstname, "dstname")),
                  f"error renaming snapshot of {self.name} from {src} to {dst}")

    @requires_not_closed
    def rollback_to_snap(self, name: Any) -> None:
        bname = cstr(name, "name")
        self._run(snapshots.rollback(self._ictx, text(name, "name"), None, self._mgmt),
                  f"error rolling back image {self.name} to snapshot {bname}")

    @requires_not_closed
    def protect_snap(self, name: Any) -> None:
        bname = cstr(name, "name")
        self._run(snapshots.protect(self._ictx, text(name, "name")),
                  f"error protecting snapshot {self.name}@{bname}")

    @requires_not_closed
    def unprotect_snap(self, name: Any) -> None:
        bname = cstr(name, "name")
        self._run(snapshots.unprotect(self._ictx, text(name, "name"), self._mgmt),
                  f"error unprotecting snapshot {self.name}@{bname}")

    @requires_not_closed
    def is_protected_snap(self, name: Any) -> bool:
        bname = cstr(name, "name")
        what = f"error checking if snapshot {self.name}@{bname} is protected"
        self._run(self._ictx.refresh(), what)
        try:
            return snapshots.is_protected(self._ictx, text(name, "name"))
        except ShoalError as exc:
            raise make_ex(exc.errno, what) from exc

    @requires_not_closed
    def snap_exists(self, name: Any) -> bool:
        snap = text(name, "name")
        self._run(self._ictx.refresh(), f"error getting snapshot exists for {self.name}")
        return any(s.name == snap and s.is_user for s in self._ictx.st.snaps.values())

    @requires_not_closed
    def get_snap_limit(self) -> int:
        return self._run(snapshots.get_limit(self._ictx),  # type: ignore[no-any-return]
                         f"error getting snapshot limit for {self.name}")

    @requires_not_closed
    def set_snap_limit(self, limit: int) -> int:
        self._run(snapshots.set_limit(self._ictx, uint(limit)), f"error setting snapshot limit for {self.name}")
        return 0

    @requires_not_closed
    def remove_snap_limit(self) -> int:
        self._run(snapshots.set_limit(self._ictx, (1 << 64) - 1), f"error removing snapshot limit for {self.name}")
        return 0

    def _snap(self, snap_id: int, what: str) -> Any:
        try:
            return self._ictx.snap_info(uint(snap_id))
        except ShoalError as exc:
            raise make_ex(exc.errno, what) from exc

    @requires_not_closed
    def get_snap_timestamp(self, snap_id: int) -> datetime:
        info = self._snap(snap_id, f"error getting snapshot timestamp for image: {self.name}, snap_id: {snap_id}")
        return datetime.utcfromtimestamp(info.timestamp[0])

    @requires_not_closed
    def snap_get_namespace_type(self, snap_id: int) -> int:
        info = self._snap(snap_id, f"error getting snapshot namespace type for image: {self.name}, "
                                   f"snap_id: {snap_id}")
        return int(info.namespace_type)

    @requires_not_closed
    def snap_get_trash_namespace(self, snap_id: int) -> dict[str, Any]:
        what = f"error getting snapshot trash namespace image: {self.name}, snap_id: {snap_id}"
        info = self._snap(snap_id, what)
        if info.namespace.get("type") != "trash":
            raise make_ex(errno.EINVAL, what)
        return {"original_name": str(info.namespace.get("original_name", ""))}

    @requires_not_closed
    def snap_get_name(self, snap_id: int) -> str:
        return str(self._snap(snap_id, "error snap_get_name.").name)

    @requires_not_closed
    def snap_get_id(self, snap_name: Any) -> int:
        try:
            return self._ictx.snap_by_name(text(snap_name, "snap_name")).id
        except ShoalError as exc:
            raise make_ex(exc.errno, "error snap_get_id.") from exc

    @requires_not_closed
    def set_snap(self, name: Any) -> None:
        bname = cstr(name, "name", opt=True)
        snap = opt_text(name, "name")
        self._run(self._ictx.set_snap_name(snap), f"error setting image {self.name} to snapshot {bname}")

    @requires_not_closed
    def set_snap_by_id(self, snap_id: int | None) -> None:
        snap = uint(snap_id) if snap_id else CEPH_NOSNAP
        self._run(self._ictx.set_snap_id(snap), f"error setting image {self.name} to snapshot {snap}")

    # -- layering -------------------------------------------------------------------------------
    @requires_not_closed
    def get_parent_image_spec(self) -> dict[str, str]:
        info = self._run(layering.parent_info(self._ictx), f"error getting parent info for image {self.name}")
        return {"pool_name": info.pool_name, "pool_namespace": info.pool_namespace,
                "image_name": info.image_name, "snap_name": info.snap_name}

    @requires_not_closed
    def parent_info(self) -> tuple[str, str, str]:
        spec = self.get_parent_image_spec()
        return spec["pool_name"], spec["image_name"], spec["snap_name"]

    @requires_not_closed
    def parent_id(self) -> str:
        info = self._run(layering.parent_info(self._ictx), f"error getting parent info for image {self.name}")
        return str(info.image_id)

    @requires_not_closed
    def flatten(self, on_progress: Callable[[int, int], Any] | None = None) -> None:
        run_with_progress(self._loop, lambda p: layering.flatten(self._ictx, p, self._mgmt), on_progress,
                          f"error flattening {self.name}")

    def _children(self) -> list[children.Child]:
        return self._run(children.list_children(self._ictx, self._mgmt),  # type: ignore[no-any-return]
                         "error listing children.")

    @requires_not_closed
    def list_children(self) -> list[tuple[str, str]]:
        return [(c.pool_name, c.image_name) for c in self._children() if not c.trash]

    @requires_not_closed
    def list_children2(self) -> Iterator[dict[str, Any]]:
        return iter([{"pool": c.pool_name, "pool_namespace": c.pool_namespace, "image": c.image_name,
                      "id": c.image_id, "trash": c.trash} for c in self._children()])

    @requires_not_closed
    def copy(self, dest_ioctx: Any, dest_name: Any, features: int | None = None, order: int | None = None,
             stripe_unit: int | None = None, stripe_count: int | None = None, data_pool: Any = None) -> None:
        bdest = cstr(dest_name, "dest_name")
        opts = CreateOptions(order=order, features=features, stripe_unit=stripe_unit, stripe_count=stripe_count,
                             data_pool=opt_text(data_pool, "data_pool"))
        self._run(rbd_copy.copy(self._ictx, core_io(dest_ioctx), text(dest_name, "dest_name"), opts, None,
                                self._mgmt), f"error copying image {self.name} to {bdest}")

    @requires_not_closed
    def diff_iterate(self, offset: int, length: int, from_snapshot: Any, iterate_cb: Callable[..., Any],
                     include_parent: bool = True, whole_object: bool = False) -> None:
        """Call iterate_cb(offset, length, exists) for each changed extent, in image order."""
        bfrom = cstr(from_snapshot, "from_snapshot", opt=True)
        what = f"error generating diff from snapshot {bfrom}"
        agen = rbd_diff.diff_iterate(self._ictx, opt_text(from_snapshot, "from_snapshot"), uint(offset),
                                     uint(length), bool(include_parent), bool(whole_object), self._mgmt)
        try:
            while True:
                try:
                    batch = self._loop.run(anext_(agen))
                except StopAsyncIteration:
                    return
                except ShoalError as exc:
                    raise make_ex(exc.errno, what) from exc
                for off, n, exists in batch:
                    ret = iterate_cb(off, n, exists)
                    if isinstance(ret, int) and ret < 0:
                        raise make_ex(ret, what)
        finally:
            self._loop.run(aclose(agen))

    # -- image-meta and config -------------------------------------------------------------------
    @requires_not_closed
    def metadata_get(self, key: Any) -> str:
        bkey = cstr(key, "key")
        try:
            value = self._loop.run(image_meta.get(self._ictx, text(key, "key")))
        except ShoalError as exc:
            if exc.errno == errno.ENOENT:
                raise KeyError(f"no metadata {bkey} for image {self.name}") from None
            raise make_ex(exc.errno, f"error getting metadata {bkey} for image {self.name}") from exc
        return bytes(value).decode("utf-8")

    @requires_not_closed
    def metadata_set(self, key: Any, value: Any) -> None:
        bkey, bvalue = cstr(key, "key"), cstr(value, "value")
        assert bvalue is not None
        self._run(image_meta.set_(self._ictx, text(key, "key"), bvalue),
                  f"error setting metadata {bkey} for image {self.name}")

    @requires_not_closed
    def metadata_remove(self, key: Any) -> None:
        bkey = cstr(key, "key")
        try:
            self._loop.run(image_meta.remove(self._ictx, text(key, "key")))
        except ShoalError as exc:
            if exc.errno == errno.ENOENT:
                raise KeyError(f"no metadata {bkey} for image {self.name}") from None
            raise make_ex(exc.errno, f"error removing metadata {bkey} for image {self.name}") from exc

    @requires_not_closed
    def metadata_list(self) -> Iterator[tuple[str, str]]:
        meta = self._run(image_meta.list_(self._ictx), f"error listing metadata for image {self.name}")
        return iter([(k, v.decode("utf-8", "replace")) for k, v in meta.items()])

    @requires_not_closed
    def config_list(self) -> Iterator[dict[str, Any]]:
        entries = self._run(image_meta.config_list(self._ictx.io, self._ictx), "error listing config options")
        return iter([{"name": e.name, "value": e.value, "source": e.source} for e in entries])

    @requires_not_closed
    def config_set(self, key: str, value: Any) -> None:
        bvalue = cstr(value, "value")
        assert bvalue is not None
        self._run(image_meta.set_(self._ictx, image_meta.CONF_PREFIX + text(key, "key"), bvalue),
                  f"error setting config {key} for image {self.name}")

    @requires_not_closed
    def config_get(self, key: str) -> str:
        try:
            value = self._loop.run(image_meta.get(self._ictx, image_meta.CONF_PREFIX + text(key, "key")))
        except ShoalError as exc:
            if exc.errno == errno.ENOENT:
                raise KeyError(f"no config {key} for image {self.name}") from None
            raise make_ex(exc.errno, f"error getting config {key} for image {self.name}") from exc
        return bytes(value).decode("utf-8")

    @requires_not_closed
    def config_remove(self, key: str) -> None:
        try:
            self._loop.run(image_meta.remove(self._ictx, image_meta.CONF_PREFIX + text(key, "key")))
        except ShoalError as exc:
            if exc.errno == errno.ENOENT:
                raise KeyError(f"no config {key} for image {self.name}") from None
            raise make_ex(exc.errno, f"error removing config {key} for image {self.name}") from exc

    # -- locks and watchers -------------------------------------------------------------------------
    @requires_not_closed
    def lock_exclusive(self, cookie: Any) -> None:
        self._run(image_admin.lock(self._ictx, text(cookie, "cookie"), True),
                  "error acquiring exclusive lock on image")

    @requires_not_closed
    def lock_shared(self, cookie: Any, tag: Any) -> None:
        self._run(image_admin.lock(self._ictx, text(cookie, "cookie"), False, text(tag, "tag")),
                  "error acquiring shared lock on image")

    @requires_not_closed
    def unlock(self, cookie: Any) -> None:
        self._run(image_admin.unlock(self._ictx, text(cookie, "cookie")), "error unlocking image")

    @requires_not_closed
    def break_lock(self, client: Any, cookie: Any) -> None:
        self._run(image_admin.break_lock(self._ictx, text(client, "client"), text(cookie, "cookie")),
                  "error unlocking image")

    @requires_not_closed
    def list_lockers(self) -> list[Any] | dict[str, Any]:
        info = self._run(image_admin.list_lockers(self._ictx), "error listing images")
        if not info.lockers:
            return []
        return {"tag": info.tag, "exclusive": info.exclusive, "lockers": list(info.lockers)}

    @requires_not_closed
    def is_exclusive_lock_owner(self) -> bool:
        return self._ictx.exclusive_owner

    @requires_not_closed
    def lock_acquire(self, lock_mode: int) -> None:
        if lock_mode != RBD_LOCK_MODE_EXCLUSIVE:
            raise make_ex(errno.EOPNOTSUPP, "error acquiring lock on image")  # librbd: exclusive mode only
        self._run(image_admin.managed_lock(self._ictx, True), "error acquiring lock on image")

    @requires_not_closed
    def lock_release(self) -> None:
        self._run(image_admin.managed_lock(self._ictx, False), "error releasing lock on image")

    @requires_not_closed
    def lock_break(self, lock_mode: int, lock_owner: Any) -> None:
        owner = text(lock_owner, "lock_owner")

        async def brk() -> None:
            info = await image_admin.list_lockers(self._ictx)
            cookies = [c for entity, c, _ in info.lockers if entity == owner and info.tag == image_admin.MANAGED_LOCK_TAG]
            if not cookies:
                raise ShoalError(f"{owner} does not own the exclusive lock", errno.ENOENT)
            await image_admin.break_lock(self._ictx, owner, cookies[0])

        self._run(brk(), "error breaking lock on image")

    @requires_not_closed
    def lock_get_owners(self) -> Iterator[dict[str, Any]]:
        owners = self._run(image_admin.lock_owners(self._ictx), f"error listing lock owners for image {self.name}")
        return iter([{"mode": RBD_LOCK_MODE_EXCLUSIVE, "owner": o} for o in owners])

    @requires_not_closed
    def watchers_list(self) -> Iterator[dict[str, Any]]:
        watchers = self._run(image_watchers(self._ictx.io, self._ictx.header.oid), "error listing watchers.")
        return iter([{"addr": str(w.get("addr", "")), "id": int(w.get("watcher_id", 0)),
                      "cookie": int(w.get("cookie", 0))} for w in watchers])

    # -- mirroring (not supported) -------------------------------------------------------------------
    def _no_mirroring(self, what: str) -> None:
        raise make_ex(errno.ENOSYS, f"{what} {self.name}")

    @requires_not_closed
    def mirror_image_enable(self, mode: int = 0) -> None:
        self._no_mirroring("error enabling mirroring for image")

    @requires_not_closed
    def mirror_image_disable(self, force: bool) -> None:
        self._no_mirroring("error disabling mirroring for image")

    @requires_not_closed
    def mirror_image_promote(self, force: bool) -> None:
        self._no_mirroring("error promoting image")

    @requires_not_closed
    def mirror_image_demote(self) -> None:
        self._no_mirroring("error demoting image")


class SnapIterator:
    """The snapshots of an image: dicts with id, size, name, namespace (and trash details)."""

    def __init__(self, image: Image) -> None:
        image.require_not_closed()
        self.image = image
        ictx = image._ictx
        image._run(ictx.refresh(), f"error listing snapshots for image {image.name}")
        self._snaps = snapshots.list_snaps(ictx)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for s in self._snaps:
            entry: dict[str, Any] = {"id": s.id, "size": s.size, "name": s.name, "namespace": s.namespace_type}
            if s.namespace_type == RBD_SNAP_NAMESPACE_TYPE_TRASH:
                entry["trash"] = {"original_name": str(s.namespace.get("original_name", ""))}
            elif s.namespace_type == RBD_SNAP_NAMESPACE_TYPE_GROUP:
                entry["group"] = None
            elif s.namespace_type == RBD_SNAP_NAMESPACE_TYPE_MIRROR:
                entry["mirror"] = None
            yield entry

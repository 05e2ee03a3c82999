"""Drop-in replacement for Ceph's python3-rbd binding (`import rbd`).

The same classes (`RBD`, `Image`, iterators), method and keyword names, constants and
exceptions as python-rbd (`src/pybind/rbd/rbd.pyx`), over Shoal's RBD core
(shoal/rbd). Calls block the calling thread while the core runs on the shared client
loop thread, so they are thread-safe and work from eventlet's native tpool threads.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from shoal.compat.rbd_calls import core_io, loop_of, management_ops, run, run_with_progress
from shoal.compat.rbd_errors import (
    ArgumentOutOfRange,
    ConnectionShutdown,
    DiskQuotaExceeded,
    Error,
    FunctionNotSupported,
    ImageBusy,
    ImageExists,
    ImageHasSnapshots,
    ImageNotFound,
    IncompleteWriteError,
    InvalidArgument,
    IOError,
    LogicError,
    NoSpace,
    ObjectExists,
    ObjectNotFound,
    OperationCanceled,
    OperationNotSupported,
    OSError,
    PermissionError,
    ReadOnlyImage,
    Timeout,
    cstr,
    make_ex,
    opt_text,
    text,
    uint,
)
from shoal.compat.rbd_image import (
    RBD_LOCK_MODE_EXCLUSIVE,
    RBD_LOCK_MODE_SHARED,
    RBD_SNAP_NAMESPACE_TYPE_GROUP,
    RBD_SNAP_NAMESPACE_TYPE_MIRROR,
    RBD_SNAP_NAMESPACE_TYPE_TRASH,
    RBD_SNAP_NAMESPACE_TYPE_USER,
    RBD_SNAP_REMOVE_FLATTEN,
    RBD_SNAP_REMOVE_UNPROTECT,
    Image,
    SnapIterator,
)
from shoal.errors import ShoalError
from shoal.rbd import features as _F
from shoal.rbd import image_meta, layering, pool_ops
from shoal.rbd.create import CreateOptions, create_image
from shoal.rbd.header import metadata_list
from shoal.rbd.ioctx import IoCtx
from shoal.rbd.naming import RBD_INFO
from shoal.rbd.object_map import FLAG_FAST_DIFF_INVALID, FLAG_OBJECT_MAP_INVALID

RBD_FEATURE_LAYERING = _F.LAYERING
RBD_FEATURE_STRIPINGV2 = _F.STRIPINGV2
RBD_FEATURE_EXCLUSIVE_LOCK = _F.EXCLUSIVE_LOCK
RBD_FEATURE_OBJECT_MAP = _F.OBJECT_MAP
RBD_FEATURE_FAST_DIFF = _F.FAST_DIFF
RBD_FEATURE_DEEP_FLATTEN = _F.DEEP_FLATTEN
RBD_FEATURE_JOURNALING = _F.JOURNALING
RBD_FEATURE_DATA_POOL = _F.DATA_POOL
RBD_FEATURE_OPERATIONS = _F.OPERATIONS
RBD_FEATURE_MIGRATING = _F.MIGRATING
RBD_FEATURE_NON_PRIMARY = _F.NON_PRIMARY

RBD_FEATURES_INCOMPATIBLE = _F.INCOMPATIBLE
RBD_FEATURES_RW_INCOMPATIBLE = _F.RW_INCOMPATIBLE
RBD_FEATURES_MUTABLE = _F.MUTABLE
RBD_FEATURES_SINGLE_CLIENT = _F.SINGLE_CLIENT
RBD_FEATURES_ALL = _F.ALL
RBD_FEATURES_DEFAULT = _F.DEFAULT

RBD_OPERATION_FEATURE_CLONE_PARENT = _F.OP_CLONE_PARENT
RBD_OPERATION_FEATURE_CLONE_CHILD = _F.OP_CLONE_CHILD
RBD_OPERATION_FEATURE_GROUP = _F.OP_GROUP
RBD_OPERATION_FEATURE_SNAP_TRASH = _F.OP_SNAP_TRASH

RBD_FLAG_OBJECT_MAP_INVALID = FLAG_OBJECT_MAP_INVALID
RBD_FLAG_FAST_DIFF_INVALID = FLAG_FAST_DIFF_INVALID

RBD_MIRROR_MODE_DISABLED, RBD_MIRROR_MODE_IMAGE, RBD_MIRROR_MODE_POOL = 0, 1, 2
RBD_MIRROR_IMAGE_MODE_JOURNAL, RBD_MIRROR_IMAGE_MODE_SNAPSHOT = 0, 1
RBD_MIRROR_IMAGE_DISABLING, RBD_MIRROR_IMAGE_ENABLED, RBD_MIRROR_IMAGE_DISABLED = 0, 1, 2


RBD_IMAGE_OPTION_FORMAT = 0
RBD_IMAGE_OPTION_FEATURES = 1
RBD_IMAGE_OPTION_ORDER = 2
RBD_IMAGE_OPTION_STRIPE_UNIT = 3
RBD_IMAGE_OPTION_STRIPE_COUNT = 4
RBD_IMAGE_OPTION_DATA_POOL = 10
RBD_IMAGE_OPTION_CLONE_FORMAT = 12

RBD_CONFIG_SOURCE_CONFIG = image_meta.SOURCE_CONFIG
RBD_CONFIG_SOURCE_POOL = image_meta.SOURCE_POOL
RBD_CONFIG_SOURCE_IMAGE = image_meta.SOURCE_IMAGE

RBD_TRASH_IMAGE_SOURCE_USER, RBD_TRASH_IMAGE_SOURCE_MIRRORING = 0, 1
RBD_TRASH_IMAGE_SOURCE_MIGRATION, RBD_TRASH_IMAGE_SOURCE_REMOVING = 2, 3

RBD_SNAP_CREATE_SKIP_QUIESCE, RBD_SNAP_CREATE_IGNORE_QUIESCE_ERROR = 1 << 0, 1 << 1
RBD_SNAP_REMOVE_FORCE = RBD_SNAP_REMOVE_UNPROTECT | RBD_SNAP_REMOVE_FLATTEN

_LIBRBD_VERSION = (1, 16, 0)  # what pacific's librbd reports (python-rbd 16.2.15)

Progress = Callable[[int, int], Any] | None


def _opts(order: int | None, features: int | None, stripe_unit: int | None, stripe_count: int | None,
          data_pool: Any) -> CreateOptions:
    return CreateOptions(order=None if order is None else uint(order, "int"),
                         features=None if features is None else uint(features),
                         stripe_unit=None if stripe_unit is None else uint(stripe_unit),
                         stripe_count=None if stripe_count is None else uint(stripe_count),
                         data_pool=opt_text(data_pool, "data_pool"))


def _trash_dict(entry: pool_ops.TrashEntry) -> dict[str, Any]:
    return {"id": entry.id, "name": entry.name, "source": entry.source,
            "deletion_time": datetime.utcfromtimestamp(entry.deletion_time),
            "deferment_end_time": datetime.utcfromtimestamp(entry.deferment_end_time)}


class RBD:
    """librbd's pool-level calls (create, clone, list, remove, rename, trash…)."""

    def version(self) -> tuple[int, int, int]:
        return _LIBRBD_VERSION

    def create(self, ioctx: Any, name: Any, size: int, order: int | None = None, old_format: bool = False,
               features: int | None = None, stripe_unit: int | None = None, stripe_count: int | None = None,
               data_pool: Any = None) -> None:
        name_s = text(name, "name")
        size = uint(size)
        if old_format:
            if features or stripe_unit or stripe_count or data_pool:
                raise InvalidArgument("format 1 images do not support feature masks, non-default striping, "
                                      "nor data pool")
            raise make_ex(errno.ENOSYS, "error creating image")  # format 1 images are not implemented
        io = core_io(ioctx)
        opts = _opts(order, features, stripe_unit, stripe_count, data_pool)
        run(loop_of(ioctx), create_image(io, name_s, size, opts), "error creating image")

    def clone(self, p_ioctx: Any, p_name: Any, p_snapname: Any, c_ioctx: Any, c_name: Any,
              features: int | None = None, order: int | None = None, stripe_unit: int | None = None,
              stripe_count: int | None = None, data_pool: Any = None, clone_format: int | None = None) -> None:
        p_snap, p_n, c_n = text(p_snapname, "p_snapname"), text(p_name, "p_name"), text(c_name, "c_name")
        p_io, c_io = core_io(p_ioctx), core_io(c_ioctx)
        opts = _opts(order, features, stripe_unit, stripe_count, data_pool)
        run(loop_of(c_ioctx), layering.clone(p_io, p_n, p_snap, c_io, c_n, opts, clone_format),
            "error creating clone")

    def list(self, ioctx: Any) -> list[str]:  # noqa: A003 - python-rbd's method name
        return [name for name, _ in run(loop_of(ioctx), pool_ops.list_images(core_io(ioctx)), "error listing images")]

    def list2(self, ioctx: Any) -> Iterator[dict[str, str]]:
        images = run(loop_of(ioctx), pool_ops.list_images(core_io(ioctx)), "error listing images.")
        return iter([{"id": image_id, "name": name} for name, image_id in images])

    def remove(self, ioctx: Any, name: Any, on_progress: Progress = None) -> None:
        io = core_io(ioctx)
        name_s, limit = text(name, "name"), management_ops(io)
        run_with_progress(loop_of(ioctx), lambda p: pool_ops.remove_image(io, name_s, p, limit), on_progress,
                          "error removing image")

    def rename(self, ioctx: Any, src: Any, dest: Any) -> None:
        run(loop_of(ioctx), pool_ops.rename_image(core_io(ioctx), text(src, "src"), text(dest, "dest")),
            "error renaming image")

    # -- trash -------------------------------------------------------------------------------------
    def trash_move(self, ioctx: Any, name: Any, delay: int = 0) -> None:
        run(loop_of(ioctx), pool_ops.trash_move(core_io(ioctx), text(name, "name"), uint(delay)),
            "error moving image to trash")

    def trash_list(self, ioctx: Any) -> Iterator[dict[str, Any]]:
        entries = run(loop_of(ioctx), pool_ops.trash_entries(core_io(ioctx)), "error listing trash entries")
        return iter([_trash_dict(e) for e in entries])

    def trash_get(self, ioctx: Any, image_id: Any) -> dict[str, Any]:
        entry = run(loop_of(ioctx), pool_ops.trash_entry(core_io(ioctx), text(image_id, "image_id")),
                    "error retrieving image from trash")
        return _trash_dict(entry)

    def trash_restore(self, ioctx: Any, image_id: Any, name: Any) -> None:
        run(loop_of(ioctx), pool_ops.trash_restore(core_io(ioctx), text(image_id, "image_id"), text(name, "name")),
            "error restoring image from trash")

    def trash_remove(self, ioctx: Any, image_id: Any, force: bool = False, on_progress: Progress = None) -> None:
        io = core_io(ioctx)
        image_id_s, limit = text(image_id, "image_id"), management_ops(io)
        run_with_progress(loop_of(ioctx),
                          lambda p: pool_ops.trash_remove_image(io, image_id_s, bool(force), p, limit),
                          on_progress, "error deleting image from trash")

    def trash_purge(self, ioctx: Any, expire_ts: datetime | None = None, threshold: float = -1) -> None:
        """Remove trashed images whose deferment ended before `expire_ts` (default: now)."""
        io = core_io(ioctx)
        expire = time.mktime(expire_ts.timetuple()) if expire_ts else time.time()
        loop = loop_of(ioctx)
        for entry in run(loop, pool_ops.trash_entries(io), "error purging images from trash"):
            if entry.source == "USER" and entry.deferment_end_time <= expire:
                run(loop, pool_ops.trash_remove_image(io, entry.id, True, None, management_ops(io)),
                    "error purging images from trash")

    # -- pool ----------------------------------------------------------------------------------------
    def pool_init(self, ioctx: Any, force: bool = False) -> None:
        run(loop_of(ioctx), pool_ops.pool_init(core_io(ioctx), bool(force)), "error initializing pool")

    def pool_stats_get(self, ioctx: Any) -> dict[str, int]:
        return run(loop_of(ioctx), pool_ops.pool_stats(core_io(ioctx)),  # type: ignore[no-any-return]
                   "error retrieving pool stats")

    def pool_metadata_get(self, ioctx: Any, key: Any) -> str:
        io = core_io(ioctx)
        bkey = cstr(key, "key")
        out = run(loop_of(ioctx), io.call(RBD_INFO, "rbd", "metadata_get", {"key": text(key, "key")}),
                  f"error getting metadata {bkey}")
        return bytes(out).decode("utf-8")

    def pool_metadata_set(self, ioctx: Any, key: Any, value: Any) -> None:
        io = core_io(ioctx)
        bkey = cstr(key, "key")
        run(loop_of(ioctx), io.call(RBD_INFO, "rbd", "metadata_set", {"data": {text(key, "key"): cstr(value, "value")}}),
            f"error setting metadata {bkey}")

    def pool_metadata_remove(self, ioctx: Any, key: Any) -> None:
        io = core_io(ioctx)
        bkey = cstr(key, "key")
        run(loop_of(ioctx), io.call(RBD_INFO, "rbd", "metadata_remove", {"key": text(key, "key")}),
            f"error removing metadata {bkey}")

    def pool_metadata_list(self, ioctx: Any) -> Iterator[tuple[str, str]]:
        io = core_io(ioctx)
        meta = run(loop_of(ioctx), _pool_meta_list(io), "error listing metadata")
        return iter([(k, v.decode("utf-8", "replace")) for k, v in meta.items()])

    def config_list(self, ioctx: Any) -> Iterator[dict[str, Any]]:
        entries = run(loop_of(ioctx), image_meta.config_list(core_io(ioctx)), "error listing config options")
        return iter([{"name": e.name, "value": e.value, "source": e.source} for e in entries])

    def config_get(self, ioctx: Any, key: str) -> str:
        try:
            return self.pool_metadata_get(ioctx, image_meta.CONF_PREFIX + text(key, "key"))
        except ImageNotFound:
            raise KeyError(f"no config {key} for pool {ioctx.get_pool_name()}") from None

    def config_set(self, ioctx: Any, key: str, value: Any) -> None:
        self.pool_metadata_set(ioctx, image_meta.CONF_PREFIX + text(key, "key"), value)

    def config_remove(self, ioctx: Any, key: str) -> None:
        try:
            self.pool_metadata_remove(ioctx, image_meta.CONF_PREFIX + text(key, "key"))
        except ImageNotFound:
            raise KeyError(f"no config {key} for pool {ioctx.get_pool_name()}") from None

    def namespace_list(self, ioctx: Any) -> list[str]:
        core_io(ioctx)
        return []  # RBD namespaces are not supported: the pool has only the default one

    def namespace_exists(self, ioctx: Any, name: Any) -> bool:
        core_io(ioctx)
        return False


async def _pool_meta_list(io: IoCtx) -> dict[str, bytes]:
    try:
        return await metadata_list(io, RBD_INFO)
    except ShoalError as exc:
        if exc.errno == errno.ENOENT:
            return {}  # no rbd_info: no pool metadata
        raise


__all__ = [
    "ArgumentOutOfRange", "ConnectionShutdown", "DiskQuotaExceeded", "Error", "FunctionNotSupported", "IOError",
    "Image", "ImageBusy", "ImageExists", "ImageHasSnapshots", "ImageNotFound", "IncompleteWriteError",
    "InvalidArgument", "LogicError", "NoSpace", "OSError", "ObjectExists", "ObjectNotFound", "OperationCanceled",
    "OperationNotSupported", "PermissionError", "RBD", "ReadOnlyImage", "SnapIterator", "Timeout",
    "RBD_CONFIG_SOURCE_CONFIG", "RBD_CONFIG_SOURCE_IMAGE", "RBD_CONFIG_SOURCE_POOL",
    "RBD_FEATURES_ALL", "RBD_FEATURES_DEFAULT", "RBD_FEATURES_INCOMPATIBLE", "RBD_FEATURES_MUTABLE",
    "RBD_FEATURES_RW_INCOMPATIBLE", "RBD_FEATURES_SINGLE_CLIENT", "RBD_FEATURE_DATA_POOL",
    "RBD_FEATURE_DEEP_FLATTEN", "RBD_FEATURE_EXCLUSIVE_LOCK", "RBD_FEATURE_FAST_DIFF", "RBD_FEATURE_JOURNALING",
    "RBD_FEATURE_LAYERING", "RBD_FEATURE_MIGRATING", "RBD_FEATURE_NON_PRIMARY", "RBD_FEATURE_OBJECT_MAP",
    "RBD_FEATURE_OPERATIONS", "RBD_FEATURE_STRIPINGV2", "RBD_FLAG_FAST_DIFF_INVALID", "RBD_FLAG_OBJECT_MAP_INVALID",
    "RBD_IMAGE_OPTION_CLONE_FORMAT", "RBD_IMAGE_OPTION_DATA_POOL", "RBD_IMAGE_OPTION_FEATURES",
    "RBD_IMAGE_OPTION_FORMAT", "RBD_IMAGE_OPTION_ORDER", "RBD_IMAGE_OPTION_STRIPE_COUNT",
    "RBD_IMAGE_OPTION_STRIPE_UNIT", "RBD_LOCK_MODE_EXCLUSIVE", "RBD_LOCK_MODE_SHARED",
    "RBD_MIRROR_IMAGE_DISABLED", "RBD_MIRROR_IMAGE_DISABLING", "RBD_MIRROR_IMAGE_ENABLED",
    "RBD_MIRROR_IMAGE_MODE_JOURNAL", "RBD_MIRROR_IMAGE_MODE_SNAPSHOT", "RBD_MIRROR_MODE_DISABLED",
    "RBD_MIRROR_MODE_IMAGE", "RBD_MIRROR_MODE_POOL", "RBD_OPERATION_FEATURE_CLONE_CHILD",
    "RBD_OPERATION_FEATURE_CLONE_PARENT", "RBD_OPERATION_FEATURE_GROUP", "RBD_OPERATION_FEATURE_SNAP_TRASH",
    "RBD_SNAP_CREATE_IGNORE_QUIESCE_ERROR", "RBD_SNAP_CREATE_SKIP_QUIESCE", "RBD_SNAP_NAMESPACE_TYPE_GROUP",
    "RBD_SNAP_NAMESPACE_TYPE_MIRROR", "RBD_SNAP_NAMESPACE_TYPE_TRASH", "RBD_SNAP_NAMESPACE_TYPE_USER",
    "RBD_SNAP_REMOVE_FLATTEN", "RBD_SNAP_REMOVE_FORCE", "RBD_SNAP_REMOVE_UNPROTECT",
    "RBD_TRASH_IMAGE_SOURCE_MIGRATION", "RBD_TRASH_IMAGE_SOURCE_MIRRORING", "RBD_TRASH_IMAGE_SOURCE_REMOVING",
    "RBD_TRASH_IMAGE_SOURCE_USER",
]

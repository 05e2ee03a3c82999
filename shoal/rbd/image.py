"""An open image (librbd's ImageCtx): identity, header state, snapshot selection, parent.

`open_image` resolves a name (rbd_id.<name>) or an id, reads the header in one round
trip and selects HEAD or a snapshot. The state lives only in this object and is only
touched on the client loop thread. It is re-read by `refresh()`:

* after a management operation done through this handle (resize, snapshots, flatten…),
  which calls `refresh()` itself;
* whenever `needs_refresh` is set: the header watch (image_watcher.py) sets it when
  another client announces a header change, and entry points call `refresh_if_needed()`
  first, as librbd's `refresh_if_required()`.

A writable open watches the header (`watcher`, also the `notifier` that operations
changing the header call through `header_updated()`), and an image with EXCLUSIVE_LOCK
gets a lock manager (`lock`, exclusive_lock.py): every write enters its `write_guard()`,
which takes the lock first, instead of the bare I/O gate. `exclusive_owner` says whether
this handle owns the lock; whenever that changes the cached HEAD object map is dropped,
since another client may have written meanwhile. Read-only opens do neither, as librbd.

A writable HEAD open with `rbd_cache` on gets a write-back cache (`cache`, cache.py) and
every open gets librbd's perf counters (`perf`, `librbd-<id>-<pool>-<name>` in the
client's `perf dump`). Whatever must see every acknowledged write in the cluster first
calls `flush_cache()`: close, the management operations (`op_guard` does it for
snapshots, rollback and resize; flatten, copy and diff call it) and the exclusive-lock
release (`before_lock_release`).
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import AsyncIterator, Awaitable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Protocol

from shoal.admin.perf import PerfCounters
from shoal.client.rados_client import RadosClient
from shoal.errors import ShoalError, from_errno
from shoal.rbd import features as F
from shoal.rbd import naming
from shoal.rbd.cache import CacheSettings, ImageCache
from shoal.rbd.exclusive_lock import ExclusiveLock
from shoal.rbd.header import Header, HeaderState, ParentSpec, SnapInfo, dir_get_name, get_image_id, trash_get
from shoal.rbd.image_watcher import HEADER_UPDATE, ImageWatcher
from shoal.rbd.ioctx import CEPH_NOSNAP, IoCtx, IoGate, SnapContext
from shoal.rbd.striping import Layout

if TYPE_CHECKING:
    from shoal.rbd.object_map import ObjectMap

log = logging.getLogger("shoal.rbd")

# librbd's per-image counters (the subset Shoal counts), and the cache's own.
PERF_COUNTERS = ("rd", "rd_bytes", "wr", "wr_bytes", "discard", "discard_bytes", "flush",
                 "wr_blocked", "wb_ops", "wb_bytes", "cache_dirty")
PERF_AVERAGES = ("rd_latency", "wr_latency", "discard_latency", "flush_latency")


# Feature bits this client implements; an image needing others can't be opened (ENOSYS),
# as librbd refuses images with unknown incompatible features. JOURNALING is accepted but
# no journal is written (nothing in Shoal replays one: there is no rbd-mirror).
SUPPORTED_FEATURES = (F.LAYERING | F.STRIPINGV2 | F.EXCLUSIVE_LOCK | F.OBJECT_MAP | F.FAST_DIFF
                      | F.DEEP_FLATTEN | F.JOURNALING | F.DATA_POOL | F.OPERATIONS)
SUPPORTED_OP_FEATURES = F.OP_CLONE_PARENT | F.OP_CLONE_CHILD | F.OP_SNAP_TRASH


class LockManager(Protocol):
    """The exclusive-lock manager as the image sees it (ExclusiveLock)."""

    def write_guard(self) -> AbstractAsyncContextManager[object]: ...
    def op_guard(self) -> AbstractAsyncContextManager[object]: ...
    async def acquire(self) -> None: ...
    async def release(self) -> None: ...


class HeaderNotifier(Protocol):
    """The header watch as the image sees it (ImageWatcher.notify)."""

    async def notify(self, op: str, **fields: object) -> None: ...


class ImageCtx:
    def __init__(self, io: IoCtx, image_id: str, name: str | None, read_only: bool) -> None:
        self.io = io
        self.id = image_id
        self.name = name
        self.read_only = read_only
        self.header = Header(io, image_id)
        self.state: HeaderState | None = None
        self.snap_id: int | None = None  # None = HEAD
        self.snap_name: str | None = None
        self.layout = Layout()
        self.data_io = io
        self.parent: ImageCtx | None = None  # opened on first use, at the parent snapshot
        self.needs_refresh = False
        self._exclusive_owner = False
        self.lock: LockManager | None = None
        self.notifier: HeaderNotifier | None = None
        self.watcher: ImageWatcher | None = None
        self.closed = False
        self.gate = IoGate()
        self.writes_in_flight: set[asyncio.Future[None]] = set()  # what a flush waits for
        self.op_lock = asyncio.Lock()  # one management operation at a time per handle
        self.object_map: ObjectMap | None = None  # None also when loaded but unusable
        self.object_map_for = -1  # the version (snap id, CEPH_NOSNAP) `object_map` was loaded for
        self.cache: ImageCache | None = None
        self.perf: PerfCounters | None = None

    # -- write ownership -------------------------------------------------------------------------
    @property
    def exclusive_owner(self) -> bool:
        return self._exclusive_owner

    @exclusive_owner.setter
    def exclusive_owner(self, owned: bool) -> None:
        if owned != self._exclusive_owner and self.object_map_for == CEPH_NOSNAP:
            self.object_map, self.object_map_for = None, -1
        self._exclusive_owner = owned

    def write_guard(self) -> AbstractAsyncContextManager[object]:
        """What a write holds while it runs: the lock manager's guard, else the I/O gate."""
        return self.lock.write_guard() if self.lock is not None else self.gate

    @asynccontextmanager
    async def op_guard(self) -> AsyncIterator[None]:
        """What an operation that changes the SnapContext or size holds: the exclusive lock
        too when the image has one, so that no other client writes with a stale context.
        Cached writes go to the cluster first: a snapshot includes, and a rollback or
        shrink overrides, every write acknowledged before the operation began."""
        await self.flush_cache()
        guard = self.lock.op_guard() if self.lock is not None else self.op_lock
        async with guard:
            yield

    # -- cache ----------------------------------------------------------------------------------
    async def flush_cache(self) -> None:
        """Write back every cached write (not a user flush: write-through stays on)."""
        if self.cache is not None:
            await self.cache.flush()

    async def before_lock_release(self) -> None:
        """Cached writes go out while the lock is still ours. A failure is logged, not
        raised: the bytes stay dirty and take the lock back when written."""
        try:
            await self.flush_cache()
        except Exception as exc:  # noqa: BLE001 - the release must go on
            log.warning("event=cache_flush_before_release_failed image=%s error=%r", self.id, exc)

    # -- identity ----------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"<ImageCtx {self.spec_text()} id={self.id}>"

    def spec_text(self) -> str:
        snap = f"@{self.snap_name}" if self.snap_name else ""
        return f"{self.name or self.id}{snap}"

    @property
    def client(self) -> RadosClient:
        return self.io.client

    @property
    def st(self) -> HeaderState:
        assert self.state is not None, "image header not loaded"
        return self.state

    @property
    def object_prefix(self) -> str:
        return self.st.object_prefix

    def data_object(self, objectno: int) -> str:
        return naming.data_object(self.st.object_prefix, objectno)

    # -- versions -------------------------------------------------------------------------------
    @property
    def snapc(self) -> SnapContext:
        return self.st.snapc

    @property
    def read_snap(self) -> int:
        """The snap id reads go to (CEPH_NOSNAP for HEAD)."""
        return CEPH_NOSNAP if self.snap_id is None else self.snap_id

    def snap_info(self, snap_id: int) -> SnapInfo:
        info = self.st.snaps.get(snap_id)
        if info is None:
            raise from_errno(errno.ENOENT, f"image {self.spec_text()} has no snapshot id {snap_id}")
        return info

    def snap_by_name(self, name: str, namespace_type: str = "user") -> SnapInfo:
        for info in self.st.snaps.values():
            if info.name == name and info.namespace.get("type") == namespace_type:
                return info
        raise from_errno(errno.ENOENT, f"image {self.name or self.id} has no snapshot {name!r}")

    def size_at(self, snap_id: int | None) -> int:
        if snap_id is None or snap_id == CEPH_NOSNAP:
            return self.st.size
        return self.snap_info(snap_id).size

    @property
    def size(self) -> int:
        """Size of the selected version (HEAD or the snapshot)."""
        return self.size_at(self.snap_id)

    def parent_overlap_at(self, snap_id: int | None) -> int:
        """Bytes of the version that read through to the parent (0 = no parent)."""
        st = self.st
        if st.parent is None:
            return 0
        if snap_id is None or snap_id == CEPH_NOSNAP:
            overlap = st.head_overlap
            return min(int(overlap), st.size) if overlap else 0
        info = self.snap_info(snap_id)
        return min(int(info.parent_overlap), info.size) if info.parent_overlap else 0

    def require_writable(self, what: str) -> None:
        if self.read_only or self.snap_id is not None:
            raise from_errno(errno.EROFS, f"{what}: image {self.spec_text()} is read-only")

    # -- loading ------------------------------------------------------------------------------
    async def refresh(self) -> None:
        st = await self.header.load(self.read_only)
        unknown = st.incompatible & ~SUPPORTED_FEATURES
        if unknown:
            raise from_errno(errno.ENOSYS, f"image {self.spec_text()} uses unsupported features "
                                           f"{','.join(F.format_features(unknown)) or hex(unknown)}")
        if st.features & F.OPERATIONS and st.op_features & ~SUPPORTED_OP_FEATURES and not self.read_only:
            raise from_errno(errno.ENOSYS, f"image {self.spec_text()} uses unsupported operation features")
        old = self.state
        self.state = st
        self.layout = Layout(st.order, st.stripe_unit, st.stripe_count)
        if old is None or old.features != st.features or old.size != st.size or old.flags != st.flags:
            self.object_map, self.object_map_for = None, -1  # reloaded when next needed
        self.data_io = self.io if st.data_pool_id < 0 else self.io.with_pool(st.data_pool_id)
        if self.snap_id is not None and self.snap_id not in st.snaps:
            raise from_errno(errno.ENOENT, f"snapshot {self.snap_name!r} of image {self.name} was removed")
        await self._sync_parent()
        self.needs_refresh = False

    async def header_updated(self) -> None:
        """After this handle changed the header: re-read it and tell the other handles."""
        await self.refresh()
        if self.notifier is not None:
            await self.notifier.notify(HEADER_UPDATE)

    async def refresh_if_needed(self) -> None:
        if self.needs_refresh:
            await self.refresh()

    async def _sync_parent(self) -> None:
        """Drop a parent handle that no longer matches the header's parent spec."""
        spec = self.st.parent
        if self.parent is not None and (spec is None or self.parent_spec() != spec):
            await self.parent.close()
            self.parent = None

    def parent_spec(self) -> ParentSpec | None:
        p = self.parent
        if p is None:
            return None
        return ParentSpec(p.io.pool_id, p.io.nspace, p.id, p.snap_id if p.snap_id is not None else CEPH_NOSNAP)

    async def get_parent(self) -> ImageCtx:
        """The parent image at the parent snapshot, opened read-only on first use."""
        spec = self.st.parent
        if spec is None:
            raise from_errno(errno.ENOENT, f"image {self.spec_text()} has no parent")
        if self.parent is None:
            parent = ImageCtx(self.io.with_pool(spec.pool_id, spec.pool_namespace), spec.image_id, None, True)
            await parent.refresh()
            await parent.set_snap_id(spec.snap_id)
            self.parent = parent
        return self.parent

    async def set_snap_id(self, snap_id: int | None) -> None:
        """Select HEAD (None) or a snapshot by id (ENOENT if it does not exist)."""
        await self.flush_cache()
        if snap_id is None or snap_id == CEPH_NOSNAP:
            self.snap_id, self.snap_name = None, None
        else:
            info = self.snap_info(snap_id)
            self.snap_id, self.snap_name = snap_id, info.name
        self.object_map, self.object_map_for = None, -1

    async def set_snap_name(self, name: str | None) -> None:
        await self.set_snap_id(None if name is None else self.snap_by_name(name).id)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        error: BaseException | None = None
        if self.cache is not None:
            try:
                await self.cache.close()
            except Exception as exc:  # noqa: BLE001 - close the rest, then report it
                error = exc
        if self.perf is not None:
            self.client.perf.remove(self.perf)
        if self.lock is not None:
            await self.lock.release()
        if self.watcher is not None:
            await self.watcher.unregister()
        if self.parent is not None:
            await self.parent.close()
            self.parent = None
        if error is not None:
            raise error


async def open_image(io: IoCtx, name: str | None = None, image_id: str | None = None,
                     snapshot: str | None = None, read_only: bool = False,
                     snap_id: int | None = None) -> ImageCtx:
    """Open an image by name or id, at HEAD or a snapshot (by name or id).

    ENOENT for a missing image or snapshot; ENOSYS for features this client can't handle.
    """
    if (name is None) == (image_id is None):
        raise from_errno(errno.EINVAL, "give exactly one of image name and image id")
    if image_id is None:
        assert name is not None
        image_id = await get_image_id(io, name)
    ictx = ImageCtx(io, image_id, name, read_only)
    try:
        await ictx.refresh()
        if ictx.name is None:
            ictx.name = await _name_of(io, image_id)
        if snapshot is not None:
            await ictx.set_snap_name(snapshot)
        elif snap_id is not None:
            await ictx.set_snap_id(snap_id)
        if not read_only:
            await _watch(ictx)
        _add_perf_and_cache(ictx)
    except ShoalError:
        await ictx.close()
        raise
    return ictx


def _add_perf_and_cache(ictx: ImageCtx) -> None:
    client = ictx.client
    try:
        pool = ictx.io.pool_name()
    except ShoalError:
        pool = str(ictx.io.pool_id)
    ictx.perf = client.perf.create(f"librbd-{ictx.id}-{pool}-{ictx.name or ''}", PERF_COUNTERS, PERF_AVERAGES,
                                   ("cache_dirty",))
    if ictx.read_only:
        return  # read-only opens have no cache; reads at a snapshot bypass it (io.read)
    settings = CacheSettings.from_conf(client.conf)
    if settings is None:
        return
    from shoal.rbd import io as rbd_io  # io.py imports this module

    def write_direct(off: int, data: memoryview) -> Awaitable[None]:
        return rbd_io.write_direct(ictx, off, data)

    ictx.cache = ImageCache(settings, write_direct, lambda: ictx.size_at(None), ictx.perf, ictx.layout.object_size)


async def _watch(ictx: ImageCtx) -> None:
    """A writable handle watches its header (librbd's ImageWatcher): it hears other handles'
    header changes, and with EXCLUSIVE_LOCK it takes part in the lock hand-off."""
    watcher = ImageWatcher(ictx)
    await watcher.register()
    ictx.watcher = watcher
    ictx.notifier = watcher
    if ictx.st.features & F.EXCLUSIVE_LOCK:
        ictx.lock = ExclusiveLock(ictx, watcher)


async def _name_of(io: IoCtx, image_id: str) -> str | None:
    """The name of an image opened by id: from the directory, else from its trash entry."""
    try:
        return await dir_get_name(io, image_id)
    except ShoalError as exc:
        if exc.errno != errno.ENOENT:
            raise
    try:
        return str((await trash_get(io, image_id)).get("name") or "") or None
    except ShoalError as exc:
        if exc.errno != errno.ENOENT:
            raise
    return None

"""The export registry: export names (`pool/image`, `pool/image@snap`, `pool/ns/image`) to
images opened on the gateway's cluster client.

An image is opened on first use and kept open: every connection to that name shares the one
handle (hence CAN_MULTI_CONN: a flush through it covers all connections' writes). A
snapshot is exported read-only. So is an image when the gateway's cephx user may not write
it: the gateway finds out by trying — the writable open, then a harmless write-class op on
the header — and opens it read-only instead; a client's write then gets EPERM.
"""

from __future__ import annotations

import asyncio
import errno

from shoal.client.rados_client import RadosClient
from shoal.errors import ShoalError
from shoal.nbd import allocation
from shoal.nbd import constants as C
from shoal.nbd.backend import Backend, ExportError
from shoal.rbd import io, naming
from shoal.rbd.header import dir_list
from shoal.rbd.image import ImageCtx, open_image
from shoal.rbd.ioctx import IoCtx
from shoal.wire.osd_op import OpBuilder

_DENIED = (errno.EPERM, errno.EACCES)
ZERO_CHUNK = 4 << 20


def parse_export(name: str) -> tuple[str, str, str, str | None]:
    """(pool, namespace, image, snap) of an export name; ValueError if it is not one."""
    try:
        pool, nspace, image, snap = naming.parse_image_spec(name)
    except Exception as exc:  # SpecError: the name is not an image spec
        raise ValueError(f"export name {name!r} is not pool/image[@snap]") from exc
    if not pool or not image:
        raise ValueError(f"export name {name!r} is not pool/image[@snap]")
    return pool, nspace, image, snap


class RbdBackend:
    """One opened image (or snapshot) served as an export."""

    def __init__(self, name: str, ictx: ImageCtx, read_only: bool) -> None:
        self.name = name
        self.ictx = ictx
        self.read_only = read_only

    @property
    def size(self) -> int:
        return self.ictx.size

    async def read(self, off: int, length: int) -> bytearray:
        return await io.read_buffer(self.ictx, off, length)

    async def write(self, off: int, data: bytes) -> None:
        await io.write(self.ictx, off, data)

    async def trim(self, off: int, length: int) -> None:
        await io.discard(self.ictx, off, length)

    async def write_zeroes(self, off: int, length: int, no_hole: bool) -> None:
        if not no_hole:
            await io.write_zeroes(self.ictx, off, length)
            return
        # NO_HOLE: the range must stay allocated, so zeros are written, not discarded.
        zeros = memoryview(bytes(min(length, ZERO_CHUNK)))
        pos = off
        while pos < off + length:
            n = min(len(zeros), off + length - pos)
            await io.write(self.ictx, pos, zeros[:n])
            pos += n

    async def flush(self) -> None:
        await io.flush(self.ictx)

    async def block_status(self, off: int, length: int) -> list[tuple[int, int]]:
        return await allocation.extents(self.ictx, off, length)

    async def close(self) -> None:
        await io.flush(self.ictx)
        await self.ictx.close()


class RbdRegistry:
    """Exports of one gateway. `allowed` limits the names served (None: any image the user can open)."""

    def __init__(self, client: RadosClient, allowed: list[str] | None = None, read_only: bool = False) -> None:
        for name in allowed or []:
            parse_export(name)
        self.client = client
        self.allowed = allowed
        self.force_read_only = read_only
        self.opened: dict[str, RbdBackend] = {}
        self._opening: dict[str, asyncio.Lock] = {}

    async def names(self) -> list[str]:
        if self.allowed is not None:
            return list(self.allowed)
        names = []
        for pool in self.client.pools():
            try:
                images = await dir_list(IoCtx(self.client, pool.id))
            except ShoalError:
                continue  # not an rbd pool, or one this user may not list
            names += [f"{pool.name}/{image}" for image in sorted(images)]
        return names

    async def lookup(self, name: str) -> Backend:
        if self.allowed is not None and name not in self.allowed:
            raise ExportError(C.REP_ERR_UNKNOWN, f"{name!r} is not exported by this server")
        try:
            spec = parse_export(name)
        except ValueError as exc:
            raise ExportError(C.REP_ERR_UNKNOWN, str(exc)) from None
        backend = self.opened.get(name)
        if backend is not None and not backend.ictx.closed:
            return backend
        lock = self._opening.setdefault(name, asyncio.Lock())
        async with lock:
            backend = self.opened.get(name)
            if backend is None or backend.ictx.closed:
                try:
                    backend = await self._open(name, *spec)
                except ShoalError as exc:
                    reply = C.REP_ERR_UNKNOWN if exc.errno == errno.ENOENT else (
                        C.REP_ERR_POLICY if exc.errno in _DENIED else C.REP_ERR_PLATFORM)
                    raise ExportError(reply, f"cannot open {name}: {exc}") from None
                self.opened[name] = backend
        return backend

    async def _open(self, name: str, pool_name: str, nspace: str, image: str, snap: str | None) -> RbdBackend:
        pool = self.client.pool_by_name(pool_name)
        if pool is None:  # perhaps created since the gateway's last map
            await self.client.wait_for_latest_map()
            pool = self.client.pool_by_name(pool_name)
        if pool is None:
            raise ShoalError(f"pool {pool_name!r} does not exist", errno.ENOENT)
        ioc = IoCtx(self.client, pool.id, nspace)
        if snap is not None or self.force_read_only:
            ictx = await open_image(ioc, image, snapshot=snap, read_only=True)
            return RbdBackend(name, ictx, True)
        try:
            ictx = await open_image(ioc, image)
        except ShoalError as exc:
            if exc.errno not in _DENIED:
                raise
            return RbdBackend(name, await open_image(ioc, image, read_only=True), True)
        if not await _may_write(ioc, ictx):
            await ictx.close()
            return RbdBackend(name, await open_image(ioc, image, read_only=True), True)
        return RbdBackend(name, ictx, False)

    async def close(self) -> None:
        for backend in self.opened.values():
            try:
                await backend.close()
            except ShoalError:
                pass  # shutting down: the cluster may be gone already
        self.opened.clear()


async def _may_write(ioc: IoCtx, ictx: ImageCtx) -> bool:
    """Whether the OSDs let this user write the image: a non-exclusive create of its header
    (which exists, so nothing changes) needs the same `w` cap as a data write."""
    b = OpBuilder()
    b.add("create", excl=False)
    reply = await ioc.operate(naming.header_object(ictx.id), b)
    if reply.result in (-errno.EPERM, -errno.EACCES):
        return False
    return True

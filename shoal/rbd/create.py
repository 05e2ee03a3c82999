"""Creating a format-2 image, as librbd's CreateRequest lays it out (ceph-facts §1).

Order of effects: `rbd_id.<name>` (exclusive create: the name is taken atomically), the
`rbd_directory` entry, the header (`rbd_header.<id>` with cls `create`), striping, and
the object map. A failure undoes what was done, newest first.
"""

from __future__ import annotations

import errno
import secrets
from dataclasses import dataclass
from typing import Any

from shoal.errors import ShoalError, from_errno
from shoal.rbd import features as F
from shoal.rbd import naming, object_map
from shoal.rbd.header import RBD, create_id_object, dir_add, dir_remove, remove_object
from shoal.rbd.ioctx import IoCtx, add_call
from shoal.rbd.striping import MAX_ORDER, MIN_ORDER, Layout
from shoal.wire.osd_op import OpBuilder

ID_ATTEMPTS = 5


@dataclass(frozen=True)
class CreateOptions:
    """What `rbd create` / python-rbd's create accept; None = the client's configured default."""

    order: int | None = None
    features: int | None = None
    stripe_unit: int | None = None
    stripe_count: int | None = None
    data_pool: str | None = None


def _conf(io: IoCtx, name: str, default: Any) -> Any:
    try:
        return io.client.conf.get(name)
    except Exception:  # noqa: BLE001 - a config object without the option: use librbd's default
        return default


@dataclass(frozen=True)
class ResolvedOptions:
    order: int
    features: int
    stripe_unit: int
    stripe_count: int
    data_pool_id: int  # -1 = data in the image's pool


def resolve(io: IoCtx, opts: CreateOptions) -> ResolvedOptions:
    """Apply defaults and librbd's validation: EDOM for a bad order, EINVAL for bad striping
    or feature combinations, ENOSYS for unknown feature bits, ENOENT for a missing data pool."""
    order = opts.order or int(_conf(io, "rbd_default_order", 22))
    if not MIN_ORDER <= order <= MAX_ORDER:
        raise from_errno(errno.EDOM, f"order must be in the range [{MIN_ORDER}, {MAX_ORDER}]")
    features = opts.features if opts.features is not None else int(_conf(io, "rbd_default_features", F.DEFAULT))
    su = opts.stripe_unit if opts.stripe_unit is not None else int(_conf(io, "rbd_default_stripe_unit", 0))
    sc = opts.stripe_count if opts.stripe_count is not None else int(_conf(io, "rbd_default_stripe_count", 0))
    if (su == 0) != (sc == 0):
        raise from_errno(errno.EINVAL, "must specify both (or neither) of stripe-unit and stripe-count")
    layout = Layout(order, su, sc)
    data_pool_id = -1
    pool_name = opts.data_pool if opts.data_pool is not None else str(_conf(io, "rbd_default_data_pool", "") or "")
    if pool_name:
        pool = io.client.pool_by_name(pool_name)
        if pool is None:
            raise from_errno(errno.ENOENT, f"data pool {pool_name!r} does not exist")
        if pool.id != io.pool_id:
            data_pool_id = pool.id
            features |= F.DATA_POOL
    features = F.implied_features(features, not layout.is_default)
    F.validate_features(features)
    return ResolvedOptions(order, features, layout.stripe_unit, layout.stripe_count, data_pool_id)


def new_image_id(io: IoCtx) -> str:
    """librbd's id: hex of the client's global id followed by a random 32-bit value.

    From the OS's randomness, not `random`: callers (test frameworks among them) may seed
    the global generator, and equal ids would collide in the directory.
    """
    return naming.generate_image_id(int(io.client.instance_id), secrets.randbits(32))


async def create_image(io: IoCtx, name: str, size: int, opts: CreateOptions) -> str:
    """Create image `name` of `size` bytes; returns its id. EEXIST when the name is taken."""
    if not name:
        raise from_errno(errno.EINVAL, "image name must not be empty")
    if size < 0:
        raise from_errno(errno.EINVAL, f"creating image {name!r}: negative size")
    ro = resolve(io, opts)
    image_id = await _claim_name(io, name)
    undo: list[Any] = [lambda: remove_object(io, naming.id_object(name)),
                       lambda: dir_remove(io, name, image_id)]
    try:
        await write_header(io, image_id, size, ro)
        undo.append(lambda: remove_object(io, naming.header_object(image_id)))
        if ro.features & F.OBJECT_MAP:
            await object_map.create(io, image_id, Layout(ro.order, ro.stripe_unit, ro.stripe_count).object_count(size))
    except ShoalError:
        for step in reversed(undo):
            try:
                await step()
            except ShoalError:
                pass  # best effort: the original failure is what the caller must see
        raise
    return image_id


async def _claim_name(io: IoCtx, name: str) -> str:
    """Create rbd_id.<name> and the directory entry under a fresh id; returns the id.

    EEXIST when the name is taken. An id already in the directory (EBADF, a collision of
    the random part) is retried with another.
    """
    for _ in range(ID_ATTEMPTS):
        image_id = new_image_id(io)
        await create_id_object(io, name, image_id)
        try:
            await dir_add(io, name, image_id)
            return image_id
        except ShoalError as exc:
            await remove_object(io, naming.id_object(name))
            if exc.errno != errno.EBADF:
                raise
    raise from_errno(errno.EBADF, f"creating image {name!r}: no unused image id after {ID_ATTEMPTS} attempts")


async def write_header(io: IoCtx, image_id: str, size: int, ro: ResolvedOptions) -> None:
    """The header object: cls create (EEXIST if it exists), then the striping.

    Two op vectors, not one: the OSD cannot yet read back, within one vector, the omap
    of an object that vector created (cls set_stripe_unit_count reads the features).
    """
    prefix = naming.data_prefix(image_id)
    if ro.data_pool_id >= 0:
        prefix = f"{naming.RBD_DATA_PREFIX}{io.pool_id}.{image_id}"  # librbd: data-pool images name their pool
    oid = naming.header_object(image_id)
    b = OpBuilder()
    add_call(b, RBD, "create", {"size": size, "order": ro.order, "features": ro.features,
                                "object_prefix": prefix, "data_pool_id": ro.data_pool_id})
    await io.checked(oid, b, f"creating the header of image id {image_id}")
    if ro.features & F.STRIPINGV2:
        b = OpBuilder()
        add_call(b, RBD, "set_stripe_unit_count", {"stripe_unit": ro.stripe_unit, "stripe_count": ro.stripe_count})
        await io.checked(oid, b, f"setting the striping of image id {image_id}")

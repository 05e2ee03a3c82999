"""Image-meta (key/value pairs in the header) and the image-level config overrides kept in it.

A config override is image-meta `conf_<option>` (librbd's convention); `config_list`
shows every rbd option with its effective value and where it comes from: the client's
configuration, a pool override (pool-meta `conf_<option>` on `rbd_info`) or the image.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from shoal.errors import ShoalError, from_errno
from shoal.rbd import naming
from shoal.rbd.header import metadata_list
from shoal.rbd.image import ImageCtx
from shoal.rbd.ioctx import IoCtx

CONF_PREFIX = "conf_"
SOURCE_CONFIG, SOURCE_POOL, SOURCE_IMAGE = 0, 1, 2  # RBD_CONFIG_SOURCE_*


def _writable(ictx: ImageCtx, what: str) -> None:
    if ictx.read_only:
        raise from_errno(errno.EROFS, f"{what}: image {ictx.spec_text()} was opened read-only")


async def get(ictx: ImageCtx, key: str) -> bytes:
    """ENOENT when the key is not set."""
    return await ictx.header.metadata_get(key)


async def set_(ictx: ImageCtx, key: str, value: bytes) -> None:
    _writable(ictx, f"setting metadata {key!r}")
    if key.startswith(CONF_PREFIX):
        _check_option(ictx.io, key[len(CONF_PREFIX):])
    await ictx.header.metadata_set({key: value})


async def remove(ictx: ImageCtx, key: str) -> None:
    """ENOENT when the key is not set."""
    _writable(ictx, f"removing metadata {key!r}")
    await ictx.header.metadata_remove(key)


async def list_(ictx: ImageCtx, start_after: str = "", max_return: int = 0) -> dict[str, bytes]:
    return await ictx.header.metadata_list(start_after, max_return)


# -- config overrides ------------------------------------------------------------------------------
def rbd_options(io: IoCtx) -> list[str]:
    """Every option of the rbd client (librbd lists these in config_list), by name."""
    conf = io.client.conf
    return sorted(name for name in conf.names() if name.startswith("rbd_"))


def _check_option(io: IoCtx, name: str) -> None:
    if name not in rbd_options(io):
        raise from_errno(errno.EINVAL, f"{name!r} is not an rbd configuration option")


@dataclass(frozen=True)
class ConfigEntry:
    name: str
    value: str
    source: int


async def _overrides(io: IoCtx, oid: str) -> dict[str, str]:
    try:
        meta = await metadata_list(io, oid, "", 0)
    except ShoalError as exc:
        if exc.errno == errno.ENOENT:
            return {}
        raise
    return {k[len(CONF_PREFIX):]: v.decode("utf-8", "replace") for k, v in meta.items() if k.startswith(CONF_PREFIX)}


async def config_list(io: IoCtx, ictx: ImageCtx | None = None) -> list[ConfigEntry]:
    """Pool-level list (ictx None) or image-level list of every rbd option."""
    conf = io.client.conf
    pool = await _overrides(io, naming.RBD_INFO)
    image = await _overrides(ictx.io, ictx.header.oid) if ictx is not None else {}
    out = []
    for name in rbd_options(io):
        if name in image:
            out.append(ConfigEntry(name, image[name], SOURCE_IMAGE))
        elif name in pool:
            out.append(ConfigEntry(name, pool[name], SOURCE_POOL))
        else:
            out.append(ConfigEntry(name, conf.get_str(name), SOURCE_CONFIG))
    return out

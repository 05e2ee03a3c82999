"""glance_store's RBD store (`glance_store._drivers.rbd.Store`) as glance-api runs it,
configured by the guide's glance-api.conf."""

from __future__ import annotations

import hashlib
import io

import glance_store
from flowkit import FlowContext, MiB, expect, same, user_ioctx
from glance_store import exceptions, location
from glance_store._drivers import rbd as rbd_store
from oslo_config import cfg

import rbd

GLANCE_API_CONF = """
[DEFAULT]
show_image_direct_url = True

[glance_store]
stores = rbd
default_store = rbd
rbd_store_pool = images
rbd_store_user = glance
rbd_store_ceph_conf = {conf}
rbd_store_chunk_size = 8
{extra}
"""


def _store(ctx: FlowContext, extra: str = "") -> tuple[rbd_store.Store, cfg.ConfigOpts]:
    path = ctx.write_file(f"glance-api-{abs(hash(extra))}.conf", GLANCE_API_CONF.format(conf=ctx.conf, extra=extra))
    conf = cfg.ConfigOpts()
    conf.register_opt(cfg.BoolOpt("show_image_direct_url", default=False))
    glance_store.register_opts(conf)
    conf(args=[], default_config_files=[path])
    glance_store.create_stores(conf)  # as glance-api does at start: registers the rbd:// scheme
    store = glance_store.get_store_from_scheme("rbd")
    assert isinstance(store, rbd_store.Store)
    return store, conf


def _read_back(store: rbd_store.Store, conf: cfg.ConfigOpts, uri: str, size: int) -> bytes:
    loc = location.get_location_from_uri(uri, conf=conf)
    assert store.get_size(loc) == size, (store.get_size(loc), size)
    chunks, got_size = store.get(loc)
    assert got_size == size
    parts = list(chunks)
    assert all(len(p) == 8 * MiB for p in parts[:-1]), "reads come in rbd_store_chunk_size pieces"
    return b"".join(parts)


def _add(store: rbd_store.Store, image_id: str, data: bytes, size: int) -> str:
    uri, written, checksum, multihash, _meta = store.add(image_id, io.BytesIO(data), size, "sha256")
    assert written == len(data)
    assert checksum == hashlib.md5(data).hexdigest()
    assert multihash == hashlib.sha256(data).hexdigest()
    return uri


def flow_add_known_size(ctx: FlowContext) -> int:
    store, conf = _store(ctx)
    data = ctx.data(21 * MiB + 12345, seed=1)
    uri = _add(store, "img-known", data, len(data))
    assert uri == f"rbd://{ctx.fsid}/images/img-known/snap", uri
    verified = same(_read_back(store, conf, uri, len(data)), data, "glance get")
    # the store's chunk size is the image's object size (order 23 = 8 MiB) and the
    # location's snapshot is protected, so Cinder and Nova can clone it
    with rbd.Image(ctx.admin_ioctx("images"), "img-known", read_only=True) as img:
        assert img.stat()["order"] == 23
        assert img.is_protected_snap("snap")
    verified += same(ctx.read_image("images", "img-known", "snap"), data, "image@snap")
    expect(exceptions.Duplicate, store.add, "img-known", io.BytesIO(data), len(data), "sha256")
    return verified


def flow_add_unknown_size(ctx: FlowContext) -> int:
    store, conf = _store(ctx)
    data = ctx.data(37 * MiB + 777, seed=2)
    uri = _add(store, "img-unknown", data, 0)  # size 0: resize while writing, then trim
    with rbd.Image(ctx.admin_ioctx("images"), "img-unknown", read_only=True) as img:
        assert img.size() == len(data), img.size()
    verified = same(_read_back(store, conf, uri, len(data)), data, "glance get (unknown size)")
    # a short upload is refused and leaves nothing behind
    expect(exceptions.Invalid, store.add, "img-short", io.BytesIO(data[:MiB]), 2 * MiB, "sha256")
    assert "img-short" not in ctx.images("images")
    return verified


def flow_thin_provisioning(ctx: FlowContext) -> int:
    store, conf = _store(ctx, "rbd_thin_provisioning = True")
    # 6 chunks of 8 MiB; chunks 1, 2 and 4 are all zero and must not be written
    chunks = [ctx.data(8 * MiB, seed=30 + i) if i not in (1, 2, 4) else bytes(8 * MiB) for i in range(6)]
    data = b"".join(chunks)
    uri = _add(store, "img-thin", data, len(data))
    assert ctx.data_objects("images", "img-thin") == 3, ctx.data_objects("images", "img-thin")
    return same(_read_back(store, conf, uri, len(data)), data, "thin image")


def flow_delete(ctx: FlowContext) -> int:
    store, conf = _store(ctx)
    verified = 0
    # a plain image goes away with its snapshot
    data = ctx.data(3 * MiB, seed=4)
    uri = _add(store, "img-del", data, len(data))
    store.delete(location.get_location_from_uri(uri, conf=conf))
    assert "img-del" not in ctx.images("images")
    expect(exceptions.NotFound, store.delete, location.get_location_from_uri(uri, conf=conf))
    expect(exceptions.NotFound, store.get_size, location.get_location_from_uri(uri, conf=conf))

    # an image with a clone (a Cinder volume made from it) is in use
    uri = _add(store, "img-parent", data, len(data))
    rbd.RBD().clone(ctx.admin_ioctx("images"), "img-parent", "snap", ctx.admin_ioctx("volumes"), "vol-of-img",
                    features=rbd.RBD_FEATURE_LAYERING)
    expect(exceptions.InUseByStore, store.delete, location.get_location_from_uri(uri, conf=conf))
    assert ctx.snaps("images", "img-parent") == ["snap"]
    verified += same(ctx.read_image("volumes", "vol-of-img"), data, "clone survives a refused delete")
    with rbd.Image(ctx.admin_ioctx("volumes"), "vol-of-img") as child:
        child.flatten()
    rbd.RBD().remove(ctx.admin_ioctx("volumes"), "vol-of-img")

    # the protection is back off now (the refused delete left it protected): delete works
    store.delete(location.get_location_from_uri(uri, conf=conf))
    assert "img-parent" not in ctx.images("images")

    # an image someone else snapshotted goes to the trash instead
    uri = _add(store, "img-snapped", data, len(data))
    with rbd.Image(ctx.admin_ioctx("images"), "img-snapped") as img:
        img.create_snap("kept")
    store.delete(location.get_location_from_uri(uri, conf=conf))
    assert "img-snapped" not in ctx.images("images")
    trashed = [t for t in ctx.trash("images") if t["name"] == "img-snapped"]
    assert len(trashed) == 1 and trashed[0]["source"] == "USER", trashed
    return verified


def flow_caps(ctx: FlowContext) -> int:
    """The guide gives client.glance `profile rbd pool=images` only."""
    with user_ioctx(ctx.conf, "glance", "volumes") as io_:
        e = expect(rbd.PermissionError, rbd.RBD().create, io_, "glance-was-here", MiB)
        assert e.errno == 1, e
    assert "glance-was-here" not in ctx.images("volumes")
    store, conf = _store(ctx, "rbd_store_pool = volumes")
    store_pool_volumes = store
    expect(Exception, store_pool_volumes.add, "img-wrong-pool", io.BytesIO(b"x" * MiB), MiB, "sha256")
    assert "img-wrong-pool" not in ctx.images("volumes")
    return 0

"""cinder-volume's RBD driver (`cinder.volume.drivers.rbd.RBDDriver`), built the way the
volume manager builds it from the guide's cinder.conf backend section, plus os-brick
on the connection it hands out."""

from __future__ import annotations

import io
import json
import os
import subprocess
import uuid
from typing import Any

from cinder import context as cinder_context
from cinder import exception, objects
from cinder.volume import configuration
from cinder.volume import driver as volume_driver
from cinder.volume.drivers import rbd as rbd_driver
from flowkit import GUIDE_CINDER_BACKEND, FlowContext, GiB, MiB, expect, same, user_ioctx
from oslo_config import cfg

import rbd

CINDER_CONF = """
[DEFAULT]
enabled_backends = ceph
glance_api_version = 2
image_conversion_dir = {dir}/conversion

{backend}{extra}
"""
SECRET_UUID = "457eb676-33da-42ec-9a8c-9293d545c337"

objects.register_all()
_loaded = False


def make_driver(ctx: FlowContext, extra: str = "", keyring: bool = False) -> rbd_driver.RBDDriver:
    """As cinder-volume does: the backend section as a Configuration, the driver class
    named by volume_driver, do_setup, check_for_setup_error."""
    global _loaded
    if not _loaded:
        text = CINDER_CONF.format(backend=GUIDE_CINDER_BACKEND.format(conf=ctx.conf), extra="", dir=ctx.dir)
        path = ctx.write_file("cinder.conf", text)
        cfg.CONF(["--config-file", path], project="cinder")
        _loaded = True
    section = configuration.Configuration(volume_driver.volume_opts, config_group="ceph")
    section.append_config_values(rbd_driver.RBD_OPTS)
    for line in filter(None, extra.splitlines()):
        key, value = (x.strip() for x in line.split("=", 1))
        cfg.CONF.set_override(key, value, group="ceph")
    if keyring:  # cinderlib's way of handing the key to os-brick (no /etc/ceph on this host)
        section.rbd_keyring_conf = f"{ctx.etc}/ceph.client.cinder.keyring"
    # cinder-volume runs its privileged helpers (qemu-img's format inspector…) through
    # a privsep daemon started with sudo; this process is root already, so they run in it
    from cinder import privsep

    privsep.sys_admin_pctxt.set_client_mode(False)
    drv = rbd_driver.RBDDriver(configuration=section, host="shoal-test@ceph")
    if ctx.eventlet:  # cinder-volume's default mode: every rados/rbd object goes through tpool
        from cinder import utils
        from eventlet import tpool

        assert isinstance(utils.tpool_wrap(object()), tpool.Proxy)
    drv.do_setup(cinder_context.get_admin_context())
    drv.check_for_setup_error()
    drv.set_initialized()
    return drv


def reset_overrides(*keys: str) -> None:
    for key in keys:
        cfg.CONF.clear_override(key, group="ceph")


VOLUME_TYPE = "7b2a1b52-0d5e-4f55-9a4e-5a3f6f0c1d2e"


def new_volume(size_gb: int = 1) -> Any:
    """A volume object as the volume manager hands it to the driver (no database:
    every field the driver reads is set; cinder's own test factories monkey-patch)."""
    ctx = cinder_context.get_admin_context()
    vol = objects.Volume(context=ctx, id=str(uuid.uuid4()), size=size_gb, status="creating",
                         host="shoal-test@ceph#ceph", project_id="demo", user_id="demo",
                         display_name="vol", volume_type_id=VOLUME_TYPE, encryption_key_id=None,
                         multiattach=False, use_quota=True, glance_metadata={}, metadata={},
                         admin_metadata={}, replication_status=None, provider_location=None, _name_id=None)
    vol.volume_type = objects.VolumeType(context=ctx, id=VOLUME_TYPE, name="ceph", extra_specs={},
                                         qos_specs_id=None, is_public=True)
    vol.obj_reset_changes()
    return vol


def new_snapshot(volume: Any) -> Any:
    ctx = cinder_context.get_admin_context()
    snap = objects.Snapshot(context=ctx, id=str(uuid.uuid4()), volume_id=volume.id, volume_size=volume.size,
                            status="creating", project_id="demo", user_id="demo", metadata={})
    snap.volume = volume
    snap.obj_reset_changes()
    return snap


def write_volume(ctx: FlowContext, name: str, data: bytes, offset: int = 0) -> None:
    with rbd.Image(ctx.admin_ioctx("volumes"), name) as img:
        img.write(data, offset)


def head(ctx: FlowContext, name: str, n: int, pool: str = "volumes", snap: str | None = None) -> bytes:
    with rbd.Image(ctx.admin_ioctx(pool), name, snapshot=snap, read_only=True) as img:
        return img.read(0, n)


def parent(ctx: FlowContext, name: str) -> tuple[str, str, str] | None:
    with rbd.Image(ctx.admin_ioctx("volumes"), name, read_only=True) as img:
        try:
            return tuple(img.parent_info())  # type: ignore[return-value]
        except rbd.ImageNotFound:
            return None


def flow_setup_and_stats(ctx: FlowContext) -> int:
    drv = make_driver(ctx)
    assert drv._active_config["secret_uuid"] == SECRET_UUID
    stats = drv.get_volume_stats(refresh=True)
    assert stats["volume_backend_name"] == "ceph" and stats["storage_protocol"] == "ceph", stats
    assert stats["backend_state"] == "up", stats
    assert isinstance(stats["total_capacity_gb"], float) and stats["total_capacity_gb"] > 0, stats
    assert stats["location_info"] == f"ceph:{ctx.conf}:{ctx.fsid}:cinder:volumes", stats["location_info"]
    # with a pool quota the quota is the capacity (mon `osd pool get-quota`)
    ret, _, outs = ctx.mon(prefix="osd pool set-quota", pool="volumes", field="max_bytes", val="10737418240")
    assert ret == 0, outs
    try:
        stats = drv.get_volume_stats(refresh=True)
        used_gb = stats["total_capacity_gb"] - stats["free_capacity_gb"]
        assert abs(stats["total_capacity_gb"] - 10.0) < 0.01 + used_gb, stats
    finally:
        ctx.mon(prefix="osd pool set-quota", pool="volumes", field="max_bytes", val="0")
    # a shared pool: the provisioned size of every image is summed
    make_driver(ctx, "rbd_exclusive_cinder_pool = false")
    vol = new_volume(2)
    drv.create_volume(vol)
    try:
        drv2 = make_driver(ctx, "rbd_exclusive_cinder_pool = false")
        assert drv2.get_volume_stats(refresh=True)["provisioned_capacity_gb"] >= 2
    finally:
        reset_overrides("rbd_exclusive_cinder_pool")
        drv.delete_volume(vol)
    return 0


def flow_volume_lifecycle(ctx: FlowContext) -> int:
    drv = make_driver(ctx)
    vol = new_volume(1)
    assert not drv.create_volume(vol)  # a plain volume type: nothing for the manager to update
    with rbd.Image(ctx.admin_ioctx("volumes"), vol.name, read_only=True) as img:
        assert img.size() == GiB and img.stat()["order"] == 22  # rbd_store_chunk_size = 4
        assert img.features() & rbd.RBD_FEATURE_LAYERING
    a = ctx.data(6 * MiB, seed=10)
    write_volume(ctx, vol.name, a)

    # extend
    drv.extend_volume(vol, 2)
    vol.size = 2
    with rbd.Image(ctx.admin_ioctx("volumes"), vol.name, read_only=True) as img:
        assert img.size() == 2 * GiB

    # snapshot, then more writes; a volume from the snapshot sees the old data
    snap = new_snapshot(vol)
    drv.create_snapshot(snap)
    with rbd.Image(ctx.admin_ioctx("volumes"), vol.name, read_only=True) as img:
        assert img.is_protected_snap(snap.name)
    b = ctx.data(2 * MiB, seed=11)
    write_volume(ctx, vol.name, b, 1 * MiB)
    from_snap = new_volume(3)
    drv.create_volume_from_snapshot(from_snap, snap)
    assert parent(ctx, from_snap.name) == ("volumes", vol.name, snap.name), parent(ctx, from_snap.name)
    with rbd.Image(ctx.admin_ioctx("volumes"), from_snap.name, read_only=True) as img:
        assert img.size() == 3 * GiB, img.size()  # resized to the new volume's size
    verified = same(head(ctx, from_snap.name, len(a)), a, "volume from snapshot")
    current = a[:MiB] + b + a[3 * MiB:]
    verified += same(head(ctx, vol.name, len(a)), current, "source after the snapshot")

    # the snapshot has a clone: unprotect is refused by librbd with ImageBusy; cinder
    # flattens the children and retries, so delete_snapshot still succeeds
    with rbd.Image(ctx.admin_ioctx("volumes"), vol.name) as img:
        expect(rbd.ImageBusy, img.unprotect_snap, snap.name)
        expect(rbd.ImageBusy, img.remove_snap, snap.name)  # protected
        expect(rbd.ImageHasSnapshots, rbd.RBD().remove, ctx.admin_ioctx("volumes"), vol.name)
    drv.delete_snapshot(snap)
    assert parent(ctx, from_snap.name) is None, "the child was flattened"
    verified += same(head(ctx, from_snap.name, len(a)), a, "flattened child")
    with rbd.Image(ctx.admin_ioctx("volumes"), vol.name) as img:
        assert snap.name not in [s["name"] for s in img.list_snaps()]
        img.create_snap("unprotected")
        expect(rbd.InvalidArgument, img.unprotect_snap, "unprotected")
        img.remove_snap("unprotected")

    # revert to snapshot
    snap2 = new_snapshot(vol)
    drv.create_snapshot(snap2)
    write_volume(ctx, vol.name, ctx.data(MiB, seed=12), 0)
    drv.revert_to_snapshot(cinder_context.get_admin_context(), vol, snap2)
    verified += same(head(ctx, vol.name, len(a)), current, "reverted volume")
    drv.delete_snapshot(snap2)
    drv.delete_snapshot(snap2)  # already gone: ImageNotFound is "done" for cinder

    drv.delete_volume(from_snap)
    drv.delete_volume(vol)
    assert vol.name not in ctx.images("volumes") and from_snap.name not in ctx.images("volumes")
    drv.delete_volume(vol)  # a missing volume is not an error
    return verified


def flow_cloned_volume(ctx: FlowContext) -> int:
    drv = make_driver(ctx)
    src = new_volume(1)
    drv.create_volume(src)
    a = ctx.data(5 * MiB, seed=20)
    write_volume(ctx, src.name, a)
    dst = new_volume(2)
    drv.create_cloned_volume(dst, src)
    # COW: a `<dest>.clone_snap` snapshot on the source, the clone a child of it
    assert parent(ctx, dst.name) == ("volumes", src.name, f"{dst.name}.clone_snap"), parent(ctx, dst.name)
    with rbd.Image(ctx.admin_ioctx("volumes"), dst.name, read_only=True) as img:
        assert img.size() == 2 * GiB
    verified = same(head(ctx, dst.name, len(a)), a, "cloned volume")
    write_volume(ctx, dst.name, b"child" * 1000, 0)
    verified += same(head(ctx, src.name, len(a)), a, "source untouched by the clone's writes")

    # the source has a dependent clone: deleting it renames it `.deleted` and keeps it
    drv.delete_volume(src)
    assert f"{src.name}.deleted" in ctx.images("volumes") and src.name not in ctx.images("volumes")
    verified += same(head(ctx, dst.name, 5000)[:5000], b"child" * 1000, "clone after source delete")
    # deleting the clone takes cinder's fast path (a plain remove); the `.deleted`
    # parent keeps its clone snapshot, as with Ceph
    drv.delete_volume(dst)
    assert dst.name not in ctx.images("volumes")
    assert ctx.snaps("volumes", f"{src.name}.deleted") == [f"{dst.name}.clone_snap"]
    return verified


def flow_clone_depth(ctx: FlowContext) -> int:
    drv = make_driver(ctx, "rbd_max_clone_depth = 2")
    try:
        base = new_volume(1)
        drv.create_volume(base)
        a = ctx.data(3 * MiB, seed=21)
        write_volume(ctx, base.name, a)
        c1, c2, c3 = new_volume(1), new_volume(1), new_volume(1)
        drv.create_cloned_volume(c1, base)
        drv.create_cloned_volume(c2, c1)
        assert parent(ctx, c2.name) is not None
        drv.create_cloned_volume(c3, c2)  # depth would reach 3 > 2: flattened at once
        assert parent(ctx, c3.name) is None, parent(ctx, c3.name)
        assert not [s for s in ctx.snaps("volumes", c2.name) if s.endswith(".clone_snap")]
        verified = same(head(ctx, c3.name, len(a)), a, "flattened deep clone")
        for v in (c3, c2, c1, base):
            drv.delete_volume(v)
    finally:
        reset_overrides("rbd_max_clone_depth")

    drv = make_driver(ctx, "rbd_max_clone_depth = 0")  # 0: full copies, no clones
    try:
        src, dst = new_volume(1), new_volume(1)
        drv.create_volume(src)
        write_volume(ctx, src.name, a)
        drv.create_cloned_volume(dst, src)
        assert parent(ctx, dst.name) is None and ctx.snaps("volumes", src.name) == []
        verified += same(head(ctx, dst.name, len(a)), a, "copied volume")
        drv.delete_volume(dst)
        drv.delete_volume(src)
    finally:
        reset_overrides("rbd_max_clone_depth")

    drv = make_driver(ctx, "rbd_flatten_volume_from_snapshot = true")
    try:
        src = new_volume(1)
        drv.create_volume(src)
        write_volume(ctx, src.name, a)
        snap = new_snapshot(src)
        drv.create_snapshot(snap)
        dst = new_volume(1)
        drv.create_volume_from_snapshot(dst, snap)
        assert parent(ctx, dst.name) is None, "rbd_flatten_volume_from_snapshot flattens"
        verified += same(head(ctx, dst.name, len(a)), a, "flattened volume from snapshot")
        drv.delete_snapshot(snap)
        drv.delete_volume(dst)
        drv.delete_volume(src)
    finally:
        reset_overrides("rbd_flatten_volume_from_snapshot")
    return verified


class GlanceImages:
    """The part of cinder's GlanceImageService the driver uses, over the guide's
    Glance RBD store (glance_store, client.glance) — Glance itself is not under test."""

    def __init__(self, ctx: FlowContext) -> None:
        from flows_glance import _store

        self.ctx = ctx
        self.store, self.conf = _store(ctx)
        self.meta: dict[str, dict[str, Any]] = {}
        self.temp_images = None  # cinder's TemporaryImages registers itself here

    def create(self, image_id: str, data: bytes) -> str:
        uri, size, checksum, _mh, _m = self.store.add(image_id, io.BytesIO(data), len(data), "sha256")
        self.meta[image_id] = {"id": image_id, "disk_format": "raw", "container_format": "bare", "size": size,
                               "checksum": checksum, "status": "active", "direct_url": uri,
                               "locations": [{"url": uri, "metadata": {}}], "properties": {}}
        return uri

    def show(self, context: Any, image_id: str) -> dict[str, Any]:
        return self.meta[image_id]

    def download(self, context: Any, image_id: str, data: Any = None) -> Any:
        from glance_store import location

        chunks, _ = self.store.get(location.get_location_from_uri(self.meta[image_id]["direct_url"], conf=self.conf))
        for chunk in chunks:
            data.write(chunk)

    def update(self, context: Any, image_id: str, meta: dict[str, Any], data: Any = None, **kw: Any) -> None:
        body = b"".join(iter(lambda: data.read(4 * MiB), b""))
        self.create(image_id, body)


def flow_clone_image(ctx: FlowContext) -> int:
    drv = make_driver(ctx)
    glance = GlanceImages(ctx)
    image_id = str(uuid.uuid4())
    data = ctx.data(9 * MiB + 4096, seed=22)
    uri = glance.create(image_id, data)
    vol = new_volume(1)
    meta = glance.show(None, image_id)
    update, cloned = drv.clone_image(cinder_context.get_admin_context(), vol, (uri, meta["locations"]), meta, glance)
    assert cloned and update.get("provider_location") is None, (update, cloned)
    # copy-on-write: a child of images/<id>@snap, no data objects of its own yet
    assert parent(ctx, vol.name) == ("images", image_id, "snap"), parent(ctx, vol.name)
    assert ctx.data_objects("volumes", vol.name) == 0
    with rbd.Image(ctx.admin_ioctx("volumes"), vol.name, read_only=True) as img:
        assert img.size() == GiB
    verified = same(head(ctx, vol.name, len(data)), data, "volume cloned from the Glance image")
    # not cloneable: another cluster's fsid, or not raw
    other = new_volume(1)
    foreign = uri.replace(ctx.fsid, str(uuid.uuid4()))
    assert drv.clone_image(None, other, (foreign, None), meta, glance) == ({}, False)
    assert drv.clone_image(None, other, (uri, None), {**meta, "disk_format": "qcow2"}, glance) == ({}, False)
    # the image is in use while the volume is a clone (glance's delete would be refused)
    with rbd.Image(ctx.admin_ioctx("images"), image_id) as img:
        expect(rbd.ImageBusy, img.unprotect_snap, "snap")
    drv.delete_volume(vol)
    return verified


def flow_image_volume_copy(ctx: FlowContext) -> int:
    """copy_image_to_volume (fetch, then the `rbd import` CLI) and copy_volume_to_image
    (os-brick's RBD handle for raw, the `rbd export` CLI for other formats)."""
    drv = make_driver(ctx, keyring=True)
    glance = GlanceImages(ctx)
    image_id = str(uuid.uuid4())
    data = ctx.data(12 * MiB + 512, seed=23, hole_every=4 * MiB, hole=2 * MiB)
    glance.create(image_id, data)
    vol = new_volume(1)
    drv.create_volume(vol)
    drv.copy_image_to_volume(cinder_context.get_admin_context(), vol, glance, image_id)
    with rbd.Image(ctx.admin_ioctx("volumes"), vol.name, read_only=True) as img:
        assert img.size() == GiB and img.stat()["order"] == 22
    verified = same(head(ctx, vol.name, len(data)), data, "volume from image (rbd import)")
    # rbd import keeps holes sparse: of the 4 MiB objects, the last one is all zeros
    assert ctx.data_objects("volumes", vol.name) == 3, ctx.data_objects("volumes", vol.name)
    write_volume(ctx, vol.name, b"tail" * 256, len(data))
    expected = data + b"tail" * 256

    out_id = str(uuid.uuid4())
    drv.copy_volume_to_image(cinder_context.get_admin_context(), vol, glance,
                             {"id": out_id, "disk_format": "raw", "container_format": "bare"})
    uploaded = ctx.read_image("images", out_id)
    assert len(uploaded) == GiB
    verified += same(uploaded[:len(expected)], expected, "image from volume (os-brick handle)")
    assert not any(uploaded[len(expected):len(expected) + 8 * MiB])

    # another format: `rbd export` to a file, qemu-img convert, upload
    out_id = str(uuid.uuid4())
    drv.copy_volume_to_image(cinder_context.get_admin_context(), vol, glance,
                             {"id": out_id, "disk_format": "qcow2", "container_format": "bare"})
    qcow2 = os.path.join(ctx.dir, f"{out_id}.qcow2")
    with open(qcow2, "wb") as f:
        f.write(ctx.read_image("images", out_id))
    subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", qcow2, qcow2 + ".raw"], check=True)
    with open(qcow2 + ".raw", "rb") as f:
        verified += same(f.read(len(expected)), expected, "qcow2 image from volume (rbd export)")
    assert os.path.getsize(qcow2 + ".raw") == GiB
    drv.delete_volume(vol)
    return verified


def flow_connection_os_brick(ctx: FlowContext) -> int:
    """initialize_connection → os-brick's RBD connector (temporary ceph.conf with the
    monitors from `ceph mon dump` and the pasted keyring) → RBDVolumeIOWrapper I/O."""
    from os_brick.initiator import linuxrbd
    from os_brick.initiator.connectors import rbd as brick_rbd

    drv = make_driver(ctx, keyring=True)
    vol = new_volume(1)
    drv.create_volume(vol)
    conn = drv.initialize_connection(vol, {})
    d = conn["data"]
    assert conn["driver_volume_type"] == "rbd" and d["name"] == f"volumes/{vol.name}", conn
    assert d["hosts"] == ["127.0.0.1"] and d["auth_username"] == "cinder" and d["secret_uuid"] == SECRET_UUID, d
    assert "key = " in d["keyring"], "rbd_keyring_conf is pasted into the connection"
    connector = brick_rbd.RBDConnector(None, do_local_attach=False)
    handle = connector.connect_volume(d)
    assert isinstance(handle["path"], linuxrbd.RBDVolumeIOWrapper), handle
    f = handle["path"]
    conf_file = f.rbd_conf
    assert os.path.exists(conf_file) and "mon_host = 127.0.0.1:" in open(conf_file).read()
    payload = ctx.data(3 * MiB + 100, seed=24)
    f.seek(5 * MiB)
    f.write(payload)
    f.flush()
    f.seek(5 * MiB)
    got = f.read(len(payload))
    verified = same(got, payload, "os-brick read back")
    assert f.tell() == 5 * MiB + len(payload)
    f.seek(0, io.SEEK_END)
    assert f.tell() == GiB
    assert f.read(10) == b""  # reads clip at the end
    connector.disconnect_volume(d, handle)
    assert not os.path.exists(conf_file), "the temporary conf is removed"
    # closed: flush raises rbd.InvalidArgument inside, which the wrapper turns into an error
    expect(Exception, f.flush)
    verified += same(head(ctx, vol.name, 5 * MiB + len(payload))[5 * MiB:], payload, "written through os-brick")
    # linuxrbd.RBDClient directly (cinder's migrate path)
    with linuxrbd.RBDClient("cinder", "volumes", conffile=ctx.conf) as client:
        vol_io = linuxrbd.RBDVolumeIOWrapper(linuxrbd.RBDImageMetadata(
            linuxrbd.RBDVolume(client, vol.name), "volumes", "cinder", ctx.conf))
        vol_io.seek(5 * MiB)
        verified += same(vol_io.read(len(payload)), payload, "RBDClient read")
        vol_io.close()
    drv.terminate_connection(vol, {})
    drv.delete_volume(vol)
    return verified


def flow_deferred_deletion(ctx: FlowContext) -> int:
    """enable_deferred_deletion: a volume that cannot be removed outright (it keeps a
    snapshot) goes to the trash with the deferment; the periodic purge removes only
    what has expired."""
    drv = make_driver(ctx, "enable_deferred_deletion = true\ndeferred_deletion_delay = 3600\n"
                           "rados_connection_interval = 1")
    try:
        vol = new_volume(1)
        drv.create_volume(vol)
        with rbd.Image(ctx.admin_ioctx("volumes"), vol.name) as img:
            img.create_snap("kept-by-someone")
        drv.delete_volume(vol)  # remove → ImageHasSnapshots (retried) → trash_move(delay)
        assert vol.name not in ctx.images("volumes")
        trashed = [t for t in ctx.trash("volumes") if t["name"] == vol.name]
        assert len(trashed) == 1, ctx.trash("volumes")
        t = trashed[0]
        assert (t["deferment_end_time"] - t["deletion_time"]).total_seconds() == 3600, t
        # not yet expired: librbd answers PermissionError, the purge leaves it
        expect(rbd.PermissionError, rbd.RBD().trash_remove, ctx.admin_ioctx("volumes"), t["id"])
        drv._trash_purge()  # noqa: SLF001 - the periodic task
        assert [x for x in ctx.trash("volumes") if x["id"] == t["id"]]
        rbd.RBD().trash_restore(ctx.admin_ioctx("volumes"), t["id"], vol.name)
        with rbd.Image(ctx.admin_ioctx("volumes"), vol.name) as img:
            img.remove_snap("kept-by-someone")
        rbd.RBD().remove(ctx.admin_ioctx("volumes"), vol.name)
        # an expired entry is purged
        ctx.write_image("volumes", "expired-volume", b"x" * 4096)
        rbd.RBD().trash_move(ctx.admin_ioctx("volumes"), "expired-volume", 0)
        drv._trash_purge()  # noqa: SLF001
        assert not [x for x in ctx.trash("volumes") if x["name"] == "expired-volume"], ctx.trash("volumes")
    finally:
        reset_overrides("enable_deferred_deletion", "deferred_deletion_delay", "rados_connection_interval")
    return 0


def flow_manage_and_status(ctx: FlowContext) -> int:
    drv = make_driver(ctx)
    name = f"unmanaged-{uuid.uuid4().hex[:8]}"
    data = ctx.data(MiB, seed=25)
    ctx.write_image("volumes", name, data, size=2 * GiB)
    listed = drv.get_manageable_volumes([], None, 1000, 0, ["size"], ["asc"])
    entry = [v for v in listed if v["reference"]["source-name"] == name]
    assert entry and entry[0]["safe_to_manage"] and entry[0]["size"] == 2, listed
    # an image someone has open (a watcher) is not safe to manage: `rbd status` says so
    with rbd.Image(ctx.admin_ioctx("volumes"), name) as _open:
        assert drv._get_image_status(name)["watchers"], "rbd status --format=json lists the watcher"  # noqa: SLF001
        listed = drv.get_manageable_volumes([], None, 1000, 0, ["size"], ["asc"])
        assert not [v for v in listed if v["reference"]["source-name"] == name][0]["safe_to_manage"]
    vol = new_volume(2)
    assert drv.manage_existing_get_size(vol, {"source-name": name}) == 2
    drv.manage_existing(vol, {"source-name": name})
    assert vol.name in ctx.images("volumes") and name not in ctx.images("volumes")
    verified = same(head(ctx, vol.name, len(data)), data, "managed volume")
    expect(exception.ManageExistingInvalidReference, drv.manage_existing_get_size, vol, {"source-name": "nope"})
    drv.delete_volume(vol)
    return verified


def flow_caps(ctx: FlowContext) -> int:
    """client.cinder: rwx on volumes and vms, read-only on images."""
    verified = 0
    data = ctx.data(MiB, seed=26)
    ctx.write_image("images", "ro-check", data)
    with user_ioctx(ctx.conf, "cinder", "images") as io_:
        with rbd.Image(io_, "ro-check", read_only=True) as img:
            verified += same(img.read(0, len(data)), data, "cinder reads images")
        e = expect(rbd.PermissionError, rbd.RBD().create, io_, "cinder-was-here", MiB)
        assert e.errno == 1
        expect(rbd.PermissionError, rbd.RBD().remove, io_, "ro-check")
    with user_ioctx(ctx.conf, "cinder", "backups") as io_:
        expect(rbd.PermissionError, rbd.RBD().create, io_, "cinder-was-here", MiB)
    assert "ro-check" in ctx.images("images")
    rbd.RBD().remove(ctx.admin_ioctx("images"), "ro-check")
    return verified


def flow_qos_and_multiattach(ctx: FlowContext) -> int:
    """Volume types: back-end QoS specs become image config (`conf_rbd_qos_*`), and a
    multiattach type drops exclusive-lock/object-map/fast-diff, restored on retype."""
    from cinder.volume.drivers.rbd import QOS_KEY_MAP

    drv = make_driver(ctx)
    vol = new_volume(1)
    vol.volume_type.extra_specs = {"multiattach": "<is> True"}
    update = drv.create_volume(vol)
    saved = json.loads(update["provider_location"])["saved_features"]
    assert saved & rbd.RBD_FEATURE_EXCLUSIVE_LOCK, saved
    with rbd.Image(ctx.admin_ioctx("volumes"), vol.name, read_only=True) as img:
        excluded = rbd.RBD_FEATURE_EXCLUSIVE_LOCK | rbd.RBD_FEATURE_OBJECT_MAP | rbd.RBD_FEATURE_FAST_DIFF
        assert img.features() & excluded == 0, img.features()
    data = ctx.data(2 * MiB, seed=27)
    write_volume(ctx, vol.name, data)
    # retype to a plain type: the saved features come back
    vol.provider_location = update["provider_location"]
    plain = objects.VolumeType(context=vol._context, id=str(uuid.uuid4()), name="plain", extra_specs={},  # noqa: SLF001
                               qos_specs_id=None, is_public=True)
    assert drv._setup_volume(vol, plain) == {"provider_location": None}  # noqa: SLF001 - what retype calls
    with rbd.Image(ctx.admin_ioctx("volumes"), vol.name, read_only=True) as img:
        assert img.features() == saved, (img.features(), saved)
    verified = same(head(ctx, vol.name, len(data)), data, "volume across feature changes")

    # QoS: cinder reads every rbd_qos_* key as an int, so the defaults must be listed
    before = drv.get_rbd_image_qos(vol)
    for spec in QOS_KEY_MAP.values():
        assert int(before[spec["ceph_key"]]) == 0, (spec, before)
    drv.update_rbd_image_qos(vol, {"total_iops_sec": 500, "read_bytes_sec": 1 << 20, "no_such_key": 1})
    now = drv.get_rbd_image_qos(vol)
    assert int(now["rbd_qos_iops_limit"]) == 500 and int(now["rbd_qos_read_bps_limit"]) == 1 << 20, now
    with rbd.Image(ctx.admin_ioctx("volumes"), vol.name, read_only=True) as img:
        sources = {c["name"]: c["source"] for c in img.config_list()}
        assert sources["rbd_qos_iops_limit"] == rbd.RBD_CONFIG_SOURCE_IMAGE, sources["rbd_qos_iops_limit"]
        assert img.metadata_get("conf_rbd_qos_iops_limit") == "500"
    drv.delete_rbd_image_qos_keys(vol, ["total_iops_sec"])
    assert int(drv.get_rbd_image_qos(vol)["rbd_qos_iops_limit"]) == 0
    drv.delete_volume(vol)
    return verified

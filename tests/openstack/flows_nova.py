"""nova-compute's RBD code (`nova.storage.rbd_utils.RBDDriver` and the libvirt image
backend `imagebackend.Rbd`) configured by the guide's nova.conf `[libvirt]` section, as
client.cinder with the guide's caps.

Glance images are made the way glance's RBD store makes them (image in pool images,
snapshot `snap`, protected), as client.admin. In eventlet mode the runner starts nova
through `nova.monkey_patch.patch('eventlet')`, so `RbdProxy`/`RBDVolumeProxy` really wrap
in `tpool.Proxy`; a ticking green thread checks the hub is never blocked while nova's
code runs. nova connects `rados.Rados` on the calling (green) thread itself, so only
connect/open_ioctx/shutdown and Image() may run on the hub's thread.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import nova.conf
from flowkit import FlowContext, MiB, expect, same, user_ioctx
from nova import exception, utils
from nova.storage import rbd_utils
from nova.virt.libvirt import imagebackend

import rados
import rbd

NOVA_CONF = """
[libvirt]
images_type = rbd
images_rbd_pool = vms
images_rbd_ceph_conf = {conf}
rbd_user = cinder
rbd_secret_uuid = 457eb676-33da-42ec-9a8c-9293d545c337
disk_cachemodes = "network=writeback"
hw_disk_discard = unmap
inject_password = false
inject_key = false
inject_partition = -2
# not in the guide: 5 s between remove attempts would only make the busy-image test slow
rbd_destroy_volume_retry_interval = 1
"""
SECRET_UUID = "457eb676-33da-42ec-9a8c-9293d545c337"
CONF = nova.conf.CONF
# what nova itself runs on the calling thread: its rados connection, and opening the image
HUB_OK = ("Rados.connect", "Rados.open_ioctx", "Rados.shutdown", "Rados.get_fsid")


class NoWatch:
    """Native mode: nothing to watch."""

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        yield

    def check(self, must_be_in_tpool: tuple[str, ...], allowed_on_hub: tuple[str, ...] = ()) -> None:
        pass


class Nova:
    def __init__(self, ctx: FlowContext) -> None:
        self.ctx = ctx
        path = ctx.write_file(f"nova-{uuid.uuid4().hex[:8]}.conf", NOVA_CONF.format(conf=ctx.conf))
        CONF(args=[], project="nova", default_config_files=[path])
        if ctx.eventlet:
            from hubwatch import HubWatch

            assert type(utils.tpool_wrap(object())).__name__ == "Proxy", "nova is not in eventlet mode"
            self.watch: Any = HubWatch()
        else:
            assert utils.concurrency_mode_threading()
            self.watch = NoWatch()
        self.driver = rbd_utils.RBDDriver()
        assert (self.driver.pool, self.driver.rbd_user, self.driver.ceph_conf) == ("vms", "cinder", ctx.conf)

    def __call__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run nova's FN as nova-compute would: inside the hub watch's window."""
        with self.watch.active():
            return fn(*args, **kwargs)

    def fails(self, exc: type[BaseException], fn: Callable[..., Any], *args: Any, **kwargs: Any) -> BaseException:
        with self.watch.active():
            return expect(exc, fn, *args, **kwargs)

    def done(self, must_be_in_tpool: tuple[str, ...]) -> None:
        self.watch.check(must_be_in_tpool, HUB_OK)


def glance_image(ctx: FlowContext, data: bytes) -> tuple[str, dict[str, str]]:
    """An image as glance's RBD store leaves it: IMAGE@snap, protected; its location."""
    image_id = str(uuid.uuid4())
    ctx.write_image("images", image_id, data)
    with rbd.Image(ctx.admin_ioctx("images"), image_id) as img:
        img.create_snap("snap")
        img.protect_snap("snap")
    return image_id, {"url": f"rbd://{ctx.fsid}/images/{image_id}/snap"}


def later(ctx: FlowContext, delay: float, fn: Callable[[], Any]) -> Any:
    """Run FN after DELAY seconds from another thread (a green one under eventlet, whose
    client call then goes to tpool like any service's)."""
    if ctx.eventlet:
        import eventlet
        from eventlet import tpool

        return eventlet.spawn_after(delay, tpool.execute, fn)
    t = threading.Timer(delay, fn)
    t.start()
    return t


class RemoveLog:
    """What RBD().remove answered, in order (nova hides ImageBusy behind its retries)."""

    def __init__(self) -> None:
        self.results: Counter[str] = Counter()
        self._orig = rbd.RBD.remove
        log = self

        def remove(self: rbd.RBD, ioctx: rados.Ioctx, name: str, *a: Any, **kw: Any) -> Any:
            try:
                r = log._orig(self, ioctx, name, *a, **kw)
            except rbd.Error as e:
                log.results[f"{name}:{type(e).__name__}"] += 1
                raise
            log.results[f"{name}:ok"] += 1
            return r

        rbd.RBD.remove = remove  # type: ignore[method-assign]

    def close(self) -> None:
        rbd.RBD.remove = self._orig  # type: ignore[method-assign]


# -- flows -----------------------------------------------------------------------------------
def flow_clone_from_glance(ctx: FlowContext) -> int:
    """Boot from a Glance image: is_cloneable, clone into vms, size/resize, the guest writes,
    the parent stays busy and unchanged, flatten, and parent_info of a non-clone."""
    n = Nova(ctx)
    drv = n.driver
    data = ctx.data(20 * MiB + 4321, seed=40)
    image_id, loc = glance_image(ctx, data)
    verified = 0

    assert n(drv.get_fsid) == ctx.fsid
    assert n(drv.is_cloneable, loc, {"disk_format": "raw"}) is True
    assert n(drv.is_cloneable, loc, {"disk_format": "qcow2"}) is False
    other = {"url": f"rbd://00000000-0000-0000-0000-000000000000/images/{image_id}/snap"}
    assert n(drv.is_cloneable, other, {"disk_format": "raw"}) is False
    missing = {"url": f"rbd://{ctx.fsid}/images/{uuid.uuid4()}/snap"}
    assert n(drv.is_cloneable, missing, {"disk_format": "raw"}) is False
    no_snap = {"url": f"rbd://{ctx.fsid}/images/{image_id}/nosuchsnap"}
    assert n(drv.is_cloneable, no_snap, {"disk_format": "raw"}) is False
    assert n(drv.is_cloneable, {"url": f"rbd://{image_id}"}, {"disk_format": "raw"}) is False

    instance = str(uuid.uuid4())
    disk = f"{instance}_disk"
    n(drv.clone, loc, disk)
    assert n(drv.exists, disk) is True
    assert n(drv.exists, f"{instance}_nosuchdisk") is False
    assert n(drv.size, disk) == len(data)
    assert n(drv.parent_info, disk, pool="vms") == ("images", image_id, "snap")
    verified += same(ctx.read_image("vms", disk), data, "clone of the glance image")

    # the flavor's root disk is bigger than the image
    n(drv.resize, disk, 64 * MiB)
    assert n(drv.size, disk) == 64 * MiB
    disk_now = bytearray(data + bytes(64 * MiB - len(data)))
    # the guest writes through QEMU as client.cinder, over the image and past its end
    with user_ioctx(ctx.conf, "cinder", "vms") as io_, rbd.Image(io_, disk) as img:
        for off, length, seed in ((MiB - 5, 2 * MiB, 41), (30 * MiB, MiB, 42)):
            chunk = ctx.data(length, seed)
            img.write(chunk, off)
            disk_now[off:off + length] = chunk
    verified += same(ctx.read_image("vms", disk), bytes(disk_now), "clone after guest writes")
    verified += same(ctx.read_image("images", image_id, "snap"), data, "parent unchanged by the clone")

    # glance cannot take the protection off while the instance disk is a clone of it
    with rbd.Image(ctx.admin_ioctx("images"), image_id) as parent:
        expect(rbd.ImageBusy, parent.unprotect_snap, "snap")
        expect(rbd.ImageBusy, parent.remove_snap, "snap")
        parent.set_snap("snap")
        assert parent.list_children() == [("vms", disk)], parent.list_children()

    # the libvirt disk: mon addresses from `ceph mon dump`, auth as client.cinder
    backend = imagebackend.Rbd(path=f"vms/{disk}",
                               disk_info_mapping={"bus": "virtio", "type": "disk", "dev": "vda"})
    assert backend.path == f"rbd:vms/{disk}:id=cinder:conf={ctx.conf}", backend.path
    assert n(backend.exists) and n(backend.get_disk_size, disk) == 64 * MiB
    info = n(backend.libvirt_info, "writeback", {})
    assert (info.source_protocol, info.source_name) == ("rbd", f"vms/{disk}")
    assert info.auth_username == "cinder" and info.auth_secret_uuid == SECRET_UUID
    assert info.source_hosts and len(info.source_hosts) == len(info.source_ports)

    # flatten (what nova does before a rebuild or unshelve): no parent any more
    n(backend.flatten)
    n.fails(exception.ImageUnacceptable, drv.parent_info, disk, pool="vms")
    n(backend.flatten)  # a flat disk: nova checks parent_info first and does nothing
    verified += same(ctx.read_image("vms", disk), bytes(disk_now), "flattened disk")
    with rbd.Image(ctx.admin_ioctx("images"), image_id) as parent:
        parent.set_snap("snap")
        assert parent.list_children() == []
    n.done(("Image.size", "Image.resize", "Image.parent_info", "Image.flatten", "RBD.clone", "Image.close"))
    return verified


def flow_snapshots(ctx: FlowContext) -> int:
    """create/protect/remove/rollback of snapshots, with the errors the reference lists."""
    n = Nova(ctx)
    drv = n.driver
    name = f"{uuid.uuid4()}_disk"
    data = ctx.data(9 * MiB + 77, seed=50)
    ctx.write_image("vms", name, data)
    verified = 0

    n(drv.create_snap, name, rbd_utils.RESIZE_SNAPSHOT_NAME)
    n(drv.create_snap, name, "prot", protect=True)
    n(drv.create_snap, name, "prot2", pool="vms", protect=True)
    n.fails(rbd.ImageExists, drv.create_snap, name, "prot")
    with rbd.Image(ctx.admin_ioctx("vms"), name, read_only=True) as img:
        assert not img.is_protected_snap(rbd_utils.RESIZE_SNAPSHOT_NAME)
        assert img.is_protected_snap("prot") and img.is_protected_snap("prot2")

    with n.watch.active(), rbd_utils.RBDVolumeProxy(drv, name) as vol:
        expect(rbd.InvalidArgument, vol.unprotect_snap, rbd_utils.RESIZE_SNAPSHOT_NAME)
        expect(rbd.ImageBusy, vol.remove_snap, "prot")
        expect(rbd.ImageBusy, vol.protect_snap, "prot")
        expect(rbd.ImageNotFound, vol.remove_snap, "nosuchsnap")

    # resize revert: the guest changed the disk, nova rolls back to nova-resize
    with rbd.Image(ctx.admin_ioctx("vms"), name) as img:
        img.write(ctx.data(3 * MiB, seed=51), MiB)
    n(drv.rollback_to_snap, name, rbd_utils.RESIZE_SNAPSHOT_NAME)
    verified += same(ctx.read_image("vms", name), data, "rolled back to nova-resize")
    n.fails(exception.SnapshotNotFound, drv.rollback_to_snap, name, "nosuchsnap")

    # a protected snapshot stays unless forced
    n(drv.remove_snap, name, "prot")
    assert "prot" in ctx.snaps("vms", name)
    n(drv.remove_snap, name, "prot", force=True)
    n(drv.remove_snap, name, "prot2", pool="vms", force=True)
    n(drv.remove_snap, name, "nosuchsnap")  # only a warning
    assert ctx.snaps("vms", name) == [rbd_utils.RESIZE_SNAPSHOT_NAME], ctx.snaps("vms", name)

    # an image with snapshots is not removed (nova logs it), nor by rbd directly
    n(drv.remove_image, name)
    assert name in ctx.images("vms")
    with n.watch.active(), rbd_utils.RADOSClient(drv, "vms") as client:
        expect(rbd.ImageHasSnapshots, rbd_utils.RbdProxy().remove, client.ioctx, name)
    verified += same(ctx.read_image("vms", name, rbd_utils.RESIZE_SNAPSHOT_NAME), data, "nova-resize snapshot")
    n(drv.remove_snap, name, rbd_utils.RESIZE_SNAPSHOT_NAME)
    n(drv.remove_image, name)
    assert name not in ctx.images("vms")
    n(drv.remove_image, name)  # gone: only a warning
    n.done(("Image.create_snap", "Image.protect_snap", "Image.remove_snap", "Image.list_snaps", "RBD.remove"))
    return verified


def flow_import_and_cli(ctx: FlowContext) -> int:
    """What nova runs as commands: `rbd import` (sparse), `rbd export`, `ceph df`,
    `ceph mon dump` — and the mon addresses it gets must reach the cluster."""
    n = Nova(ctx)
    drv = n.driver
    verified = 0
    # a raw base image with all-zero 4 MiB objects in every other slot
    data = ctx.data(40 * MiB + 1234, seed=60, hole_every=8 * MiB, hole=4 * MiB)
    base = os.path.join(ctx.dir, f"base-{uuid.uuid4().hex[:8]}")
    name = f"{uuid.uuid4()}_disk"

    def prepare_template(target: str, *args: Any, **kwargs: Any) -> None:
        with open(target, "wb") as f:
            f.write(data)

    # the image backend's create_image: exists → fetch the base → rbd import → grow
    backend = imagebackend.Rbd(path=f"vms/{name}")
    n(backend.create_image, prepare_template, base, 48 * MiB)
    assert n(drv.size, name) == 48 * MiB
    want = data + bytes(48 * MiB - len(data))
    verified += same(ctx.read_image("vms", name), want, "rbd import of the base")
    # import skipped the zero objects (5 of the first 11 hold data)
    assert ctx.data_objects("vms", name) == 5, ctx.data_objects("vms", name)
    n(backend.create_image, prepare_template, base, 48 * MiB)  # exists already: nothing to do

    # rbd export of a snapshot, as nova's rbd image download does
    n(drv.create_snap, name, "snap")
    out = os.path.join(ctx.dir, f"export-{uuid.uuid4().hex[:8]}")
    n(drv.export_image, out, name, "snap", pool="vms")
    with open(out, "rb") as f:
        verified += same(f.read(), want, "rbd export")

    # ceph df: the resource tracker's disk numbers
    info = n(drv.get_pool_info)
    assert set(info) == {"total", "free", "used"}, info
    assert all(isinstance(v, int) and v >= 0 for v in info.values()), info
    assert info["total"] > 0 and 0 < info["free"] <= info["total"], info

    # ceph mon dump: connect the way os-brick/libvirt do, with only those addresses
    hosts, ports = n(drv.get_mon_addrs)
    assert hosts and len(hosts) == len(ports) and all(p.isdigit() for p in ports), (hosts, ports)
    raw_hosts, _ = n(drv.get_mon_addrs, strip_brackets=False)
    assert len(raw_hosts) == len(hosts)
    with open(os.path.join(ctx.etc, "ceph.client.cinder.keyring")) as f:
        keyring = f.read()
    conf = ctx.write_file(f"mon-only-{uuid.uuid4().hex[:8]}.conf",
                          "[global]\nmon_host = " + ",".join(f"{h}:{p}" for h, p in zip(hosts, ports, strict=True))
                          + "\n" + keyring + "\n")
    cl = rados.Rados(rados_id="cinder", conffile=conf)
    cl.connect()
    try:
        assert cl.get_fsid() == ctx.fsid
        with cl.open_ioctx("vms") as io_:
            assert name in rbd.RBD().list(io_)
    finally:
        cl.shutdown()

    # the CLI output nova parses, checked against what the cluster says as admin
    df = json.loads(subprocess.run(["ceph", "df", "--format=json", "--conf", ctx.conf], check=True,
                                   capture_output=True, text=True).stdout)
    assert df["stats"]["total_bytes"] == info["total"], (df["stats"], info)
    n.done(("Image.size", "Image.create_snap"))
    return verified


def flow_cleanup(ctx: FlowContext) -> int:
    """Deleting an instance: cleanup_volumes removes its disks, retrying a busy one and
    dropping a nova-resize snapshot; destroy_volume gives up quietly after its retries."""
    n = Nova(ctx)
    drv = n.driver
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    data = ctx.data(2 * MiB, seed=70)
    for name in (f"{a}_disk", f"{a}_disk.local", f"{a}_disk.swap", f"{b}_disk"):
        ctx.write_image("vms", name, data)
    n(drv.create_snap, f"{a}_disk.local", rbd_utils.RESIZE_SNAPSHOT_NAME)
    log = RemoveLog()
    try:
        # another client (a QEMU still running) has the swap disk open for ~2.5 s
        busy = rbd.Image(ctx.admin_ioctx("vms"), f"{a}_disk.swap")
        busy.write(b"guest", 0)
        closer = later(ctx, 2.5, busy.close)
        t0 = time.monotonic()
        n(drv.cleanup_volumes, lambda v: v.startswith(a))
        took = time.monotonic() - t0
        if not ctx.eventlet:
            closer.join()
        assert not [v for v in ctx.images("vms") if v.startswith(a)], ctx.images("vms")
        assert f"{b}_disk" in ctx.images("vms")
        assert log.results[f"{a}_disk.swap:ImageBusy"] >= 1, log.results
        assert log.results[f"{a}_disk.local:ImageHasSnapshots"] == 1, log.results
        assert all(log.results[f"{a}_{d}:ok"] == 1 for d in ("disk", "disk.local", "disk.swap")), log.results
        assert took >= 2.0, took

        # open for longer than nova retries: it gives up without raising, the disk stays
        CONF.set_override("rbd_destroy_volume_retries", 2, group="libvirt")
        held = rbd.Image(ctx.admin_ioctx("vms"), f"{b}_disk")
        try:
            n(drv.destroy_volume, f"{b}_disk", pool="vms")
        finally:
            held.close()
        assert f"{b}_disk" in ctx.images("vms")
        assert log.results[f"{b}_disk:ImageBusy"] == 3, log.results  # 2 retries, then once more
        verified = same(ctx.read_image("vms", f"{b}_disk"), data, "disk nova failed to remove")
        n(drv.destroy_volume, f"{b}_disk", pool="vms")
        assert f"{b}_disk" not in ctx.images("vms")
        CONF.clear_override("rbd_destroy_volume_retries", group="libvirt")
    finally:
        log.close()
    n.done(("RBD.remove", "RBD.list", "Image.remove_snap"))
    return verified


def flow_direct_snapshot(ctx: FlowContext) -> int:
    """imagebackend.Rbd.direct_snapshot. As client.cinder (read-only on images, the guide's
    caps) the clone into images is refused: nova gets Forbidden, removes its snapshot and
    falls back to a standard snapshot. With write access the image lands in images."""
    n = Nova(ctx)
    drv = n.driver
    data = ctx.data(12 * MiB + 99, seed=80)
    image_id, loc = glance_image(ctx, data)
    disk = f"{uuid.uuid4()}_disk"
    n(drv.clone, loc, disk)
    guest = ctx.data(MiB, seed=81)
    with user_ioctx(ctx.conf, "cinder", "vms") as io_, rbd.Image(io_, disk) as img:
        img.write(guest, 2 * MiB)
    want = data[:2 * MiB] + guest + data[3 * MiB:]
    verified = 0

    backend = imagebackend.Rbd(path=f"vms/{disk}")
    snap_name, new_image = uuid.uuid4().hex, str(uuid.uuid4())
    n.fails(exception.Forbidden, backend.direct_snapshot, None, snap_name, "raw", new_image, image_id)
    assert new_image not in ctx.images("images")
    assert snap_name not in ctx.snaps("vms", disk), ctx.snaps("vms", disk)
    # the pool that refused: client.cinder may read images but not write there
    with user_ioctx(ctx.conf, "cinder", "images") as io_:
        expect(rbd.PermissionError, rbd.RBD().create, io_, "cinder-was-here", MiB)
        with rbd.Image(io_, image_id, snapshot="snap", read_only=True) as img:
            verified += same(img.read(0, len(data)), data, "glance image read as client.cinder")

    # a deployment that lets nova write to images (here client.admin): the real thing
    CONF.set_override("rbd_user", "admin", group="libvirt")
    try:
        admin_backend = imagebackend.Rbd(path=f"vms/{disk}")
        url = n(admin_backend.direct_snapshot, None, snap_name, "raw", new_image, image_id)
    finally:
        CONF.clear_override("rbd_user", group="libvirt")
    assert url == f"rbd://{ctx.fsid}/images/{new_image}/snap", url
    verified += same(ctx.read_image("images", new_image, "snap"), want, "direct snapshot")
    with rbd.Image(ctx.admin_ioctx("images"), new_image, read_only=True) as img:
        assert img.is_protected_snap("snap")
        expect(rbd.ImageNotFound, img.parent_info)  # flattened
    assert snap_name not in ctx.snaps("vms", disk), ctx.snaps("vms", disk)
    # and nova can boot from that new image again
    assert n(drv.is_cloneable, {"url": url}, {"disk_format": "raw"}) is True
    n.done(("Image.create_snap", "Image.protect_snap", "Image.remove_snap", "Image.parent_info"))
    return verified

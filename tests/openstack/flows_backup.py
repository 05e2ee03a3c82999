"""cinder-backup's Ceph driver (`cinder.backup.drivers.ceph.CephBackupDriver`) as the
backup manager runs it, configured by the guide's cinder.conf.

The source and target volumes are real images in pool `volumes`, created and written as
client.cinder; the driver gets them as os-brick's `RBDConnector` hands them to the backup
manager (an `RBDVolumeIOWrapper` over a connection made from the `ceph mon dump`
addresses and a pasted keyring), wrapped in `utils.tpool_wrap` as the manager does. The
volume and backup records live in a real cinder database (sqlite, schema from cinder's
own migrations), built with cinder's test factories.

In eventlet mode (cinder-backup's default) the runner patches the process through
`cinder.monkey_patch.patch()`, so `utils.tpool_wrap` really wraps in `tpool.Proxy`; a
ticking green thread checks that the hub is never blocked.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# The runner has started cinder in its mode through cinder.monkey_patch.patch(), as
# cinder-backup starts. cinder's test package calls patch() again on import, which in the
# native mode must find the switch cinder-backup reads for that mode, not patch eventlet.
if "--eventlet" not in sys.argv:
    os.environ["OS_CINDER_DISABLE_EVENTLET_PATCHING"] = "1"

from cinder import context, exception, objects, utils  # noqa: E402
from cinder.backup.drivers import ceph as ceph_backup  # noqa: E402
from cinder.db import migration  # noqa: E402
from cinder.tests.unit import fake_constants as fake  # noqa: E402
from cinder.tests.unit import utils as test_utils  # noqa: E402
from flowkit import GUIDE_CINDER_BACKEND, FlowContext, GiB, MiB, expect, user_ioctx  # noqa: E402
from os_brick.initiator import linuxrbd  # noqa: E402
from os_brick.initiator.connectors import rbd as rbd_connector  # noqa: E402
from oslo_config import cfg  # noqa: E402
from oslo_utils import importutils  # noqa: E402

import rados  # noqa: E402
import rbd  # noqa: E402

CINDER_CONF = """
[DEFAULT]
enabled_backends = ceph
glance_api_version = 2
backup_driver = cinder.backup.drivers.ceph.CephBackupDriver
backup_ceph_conf = {conf}
backup_ceph_user = cinder-backup
backup_ceph_chunk_size = 134217728
backup_ceph_pool = backups
backup_ceph_stripe_unit = 0
backup_ceph_stripe_count = 0
restore_discard_excess_bytes = true
state_path = {state}

[database]
connection = sqlite:///{state}/cinder.sqlite

{backend}"""
CONF = cfg.CONF
CHUNK = 64 * MiB  # how much of an image is compared at a time


# -- what a volume should hold ---------------------------------------------------------------
@dataclass
class Disk:
    """The expected content of an image: SIZE bytes, zero except for WRITES (applied in order)."""

    size: int
    writes: list[tuple[int, bytes]] = field(default_factory=list)

    def copy(self) -> Disk:
        return Disk(self.size, list(self.writes))

    def grown(self, size: int) -> Disk:
        return Disk(size, [(o, d[:max(0, size - o)]) for o, d in self.writes if o < size])

    def expected(self, off: int, length: int) -> bytes:
        buf = bytearray(length)
        for w_off, data in self.writes:
            lo, hi = max(off, w_off), min(off + length, w_off + len(data))
            if lo < hi:
                buf[lo - off:hi - off] = data[lo - w_off:hi - w_off]
        return bytes(buf)


def verify(ctx: FlowContext, pool: str, name: str, want: Disk, what: str, snap: str | None = None) -> int:
    """Read POOL/NAME[@SNAP] as client.admin and compare it with WANT, byte for byte."""
    with rbd.Image(ctx.admin_ioctx(pool), name, snapshot=snap, read_only=True) as img:
        assert img.size() == want.size, f"{what}: size {img.size()} != {want.size}"
        for off in range(0, want.size, CHUNK):
            length = min(CHUNK, want.size - off)
            got, exp = img.read(off, length), want.expected(off, length)
            if got != exp:
                first = next(i for i, (a, b) in enumerate(zip(got, exp, strict=True)) if a != b)
                raise AssertionError(f"{what}: {pool}/{name}@{snap} differs at byte {off + first}")
    return want.size


# -- the cinder side -------------------------------------------------------------------------
class Cinder:
    """cinder-backup's view: its config, its DB, its driver, and client.cinder's volumes."""

    def __init__(self, ctx: FlowContext, watch: Any) -> None:
        self.ctx = ctx
        self.watch = watch
        state = os.path.join(ctx.dir, f"cinder-{uuid.uuid4().hex[:8]}")
        os.makedirs(state)
        path = ctx.write_file(os.path.basename(state) + ".conf", CINDER_CONF.format(
            conf=ctx.conf, backend=GUIDE_CINDER_BACKEND.format(conf=ctx.conf), state=state))
        importutils.import_module("cinder.backup.manager")  # registers backup_driver, as cinder-backup has it
        CONF(args=[], project="cinder", default_config_files=[path])
        objects.register_all()
        migration.db_sync()
        self.context = context.RequestContext(fake.USER_ID, fake.PROJECT_ID, is_admin=True)
        self.driver: ceph_backup.CephBackupDriver = importutils.import_class(CONF.backup_driver)(context=self.context)
        self.driver.check_for_setup_error()
        self.hosts, self.ports = self._mon_addrs()
        with open(os.path.join(ctx.etc, "ceph.client.cinder.keyring")) as f:
            self.keyring = f.read()
        # the guest side: client.cinder writes the volumes (what a VM does through QEMU)
        self.cluster = rados.Rados(rados_id="cinder", conffile=ctx.conf)
        self.cluster.connect()
        self.volumes = self.cluster.open_ioctx("volumes")
        self.features = int(self.cluster.conf_get("rbd_default_features") or rbd.RBD_FEATURE_LAYERING)

    def _mon_addrs(self) -> tuple[list[str], list[str]]:
        """As cinder's volume driver builds the connection info: `ceph mon dump` as client.cinder."""
        out = subprocess.run(["ceph", "mon", "dump", "--format=json", "--id", "cinder", "--conf", self.ctx.conf],
                             check=True, capture_output=True, text=True).stdout
        hosts, ports = [], []
        for mon in json.loads(out)["mons"]:
            host, port = mon["addr"][:mon["addr"].rindex("/")].rsplit(":", 1)
            hosts.append(host.strip("[]"))
            ports.append(port)
        return hosts, ports

    def delete_backup(self, b: objects.Backup) -> None:
        with self.watch.active():
            self.driver.delete_backup(b)

    def close(self) -> None:
        self.volumes.close()
        self.cluster.shutdown()

    # volumes
    def create_volume(self, size_gb: int, writes: list[tuple[int, bytes]]) -> tuple[objects.Volume, Disk]:
        vol = test_utils.create_volume(self.context, size=size_gb, id=str(uuid.uuid4()), host="backup@ceph#ceph")
        rbd.RBD().create(self.volumes, vol.name, size_gb * GiB, old_format=False, features=self.features)
        disk = Disk(size_gb * GiB)
        self.write(vol, disk, writes)
        return vol, disk

    def write(self, vol: objects.Volume, disk: Disk, writes: list[tuple[int, bytes]]) -> None:
        with rbd.Image(self.volumes, vol.name) as img:
            for off, data in writes:
                if data.count(0) == len(data):
                    img.discard(off, len(data))
                else:
                    img.write(data, off)
                disk.writes.append((off, data))

    def connect(self, vol: objects.Volume) -> tuple[dict[str, Any], Any]:
        """What the backup manager's _attach_device gives the driver for an RBD volume."""
        props = {"name": f"volumes/{vol.name}", "hosts": self.hosts, "ports": self.ports,
                 "cluster_name": "ceph", "auth_enabled": True, "auth_username": "cinder",
                 "secret_type": "ceph", "secret_uuid": "457eb676-33da-42ec-9a8c-9293d545c337",
                 "volume_id": vol.id, "discard": True, "keyring": self.keyring}
        connector = rbd_connector.RBDConnector(root_helper=None)
        device = connector.connect_volume(props)
        handle = device["path"]
        assert isinstance(handle, linuxrbd.RBDVolumeIOWrapper), handle
        return props | {"_connector": connector, "_device": device}, utils.tpool_wrap(handle)

    def disconnect(self, props: dict[str, Any]) -> None:
        device = props["_device"]
        device["path"].close()
        props["_connector"].disconnect_volume(props, device)

    # backups, as the manager drives the driver
    def backup(self, vol: objects.Volume, parent: objects.Backup | None = None) -> objects.Backup:
        b = test_utils.create_backup(self.context, volume_id=vol.id,
                                     parent_id=parent.id if parent else None, size=vol.size)
        b.container = None  # the API leaves it unset; the driver picks its pool and saves
        b.save()
        props, volume_file = self.connect(vol)
        try:
            with self.watch.active():
                updates = self.driver.backup(b, volume_file)
        finally:
            self.disconnect(props)
        b = objects.Backup.get_by_id(self.context, b.id)
        assert b.container == "backups", b.container
        b.update(updates)
        b.status = "available"
        b.save()
        return b

    def restore(self, b: objects.Backup, vol: objects.Volume, volume_is_new: bool) -> None:
        props, volume_file = self.connect(vol)
        try:
            with self.watch.active():
                self.driver.restore(b, vol.id, volume_file, volume_is_new)
        finally:
            self.disconnect(props)


def base_of(b: objects.Backup) -> str:
    return str(json.loads(b.service_metadata)["base"])


def snap_of(ctx: FlowContext, b: objects.Backup) -> str:
    names = [s for s in ctx.snaps("backups", base_of(b)) if s.startswith(f"backup.{b.id}.snap.")]
    assert len(names) == 1, names
    return names[0]


class NoWatch:
    """Native mode: nothing to watch."""

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        yield

    def check(self, must_be_in_tpool: tuple[str, ...]) -> None:
        pass


def _watch(ctx: FlowContext) -> Any:
    if not ctx.eventlet:
        return NoWatch()
    from hubwatch import HubWatch

    assert type(utils.tpool_wrap(object())).__name__ == "Proxy", "cinder is not in eventlet mode"
    return HubWatch()


# what the driver must have sent to tpool (os-brick's connect runs on the hub, by design)
TPOOL_CALLS = ("Image.create_snap", "Image.list_snaps", "Image.diff_iterate", "RBD.create", "RBD.list",
               "RBD.remove", "Rados.connect")


# -- flows -----------------------------------------------------------------------------------
def flow_incremental_chain(ctx: FlowContext) -> int:
    """Full backup, two incrementals through `rbd export-diff | rbd import-diff`, restores of
    an older and of the newest point to new volumes (one bigger), then delete them all."""
    watch = _watch(ctx)
    c = Cinder(ctx, watch)
    verified = 0
    d = ctx.data
    vol, disk = c.create_volume(1, [(0, d(3 * MiB + 5, 1)), (100 * MiB + 7, d(MiB, 2)),
                                    (GiB - 2 * MiB, d(2 * MiB, 3))])
    at1 = disk.copy()
    b1 = c.backup(vol)
    base = base_of(b1)
    assert base == f"volume-{vol.id}.backup.{b1.id}", base
    s1 = snap_of(ctx, b1)
    # the restore point is the snapshot import-diff made on the base; the source keeps its twin
    assert s1 in ctx.snaps("volumes", vol.name), ctx.snaps("volumes", vol.name)
    verified += verify(ctx, "backups", base, at1, "full backup", snap=s1)
    assert ceph_backup.VolumeMetadataBackup(_Client(ctx.admin_ioctx("backups")), b1.id).get() is not None

    c.write(vol, disk, [(MiB, d(MiB, 4)), (300 * MiB, d(5 * MiB + 3, 5)), (100 * MiB, bytes(4 * MiB))])
    at2 = disk.copy()
    b2 = c.backup(vol, parent=b1)
    assert base_of(b2) == base, "an incremental lands on the parent's base image"
    s2 = snap_of(ctx, b2)
    verified += verify(ctx, "backups", base, at2, "incremental 1", snap=s2)

    c.write(vol, disk, [(GiB - MiB, d(MiB, 6)), (0, bytes(MiB)), (700 * MiB, d(3 * MiB, 7))])
    at3 = disk.copy()
    b3 = c.backup(vol, parent=b2)
    s3 = snap_of(ctx, b3)
    verified += verify(ctx, "backups", base, at3, "incremental 2", snap=s3)
    verified += verify(ctx, "backups", base, at1, "full backup after incrementals", snap=s1)

    # an older restore point into a new volume: a diff restore (the target has no extents)
    new1, _ = c.create_volume(1, [])
    c.restore(b2, new1, volume_is_new=True)
    verified += verify(ctx, "volumes", new1.name, at2, "restore of incremental 1")
    # the newest into a bigger new volume: import-diff shrinks it to the backup, cinder grows it back
    new2, _ = c.create_volume(2, [])
    c.restore(b3, new2, volume_is_new=True)
    verified += verify(ctx, "volumes", new2.name, at3.grown(2 * GiB), "restore of incremental 2 (bigger)")

    # delete: the base goes with its last restore point, the metadata objects with each backup
    for b, left in ((b3, [s1, s2]), (b1, [s2]), (b2, None)):
        c.delete_backup(b)
        if left is None:
            assert base not in ctx.images("backups"), ctx.images("backups")
        else:
            assert sorted(ctx.snaps("backups", base)) == sorted(left), ctx.snaps("backups", base)
        expect(rados.ObjectNotFound, ctx.admin_ioctx("backups").stat, f"backup.{b.id}.meta")
    # a second delete finds nothing and only warns, as cinder expects
    c.delete_backup(b1)
    c.close()
    watch.check(TPOOL_CALLS)
    return verified


def flow_full_restores(ctx: FlowContext) -> int:
    """Restores that copy every byte: onto the volume the backup came from, and onto a
    bigger volume with data of its own (the excess is discarded)."""
    watch = _watch(ctx)
    c = Cinder(ctx, watch)
    verified = 0
    d = ctx.data
    vol, disk = c.create_volume(1, [(0, d(2 * MiB, 10)), (129 * MiB - 3, d(MiB + 6, 11)),
                                    (GiB - 3 * MiB, d(3 * MiB, 12))])
    at1 = disk.copy()
    b1 = c.backup(vol)
    c.write(vol, disk, [(40 * MiB, d(2 * MiB, 13))])
    at2 = disk.copy()
    b2 = c.backup(vol, parent=b1)

    # onto its own volume, changed since: cinder forces a full copy from the restore point
    c.write(vol, disk, [(0, d(MiB, 14)), (500 * MiB, d(MiB, 15))])
    c.restore(b1, vol, volume_is_new=False)
    verified += verify(ctx, "volumes", vol.name, at1, "restore onto the source volume")

    # onto a bigger volume that has extents (so no diff restore): copy, then discard the rest
    big, _ = c.create_volume(2, [(5 * MiB, d(MiB, 16)), (GiB + 300 * MiB, d(2 * MiB, 17)),
                                 (2 * GiB - MiB, d(MiB, 18))])
    c.restore(b2, big, volume_is_new=False)
    verified += verify(ctx, "volumes", big.name, at2.grown(2 * GiB), "restore onto a bigger used volume")

    for b in (b2, b1):
        c.delete_backup(b)
    assert base_of(b1) not in ctx.images("backups")
    c.close()
    watch.check(("Image.read", "Image.write", "Image.create_snap", "RBD.create", "Rados.connect"))
    return verified


def flow_caps(ctx: FlowContext) -> int:
    """The guide's cinder-backup user may use pool backups only: creating in volumes is
    EPERM, an export-diff from volumes as that user fails in the pipe and cinder sees
    BackupRBDOperationFailed (its cue to fall back); deleting a backup with no image only warns."""
    with user_ioctx(ctx.conf, "cinder-backup", "volumes") as io_:
        e = expect(rbd.PermissionError, rbd.RBD().create, io_, "backup-was-here", MiB)
        assert e.errno == 1, e
    assert "backup-was-here" not in ctx.images("volumes")
    c = Cinder(ctx, NoWatch())
    vol, _ = c.create_volume(1, [(0, ctx.data(MiB, 20))])
    b = test_utils.create_backup(c.context, volume_id=vol.id, container="backups")
    props, volume_file = c.connect(vol)
    try:
        # client.cinder-backup reading the source: export-diff is refused, import-diff gets nothing
        err = expect(exception.BackupRBDOperationFailed, c.driver._rbd_diff_transfer, vol.name, "volumes",
                     "diff-target", "backups", src_user="cinder-backup", src_conf=ctx.conf,
                     dest_user="cinder-backup", dest_conf=ctx.conf)
        assert "ret=" in str(err), err
    finally:
        c.disconnect(props)
    c.delete_backup(b)  # nothing to delete: only warns
    assert not [n for n in ctx.images("backups") if vol.id in n], ctx.images("backups")
    c.close()
    return 0


class _Client:
    """The shape VolumeMetadataBackup wants (an object with .ioctx), over the admin ioctx."""

    def __init__(self, ioctx: rados.Ioctx) -> None:
        self.ioctx = ioctx

"""The guide's OpenStack part against a running Shoal cluster, with the real code:
Glance stores an image (glance_store's RBD store, client.glance), Cinder creates a
volume from it copy-on-write and attaches it (cinder's RBDDriver and os-brick,
client.cinder), then a hypervisor attaches the same volume over NBD.

Run by scripts/walkthrough.sh after the pools and users exist: CEPH_CONF points at the
cluster, and the users' keyrings lie next to it.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import uuid

import glance_store
from cinder import context, objects, privsep
from cinder.volume import configuration
from cinder.volume import driver as volume_driver
from cinder.volume.drivers import rbd as rbd_driver
from glance_store import location
from os_brick.initiator.connectors import rbd as brick_rbd
from oslo_config import cfg

MiB = 1 << 20
CONF = os.path.abspath(os.environ["CEPH_CONF"])
WORK = tempfile.mkdtemp(prefix="shoal-openstack-")


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def show_conf(name: str, text: str) -> str:
    path = os.path.join(WORK, name)
    with open(path, "w") as f:
        f.write(text)
    print(f"--- {name}\n{text.strip()}\n---")
    return path


def run(argv: list[str]) -> None:
    print("$ " + " ".join(argv), flush=True)
    subprocess.run(argv, check=True)


def glance() -> tuple[glance_store.driver.Store, cfg.ConfigOpts]:
    path = show_conf("glance-api.conf", f"""
[glance_store]
stores = rbd
default_store = rbd
rbd_store_pool = images
rbd_store_user = glance
rbd_store_ceph_conf = {CONF}
rbd_store_chunk_size = 8
""")
    conf = cfg.ConfigOpts()
    glance_store.register_opts(conf)
    conf(args=[], default_config_files=[path])
    glance_store.create_stores(conf)
    return glance_store.get_store_from_scheme("rbd"), conf


def cinder() -> rbd_driver.RBDDriver:
    path = show_conf("cinder.conf", f"""
[DEFAULT]
enabled_backends = ceph
glance_api_version = 2

[ceph]
volume_driver = cinder.volume.drivers.rbd.RBDDriver
volume_backend_name = ceph
rbd_pool = volumes
rbd_ceph_conf = {CONF}
rbd_flatten_volume_from_snapshot = false
rbd_max_clone_depth = 5
rbd_store_chunk_size = 4
rados_connect_timeout = -1
rbd_user = cinder
rbd_secret_uuid = 457eb676-33da-42ec-9a8c-9293d545c337
""")
    cfg.CONF(["--config-file", path], project="cinder")
    objects.register_all()
    privsep.sys_admin_pctxt.set_client_mode(False)  # we are root: no sudo privsep daemon
    section = configuration.Configuration(volume_driver.volume_opts, config_group="ceph")
    section.append_config_values(rbd_driver.RBD_OPTS)
    # os-brick pastes the user's keyring into its temporary ceph.conf; it looks for it in
    # /etc/ceph unless the driver hands it over (cinderlib's rbd_keyring_conf)
    section.rbd_keyring_conf = os.path.join(os.path.dirname(CONF), "ceph.client.cinder.keyring")
    drv = rbd_driver.RBDDriver(configuration=section, host="demo@ceph")
    drv.do_setup(context.get_admin_context())
    drv.check_for_setup_error()
    return drv


def volume_object(size_gb: int) -> objects.Volume:
    ctx = context.get_admin_context()
    vol = objects.Volume(context=ctx, id=str(uuid.uuid4()), size=size_gb, status="creating", host="demo@ceph#ceph",
                         project_id="demo", user_id="demo", display_name="demo", volume_type_id=None,
                         encryption_key_id=None, multiattach=False, use_quota=True, glance_metadata={},
                         metadata={}, admin_metadata={}, provider_location=None, _name_id=None)
    vol.obj_reset_changes()
    return vol


def main() -> int:
    image = os.urandom(3 * MiB) + bytes(5 * MiB) + b"the guide's image ends here\n"
    digest = hashlib.sha256(image).hexdigest()

    step("Glance: upload an image (glance_store RBD store as client.glance)")
    store, gconf = glance()
    image_id = str(uuid.uuid4())
    uri, size, _md5, _sha, _ = store.add(image_id, io.BytesIO(image), len(image), "sha256")
    print(f"stored {size} bytes at {uri}")

    step("The guide's conversion step: a QCOW2 image lands in the cluster as a raw RBD image")
    # the guide converts with qemu-img to a local raw file first; with Shoal, qemu-img writes
    # into the cluster through an NBD gateway (`shoal image import --from qcow2`)
    raw, qcow2 = os.path.join(WORK, "guide.raw"), os.path.join(WORK, "guide.qcow2")
    with open(raw, "wb") as f:
        f.write(image)
    run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow2])
    qcow2_id = str(uuid.uuid4())
    run(["shoal", "image", "import", "--id", "glance", "--from", "qcow2", qcow2, f"images/{qcow2_id}"])
    for action in ("create", "protect"):  # what Glance does to every image it stores
        run(["rbd", "--id", "glance", "snap", action, f"images/{qcow2_id}@snap"])
    qcow2_uri = f"rbd://{uri.split('/')[2]}/images/{qcow2_id}/snap"

    step("Cinder: create volumes from both images (copy-on-write clones, client.cinder)")
    drv = cinder()
    stats = drv.get_volume_stats(refresh=True)
    print(f"backend {stats['volume_backend_name']}: {stats['free_capacity_gb']} GiB free")
    from_qcow2 = volume_object(1)
    meta = {"id": qcow2_id, "disk_format": "raw", "container_format": "bare", "size": size}
    _update, cloned = drv.clone_image(context.get_admin_context(), from_qcow2, (qcow2_uri, None), meta, None)
    print(f"clone_image({qcow2_uri}) -> cloned={cloned}, volume volumes/{from_qcow2.name}")
    vol = volume_object(1)
    meta = {"id": image_id, "disk_format": "raw", "container_format": "bare", "size": size}
    _update, cloned = drv.clone_image(context.get_admin_context(), vol, (uri, None), meta, None)
    print(f"clone_image -> cloned={cloned}, volume volumes/{vol.name}")
    subprocess.run(["rbd", "--id", "cinder", "info", f"volumes/{vol.name}"], check=True)

    step("Cinder: attach the volume (initialize_connection + os-brick, as copy-volume-to-image does)")
    conn = drv.initialize_connection(vol, {})
    print({k: conn["data"][k] for k in ("name", "hosts", "ports", "auth_username", "secret_uuid")})
    connector = brick_rbd.RBDConnector(None)
    handle = connector.connect_volume(conn["data"])
    f = handle["path"]
    got = f.read(len(image))
    connector.disconnect_volume(conn["data"], handle)
    print(f"read {len(got)} bytes through os-brick, sha256 matches the image: {hashlib.sha256(got).hexdigest() == digest}")
    conn = drv.initialize_connection(from_qcow2, {})
    handle = connector.connect_volume(conn["data"])
    converted = handle["path"].read(len(image))
    connector.disconnect_volume(conn["data"], handle)
    print(f"the volume from the QCOW2 image holds the same bytes: {converted == image}")
    if got != image or converted != image:
        return 1

    step("Hypervisor: attach the volume over NBD (rbd device map -t nbd)")
    mapped = subprocess.run(["rbd", "--id", "cinder", "device", "map", "-t", "nbd", f"volumes/{vol.name}"],
                            check=True, capture_output=True, text=True).stdout.strip()
    print(f"mapped at {mapped}")
    try:
        for tool in (["nbdinfo", mapped], ["qemu-img", "info", "-f", "raw", mapped]):
            if shutil.which(tool[0]):
                subprocess.run(tool, check=True)
        subprocess.run(["rbd", "device", "list"], check=True)
    finally:
        subprocess.run(["rbd", "device", "unmap", mapped], check=True)

    step("Cleanup: Cinder deletes the volumes; Glance deletes the images")
    drv.delete_volume(vol)
    drv.delete_volume(from_qcow2)
    store.delete(location.get_location_from_uri(uri, conf=gconf))
    store.delete(location.get_location_from_uri(qcow2_uri, conf=gconf))
    print("done")
    return 0


if __name__ == "__main__":
    try:
        rc = main()
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    sys.exit(rc)

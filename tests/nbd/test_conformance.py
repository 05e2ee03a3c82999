"""The NBD gateway against real clients from Debian's packages (qemu-utils, libnbd-bin,
fio): a real cluster, a real `shoal nbd serve` process, and nbdinfo / nbdcopy / qemu-io /
qemu-img / fio talking to it. scripts/install.sh installs the tools; a missing one fails
the test (it does not skip)."""

from __future__ import annotations

import json
import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.nbd import constants as C
from shoal.testing.cluster import TestCluster
from tests.nbd.nbd_helpers import Gateway, nbd_pool, run

POOL = "nbd"
MiB = 1 << 20


@pytest.fixture(scope="module")
def pool(cluster: TestCluster) -> TestCluster:
    return nbd_pool(cluster, POOL)


@pytest.fixture(scope="module")
def gw(pool: TestCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    g = Gateway(pool, tmp_path_factory.mktemp("nbd") / "nbd.sock")
    yield g
    g.stop()


def rbd(cluster: TestCluster, *args: str) -> str:
    done = cluster.cli("rbd", *args)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def create(cluster: TestCluster, name: str, size: str) -> str:
    rbd(cluster, "create", "--size", size, f"{POOL}/{name}")
    return f"{POOL}/{name}"


def raw_request(sock: Path, name: str, cmd: int, off: int, data: bytes = b"", length: int | None = None) -> int:
    """One request with simple replies over a minimal client; returns the NBD error."""
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(sock))
        f = s.makefile("rwb")
        f.read(18)
        raw = name.encode()
        body = struct.pack(">I", len(raw)) + raw + struct.pack(">H", 0)
        f.write(struct.pack(">IQII", 3, C.IHAVEOPT, C.OPT_GO, len(body)) + body)
        f.flush()
        while True:
            _, _, kind, n = struct.unpack(">QIII", f.read(20))
            f.read(n)
            assert kind < (1 << 31), f"GO {name} refused ({kind:#x})"
            if kind == C.REP_ACK:
                break
        n = len(data) if length is None else length
        f.write(struct.pack(">IHHQQI", C.REQUEST_MAGIC, 0, cmd, 1, off, n) + data)
        f.flush()
        magic, error, handle = struct.unpack(">IIQ", f.read(16))
        assert (magic, handle) == (C.SIMPLE_REPLY_MAGIC, 1)
        if not error and cmd == C.CMD_READ:
            f.read(n)
        return int(error)


def test_list_and_info(pool: TestCluster, gw: Gateway) -> None:
    name = create(pool, "listed", "8M")
    out = run("nbdinfo", "--list", gw.uri("")).stdout
    assert f'export="{name}"' in out
    info = json.loads(run("nbdinfo", "--json", gw.uri(name)).stdout)
    export = info["exports"][0]
    assert export["export-size"] == 8 * MiB and export["can_multi_conn"] and not export["is_read_only"]
    assert "base:allocation" in export["contexts"]


def test_map_reports_holes(pool: TestCluster, gw: Gateway) -> None:
    name = create(pool, "sparse", "64M")
    run("qemu-io", "-f", "raw", "-c", "write -P 0x5a 8M 4M", gw.uri(name))
    extents = json.loads(run("nbdinfo", "--map", "--json", gw.uri(name)).stdout)
    assert [(e["offset"], e["length"], e["type"]) for e in extents] == [
        (0, 8 * MiB, 3), (8 * MiB, 4 * MiB, 0), (12 * MiB, 52 * MiB, 3)]


def test_nbdcopy_both_directions_byte_exact(pool: TestCluster, gw: Gateway, tmp_path: Path) -> None:
    # nbdcopy's connections start writing at several objects at once: that raced the first
    # loads of the writing handle's object map, which then hid written objects (its own reads
    # returned zeros) — hence mostly data here, read back through the same gateway.
    name = create(pool, "copied", "64M")
    src, back = tmp_path / "src.raw", tmp_path / "back.raw"
    with open(src, "wb") as f:
        f.truncate(64 * MiB)
        for off, n in ((0, 40 * MiB), (44 * MiB + 123, 5 * MiB), (64 * MiB - 4096, 4096)):
            f.seek(off)
            f.write(os.urandom(n))
    run("nbdcopy", str(src), gw.uri(name))
    run("nbdcopy", gw.uri(name), str(back))
    assert src.read_bytes() == back.read_bytes()
    run("qemu-img", "compare", "-f", "raw", "-F", "raw", str(src), gw.uri(name))
    # What nbdcopy left as holes reads as zeros and is reported as such.
    extents = json.loads(run("nbdinfo", "--map", "--json", gw.uri(name)).stdout)
    assert any(e["type"] == 3 for e in extents)


def test_qemu_io_patterns(pool: TestCluster, gw: Gateway) -> None:
    name = create(pool, "patterns", "16M")
    out = run("qemu-io", "-f", "raw", "-c", "write -P 0xcd 1M 3M", "-c", "read -P 0xcd 1M 3M",
              "-c", "read -P 0 0 1M", "-c", "write -z 2M 64k", "-c", "read -P 0 2M 64k",
              "-c", "discard 8M 4M", "-c", "read -P 0 8M 4M", "-c", "flush", gw.uri(name)).stdout
    assert "verification failed" not in out and out.count("read ") == 4


def test_qemu_img_convert_from_qcow2(pool: TestCluster, gw: Gateway, tmp_path: Path) -> None:
    src = tmp_path / "disk.qcow2"
    run("qemu-img", "create", "-q", "-f", "qcow2", str(src), "48M")
    run("qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 1M", "-c", "write -P 0x22 40M 512k", str(src))
    # The guide's way: an image of the virtual size, then qemu-img convert into its export.
    name = create(pool, "converted", "48M")
    run("qemu-img", "convert", "-n", "-f", "qcow2", "-O", "raw", str(src), gw.uri(name))
    run("qemu-img", "compare", "-f", "qcow2", "-F", "raw", str(src), gw.uri(name))
    # One step: shoal image import creates the image and converts through a private gateway.
    done = pool.cli("shoal", "image", "import", "--from", "qcow2", str(src), f"{POOL}/imported")
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(rbd(pool, "info", "--format", "json", f"{POOL}/imported"))["size"] == 48 * MiB
    exported = tmp_path / "exported.raw"
    rbd(pool, "export", "--no-progress", f"{POOL}/imported", str(exported))
    run("qemu-img", "compare", "-f", "qcow2", "-F", "raw", str(src), str(exported))
    again = pool.cli("shoal", "image", "import", "--from", "qcow2", str(src), f"{POOL}/imported")
    assert again.returncode == 17, again.stderr.decode()  # EEXIST: an existing image is not overwritten
    bad = pool.cli("shoal", "image", "import", "--from", "qcow2", str(exported), f"{POOL}/notqcow2")
    assert bad.returncode == 22 and b"not a readable qcow2" in bad.stderr


def test_fio_nbd_engine(pool: TestCluster, gw: Gateway) -> None:
    if "nbd" not in run("fio", "--enghelp").stdout.split():
        pytest.skip("this fio has no nbd engine")
    name = create(pool, "fio", "16M")
    run("fio", "--name=nbd", "--ioengine=nbd", f"--uri={gw.uri(name)}", "--rw=randwrite", "--bs=64k",
        "--size=16M", "--iodepth=8", "--verify=crc32c", "--do_verify=1", "--verify_state_save=0", "--output-format=terse", timeout=300)


def test_snapshot_export_is_read_only(pool: TestCluster, gw: Gateway, tmp_path: Path) -> None:
    name = create(pool, "snapped", "8M")
    run("qemu-io", "-f", "raw", "-c", "write -P 0x77 0 1M", gw.uri(name))
    rbd(pool, "snap", "create", f"{name}@s1")
    run("qemu-io", "-f", "raw", "-c", "write -P 0x88 0 1M", gw.uri(name))
    snap = f"{name}@s1"
    info = json.loads(run("nbdinfo", "--json", gw.uri(snap)).stdout)["exports"][0]
    assert info["is_read_only"]
    run("qemu-io", "-r", "-f", "raw", "-c", "read -P 0x77 0 1M", gw.uri(snap))
    assert raw_request(gw.sock, snap, C.CMD_WRITE, 0, b"x" * 512) == C.NBD_EPERM
    assert raw_request(gw.sock, snap, C.CMD_READ, 8 * MiB - 1, length=2) == C.NBD_EINVAL
    run("qemu-io", "-r", "-f", "raw", "-c", "read -P 0x77 0 1M", gw.uri(snap))
    run("qemu-io", "-r", "-f", "raw", "-c", "read -P 0x88 0 1M", gw.uri(name))


def test_read_only_caps_give_read_only_export(pool: TestCluster, gw: Gateway, tmp_path: Path) -> None:
    name = create(pool, "guarded", "8M")
    run("qemu-io", "-f", "raw", "-c", "write -P 0x42 0 64k", gw.uri(name))
    keyring = tmp_path / "ro.keyring"
    done = pool.cli("ceph", "auth", "get-or-create", "client.nbdro", "mon", "profile rbd",
                    "osd", f"profile rbd-read-only pool={POOL}", "-o", str(keyring))
    assert done.returncode == 0, done.stderr.decode()
    ro = Gateway(pool, tmp_path / "ro.sock", "--id", "nbdro", "--keyring", str(keyring), name)
    try:
        info = json.loads(run("nbdinfo", "--json", ro.uri(name)).stdout)["exports"][0]
        assert info["is_read_only"]
        run("qemu-io", "-r", "-f", "raw", "-c", "read -P 0x42 0 64k", ro.uri(name))
        assert raw_request(ro.sock, name, C.CMD_WRITE, 0, b"y" * 512) == C.NBD_EPERM
        # Only the named export is served.
        assert "export=" in run("nbdinfo", "--list", ro.uri("")).stdout
        assert run("nbdinfo", ro.uri(f"{POOL}/patterns"), check=False).returncode != 0
    finally:
        ro.stop()
    run("qemu-io", "-r", "-f", "raw", "-c", "read -P 0x42 0 64k", gw.uri(name))


def test_rbd_device_map_list_unmap(pool: TestCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOAL_RUN_DIR", str(tmp_path / "run"))
    name = create(pool, "mapped", "4M")
    uri = rbd(pool, "device", "map", "-t", "nbd", name).strip()
    assert uri.startswith(f"nbd+unix:///{name}?socket=")
    try:
        run("qemu-io", "-f", "raw", "-c", "write -P 9 0 4k", "-c", "read -P 9 0 4k", uri)
        listed = json.loads(rbd(pool, "device", "list", "--format", "json"))
        assert [(d["pool"], d["name"], d["snap"], d["device"]) for d in listed] == [(POOL, "mapped", "-", uri)]
        assert uri in rbd(pool, "showmapped")
    finally:
        rbd(pool, "device", "unmap", uri)
    assert json.loads(rbd(pool, "device", "list", "--format", "json")) == []
    assert pool.cli("rbd", "device", "map", "-t", "krbd", name).returncode == 95
    assert pool.cli("rbd", "device", "unmap", name).returncode == 2


def test_serve_rejects_bad_arguments(pool: TestCluster) -> None:
    assert pool.cli("shoal", "nbd", "serve", "not-an-export").returncode == 22
    assert pool.cli("shoal", "nbd", "serve", "--bind", "127.0.0.1:99999").returncode == 22

"""The `rbd` CLI as a subprocess against a real Shoal cluster: every command, the JSON key
structure of `../shared/reference/fixtures/json/rbd-*.json`, rbd's error texts and exit codes
(the positive errno), the argv OpenStack passes, and the export/import stream paths.

The module's pool is `rbd_cli` (8 PGs, `rbd pool init`-ed by the first test); images are set up
and checked through python-rbd where that is quicker than another CLI run.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import rados
import rbd
from shoal.testing.cluster import TestCluster
from tests.mon.plain_fixtures import FIXTURES, json_fixture
from tests.rbd.rbd_helpers import rbd_pool

POOL = "rbd_cli"
STREAMS = FIXTURES / "streams"
MiB = 1 << 20


@pytest.fixture(scope="module")
def pool(cluster: TestCluster) -> Iterator[str]:
    with rbd_pool(cluster, POOL) as name:
        yield name


@pytest.fixture(scope="module")
def io(cluster: TestCluster, pool: str) -> Iterator[rados.Ioctx]:
    """python-rados/python-rbd on the pool, to set up and check what the CLI did."""
    cli(cluster, "pool", "init", pool)
    r = rados.Rados(conffile=cluster.conf_path)
    r.connect()
    ioctx = r.open_ioctx(pool)
    try:
        yield ioctx
    finally:
        ioctx.close()
        r.shutdown()


def cli(cluster: TestCluster, *args: str, input: bytes | None = None, code: int = 0) -> subprocess.CompletedProcess[bytes]:
    """Run `rbd args...`; the exit status must be `code`."""
    proc = cluster.cli("rbd", *args, input=input)
    assert proc.returncode == code, (args, proc.returncode, proc.stderr.decode())
    return proc


def out(cluster: TestCluster, *args: str, input: bytes | None = None) -> str:
    return cli(cluster, *args, input=input).stdout.decode()


def doc(cluster: TestCluster, *args: str) -> Any:
    text = out(cluster, *args, "--format", "json")
    assert text.endswith("\n")
    return json.loads(text)


def err(cluster: TestCluster, *args: str, code: int = 0, input: bytes | None = None) -> str:
    return cli(cluster, *args, code=code, input=input).stderr.decode()


def keys(d: dict[str, Any]) -> list[str]:
    return list(d)


def image_sha(ioctx: rados.Ioctx, name: str, snap: str | None = None) -> str:
    with rbd.Image(ioctx, name, snapshot=snap, read_only=True) as img:
        return hashlib.sha256(img.read(0, img.size()) if img.size() else b"").hexdigest()


def fixture_stream(name: str) -> bytes:
    path = STREAMS / name
    if path.exists():
        return path.read_bytes()
    import gzip
    return gzip.decompress((STREAMS / f"{name}.gz").read_bytes())


# -- images ------------------------------------------------------------------------------------------------

def test_create_info_ls(cluster: TestCluster, io: rados.Ioctx) -> None:
    cli(cluster, "create", f"{POOL}/base", "--size", "16M")
    assert err(cluster, "create", "--size", "1M", f"{POOL}/base", code=17) == "rbd: create error: (17) File exists\n"
    # Options after the positionals and the deprecated spellings, as OpenStack passes them.
    cli(cluster, "create", "striped", "--size", "4M", "--object-size", "1M", "--stripe-unit", "64K",
        "--stripe-count", "4", "-p", POOL)
    cli(cluster, "create", f"{POOL}/small", "-s", "1", "--image-feature", "layering", "--image-feature",
        "exclusive-lock", "--no-progress")
    info = out(cluster, "info", f"{POOL}/base").split("\n")
    assert info[:3] == ["rbd image 'base':", "\tsize 16 MiB in 4 objects", "\torder 22 (4 MiB objects)"]
    assert info[6:8] == ["\tformat: 2", "\tfeatures: layering, exclusive-lock, object-map, fast-diff, deep-flatten"]
    assert keys(doc(cluster, "info", f"{POOL}/base")) == keys(json_fixture("rbd-info-plain"))
    striped = doc(cluster, "info", "--pool", POOL, "--image", "striped")
    assert keys(striped) == keys(json_fixture("rbd-info-striped"))
    assert (striped["stripe_unit"], striped["stripe_count"], striped["order"]) == (65536, 4, 20)
    assert doc(cluster, "info", f"{POOL}/small")["features"] == ["layering", "exclusive-lock"]
    assert out(cluster, "ls", POOL) == "base\nsmall\nstriped\n"
    assert [keys(e) for e in doc(cluster, "ls", "-l", "-p", POOL)] == [keys(json_fixture("rbd-ls-l")[0])] * 3
    assert err(cluster, "info", f"{POOL}/nosuch", code=2) == (
        "rbd: error opening image nosuch: (2) No such file or directory\n")
    assert err(cluster, "ls", "nosuchpool", code=2) == (
        "rbd: error opening pool 'nosuchpool': (2) No such file or directory\n"
        "rbd: listing images failed: (2) No such file or directory\n")
    assert err(cluster, "info", f"{POOL}/base@nosnap", code=2) == (
        "error setting snapshot context: (2) No such file or directory\n")


def test_snapshots_clones_and_their_errors(cluster: TestCluster, io: rados.Ioctx) -> None:
    rbd.RBD().create(io, "parent", 8 * MiB)
    with rbd.Image(io, "parent") as img:
        img.write(b"\x55" * MiB, 0)
    assert err(cluster, "snap", "create", f"{POOL}/parent@snap") == (
        "\rCreating snap: 10% complete...\rCreating snap: 100% complete...done.\n")
    assert err(cluster, "snap", "create", f"{POOL}/parent@snap", "--no-progress", code=17) == (
        "rbd: failed to create snapshot: (17) File exists\n")
    snaps = doc(cluster, "snap", "ls", f"{POOL}/parent")
    assert [keys(s) for s in snaps] == [keys(json_fixture("rbd-snap-ls")[0])]
    assert (snaps[0]["name"], snaps[0]["size"], snaps[0]["protected"]) == ("snap", 8 * MiB, "false")
    cli(cluster, "snap", "protect", f"{POOL}/parent@snap")
    assert err(cluster, "snap", "protect", f"{POOL}/parent@snap", code=16) == "rbd: snap is already protected\n"
    cli(cluster, "clone", f"{POOL}/parent@snap", f"{POOL}/child")
    assert doc(cluster, "children", f"{POOL}/parent@snap") == [{"pool": POOL, "pool_namespace": "", "image": "child"}]
    assert out(cluster, "children", f"{POOL}/parent") == f"{POOL}/child\n"
    assert err(cluster, "children", f"{POOL}/parent@nosnap", code=2) == "rbd: snapshot does not exist.\n"
    child = doc(cluster, "info", f"{POOL}/child")
    assert keys(child) == keys(json_fixture("rbd-info-clone"))
    assert keys(child["parent"]) == keys(json_fixture("rbd-info-clone")["parent"])
    assert (child["parent"]["image"], child["parent"]["snapshot"], child["parent"]["overlap"]) == (
        "parent", "snap", 8 * MiB)
    assert err(cluster, "snap", "rm", f"{POOL}/parent@snap", "--no-progress", code=16) == (
        "rbd: snapshot 'snap' is protected from removal.\n")
    assert err(cluster, "rm", f"{POOL}/parent", "--no-progress", code=39) == (
        "rbd: image has snapshots - these must be deleted with 'rbd snap purge' before the image can be removed.\n")
    assert err(cluster, "flatten", f"{POOL}/child").endswith("Image flatten: 100% complete...done.\n")
    assert err(cluster, "flatten", "--no-progress", f"{POOL}/child", code=22) == (
        "rbd: flatten error: (22) Invalid argument\n")
    assert image_sha(io, "child") == image_sha(io, "parent", "snap")
    cli(cluster, "snap", "unprotect", f"{POOL}/parent@snap")
    assert err(cluster, "snap", "unprotect", f"{POOL}/parent@snap", code=22) == "rbd: snap is already unprotected\n"
    cli(cluster, "snap", "rename", f"{POOL}/parent@snap", f"{POOL}/parent@snap2")
    cli(cluster, "snap", "rollback", f"{POOL}/parent@snap2", "--no-progress")
    cli(cluster, "snap", "limit", "set", f"{POOL}/parent", "--limit", "1")
    assert err(cluster, "snap", "create", "--no-progress", f"{POOL}/parent@extra", code=122) == (
        "rbd: failed to create snapshot: (122) Disk quota exceeded\n")
    cli(cluster, "snap", "limit", "clear", f"{POOL}/parent")
    cli(cluster, "snap", "add", f"{POOL}/parent@extra", "--no-progress")
    cli(cluster, "snap", "purge", f"{POOL}/parent", "--no-progress")
    with rbd.Image(io, "parent", read_only=True) as img:
        assert list(img.list_snaps()) == []
    assert err(cluster, "rm", f"{POOL}/parent").endswith("\rRemoving image: 100% complete...done.\n")


def test_resize_rename_copy_remove(cluster: TestCluster, io: rados.Ioctx) -> None:
    rbd.RBD().create(io, "rs", 8 * MiB)
    assert err(cluster, "resize", f"{POOL}/rs", "--size", "4M", code=22) == (
        "rbd: shrinking an image is only allowed with the --allow-shrink flag\n")
    assert err(cluster, "resize", f"{POOL}/rs", "--size", "8M", code=22) == "rbd: new size is equal to original size \n"
    cli(cluster, "resize", f"{POOL}/rs", "--size", "2M", "--allow-shrink", "--no-progress")
    cli(cluster, "resize", "--size", "1G", f"{POOL}/rs", "--no-progress")
    assert doc(cluster, "info", f"{POOL}/rs")["size"] == 1 << 30
    cli(cluster, "mv", f"{POOL}/rs", f"{POOL}/rs2")
    rbd.RBD().create(io, "rs3", MiB)
    assert err(cluster, "mv", f"{POOL}/rs2", f"{POOL}/rs3", code=17) == "rbd: rename error: (17) File exists\n"
    with rbd.Image(io, "rs3") as img:
        img.write(b"copy me", 1000)
    cli(cluster, "cp", f"{POOL}/rs3", "--dest-pool", POOL, "--dest", "rs4", "--no-progress")
    assert image_sha(io, "rs4") == image_sha(io, "rs3")
    assert err(cluster, "rm", f"{POOL}/nosuch", code=2) == (
        "\rRemoving image: 0% complete...failed.\nrbd: delete error: (2) No such file or directory\n")
    cli(cluster, "rm", "--no-progress", f"{POOL}/rs4")
    assert "rs4" not in rbd.RBD().list(io)


def test_du_and_diff(cluster: TestCluster, io: rados.Ioctx) -> None:
    rbd.RBD().create(io, "du1", 8 * MiB)
    with rbd.Image(io, "du1") as img:
        img.write(b"\x11" * 4096, 0)
        img.create_snap("s1")
        img.write(b"\x22" * 4096, 5 * MiB)
    du = doc(cluster, "du", f"{POOL}/du1")
    assert [keys(e) for e in du["images"]] == [keys(e) for e in json_fixture("rbd-du")["images"][1:]]
    assert [e.get("snapshot") for e in du["images"]] == ["s1", None]
    pool_du = doc(cluster, "du", "-p", POOL)
    assert "total_provisioned_size" in pool_du and "total_used_size" in pool_du
    assert out(cluster, "du", f"{POOL}/du1").split("\n")[-2].startswith("<TOTAL>")
    extents = doc(cluster, "diff", f"{POOL}/du1")
    assert [keys(e) for e in extents] == [keys(json_fixture("rbd-diff")[0])] * len(extents)
    covered = {(e["offset"], e["length"]) for e in extents}
    assert any(off <= 0 < off + n for off, n in covered) and any(off <= 5 * MiB < off + n for off, n in covered)
    since = doc(cluster, "diff", "--from-snap", "s1", f"{POOL}/du1")
    assert all(e["offset"] >= 4 * MiB for e in since) and since
    assert out(cluster, "diff", f"{POOL}/du1@s1").startswith("Offset")
    assert err(cluster, "diff", "--from-snap", "nosnap", f"{POOL}/du1", code=2) == (
        "rbd: diff error: (2) No such file or directory\n")


def test_features_metadata_locks_status(cluster: TestCluster, io: rados.Ioctx) -> None:
    rbd.RBD().create(io, "meta", MiB)
    cli(cluster, "feature", "disable", f"{POOL}/meta", "fast-diff", "object-map")
    assert doc(cluster, "info", f"{POOL}/meta")["features"] == ["layering", "exclusive-lock", "deep-flatten"]
    assert err(cluster, "feature", "enable", f"{POOL}/meta", "layering", code=22) == (
        "rbd: failed to update image features: (22) Invalid argument\n")
    cli(cluster, "image-meta", "set", f"{POOL}/meta", "key1", "value one")
    assert out(cluster, "image-meta", "get", f"{POOL}/meta", "key1") == "value one\n"
    assert doc(cluster, "image-meta", "list", f"{POOL}/meta") == {"key1": "value one"}
    assert out(cluster, "image-meta", "ls", f"{POOL}/meta") == (
        "There is 1 metadatum on this image:\n\nKey   Value    \nkey1  value one\n")
    cli(cluster, "image-meta", "remove", f"{POOL}/meta", "key1")
    assert err(cluster, "image-meta", "get", f"{POOL}/meta", "key1", code=2) == (
        "failed to get metadata key1 of image : (2) No such file or directory\n"
        "rbd: getting metadata failed: (2) No such file or directory\n")
    cli(cluster, "lock", "add", f"{POOL}/meta", "mylock")
    assert err(cluster, "lock", "add", f"{POOL}/meta", "other", code=16) == "rbd: lock is already held by someone else\n"
    locks = doc(cluster, "lock", "ls", f"{POOL}/meta")
    assert [keys(lk) for lk in locks] == [["id", "locker", "address"]] and locks[0]["id"] == "mylock"
    cli(cluster, "lock", "rm", f"{POOL}/meta", "mylock", locks[0]["locker"])
    assert doc(cluster, "status", f"{POOL}/meta") == json_fixture("rbd-status")


def test_watch_reports_notifications(cluster: TestCluster, io: rados.Ioctx) -> None:
    rbd.RBD().create(io, "watched", MiB)
    proc = subprocess.Popen([sys.executable, "-m", "shoal.cli.rbd_cmd", "watch", f"{POOL}/watched"],
                            env=cluster.env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"press enter to exit...\n"
        status = doc(cluster, "status", f"{POOL}/watched")
        assert [keys(w) for w in status["watchers"]] == [keys(json_fixture("rbd-status-watched")["watchers"][0])]
        with rbd.Image(io, "watched", read_only=True) as img:
            header = f"rbd_header.{img.id()}"
        assert io.notify(header, "hello")  # returns once every watcher acked: the line is out
    finally:
        stdout, stderr = proc.communicate(b"\n", timeout=30)
    assert proc.returncode == 0, stderr
    assert stdout.startswith(b"watched received notification: notify_id="), stdout
    assert b", bl.length=5\n" in stdout


def test_trash(cluster: TestCluster, io: rados.Ioctx) -> None:
    rbd.RBD().create(io, "tr1", MiB)
    rbd.RBD().create(io, "tr2", MiB)
    cli(cluster, "trash", "mv", f"{POOL}/tr1")
    cli(cluster, "trash", "move", f"{POOL}/tr2", "--expires-at", "2099-01-01")
    entries = doc(cluster, "trash", "ls", POOL)
    assert [keys(e) for e in entries] == [keys(json_fixture("rbd-trash-ls")[0])] * 2
    ids = {e["name"]: e["id"] for e in entries}
    long = {e["name"]: e for e in doc(cluster, "trash", "ls", "-l", POOL)}
    assert keys(long["tr1"]) == keys(json_fixture("rbd-trash-ls-l")[0])
    assert long["tr2"]["status"].startswith("protected until ") and long["tr1"]["status"].startswith("expired at ")
    assert err(cluster, "trash", "rm", f"{POOL}/{ids['tr2']}", "--no-progress", code=1) == (
        "\nDeferment time has not expired, please use --force if you really want to remove the image\n")
    cli(cluster, "trash", "restore", "-p", POOL, ids["tr2"], "--image", "tr2b")
    assert "tr2b" in rbd.RBD().list(io)
    cli(cluster, "trash", "rm", f"{POOL}/{ids['tr1']}", "--no-progress")
    assert list(rbd.RBD().trash_list(io)) == []
    assert err(cluster, "trash", "restore", "-p", POOL, "nosuchid", code=2) == (
        "rbd: error: image does not exist in trash\n")
    assert err(cluster, "trash", "mv", f"{POOL}/nosuch", code=2) == (
        "rbd: deferred delete error: (2) No such file or directory\n")


def test_bench_and_unsupported_mapping(cluster: TestCluster, io: rados.Ioctx) -> None:
    rbd.RBD().create(io, "bench", 8 * MiB)
    lines = out(cluster, "bench", f"{POOL}/bench", "--io-type", "write", "--io-size", "4K", "--io-total", "256K",
                "--io-threads", "4").split("\n")
    assert lines[:2] == ["bench  type write io_size 4096 io_threads 4 bytes 262144 pattern sequential",
                         "  SEC       OPS   OPS/SEC   BYTES/SEC"]
    assert lines[-2].startswith("elapsed: ") and "   ops: 64   ops/sec: " in lines[-2]
    lines = out(cluster, "bench", f"{POOL}/bench", "--io-type", "rw", "--io-size", "4K", "--io-total", "64K",
                "--rw-mix-read", "70", "--io-pattern", "rand").split("\n")
    assert lines[0].startswith("bench  type readwrite read:write=70:30 io_size 4096 ")
    assert lines[-3].startswith("read_ops: ") and lines[-2].startswith("write_ops: ")
    assert err(cluster, "bench", f"{POOL}/bench", "--io-type", "read", "--io-size", "16M", code=22) == (
        "rbd: io-size 16 MiB larger than image size 8 MiB\nbench failed: (22) Invalid argument\n")
    assert doc(cluster, "showmapped") == []
    # no kernel: krbd mapping is refused (`-t nbd` is tested in tests/nbd/test_conformance.py)
    assert "not supported" in err(cluster, "map", "-t", "krbd", f"{POOL}/bench", code=95)


def test_global_options_anywhere(cluster: TestCluster, io: rados.Ioctx) -> None:
    rbd.RBD().create(io, "global-opts", MiB)
    env = {k: v for k, v in cluster.env().items() if k != "CEPH_CONF"}
    argv = [sys.executable, "-m", "shoal.cli.rbd_cmd", "ls", POOL, "--id", "admin", "--conf", cluster.conf_path]
    proc = subprocess.run(argv, env=env, capture_output=True, timeout=120)
    assert proc.returncode == 0 and "global-opts" in proc.stdout.decode().split(), proc.stderr.decode()
    env["CEPH_ARGS"] = f"--conf {cluster.conf_path} --name client.admin"
    proc = subprocess.run([sys.executable, "-m", "shoal.cli.rbd_cmd", "-p", POOL, "ls"], env=env,
                          capture_output=True, timeout=120)
    assert proc.returncode == 0 and "global-opts" in proc.stdout.decode().split(), proc.stderr.decode()


# -- streams -----------------------------------------------------------------------------------------------

def test_import_export_sparse_round_trips(cluster: TestCluster, io: rados.Ioctx, tmp_path: Path) -> None:
    data = bytearray(9 * MiB + 123)
    data[:4096] = b"\x11" * 4096
    data[5 * MiB:5 * MiB + 100] = b"\x22" * 100
    src = tmp_path / "disk.raw"
    src.write_bytes(bytes(data))
    # nova's import and cinder's, options after the positionals.
    cli(cluster, "import", "--pool", POOL, str(src), "imp1", "--image-format=2")
    cli(cluster, "import", "--dest-pool", POOL, "--order", "20", str(src), "imp2", "--new-format")
    cli(cluster, "import", "-", f"{POOL}/imp3", "--no-progress", input=bytes(data))
    for name in ("imp1", "imp2", "imp3"):
        assert image_sha(io, name) == hashlib.sha256(data).hexdigest()
    assert doc(cluster, "info", f"{POOL}/imp2")["order"] == 20
    assert err(cluster, "import", str(src), f"{POOL}/imp1", "--no-progress", code=17) == (
        "rbd: image creation failed\nrbd: import failed: (17) File exists\n")
    assert err(cluster, "import", str(tmp_path / "missing"), f"{POOL}/x", code=2) == (
        f"rbd: error opening {tmp_path / 'missing'}\nrbd: import failed: (2) No such file or directory\n")
    # Only the data that is there is written: the zero runs stay holes.
    assert sum(e["length"] for e in doc(cluster, "diff", f"{POOL}/imp1")) < 2 * MiB
    cli(cluster, "export", "--pool", POOL, "--image", "imp1", "--path", str(tmp_path / "out.raw"), "--no-progress")
    exported = tmp_path / "out.raw"
    assert exported.read_bytes() == bytes(data)
    assert exported.stat().st_blocks * 512 < 9 * MiB  # sparse: the all-zero stripe periods were skipped
    assert err(cluster, "export", f"{POOL}/imp1", str(exported), code=17) == "rbd: export error: (17) File exists\n"
    assert cli(cluster, "export", f"{POOL}/imp1", "-", "--no-progress").stdout == bytes(data)


def test_export_format_2_round_trip(cluster: TestCluster, io: rados.Ioctx, tmp_path: Path) -> None:
    rbd.RBD().create(io, "v2src", 4 * MiB)
    with rbd.Image(io, "v2src") as img:
        img.write(b"a" * 8192, 0)
        img.create_snap("s1")
        img.protect_snap("s1")
        img.write(b"b" * 4096, 3 * MiB)
        img.resize(6 * MiB)
        img.create_snap("s2")
        img.metadata_set("purpose", "test")
    cli(cluster, "export", "--export-format", "2", f"{POOL}/v2src", str(tmp_path / "v2"), "--no-progress")
    assert (tmp_path / "v2").read_bytes().startswith(b"rbd image v2\n")
    cli(cluster, "import", "--export-format", "2", str(tmp_path / "v2"), f"{POOL}/v2dst", "--no-progress")
    snaps = doc(cluster, "snap", "ls", f"{POOL}/v2dst")
    assert [(s["name"], s["size"], s["protected"]) for s in snaps] == [("s1", 4 * MiB, "true"), ("s2", 6 * MiB, "false")]
    for snap in ("s1", "s2", None):
        assert image_sha(io, "v2dst", snap) == image_sha(io, "v2src", snap)
    assert doc(cluster, "image-meta", "list", f"{POOL}/v2dst") == {"purpose": "test"}


def test_export_diff_piped_into_import_diff(cluster: TestCluster, io: rados.Ioctx, tmp_path: Path) -> None:
    """Cinder backup's pipe: export-diff ... - | import-diff - ...: snapshots and contents follow."""
    rbd.RBD().create(io, "vol", 8 * MiB)
    with rbd.Image(io, "vol") as img:
        img.write(b"\x33" * 65536, MiB)
        img.create_snap("b1")
        img.write(b"\x44" * 4096, 6 * MiB)
        img.create_snap("b2")
    rbd.RBD().create(io, "backup", MiB)
    full = cli(cluster, "export-diff", "--pool", POOL, f"{POOL}/vol@b1", "-", "--no-progress").stdout
    assert full.startswith(b"rbd diff v1\nt\x02\x00\x00\x00b1s")
    assert err(cluster, "import-diff", "--pool", POOL, "-", f"{POOL}/backup", input=full).endswith(
        "Importing image diff: 100% complete...done.\n")
    incr = cli(cluster, "export-diff", "--from-snap", "b1", f"{POOL}/vol@b2", "-", "--no-progress").stdout
    cli(cluster, "import-diff", "-", f"{POOL}/backup", "--no-progress", input=incr)
    assert [s["name"] for s in doc(cluster, "snap", "ls", f"{POOL}/backup")] == ["b1", "b2"]
    for snap in ("b1", "b2"):
        assert image_sha(io, "backup", snap) == image_sha(io, "vol", snap)
    assert err(cluster, "import-diff", "-", f"{POOL}/backup", "--no-progress", code=17, input=incr) == (
        "end snapshot 'b2' already exists, aborting\nrbd: import-diff failed: (17) File exists\n")
    (tmp_path / "d1").write_bytes(full)
    (tmp_path / "d2").write_bytes(incr)
    cli(cluster, "merge-diff", str(tmp_path / "d1"), str(tmp_path / "d2"), str(tmp_path / "m"), "--no-progress")
    rbd.RBD().create(io, "merged", MiB)
    cli(cluster, "import-diff", str(tmp_path / "m"), f"{POOL}/merged", "--no-progress")
    assert [s["name"] for s in doc(cluster, "snap", "ls", f"{POOL}/merged")] == ["b2"]
    assert image_sha(io, "merged", "b2") == image_sha(io, "vol", "b2")
    assert err(cluster, "merge-diff", str(tmp_path / "d2"), str(tmp_path / "d1"), str(tmp_path / "m2"),
               "--no-progress", code=22) == (
        "The first TO snapshot must be equal with the second FROM snapshot, aborting\nrbd: merge-diff error\n")


def test_fixture_streams_and_broken_ones_leave_the_image_alone(cluster: TestCluster, io: rados.Ioctx,
                                                               tmp_path: Path) -> None:
    """Ceph's own img1 streams rebuild img1; every broken stream fails with Ceph's text and exit
    code, and (unlike Ceph) leaves the image exactly as it was."""
    for name in ("img1-s1.diff", "img1-s1-s2.diff", "bad-trunc-mid-w-data.diff", "bad-banner-v9.diff"):
        (tmp_path / name).write_bytes(fixture_stream(name))
    rbd.RBD().create(io, "img1", MiB)
    cli(cluster, "import-diff", str(tmp_path / "img1-s1.diff"), f"{POOL}/img1", "--no-progress")
    s1 = "ce768edcbb35130c3b0888c241cac820460d7671286d379412464a5f0edbf7dc"
    assert image_sha(io, "img1", "s1") == image_sha(io, "img1") == s1
    cases = {c["file"]: c for c in json.loads((STREAMS / "import-diff-errors.json").read_text())["results"]
             if "--no-progress" in c["command"]}
    for name in ("bad-trunc-mid-w-data.diff", "bad-banner-v9.diff"):
        assert err(cluster, "import-diff", "--no-progress", str(tmp_path / name), f"{POOL}/img1",
                   code=cases[name]["exit_code"]) == cases[name]["stderr"]
        with rbd.Image(io, "img1", read_only=True) as img:
            assert [s["name"] for s in img.list_snaps()] == ["s1"]
        assert image_sha(io, "img1") == s1
    # A truncated stream from stdin is spooled and checked whole before anything is written.
    assert err(cluster, "import-diff", "-", f"{POOL}/img1", "--no-progress", code=74,
               input=fixture_stream("bad-trunc-mid-w-data.diff")) == cases["bad-trunc-mid-w-data.diff"]["stderr"]
    with rbd.Image(io, "img1", read_only=True) as img:
        assert img.size() == 8 * MiB
    assert image_sha(io, "img1") == s1
    cli(cluster, "import-diff", str(tmp_path / "img1-s1-s2.diff"), f"{POOL}/img1", "--no-progress")
    assert image_sha(io, "img1", "s2") == "a109aeff85d2391db03580ec39348eeae9f0c41c3fb242259061eed5a7fb667b"
    missing = cases["img1-s1-s2.diff"]  # from-snap-missing: the stream needs s1 on the image
    rbd.RBD().create(io, "fresh", MiB)
    assert err(cluster, "import-diff", "--no-progress", str(tmp_path / "img1-s1-s2.diff"), f"{POOL}/fresh",
               code=missing["exit_code"]) == missing["stderr"]

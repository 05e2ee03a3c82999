"""The `rados` CLI as a subprocess against a real cluster: outputs, errors and exit codes.

Expected texts are Ceph 16's (`src/tools/rados/rados.cc`, the fixtures and tests/cli/data):
failures print `error <doing> <pool>/<object>: (<errno>) <strerror>` on stderr and exit 1.
The module's pool is `rados_cli_main` (8 PGs).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import rados
from shoal.cli.rados_cmd import hexdump
from shoal.testing.cluster import TestCluster

POOL = "rados_cli_main"
BIG = (5 << 20) + 7  # spans two of the 4 MiB chunks put and get move


@pytest.fixture(scope="module")
def pool(cluster: TestCluster) -> Iterator[str]:
    with cluster.admin() as admin:
        ret, _, outs = admin.command({"prefix": "osd pool create", "pool": POOL, "pg_num": 8})
        assert ret == 0, outs
    try:
        yield POOL
    finally:
        with cluster.admin() as admin:
            admin.command({"prefix": "osd pool delete", "pool": POOL, "pool2": POOL,
                           "yes_i_really_really_mean_it": True})


@pytest.fixture(scope="module")
def api(cluster: TestCluster, pool: str) -> Iterator[rados.Ioctx]:
    """A python-rados handle on the pool, to set up and check what the CLI did."""
    r = rados.Rados(conffile=cluster.conf_path)
    r.connect()
    io = r.open_ioctx(pool)
    try:
        yield io
    finally:
        io.close()
        r.shutdown()


def run(cluster: TestCluster, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return cluster.cli("rados", *args, input=input, timeout=120)


def ok(cluster: TestCluster, *args: str, input: bytes | None = None) -> bytes:
    proc = run(cluster, *args, input=input)
    assert proc.returncode == 0, (args, proc.returncode, proc.stderr.decode())
    return proc.stdout


def fails(cluster: TestCluster, *args: str, stderr: str, code: int = 1) -> subprocess.CompletedProcess[bytes]:
    proc = run(cluster, *args)
    assert (proc.returncode, proc.stderr.decode()) == (code, stderr), args
    return proc


# -- pools ----------------------------------------------------------------------------------------------

def test_lspools(cluster: TestCluster, pool: str) -> None:
    names = ok(cluster, "lspools").decode().splitlines()
    assert pool in names
    assert ok(cluster, "lspools", "--format", "json").decode().splitlines() == names  # plain even for json


def test_unknown_pool_and_command(cluster: TestCluster, pool: str) -> None:
    proc = fails(cluster, "-p", "nosuchpool", "ls",
                 stderr="error opening pool nosuchpool: (2) No such file or directory\n")
    assert proc.stdout == b""
    fails(cluster, "-p", pool, "frobnicate",
          stderr="unrecognized command frobnicate; -h or --help for usage\nerror 22: (22) Invalid argument\n")
    assert fails(cluster, "ls", stderr="either pool name or pg id needs to be specified\n").stdout == b""
    proc = run(cluster, "stat", "x")  # no pool: usage on stderr
    assert proc.returncode == 1 and proc.stderr.startswith(b"usage: rados")
    proc = run(cluster)
    assert proc.returncode == 1 and b"-h or --help for usage" in proc.stderr
    assert ok(cluster, "--help").startswith(b"usage: rados")
    fails(cluster, "-p", pool, "ls", "-f", "xml", stderr="unrecognized format: xml\n", code=234)


def test_df(cluster: TestCluster, pool: str) -> None:
    text = ok(cluster, "df").decode()
    lines = text.splitlines()
    assert re.match(r"POOL_NAME +USED +OBJECTS +CLONES +COPIES +MISSING_ON_PRIMARY +UNFOUND +DEGRADED +RD_OPS +RD"
                    r" +WR_OPS +WR +USED COMPR +UNDER COMPR$", lines[0])
    assert any(line.startswith(pool + " ") for line in lines)
    assert re.search(r"^total_objects    \d+\ntotal_used       .+\ntotal_avail      .+\ntotal_space      .+\n\Z",
                     text, re.M)
    raw = ok(cluster, "df", "--format", "json")
    assert not raw.endswith(b"\n")  # compact JSON has no final newline, as Ceph's
    doc = json.loads(raw)
    assert set(doc) == {"pools", "total_objects", "total_used", "total_avail", "total_space"}
    entry = next(p for p in doc["pools"] if p["name"] == pool)
    assert set(entry) == {"name", "id", "size_bytes", "size_kb", "num_objects", "num_object_clones",
                          "num_object_copies", "num_objects_missing_on_primary", "num_objects_unfound",
                          "num_objects_degraded", "read_ops", "read_bytes", "write_ops", "write_bytes",
                          "compress_bytes_used", "compress_under_bytes"}
    assert [p["name"] for p in doc["pools"]] == sorted(p["name"] for p in doc["pools"])
    assert json.loads(ok(cluster, "df", "-f", "json-pretty"))["total_space"] > 0
    only = json.loads(ok(cluster, "-p", pool, "df", "-f", "json"))
    assert [p["name"] for p in only["pools"]] == [pool]


# -- objects ----------------------------------------------------------------------------------------------

def test_put_get_stat_rm(cluster: TestCluster, pool: str, api: rados.Ioctx, tmp_path: Path) -> None:
    for size in (0, BIG):
        data = os.urandom(size)
        src, dst = tmp_path / f"in{size}", tmp_path / f"out{size}"
        src.write_bytes(data)
        assert ok(cluster, "-p", pool, "put", f"cli{size}", str(src)) == b""
        assert api.read(f"cli{size}", size + 1) == data
        ok(cluster, "-p", pool, "get", f"cli{size}", str(dst))
        assert dst.read_bytes() == data
    stat = ok(cluster, "-p", pool, "stat", f"cli{BIG}").decode()
    assert re.fullmatch(rf"{pool}/cli{BIG} mtime \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.000000[+-]\d{{4}}, "
                        rf"size {BIG}\n", stat)
    assert ok(cluster, "-p", pool, "put", "fromstdin", "-", input=b"piped\n") == b""
    assert api.read("fromstdin") == b"piped\n"
    assert ok(cluster, "-p", pool, "get", "fromstdin", "-") == b"piped\n"
    stat2 = ok(cluster, "-p", pool, "stat2", "fromstdin").decode()
    assert re.fullmatch(rf"{pool}/fromstdin mtime \S+\.\d{{6}}[+-]\d{{4}}, size 6\n", stat2)
    src = tmp_path / "small"
    src.write_bytes(b"abc")
    ok(cluster, "-p", pool, "put", "withoffset", str(src), "--offset", "4")
    ok(cluster, "-p", pool, "append", "withoffset", str(src))
    assert api.read("withoffset") == b"\0\0\0\0abcabc"
    ok(cluster, "-p", pool, "rm", "cli0", f"cli{BIG}", "fromstdin", "withoffset")
    with pytest.raises(rados.ObjectNotFound):
        api.stat("cli0")
    fails(cluster, "-p", pool, "rm", "cli0", stderr=f"error removing {pool}>cli0: (2) No such file or directory\n")
    fails(cluster, "-p", pool, "stat", "cli0", stderr=f" error stat-ing {pool}/cli0: (2) No such file or directory\n")
    fails(cluster, "-p", pool, "get", "cli0", str(tmp_path / "never"),
          stderr=f"error getting {pool}/cli0: (2) No such file or directory\n")
    fails(cluster, "-p", pool, "put", "cli0", str(tmp_path / "no-such-file"),
          stderr=f"error reading input file {tmp_path / 'no-such-file'}: (2) No such file or directory\n")
    with pytest.raises(rados.ObjectNotFound):
        api.stat("cli0")


def test_create_and_truncate(cluster: TestCluster, pool: str, api: rados.Ioctx) -> None:
    ok(cluster, "-p", pool, "create", "made")
    assert api.stat("made")[0] == 0
    fails(cluster, "-p", pool, "create", "made", stderr=f"error creating {pool}/made: (17) File exists\n")
    api.write_full("trunc", b"0123456789")
    ok(cluster, "-p", pool, "truncate", "trunc", "4")
    assert api.read("trunc") == b"0123"
    proc = run(cluster, "-p", pool, "truncate", "trunc", "-5")
    assert proc.returncode == 1
    assert proc.stderr.startswith(b"error, cannot truncate to negative value\nusage: rados")
    fails(cluster, "-p", pool, "truncate", "trunc", "4x", stderr="Invalid value for size: '4x'\n")
    assert api.read("trunc") == b"0123"  # nothing changed
    api.remove_object("made")
    api.remove_object("trunc")


def test_ls_and_namespaces(cluster: TestCluster, pool: str, api: rados.Ioctx, tmp_path: Path) -> None:
    api.write_full("ls-default", b"x")
    api.set_namespace("clins")
    api.write_full("ls-in-ns", b"y")
    api.set_namespace("")
    try:
        names = ok(cluster, "-p", pool, "ls").decode().splitlines()
        assert "ls-default" in names and "ls-in-ns" not in names
        assert ok(cluster, "-p", pool, "-N", "clins", "ls") == b"ls-in-ns\n"
        assert ok(cluster, "-p", pool, "--namespace=clins", "ls", "--format", "json") == \
            b'[{"namespace":"clins","name":"ls-in-ns"}]'
        pretty = ok(cluster, "-p", pool, "-N", "clins", "ls", "-f", "json-pretty").decode()
        assert pretty == '[\n    {\n        "namespace": "clins",\n        "name": "ls-in-ns"\n    }\n]\n'
        every = ok(cluster, "-p", pool, "ls", "--all").decode().splitlines()
        assert "clins\tls-in-ns" in every and "\tls-default" in every
        assert ok(cluster, "-p", pool, "ls", "--all", "--default").decode().splitlines() == names
        out = tmp_path / "listing"
        ok(cluster, "-p", pool, "-N", "clins", "ls", "--output", str(out))
        assert out.read_text() == "ls-in-ns\n"
        fails(cluster, "-p", pool, "ls", "somefile", stderr="Please use --output to specify the output file name\n")
        assert ok(cluster, "-p", pool, "-N", "clins", "get", "ls-in-ns", "-") == b"y"
        fails(cluster, "-N", "clins", "lspools", stderr="pool name must be specified with --namespace\n")
    finally:
        api.remove_object("ls-default")
        api.set_namespace("clins")
        api.remove_object("ls-in-ns")
        api.set_namespace("")


def test_xattrs(cluster: TestCluster, pool: str, api: rados.Ioctx, tmp_path: Path) -> None:
    api.write_full("xa", b"")
    ok(cluster, "-p", pool, "setxattr", "xa", "user.one", "value one")
    ok(cluster, "-p", pool, "setxattr", "xa", "frominput", input=b"bin\0ary")
    src = tmp_path / "val"
    src.write_bytes(b"from file")
    ok(cluster, "-p", pool, "setxattr", "xa", "fromfile", "-i", str(src))
    assert ok(cluster, "-p", pool, "listxattr", "xa") == b"fromfile\nfrominput\nuser.one\n"
    assert ok(cluster, "-p", pool, "getxattr", "xa", "user.one") == b"value one"
    assert ok(cluster, "-p", pool, "getxattr", "xa", "frominput") == b"bin\0ary"
    assert api.get_xattr("xa", "fromfile") == b"from file"
    ok(cluster, "-p", pool, "rmxattr", "xa", "user.one")
    fails(cluster, "-p", pool, "getxattr", "xa", "user.one",
          stderr=f"error getting xattr {pool}/xa/user.one: (61) No data available\n")
    fails(cluster, "-p", pool, "listxattr", "nope",
          stderr=f"error getting xattr set {pool}/nope: (2) No such file or directory\n")
    fails(cluster, "-p", pool, "rmxattr", "nope", "a",
          stderr=f"error removing xattr {pool}/nope/a: (2) No such file or directory\n")
    api.remove_object("xa")


def test_omap_commands(cluster: TestCluster, pool: str, api: rados.Ioctx, tmp_path: Path) -> None:
    ok(cluster, "-p", pool, "setomapval", "om", "key1", "hello world this is a long value!!")
    ok(cluster, "-p", pool, "setomapval", "om", "key2", input=b"v2")
    src = tmp_path / "v"
    src.write_bytes(b"bin\x00\x01")
    ok(cluster, "-p", pool, "setomapval", "om", "key3", "-i", str(src))
    assert ok(cluster, "-p", pool, "listomapkeys", "om") == b"key1\nkey2\nkey3\n"
    assert ok(cluster, "-p", pool, "listomapvals", "om").decode() == (
        "key1\n"
        "value (34 bytes) :\n"
        "00000000  68 65 6c 6c 6f 20 77 6f  72 6c 64 20 74 68 69 73  |hello world this|\n"
        "00000010  20 69 73 20 61 20 6c 6f  6e 67 20 76 61 6c 75 65  | is a long value|\n"
        "00000020  21 21                                             |!!|\n"
        "00000022\n\n"
        "key2\n"
        "value (2 bytes) :\n"
        "00000000  76 32                                             |v2|\n"
        "00000002\n\n"
        "key3\n"
        "value (5 bytes) :\n"
        "00000000  62 69 6e 00 01                                    |bin..|\n"
        "00000005\n\n")
    assert ok(cluster, "-p", pool, "getomapval", "om", "key2").decode() == (
        "value (2 bytes) :\n00000000  76 32                                             |v2|\n00000002\n\n")
    out = tmp_path / "got"
    proc = run(cluster, "-p", pool, "getomapval", "om", "key3", str(out))
    assert proc.returncode == 0 and proc.stderr.decode() == f"Writing to {out}\n"
    assert out.read_bytes() == b"bin\x00\x01"
    proc = run(cluster, "-p", pool, "getomapval", "om", "nokey")
    assert (proc.returncode, proc.stdout.decode()) == (1, f"No such key: {pool}/om/nokey\n")
    ok(cluster, "-p", pool, "rmomapkey", "om", "key1")
    assert ok(cluster, "-p", pool, "listomapkeys", "om") == b"key2\nkey3\n"
    ok(cluster, "-p", pool, "setomapheader", "om", "hdr")
    assert ok(cluster, "-p", pool, "getomapheader", "om").decode() == f"header (3 bytes) :\n{hexdump(b'hdr')}\n"
    ok(cluster, "-p", pool, "clearomap", "om")
    assert ok(cluster, "-p", pool, "listomapkeys", "om") == b""
    fails(cluster, "-p", pool, "listomapkeys", "nope",
          stderr=f"error getting omap key set {pool}/nope: (2) No such file or directory\n")
    fails(cluster, "-p", pool, "listomapvals", "nope",
          stderr=f"error getting omap keys {pool}/nope: (2) No such file or directory\n")
    fails(cluster, "-p", pool, "getomapval", "nope", "k",
          stderr=f"error getting omap value {pool}/nope/k: (2) No such file or directory\n")
    # More keys than one request returns: the listing pages through all of them.
    with rados.WriteOpCtx() as op:
        keys = tuple(f"k{i:05d}" for i in range(2500))
        api.set_omap(op, keys, tuple(b"" for _ in keys))
        api.operate_write_op(op, "many")
    assert ok(cluster, "-p", pool, "listomapkeys", "many").decode().splitlines() == list(keys)
    api.remove_object("om")
    api.remove_object("many")


# -- bench and cleanup ----------------------------------------------------------------------------------------

def _bench_objects(api: rados.Ioctx) -> list[str]:
    return [o.key for o in api.list_objects() if o.key.startswith("benchmark_data_")]


def test_bench_write_seq_rand_cleanup(cluster: TestCluster, pool: str, api: rados.Ioctx) -> None:
    fails(cluster, "-p", pool, "bench", "1", "seq",
          stderr="Must write data before running a read benchmark!\n"
                 "error during benchmark: (2) No such file or directory\n"
                 "error 2: (2) No such file or directory\n")
    text = ok(cluster, "-p", pool, "bench", "1", "write", "-b", "4096", "-t", "8", "--no-cleanup").decode()
    lines = text.splitlines()
    assert lines[0] == "hints = 1"
    assert lines[1] == "Maintaining 8 concurrent writes of 4096 bytes to objects of size 4096 for up to 1 " \
                       "seconds or 0 objects"
    assert re.fullmatch(r"Object prefix: benchmark_data_\S+_\d+", lines[2])
    assert lines[3] == "  sec Cur ops   started  finished  avg MB/s  cur MB/s last lat(s)  avg lat(s)"
    assert lines[4].split() == ["0", "0", "0", "0", "0", "0", "-", "0"]
    labels = [line.split(":")[0] for line in lines if ":" in line and not line.startswith("Object prefix")]
    assert labels == ["Total time run", "Total writes made", "Write size", "Object size", "Bandwidth (MB/sec)",
                      "Stddev Bandwidth", "Max bandwidth (MB/sec)", "Min bandwidth (MB/sec)", "Average IOPS",
                      "Stddev IOPS", "Max IOPS", "Min IOPS", "Average Latency(s)", "Stddev Latency(s)",
                      "Max latency(s)", "Min latency(s)"]
    writes = int(next(line for line in lines if line.startswith("Total writes made:")).split()[-1])
    assert writes > 0 and len(_bench_objects(api)) == writes
    assert api.stat("benchmark_last_metadata")[0] == 24
    for mode in ("seq", "rand"):
        out = ok(cluster, "-p", pool, "bench", "1", mode).decode()
        assert out.startswith("hints = 1\n  sec Cur ops")
        assert "Total reads made:" in out and "Read size:            4096" in out
        assert "is not correct" not in out
    fails(cluster, "-p", pool, "bench", "1", "seq", "-b", "8192",
          stderr="-b|--block_size option can be used only with 'write' bench test\n")
    assert ok(cluster, "-p", pool, "cleanup") == f"Removed {writes} objects\n".encode()
    assert _bench_objects(api) == []
    # Without --no-cleanup the write bench removes what it wrote, metadata included.
    text = ok(cluster, "-p", pool, "bench", "1", "write", "-b", "4096", "-t", "4").decode()
    assert re.search(r"Cleaning up \(deleting benchmark objects\)\nRemoved \d+ objects\n"
                     r"Clean up completed and total clean up time :\S+\n\Z", text)
    assert _bench_objects(api) == []


def test_bench_json_and_slow_cleanup(cluster: TestCluster, pool: str, api: rados.Ioctx) -> None:
    raw = ok(cluster, "-p", pool, "bench", "1", "write", "-b", "4096", "-t", "4", "--no-cleanup",
             "--run-name", "myrun", "-f", "json").decode()
    head, _, body = raw.partition("\n")
    assert head == "hints = 1"
    doc = json.loads(body)
    assert doc["op_size"] == "4096" and int(doc["total_writes_made"]) > 0 and doc["datas"]
    written = int(doc["total_writes_made"])
    assert api.stat("myrun")[0] == 24
    fails(cluster, "-p", pool, "cleanup", stderr="error during cleanup: (2) No such file or directory\n"
                                                  "error 2: (2) No such file or directory\n")
    api.remove_object("myrun")
    out = ok(cluster, "-p", pool, "cleanup", "--prefix", "benchmark_data")
    assert out == f"Warning: using slow linear search\nRemoved {written} objects\n".encode()
    assert _bench_objects(api) == []


# -- global options ---------------------------------------------------------------------------------------------

def test_global_options(cluster: TestCluster, pool: str, api: rados.Ioctx) -> None:
    env = {k: v for k, v in cluster.env().items() if k != "CEPH_CONF"}
    base = [sys.executable, "-m", "shoal.cli.rados_cmd"]

    def rados_cli(*args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([*base, *args], capture_output=True, env={**env, **(extra or {})}, timeout=60)

    api.write_full("glob", b"g")
    try:
        assert rados_cli("-c", cluster.conf_path, "-p", pool, "get", "glob", "-").stdout == b"g"
        assert rados_cli("-p", pool, "get", "glob", "-", "--conf", cluster.conf_path, "--id", "admin").stdout == b"g"
        assert rados_cli("-p", pool, "get", "glob", "-", "-n", "client.admin",
                         extra={"CEPH_ARGS": f"-c {cluster.conf_path}"}).stdout == b"g"
        proc = rados_cli("-c", cluster.conf_path, "-m", "127.0.0.1:1", "--client-mount-timeout", "1", "lspools")
        assert (proc.returncode, proc.stderr) == (1, b"couldn't connect to cluster: (110) Connection timed out\n")
        proc = rados_cli("-c", "/nonexistent/ceph.conf", "lspools")
        assert proc.returncode == 1 and proc.stdout == b""
    finally:
        api.remove_object("glob")

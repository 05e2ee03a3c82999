"""Shared helpers of the RBD acceptance tests: pools, rbd CLI runs, reading images, parsing streams.

The stream parser here is deliberately independent of `shoal.rbd.streams` (it is the
test's own reading of `ceph-facts.md` §5), so a codec bug cannot hide in both.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import shutil
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shoal.testing.cluster import TestCluster
from tests.conftest import FIXTURES

STREAMS = FIXTURES / "streams"
READ_CHUNK = 1 << 20


@contextlib.contextmanager
def rbd_pool(cluster: TestCluster, name: str, pg_num: int = 8) -> Iterator[str]:
    """A pool for one test module (created with the monitor command, deleted afterwards)."""
    with cluster.admin() as admin:
        ret, _, outs = admin.command({"prefix": "osd pool create", "pool": name, "pg_num": pg_num})
        assert ret == 0, f"osd pool create {name}: {ret} {outs}"
    try:
        yield name
    finally:
        with cluster.admin() as admin:
            admin.command({"prefix": "osd pool delete", "pool": name, "pool2": name,
                           "yes_i_really_really_mean_it": True})


@contextlib.contextmanager
def pool_ioctx(cluster: TestCluster, name: str) -> Iterator[Any]:
    """`rbd_pool` NAME with a client.admin python-rados Ioctx on it."""
    import rados

    with rbd_pool(cluster, name):
        r = rados.Rados(conffile=cluster.conf_path)
        r.connect()
        io = r.open_ioctx(name)
        try:
            yield io
        finally:
            io.close()
            r.shutdown()


def rbd_cli(cluster: TestCluster, *args: str, input: bytes | None = None,
            timeout: float = 300.0) -> subprocess.CompletedProcess[bytes]:
    """`rbd -c <conf> ARGS...` as a subprocess (the same entry point the `rbd` script runs)."""
    return cluster.cli("rbd", "-c", cluster.conf_path, *args, input=input, timeout=timeout)


def rbd_ok(cluster: TestCluster, *args: str, input: bytes | None = None) -> bytes:
    proc = rbd_cli(cluster, *args, input=input)
    assert proc.returncode == 0, (
        f"rbd {' '.join(args)} exited {proc.returncode}\nstderr: {proc.stderr.decode(errors='replace')}")
    return proc.stdout


def read_all(img: Any, size: int | None = None) -> bytes:
    """The whole image (or snapshot) through python-rbd, in 1 MiB reads."""
    size = img.size() if size is None else size
    parts = []
    for off in range(0, size, READ_CHUNK):
        n = min(READ_CHUNK, size - off)
        got = img.read(off, n)
        assert len(got) == n, f"short read at {off}: {len(got)} of {n} bytes"
        parts.append(got)
    return b"".join(parts)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fixture_bytes(name: str) -> bytes:
    """A stream fixture's uncompressed bytes (`name` without .gz)."""
    plain = STREAMS / name
    if plain.exists():
        return plain.read_bytes()
    return gzip.decompress((STREAMS / (name + ".gz")).read_bytes())


def fixture_sums() -> dict[str, str]:
    sums = {}
    for line in (STREAMS / "SHA256SUMS").read_text().splitlines():
        if line.strip():
            digest, name = line.split()
            sums[name] = digest
    return sums


def unpack_fixtures(dest: Path) -> Path:
    """Every stream fixture, uncompressed, in `dest` (what `$S` is in import-diff-errors.json)."""
    dest.mkdir(parents=True, exist_ok=True)
    for p in STREAMS.iterdir():
        if p.name.endswith(".gz"):
            (dest / p.name[:-3]).write_bytes(gzip.decompress(p.read_bytes()))
        else:
            shutil.copyfile(p, dest / p.name)
    return dest


# -- an independent reader of export-diff v1/v2 and export-format 2 streams ---------------------

@dataclass
class Rec:
    tag: str
    at: int
    name: str = ""
    size: int = 0
    off: int = 0
    length: int = 0
    data: bytes = b""
    protected: int = 0
    reclen: int = -1


class StreamParseError(ValueError):
    pass


def _u64(b: bytes, o: int) -> int:
    if o + 8 > len(b):
        raise StreamParseError(f"truncated u64 at {o}")
    return struct.unpack_from("<Q", b, o)[0]


def parse_diff(b: bytes, o: int = 0) -> tuple[list[Rec], int]:
    """Records of one export-diff stream starting at `o` (v1 or v2); returns (records, end offset)."""
    if b.startswith(b"rbd diff v1\n", o):
        v2 = False
    elif b.startswith(b"rbd diff v2\n", o):
        v2 = True
    else:
        raise StreamParseError(f"bad diff banner at {o}: {b[o:o + 12]!r}")
    o += 12
    recs: list[Rec] = []
    while True:
        if o >= len(b):
            raise StreamParseError("no end record")
        tag, at = chr(b[o]), o
        o += 1
        rec = Rec(tag, at)
        if tag == "e":
            recs.append(rec)
            return recs, o
        if v2:
            rec.reclen = _u64(b, o)
            o += 8
        if tag in "ft":
            if o + 4 > len(b):
                raise StreamParseError(f"truncated name length at {o}")
            n = struct.unpack_from("<I", b, o)[0]
            rec.name = b[o + 4:o + 4 + n].decode()
            o += 4 + n
        elif tag == "s":
            rec.size = _u64(b, o)
            o += 8
        elif tag in "wz":
            rec.off, rec.length = _u64(b, o), _u64(b, o + 8)
            o += 16
            if tag == "w":
                rec.data = b[o:o + rec.length]
                if len(rec.data) != rec.length:
                    raise StreamParseError(f"truncated write data at {o}")
                o += rec.length
        elif tag == "p" and v2:
            rec.protected = b[o]  # Ceph declares length 8 and writes 1 byte (a real quirk, fixtures README)
            o += 1
        else:
            raise StreamParseError(f"unknown tag {tag!r} at {at}")
        recs.append(rec)


def parse_export_v2(b: bytes) -> tuple[dict[str, int], list[list[Rec]]]:
    """(header fields O/T/U/C, [records of each embedded diff]) of an `--export-format 2` stream."""
    if not b.startswith(b"rbd image v2\n"):
        raise StreamParseError("bad image banner")
    o = 13
    header: dict[str, int] = {}
    while True:
        tag = chr(b[o])
        o += 1
        if tag == "E":
            break
        ln = _u64(b, o)
        o += 8
        if ln == 8:
            header[tag] = _u64(b, o)
        o += ln
    if not b.startswith(b"rbd image diffs v2\n", o):
        raise StreamParseError("bad diffs banner")
    o += 19
    n = _u64(b, o)
    o += 8
    diffs = []
    for _ in range(n):
        recs, o = parse_diff(b, o)
        diffs.append(recs)
    if o != len(b):
        raise StreamParseError(f"{len(b) - o} trailing bytes")
    return header, diffs


def describe(recs: list[Rec]) -> list[str]:
    """Records as short strings, for assertion messages."""
    out = []
    for r in recs:
        if r.tag in "ft":
            out.append(f"{r.tag} {r.name}")
        elif r.tag == "s":
            out.append(f"s {r.size}")
        elif r.tag in "wz":
            kinds = sorted({f"{x:02x}" for x in r.data}) if r.tag == "w" else []
            out.append(f"{r.tag} {r.off}+{r.length}" + (f" bytes={kinds[:4]}" if kinds else ""))
        elif r.tag == "p":
            out.append(f"p {r.protected}")
        else:
            out.append(r.tag)
    return out


def stream_mismatch(expected: bytes, got: bytes) -> str:
    """Why two streams differ: record by record when both parse, else the first differing byte."""
    try:
        if expected.startswith(b"rbd image v2\n"):
            eh, ed = parse_export_v2(expected)
            gh, gd = parse_export_v2(got)
            return (f"header expected {eh} got {gh}\n"
                    + "\n".join(f"diff {i}: expected {describe(a)}\n        got      {describe(b)}"
                                for i, (a, b) in enumerate(zip(ed, gd, strict=False)))
                    + f"\n({len(ed)} diffs expected, {len(gd)} got)")
        e, _ = parse_diff(expected)
        g, _ = parse_diff(got)
        return f"records expected {describe(e)}\n        got      {describe(g)}"
    except (StreamParseError, IndexError, UnicodeDecodeError) as exc:
        i = next((k for k, (x, y) in enumerate(zip(expected, got, strict=False)) if x != y),
                 min(len(expected), len(got)))
        return (f"({exc}) lengths {len(expected)} vs {len(got)}; first differing byte {i}: "
                f"expected {expected[i:i + 24].hex()} got {got[i:i + 24].hex()}")


def apply_diff(base: bytes, recs: list[Rec]) -> bytes:
    """What a diff's records make of `base` (resize to `s`, then w/z)."""
    img = bytearray(base)
    for r in recs:
        if r.tag == "s":
            if r.size < len(img):
                del img[r.size:]
            else:
                img.extend(bytes(r.size - len(img)))
        elif r.tag == "w":
            img[r.off:r.off + r.length] = r.data
        elif r.tag == "z":
            img[r.off:r.off + r.length] = bytes(r.length)
    return bytes(img)

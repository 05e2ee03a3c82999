"""Acceptance of `rbd export` / `import` / `export-diff` / `import-diff` / `merge-diff` streams.

Runs the `rbd` CLI as a subprocess (`rbd -c <cluster conf> ...`, Ceph's arguments) and checks
with python-rbd (`import rbd`). Three kinds of expectations:

* **Recorded from real Ceph 16** (`../shared/reference/fixtures/streams`, README there):
  replaying `gen/streams.sh` (same image settings, writes, discard, resize, snapshot names)
  must export the nine recorded streams byte for byte; importing each recorded stream must give
  the recorded contents (sha256 of the raw images); `import-diff` of the broken streams must
  exit and print exactly as Ceph did (`import-diff-errors.json`, the `--no-progress` runs).
* **Derived from Ceph's code** (`src/tools/rbd/action/Import.cc`: `validate_banner`,
  `read_tag`, `do_image_io`, `utils::read_string` with its 4096 limit; a short read is EDOM,
  reported as EBADMSG): the message and exit code of a stream cut at any point or corrupted.
* **Shoal's own, stricter guarantee** (`../shared/design/ARCHITECTURE.md`, Errors: "a
  truncated diff stream ... gets a clear, specific error and changes nothing"): a rejected
  import-diff leaves the target's content, size and snapshot list unchanged. Real Ceph is not
  atomic here (it resizes and applies the records before the bad one; see the README's table);
  those asserts are marked "Shoal guarantee".
"""

from __future__ import annotations

import json
import os
import random
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shoal.testing.cluster import TestCluster
from tests.rbd.rbd_helpers import (
    STREAMS,
    apply_diff,
    describe,
    fixture_bytes,
    fixture_sums,
    parse_diff,
    parse_export_v2,
    pool_ioctx,
    rbd_cli,
    rbd_ok,
    read_all,
    sha256,
    stream_mismatch,
    unpack_fixtures,
)

try:
    import rbd
except ImportError:  # python-rbd drop-in not written yet: the tests fail (not skip) until it lands
    rbd = None  # type: ignore[assignment]

POOL = "rbd_streams"
M = 1 << 20
pytestmark = pytest.mark.skipif(not (STREAMS / "SHA256SUMS").exists(), reason="reference fixtures absent")

# fixtures/README.md "Expected logical contents"
SHA = {
    ("img1", "s1"): "ce768edcbb35130c3b0888c241cac820460d7671286d379412464a5f0edbf7dc",
    ("img1", "s2"): "a109aeff85d2391db03580ec39348eeae9f0c41c3fb242259061eed5a7fb667b",
    ("img2", "s1"): "56402845120b8189c5bf72c6dbf013d73f2657fff466556ab2bfa1d6baa2981b",
    ("img2", "s2"): "951fe6fdfb6dcc8f1152c1076e202080813e42f6ac72940397576599356a243c",
}
SIZES = {("img1", "s1"): 8 * M, ("img1", "s2"): 12 * M, ("img2", "s1"): 4 * M, ("img2", "s2"): 6 * M}
# gen/streams.sh: create arguments, the offset of write C, the size of the resize
GEN = {
    "img1": (["--size", "8M"], 6 * M - 8, "12M", 22, 61, (4 * M, 1)),
    "img2": (["--size", "4M", "--object-size", "1M", "--stripe-unit", "64K", "--stripe-count", "4"],
             3 * M - 8, "6M", 20, 63, (64 * 1024, 4)),
}
BAD_MSG = "rbd: import-diff failed: (74) Bad message\n"
EINVAL_MSG = "rbd: import-diff failed: (22) Invalid argument\n"


@pytest.fixture(scope="module")
def io(cluster: TestCluster) -> Iterator[Any]:
    assert rbd is not None, "`import rbd` failed: shoal/compat/rbd.py (python-rbd drop-in) is missing"
    with pool_ioctx(cluster, POOL) as io:
        yield io


@pytest.fixture(scope="module")
def sdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture streams, uncompressed (`$S`)."""
    return unpack_fixtures(tmp_path_factory.mktemp("streams"))


_names = iter(range(1 << 30))


def fresh(prefix: str) -> str:
    return f"{prefix}-{next(_names)}"


def spec(name: str, snap: str | None = None) -> str:
    return f"{POOL}/{name}" + (f"@{snap}" if snap else "")


def content(io: Any, name: str, snap: str | None = None) -> bytes:
    with rbd.Image(io, name, snapshot=snap, read_only=True) as img:
        return read_all(img)


def snaps_of(io: Any, name: str) -> list[list[Any]]:
    with rbd.Image(io, name, read_only=True) as img:
        return [[s["name"], s["size"]] for s in img.list_snaps()]


def state(io: Any, name: str) -> dict[str, Any]:
    """What import-diff-errors.json records: snapshots, size, sha256 of the head."""
    with rbd.Image(io, name, read_only=True) as img:
        return {"snaps": [[s["name"], s["size"]] for s in img.list_snaps()], "size": img.size(),
                "head_sha256": sha256(read_all(img))}


def layout_of(io: Any, name: str) -> tuple[int, int, int, int]:
    with rbd.Image(io, name, read_only=True) as img:
        return img.stat()["order"], img.features(), img.stripe_unit(), img.stripe_count()


def check_sha(io: Any, name: str, snap: str | None, want: str, what: str) -> None:
    got = content(io, name, snap)
    assert sha256(got) == want, f"{what}: {spec(name, snap)} has sha256 {sha256(got)} ({len(got)} bytes), want {want}"


def run_fails(cluster: TestCluster, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    proc = rbd_cli(cluster, *args, input=input)
    assert proc.returncode != 0, f"rbd {' '.join(args)} succeeded, expected a failure"
    return proc


def fill_image(img: Any, seed: int, writes: int = 12) -> None:
    """Random writes, a discard and a write_zeroes over the whole image (an open python-rbd Image)."""
    rnd = random.Random(seed)
    size = img.size()
    for _ in range(writes):
        off = rnd.randrange(size)
        n = min(rnd.choice([1, 512, 4096, 65536, 300000]), size - off)
        img.write(rnd.randbytes(n), off)
    off = rnd.randrange(size) // 65536 * 65536
    img.discard(off, min(3 * 65536, size - off))
    off = rnd.randrange(size)
    img.write_zeroes(off, min(rnd.randrange(1, 70000), size - off))


# -- replaying gen/streams.sh: the nine exports, byte for byte --------------------------------------

@pytest.mark.parametrize("img", ["img1", "img2"])
def test_replayed_history_exports_ceph_streams(cluster: TestCluster, io: Any, img: str, tmp_path: Path) -> None:
    create, c_off, resize, order, features, striping = GEN[img]
    rbd_ok(cluster, "create", *create, spec(img))
    assert layout_of(io, img) == (order, features, *striping), "image settings differ from Ceph's for gen/streams.sh"
    with rbd.Image(io, img) as im:
        for off, n, v in ((0, 4096, 0x11), (M + 512, 65536, 0x22), (c_off, 16, 0x33)):
            assert im.write(bytes([v]) * n, off) == n
    rbd_ok(cluster, "snap", "create", "--no-progress", spec(img, "s1"))
    with rbd.Image(io, img) as im:
        im.write(b"\x44" * 4096, 2 * M)
        im.discard(M, 65536)
    rbd_ok(cluster, "resize", "--no-progress", "--size", resize, spec(img))
    rbd_ok(cluster, "snap", "create", "--no-progress", spec(img, "s2"))
    for snap in ("s1", "s2"):
        check_sha(io, img, snap, SHA[img, snap], "replayed gen/streams.sh")
    check_sha(io, img, None, SHA[img, "s2"], "replayed gen/streams.sh")

    out = tmp_path
    commands = [
        (f"{img}-s1.raw", ["export", "--no-progress", spec(img, "s1")]),
        (f"{img}-s2.raw", ["export", "--no-progress", spec(img, "s2")]),
        (f"{img}.exp2", ["export", "--no-progress", "--export-format", "2", spec(img)]),
        (f"{img}-s1.diff", ["export-diff", "--no-progress", spec(img, "s1")]),
        (f"{img}-s1-s2.diff", ["export-diff", "--no-progress", "--from-snap", "s1", spec(img, "s2")]),
        (f"{img}-s2-head.diff", ["export-diff", "--no-progress", "--from-snap", "s2", spec(img)]),
        (f"{img}-s1.wo.diff", ["export-diff", "--no-progress", "--whole-object", spec(img, "s1")]),
        (f"{img}-s1-s2.wo.diff", ["export-diff", "--no-progress", "--whole-object", "--from-snap", "s1",
                                  spec(img, "s2")]),
    ]
    bad = []
    for fname, args in commands:
        rbd_ok(cluster, *args, str(out / fname))
        got, want = (out / fname).read_bytes(), fixture_bytes(fname)
        if got != want:
            bad.append(f"{fname} (rbd {' '.join(args)}): {stream_mismatch(want, got)}")
    merged = f"{img}-merged-s2.diff"
    rbd_ok(cluster, "merge-diff", "--no-progress", str(out / f"{img}-s1.diff"), str(out / f"{img}-s1-s2.diff"),
           str(out / merged))
    if (out / merged).read_bytes() != fixture_bytes(merged):
        bad.append(f"{merged} (merge-diff): {stream_mismatch(fixture_bytes(merged), (out / merged).read_bytes())}")
    # the same streams to stdout
    for fname, args in (commands[0], commands[2], commands[4]):
        got = rbd_ok(cluster, *args, "-")
        if got != fixture_bytes(fname):
            bad.append(f"{fname} to stdout: {stream_mismatch(fixture_bytes(fname), got)}")
    assert not bad, "exports differ from real Ceph's:\n" + "\n".join(bad)


# -- importing the recorded streams ----------------------------------------------------------------------

@pytest.mark.parametrize("src", ["img1-s1", "img1-s2", "img2-s1", "img2-s2"])
def test_import_raw_fixture(cluster: TestCluster, io: Any, sdir: Path, src: str) -> None:
    img, snap = src.split("-")
    name = fresh(f"raw-{src}")
    rbd_ok(cluster, "import", "--no-progress", str(sdir / f"{src}.raw"), spec(name))
    check_sha(io, name, None, SHA[img, snap], f"rbd import {src}.raw")
    with rbd.Image(io, name, read_only=True) as im:
        assert im.size() == SIZES[img, snap]
        assert im.stat()["order"] == 22 and im.features() == 61, "import uses the default order and features"
    piped = fresh(f"raw-{src}-stdin")
    rbd_ok(cluster, "import", "--no-progress", "-", spec(piped), input=fixture_bytes(f"{src}.raw"))
    check_sha(io, piped, None, SHA[img, snap], f"rbd import - < {src}.raw")
    assert rbd_ok(cluster, "export", "--no-progress", spec(piped), "-") == fixture_bytes(f"{src}.raw")


@pytest.mark.parametrize("img", ["img1", "img2"])
def test_import_export_format_2_fixture(cluster: TestCluster, io: Any, sdir: Path, tmp_path: Path, img: str) -> None:
    _, _, _, order, features, striping = GEN[img]
    name = fresh(f"exp2-{img}")
    rbd_ok(cluster, "import", "--no-progress", "--export-format", "2", str(sdir / f"{img}.exp2"), spec(name))
    assert snaps_of(io, name) == [["s1", SIZES[img, "s1"]], ["s2", SIZES[img, "s2"]]]
    assert layout_of(io, name) == (order, features, *striping), "order/features/striping from the O/T/U/C records"
    for snap in ("s1", "s2"):
        check_sha(io, name, snap, SHA[img, snap], f"import --export-format 2 {img}.exp2")
    check_sha(io, name, None, SHA[img, "s2"], f"import --export-format 2 {img}.exp2")
    with rbd.Image(io, name, read_only=True) as im:
        assert not im.is_protected_snap("s1") and not im.is_protected_snap("s2"), "p records say unprotected"

    out = tmp_path / "again.exp2"
    rbd_ok(cluster, "export", "--no-progress", "--export-format", "2", spec(name), str(out))
    assert out.read_bytes() == fixture_bytes(f"{img}.exp2"), \
        "export --export-format 2 of the imported image: " + stream_mismatch(fixture_bytes(f"{img}.exp2"),
                                                                             out.read_bytes())
    piped = fresh(f"exp2-{img}-stdin")
    rbd_ok(cluster, "import", "--no-progress", "--export-format", "2", "-", spec(piped),
           input=fixture_bytes(f"{img}.exp2"))
    assert snaps_of(io, piped) == snaps_of(io, name)
    assert rbd_ok(cluster, "export", "--no-progress", "--export-format", "2", spec(piped), "-") == \
        fixture_bytes(f"{img}.exp2")


@pytest.mark.parametrize("img", ["img1", "img2"])
@pytest.mark.parametrize("variant", ["", ".wo"])
def test_import_diff_chain_fixture(cluster: TestCluster, io: Any, sdir: Path, img: str, variant: str) -> None:
    name = fresh(f"chain-{img}{variant.replace('.', '-')}")
    rbd_ok(cluster, "create", "--size", "1M", spec(name))
    rbd_ok(cluster, "import-diff", "--no-progress", str(sdir / f"{img}-s1{variant}.diff"), spec(name))
    assert snaps_of(io, name) == [["s1", SIZES[img, "s1"]]]
    check_sha(io, name, "s1", SHA[img, "s1"], f"import-diff {img}-s1{variant}.diff")
    rbd_ok(cluster, "import-diff", "--no-progress", str(sdir / f"{img}-s1-s2{variant}.diff"), spec(name))
    assert snaps_of(io, name) == [["s1", SIZES[img, "s1"]], ["s2", SIZES[img, "s2"]]]
    check_sha(io, name, "s1", SHA[img, "s1"], f"import-diff {img}-s1-s2{variant}.diff")
    check_sha(io, name, "s2", SHA[img, "s2"], f"import-diff {img}-s1-s2{variant}.diff")
    rbd_ok(cluster, "import-diff", "--no-progress", str(sdir / f"{img}-s2-head.diff"), spec(name))
    assert [s for s, _ in snaps_of(io, name)] == ["s1", "s2"], "a diff to HEAD (no 't' record) adds no snapshot"
    check_sha(io, name, None, SHA[img, "s2"], f"import-diff {img}-s2-head.diff")


@pytest.mark.parametrize("img", ["img1", "img2"])
def test_export_of_imported_diff_chain_reproduces_ceph_streams(cluster: TestCluster, io: Any, sdir: Path,
                                                               tmp_path: Path, img: str) -> None:
    """Content imported from Ceph's diffs into an image made with gen/streams.sh's settings exports to the
    same diffs (the objects touched are the same)."""
    name = fresh(f"rexp-{img}")
    rbd_ok(cluster, "create", *GEN[img][0][2:], "--size", "1M", spec(name))
    for f in (f"{img}-s1.diff", f"{img}-s1-s2.diff", f"{img}-s2-head.diff"):
        rbd_ok(cluster, "import-diff", "--no-progress", str(sdir / f), spec(name))
    commands = [
        (f"{img}-s1.diff", ["export-diff", "--no-progress", spec(name, "s1")]),
        (f"{img}-s1-s2.diff", ["export-diff", "--no-progress", "--from-snap", "s1", spec(name, "s2")]),
        (f"{img}-s2-head.diff", ["export-diff", "--no-progress", "--from-snap", "s2", spec(name)]),
        (f"{img}-s1.wo.diff", ["export-diff", "--no-progress", "--whole-object", spec(name, "s1")]),
        (f"{img}-s1-s2.wo.diff", ["export-diff", "--no-progress", "--whole-object", "--from-snap", "s1",
                                  spec(name, "s2")]),
        (f"{img}.exp2", ["export", "--no-progress", "--export-format", "2", spec(name)]),
    ]
    bad = []
    for fname, args in commands:
        rbd_ok(cluster, *args, str(tmp_path / fname))
        got, want = (tmp_path / fname).read_bytes(), fixture_bytes(fname)
        if got != want:
            bad.append(f"{fname} (rbd {' '.join(args)}): {stream_mismatch(want, got)}")
    merged = tmp_path / "merged.diff"
    rbd_ok(cluster, "merge-diff", "--no-progress", str(sdir / f"{img}-s1.diff"), str(sdir / f"{img}-s1-s2.diff"),
           str(merged))
    if merged.read_bytes() != fixture_bytes(f"{img}-merged-s2.diff"):
        bad.append(f"merge-diff of Ceph's two diffs: {stream_mismatch(fixture_bytes(f'{img}-merged-s2.diff'), merged.read_bytes())}")
    assert not bad, "exports of the imported image differ from real Ceph's:\n" + "\n".join(bad)


@pytest.mark.parametrize("img", ["img1", "img2"])
def test_import_merged_diff_fixture(cluster: TestCluster, io: Any, sdir: Path, img: str) -> None:
    name = fresh(f"merged-{img}")
    rbd_ok(cluster, "create", "--size", "1M", spec(name))
    rbd_ok(cluster, "import-diff", "--no-progress", str(sdir / f"{img}-merged-s2.diff"), spec(name))
    assert snaps_of(io, name) == [["s2", SIZES[img, "s2"]]], "a merged diff creates only its end snapshot"
    check_sha(io, name, "s2", SHA[img, "s2"], f"import-diff {img}-merged-s2.diff")
    check_sha(io, name, None, SHA[img, "s2"], f"import-diff {img}-merged-s2.diff")


# -- round trips of Shoal-made images -----------------------------------------------------------------------

LAYOUTS = {
    "default": [],
    "order16": ["--object-size", "64K"],
    "striped": ["--object-size", "64K", "--stripe-unit", "16K", "--stripe-count", "4"],
}


def make_history(cluster: TestCluster, io: Any, name: str, layout: list[str], seed: int) -> dict[str, bytes]:
    """An image with snapshots s1 (3 MiB), s2 (grown to 5 MiB), s3 (shrunk to 2.5 MiB) and a changed HEAD."""
    rbd_ok(cluster, "create", "--size", "3M", *layout, spec(name))
    contents = {}
    with rbd.Image(io, name) as img:
        fill_image(img, seed)
        img.create_snap("s1")
        contents["s1"] = read_all(img)
        fill_image(img, seed + 1, writes=6)
        img.resize(5 * M)
        img.write(random.Random(seed).randbytes(5000), 4 * M + 100)
        img.create_snap("s2")
        contents["s2"] = read_all(img)
        img.resize(5 * M // 2 + 3)
        img.write(b"after shrink", 0)
        img.write_zeroes(M, 200000)
        img.create_snap("s3")
        contents["s3"] = read_all(img)
        fill_image(img, seed + 2, writes=4)
        contents["head"] = read_all(img)
    return contents


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_export_import_round_trips(cluster: TestCluster, io: Any, tmp_path: Path, layout: str) -> None:
    src = fresh(f"rt-{layout}")
    want = make_history(cluster, io, src, LAYOUTS[layout], seed=len(layout))
    src_layout = layout_of(io, src)
    # format 1 (raw): a file and stdout, head and a snapshot; import from a file and from stdin
    raw = tmp_path / "s2.raw"
    rbd_ok(cluster, "export", "--no-progress", spec(src, "s2"), str(raw))
    assert raw.read_bytes() == want["s2"], "rbd export @s2 to a file"
    assert rbd_ok(cluster, "export", "--no-progress", spec(src), "-") == want["head"], "rbd export HEAD to stdout"
    dst = fresh("rt-raw")
    rbd_ok(cluster, "import", "--no-progress", *LAYOUTS[layout], str(raw), spec(dst))
    assert content(io, dst) == want["s2"], "rbd import of a raw file"
    assert layout_of(io, dst)[0] == src_layout[0] and layout_of(io, dst)[2:] == src_layout[2:], \
        "rbd import honours --object-size/--stripe-unit/--stripe-count"
    dst = fresh("rt-raw-stdin")
    rbd_ok(cluster, "import", "--no-progress", "-", spec(dst), input=want["head"])
    assert content(io, dst) == want["head"], "rbd import - (stdin)"
    # format 2: every snapshot, the layout and the features come back; file and pipe
    exp2 = tmp_path / "img.exp2"
    rbd_ok(cluster, "export", "--no-progress", "--export-format", "2", spec(src), str(exp2))
    header, diffs = parse_export_v2(exp2.read_bytes())
    assert len(diffs) == 4, f"export format 2 holds snapshots+1 diffs: {[describe(d) for d in diffs]}"
    assert (header["O"], header["T"], header["U"], header["C"]) == src_layout, f"header {header}"
    for via_stdin in (False, True):
        dst = fresh("rt-exp2")
        if via_stdin:
            rbd_ok(cluster, "import", "--no-progress", "--export-format", "2", "-", spec(dst),
                   input=rbd_ok(cluster, "export", "--no-progress", "--export-format", "2", spec(src), "-"))
        else:
            rbd_ok(cluster, "import", "--no-progress", "--export-format", "2", str(exp2), spec(dst))
        assert snaps_of(io, dst) == [["s1", 3 * M], ["s2", 5 * M], ["s3", 5 * M // 2 + 3]]
        assert layout_of(io, dst) == src_layout
        for snap in ("s1", "s2", "s3"):
            assert content(io, dst, snap) == want[snap], f"import --export-format 2 (stdin={via_stdin}) @{snap}"
        assert content(io, dst) == want["head"], f"import --export-format 2 (stdin={via_stdin}) HEAD"


@pytest.mark.parametrize("layout", ["default", "striped"])
def test_incremental_diff_chain_reproduces_source(cluster: TestCluster, io: Any, tmp_path: Path, layout: str) -> None:
    """s1 full diff | import-diff -, then s1->s2 (file), s2->s3 --whole-object, s3->HEAD: byte for byte."""
    src = fresh(f"chain-src-{layout}")
    want = make_history(cluster, io, src, LAYOUTS[layout], seed=7 + len(layout))
    for whole in (False, True):
        wo = ["--whole-object"] if whole else []
        dst = fresh(f"chain-dst-{layout}")
        rbd_ok(cluster, "create", "--size", "1M", spec(dst))
        stream = rbd_ok(cluster, "export-diff", "--no-progress", *wo, spec(src, "s1"), "-")
        rbd_ok(cluster, "import-diff", "--no-progress", "-", spec(dst), input=stream)
        f12 = tmp_path / f"s1-s2-{whole}.diff"
        rbd_ok(cluster, "export-diff", "--no-progress", *wo, "--from-snap", "s1", spec(src, "s2"), str(f12))
        rbd_ok(cluster, "import-diff", "--no-progress", str(f12), spec(dst))
        f23 = tmp_path / f"s2-s3-{whole}.diff"
        rbd_ok(cluster, "export-diff", "--no-progress", "--whole-object", "--from-snap", "s2", spec(src, "s3"),
               str(f23))
        rbd_ok(cluster, "import-diff", "--no-progress", str(f23), spec(dst))
        stream = rbd_ok(cluster, "export-diff", "--no-progress", *wo, "--from-snap", "s3", spec(src), "-")
        recs, _ = parse_diff(stream)
        assert [r.tag for r in recs if r.tag in "ft"] == ["f"], f"a diff to HEAD has no 't': {describe(recs)}"
        rbd_ok(cluster, "import-diff", "--no-progress", "-", spec(dst), input=stream)
        assert snaps_of(io, dst) == snaps_of(io, src)
        for snap in ("s1", "s2", "s3"):
            got = content(io, dst, snap)
            assert got == want[snap], f"target @{snap} after the chain (whole_object={whole}) differs"
        assert content(io, dst) == want["head"], f"target HEAD after the chain (whole_object={whole}) differs"
    # merge-diff: s1 and s1->s2 merged onto an empty image gives s2; s1->s2 + s2->s3 onto s1 gives s3
    full = tmp_path / "s1-full.diff"
    rbd_ok(cluster, "export-diff", "--no-progress", spec(src, "s1"), str(full))
    merged = tmp_path / "merged-s2.diff"
    rbd_ok(cluster, "merge-diff", "--no-progress", str(full), str(tmp_path / "s1-s2-False.diff"), str(merged))
    recs, _ = parse_diff(merged.read_bytes())
    assert apply_diff(b"", recs) == want["s2"], "merge-diff's records do not make s2"
    dst = fresh("merge-dst")
    rbd_ok(cluster, "create", "--size", "1M", spec(dst))
    rbd_ok(cluster, "import-diff", "--no-progress", str(merged), spec(dst))
    assert snaps_of(io, dst) == [["s2", 5 * M]] and content(io, dst, "s2") == want["s2"]
    merged23 = tmp_path / "merged-s1-s3.diff"
    rbd_ok(cluster, "merge-diff", "--no-progress", str(tmp_path / "s1-s2-False.diff"),
           str(tmp_path / "s2-s3-False.diff"), str(merged23))
    recs, _ = parse_diff(merged23.read_bytes())
    assert [(r.tag, r.name) for r in recs if r.tag in "ft"] == [("f", "s1"), ("t", "s3")], describe(recs)
    dst2 = fresh("merge-dst2")
    rbd_ok(cluster, "create", "--size", "1M", spec(dst2))
    rbd_ok(cluster, "import-diff", "--no-progress", str(full), spec(dst2))
    rbd_ok(cluster, "import-diff", "--no-progress", str(merged23), spec(dst2))
    assert [s for s, _ in snaps_of(io, dst2)] == ["s1", "s3"]
    assert content(io, dst2, "s3") == want["s3"]


def test_export_diff_records_are_diff_iterate_extents(cluster: TestCluster, io: Any, tmp_path: Path) -> None:
    """One record per diff_iterate extent (Export.cc export_diff_cb); 'z' when absent or all zero, else 'w' + data."""
    src = fresh("diffiter")
    want = make_history(cluster, io, src, LAYOUTS["striped"], seed=99)
    for from_snap, to_snap, whole in ((None, "s1", False), ("s1", "s2", False), ("s2", "s3", False),
                                      ("s1", "s3", True), ("s3", None, False)):
        extents: list[tuple[int, int, bool]] = []
        with rbd.Image(io, src, snapshot=to_snap, read_only=True) as img:
            img.diff_iterate(0, img.size(), from_snap, lambda o, n, e, acc=extents: acc.append((o, n, bool(e))),
                             include_parent=True, whole_object=whole)
        args = ["export-diff", "--no-progress"] + (["--whole-object"] if whole else []) + \
            (["--from-snap", from_snap] if from_snap else []) + [spec(src, to_snap), "-"]
        recs, _ = parse_diff(rbd_ok(cluster, *args))
        data_recs = [r for r in recs if r.tag in "wz"]
        assert [(r.off, r.length) for r in data_recs] == [(o, n) for o, n, _ in extents], \
            f"rbd {' '.join(args)}: records {describe(recs)} vs diff_iterate {extents}"
        image = want[to_snap or "head"]
        for r, (_, _, exists) in zip(data_recs, extents, strict=True):
            chunk = image[r.off:r.off + r.length]
            if r.tag == "w":
                assert exists and r.data == chunk and any(chunk), f"'w {r.off}+{r.length}' of rbd {' '.join(args)}"
            else:
                assert not exists or not any(chunk), f"'z {r.off}+{r.length}' over data in rbd {' '.join(args)}"


def test_cinder_backup_pipe(cluster: TestCluster, io: Any) -> None:
    """cinder backup: `rbd export-diff --id U --conf C --pool P [--from-snap S] P/NAME@SNAP -` | `rbd import-diff ... -`."""
    src = fresh("cinder-vol")
    want = make_history(cluster, io, src, [], seed=3)
    dst = fresh("cinder-backup")
    rbd_ok(cluster, "create", "--size", "1M", spec(dst))
    common = ["--id", "admin", "--conf", cluster.conf_path]
    cmd = [sys.executable, "-m", "shoal.cli.rbd_cmd"]
    for from_snap, snap in ((None, "s1"), ("s1", "s2")):
        export = cmd + ["export-diff", *common, "--pool", POOL] + (["--from-snap", from_snap] if from_snap else []) \
            + [spec(src, snap), "-"]
        imp = cmd + ["import-diff", *common, "--pool", POOL, "-", spec(dst)]
        p1 = subprocess.Popen(export, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cluster.env())
        p2 = subprocess.Popen(imp, stdin=p1.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cluster.env())
        assert p1.stdout is not None
        p1.stdout.close()
        try:
            out2, err2 = p2.communicate(timeout=300)
            _, err1 = p1.communicate(timeout=300)
        finally:
            for p in (p1, p2):
                if p.poll() is None:
                    p.kill()
                    p.wait()
        assert (p1.returncode, p2.returncode) == (0, 0), (err1.decode(), err2.decode())
        assert content(io, dst, snap) == want[snap], f"backup @{snap} differs from the volume"


def test_openstack_style_import_export(cluster: TestCluster, io: Any, tmp_path: Path) -> None:
    """The exact argv nova and cinder use (openstack-surface.md §3): options after positionals, legacy spellings."""
    data = random.Random(5).randbytes(3 * M + 4096) + bytes(M)
    base = tmp_path / "base.img"
    base.write_bytes(data)
    nova = fresh("nova")
    rbd_ok(cluster, "import", "--pool", POOL, str(base), nova, "--image-format=2")
    assert content(io, nova) == data
    cinder = fresh("cinder")
    rbd_ok(cluster, "import", "--pool", POOL, "--order", "22", str(base), cinder, "--new-format")
    assert content(io, cinder) == data
    with rbd.Image(io, cinder) as img:
        img.create_snap("snap")
    path = tmp_path / "exported"
    rbd_ok(cluster, "export", "--pool", POOL, "--image", cinder, "--path", str(path), "--snap", "snap")
    assert path.read_bytes() == data
    path2 = tmp_path / "exported2"
    rbd_ok(cluster, "export", "--pool", POOL, cinder, str(path2))
    assert path2.read_bytes() == data


# -- bad streams: recorded Ceph errors -------------------------------------------------------------------------

def _error_cases() -> list[dict[str, Any]]:
    path = STREAMS / "import-diff-errors.json"
    if not path.exists():
        return []
    return [c for c in json.loads(path.read_text())["results"] if "--no-progress" in c["command"]]


NON_ATOMIC_IN_CEPH = {"trunc-mid-w-data", "trunc-mid-w-header", "no-end-record"}


def _argv(line: str, sdir: Path, target: str) -> list[str]:
    words = line.split()
    assert words[0] == "rbd"
    out = []
    for w in words[1:]:
        if w.startswith("rbd/"):
            w = spec(target)
        out.append(w.replace("$S", str(sdir)))
    return out


@pytest.mark.parametrize("case", _error_cases(), ids=lambda c: c["case"])
def test_import_diff_errors_as_ceph(cluster: TestCluster, io: Any, sdir: Path, case: dict[str, Any]) -> None:
    target = fresh(f"err-{case['case']}")
    for line in case["prep"]:
        rbd_ok(cluster, *_argv(line, sdir, target))
    before = state(io, target)
    assert before == case["state_before"], f"the preparation gives a different state than on Ceph: {before}"
    proc = rbd_cli(cluster, *_argv(case["command"], sdir, target))
    expected_err = case["stderr"].replace("$S", str(sdir))
    assert (proc.returncode, proc.stdout.decode(), proc.stderr.decode()) == \
        (case["exit_code"], case["stdout"], expected_err), f"{case['note']}: exit code / stdout / stderr"
    after = state(io, target)
    if case["case"] in NON_ATOMIC_IN_CEPH:
        assert after == before, (f"Shoal guarantee: a rejected import-diff changes nothing (Ceph applied part: "
                                 f"{case['state_after']}); got {after}")
    else:
        assert after == case["state_after"] == before, "state after the command differs from Ceph's"


# -- bad streams: cut anywhere, corrupted ------------------------------------------------------------------------

def _cuts() -> list[tuple[int, str, int]]:
    """(length kept, Ceph's message, exit code) for img2-s1-s2.diff: f s1 @12, t s2 @19, s @26, z @35, w @52, e @4165."""
    cuts = [(0, "failed to decode diff banner", 74), (5, "failed to decode diff banner", 74),
            (11, "failed to decode diff banner", 74), (12, "failed to decode tag", 74),
            (13, "failed to decode start snap name", 74), (17, "failed to decode start snap name", 74),
            (19, "failed to decode tag", 74), (22, "failed to decode end snap name", 74),
            (26, "failed to decode tag", 74), (30, "failed to decode image size", 74),
            (35, "failed to decode tag", 74), (40, "failed to decode IO length", 74),
            (52, "failed to decode tag", 74), (60, "failed to decode IO length", 74),
            (69, "failed to decode write data", 74), (69 + 2000, "failed to decode write data", 74),
            (4164, "failed to decode write data", 74), (4165, "failed to decode tag", 74)]
    return cuts


def _prepared_target(cluster: TestCluster, io: Any, sdir: Path, prefix: str) -> tuple[str, dict[str, Any]]:
    target = fresh(prefix)
    rbd_ok(cluster, "create", "--size", "1M", spec(target))
    rbd_ok(cluster, "import-diff", "--no-progress", str(sdir / "img2-s1.diff"), spec(target))
    return target, state(io, target)


def test_truncated_streams_rejected_and_change_nothing(cluster: TestCluster, io: Any, sdir: Path,
                                                       tmp_path: Path) -> None:
    good = fixture_bytes("img2-s1-s2.diff")
    recs, _ = parse_diff(good)
    assert [(r.tag, r.at) for r in recs] == [("f", 12), ("t", 19), ("s", 26), ("z", 35), ("w", 52), ("e", 4165)]
    target, before = _prepared_target(cluster, io, sdir, "trunc")
    failures = []
    for i, (keep, msg, code) in enumerate(_cuts()):
        f = tmp_path / f"cut-{keep}.diff"
        f.write_bytes(good[:keep])
        via_stdin = i % 3 == 2  # cinder pipes streams through stdin
        args = ["import-diff", "--no-progress", "-" if via_stdin else str(f), spec(target)]
        proc = rbd_cli(cluster, *args, input=good[:keep] if via_stdin else None)
        expected = (code, f"rbd: {msg}\n{BAD_MSG}")
        got = (proc.returncode, proc.stderr.decode())
        if got != expected:
            failures.append(f"cut at {keep} (stdin={via_stdin}): expected {expected}, got {got}")
        after = state(io, target)
        if after != before:
            failures.append(f"cut at {keep} (stdin={via_stdin}): Shoal guarantee broken, target changed to {after}")
            before = after
    assert not failures, "\n".join(failures)
    rbd_ok(cluster, "import-diff", "--no-progress", str(sdir / "img2-s1-s2.diff"), spec(target))
    assert state(io, target)["head_sha256"] == SHA["img2", "s2"], "the target still takes the whole stream"


def _corruptions() -> list[tuple[str, bytes, str, int]]:
    """(what, stream, Ceph's stderr, exit code) made from img2-s1-s2.diff."""
    good = fixture_bytes("img2-s1-s2.diff")
    w_len_at = 52 + 1 + 8
    w_len = struct.unpack_from("<Q", good, w_len_at)[0]

    def patch(at: int, new: bytes) -> bytes:
        return good[:at] + new + good[at + len(new):]

    return [
        ("end tag 'e' replaced by 'Q'", good[:-1] + b"Q",
         f"unrecognized tag byte 81 in stream; skipping\nrbd: failed to decode tag\n{BAD_MSG}", 74),
        ("'w' length 1000 bytes longer than the data", patch(w_len_at, struct.pack("<Q", w_len + 1000)),
         f"rbd: failed to decode write data\n{BAD_MSG}", 74),
        ("'w' length one byte longer: the data swallows the 'e'", patch(w_len_at, struct.pack("<Q", w_len + 1)),
         f"rbd: failed to decode tag\n{BAD_MSG}", 74),
        ("from-snap name length 5000 (> 4096)", patch(13, struct.pack("<I", 5000)),
         f"rbd: failed to decode start snap name\n{EINVAL_MSG}", 22),
        ("to-snap name length 70000 (> 4096)", patch(20, struct.pack("<I", 70000)),
         f"rbd: failed to decode end snap name\n{EINVAL_MSG}", 22),
        ("v2 banner on a v1 stream", b"rbd diff v2\n" + good[12:],
         f"rbd: invalid or unexpected diff banner\n{EINVAL_MSG}", 22),
        ("from-snap that the target lacks", patch(17, b"s9"),
         f"start snapshot 's9' does not exist in the image, aborting\n{EINVAL_MSG}", 22),
    ]


@pytest.mark.parametrize("what,stream,stderr,code", _corruptions(), ids=[c[0] for c in _corruptions()])
def test_corrupted_streams_rejected_and_change_nothing(cluster: TestCluster, io: Any, sdir: Path, tmp_path: Path,
                                                       what: str, stream: bytes, stderr: str, code: int) -> None:
    target, before = _prepared_target(cluster, io, sdir, "corrupt")
    f = tmp_path / "corrupt.diff"
    f.write_bytes(stream)
    proc = rbd_cli(cluster, "import-diff", "--no-progress", str(f), spec(target))
    assert (proc.returncode, proc.stderr.decode()) == (code, stderr), what
    assert state(io, target) == before, f"Shoal guarantee: {what} rejected but the target changed"


def test_failed_import_leaves_no_image(cluster: TestCluster, io: Any, sdir: Path, tmp_path: Path) -> None:
    """Import.cc removes the image it created when the import fails (truncated export-format 2 stream)."""
    good = fixture_bytes("img2.exp2")
    for keep in (5, 60, 120, 1000, len(good) - 1):
        f = tmp_path / f"exp2-{keep}"
        f.write_bytes(good[:keep])
        name = fresh("badimport")
        run_fails(cluster, "import", "--no-progress", "--export-format", "2", str(f), spec(name))
        assert name not in rbd.RBD().list(io), f"import of a stream cut at {keep} left image {name} behind"
        with pytest.raises(rbd.ImageNotFound):
            rbd.Image(io, name)
    proc = run_fails(cluster, "import", "--no-progress", str(tmp_path / "no-such-file"), spec(fresh("nofile")))
    assert proc.returncode == 2 and b"rbd: error opening " in proc.stderr


def test_fixture_sums_are_what_the_tests_use() -> None:
    """The fixtures read here are the recorded ones (SHA256SUMS)."""
    sums = fixture_sums()
    for name, digest in sums.items():
        assert sha256(fixture_bytes(name)) == digest, name
    for (img, snap), digest in SHA.items():  # the contents checked above are the raw images' (*.raw.gz)
        assert sums[f"{img}-{snap}.raw"] == digest
        assert len(fixture_bytes(f"{img}-{snap}.raw")) == SIZES[img, snap]
    assert os.path.exists(STREAMS / "import-diff-errors.json")

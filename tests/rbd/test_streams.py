"""Stream codecs against the streams real Ceph 16 produced (reference/fixtures/streams)."""

from __future__ import annotations

import ast
import errno
import gzip
import hashlib
import json
from functools import cache

import pytest

from shoal.errors import InvalidArgument
from shoal.rbd.streams import (
    BadBanner,
    DiffReader,
    DiffStart,
    DiffWriter,
    End,
    ExportSnap,
    ExportV2Reader,
    ExportV2Writer,
    FromSnap,
    HeaderField,
    MalformedStream,
    Protected,
    RawExportWriter,
    RawImportReader,
    Size,
    StreamError,
    ToSnap,
    TruncatedStream,
    Unknown,
    Write,
    Zero,
    encode_diff,
    encode_export_v2,
    merge_diffs,
    parse_diff,
    split_sparse,
)
from tests.conftest import FIXTURES

STREAMS = FIXTURES / "streams"
pytestmark = pytest.mark.skipif(not (STREAMS / "SHA256SUMS").exists(), reason="reference fixtures absent")

SHA = {  # fixtures/README.md, "Expected logical contents"
    ("img1", "s1"): "ce768edcbb35130c3b0888c241cac820460d7671286d379412464a5f0edbf7dc",
    ("img1", "s2"): "a109aeff85d2391db03580ec39348eeae9f0c41c3fb242259061eed5a7fb667b",
    ("img2", "s1"): "56402845120b8189c5bf72c6dbf013d73f2657fff466556ab2bfa1d6baa2981b",
    ("img2", "s2"): "951fe6fdfb6dcc8f1152c1076e202080813e42f6ac72940397576599356a243c",
}


def _sums() -> dict[str, str]:
    if not (STREAMS / "SHA256SUMS").exists():
        return {}
    lines = (STREAMS / "SHA256SUMS").read_text().split("\n")
    return {name: digest for digest, name in (ln.split() for ln in lines if ln.strip())}


SUMS = _sums()
DIFFS = sorted(n for n in SUMS if n.endswith(".diff") and not n.startswith("bad-"))
EXP2 = sorted(n for n in SUMS if n.endswith(".exp2"))


@cache
def load(name: str) -> bytes:
    plain = STREAMS / name
    if plain.exists():
        return plain.read_bytes()
    return gzip.decompress((STREAMS / f"{name}.gz").read_bytes())


def sha(b: bytes | bytearray) -> str:
    return hashlib.sha256(b).hexdigest()


def apply(image: bytearray, records: list) -> bytearray:
    """What import-diff does to an image, as a bytearray model."""
    for r in records:
        if isinstance(r, Size):
            del image[r.size:]
            image.extend(bytes(r.size - len(image)))
        elif isinstance(r, Write):
            image[r.offset:r.offset + len(r.data)] = r.data
        elif isinstance(r, Zero):
            image[r.offset:r.offset + r.length] = bytes(r.length)
    return image


def feed_chunked(reader: DiffReader | ExportV2Reader, data: bytes, chunk: int = 65521) -> list:
    out: list = []
    for i in range(0, len(data), chunk):
        out.extend(reader.feed(data[i:i + chunk]))
    reader.close()
    return out


@pytest.mark.parametrize("name", sorted(SUMS))
def test_fixture_sha256(name: str) -> None:
    assert sha(load(name)) == SUMS[name]


@pytest.mark.parametrize("name", DIFFS)
def test_diff_fixture_round_trips(name: str) -> None:
    data = load(name)
    recs = feed_chunked(DiffReader(), data)
    assert isinstance(recs[-1], End)
    assert sha(encode_diff(recs, 1)) == SUMS[name]


def _records_txt() -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    cur: list[dict] = []
    for line in (STREAMS / "RECORDS.txt").read_text().splitlines():
        if line.startswith("== "):
            cur = out.setdefault(line[3:], [])
        elif line.strip():
            cur.append(ast.literal_eval(line))
    return out


def _summary(recs: list) -> list[tuple]:
    out: list[tuple] = []
    for r in recs:
        match r:
            case FromSnap(n) | ToSnap(n):
                out.append(("f" if isinstance(r, FromSnap) else "t", n))
            case Size(s):
                out.append(("s", s))
            case Protected(p):
                out.append(("p", int(p)))
            case Write(o, d):
                out.append(("w", o, len(d), sorted({f"0x{x:02x}" for x in d})))
            case Zero(o, n):
                out.append(("z", o, n))
            case End():
                out.append(("e",))
            case HeaderField(t, v):
                out.append((t, v))
    return out


def _summary_txt(dump: list[dict]) -> list[tuple]:
    out: list[tuple] = []
    for d in dump:
        tag = d.get("tag")
        if tag in ("f", "t"):
            out.append((tag, d["name"]))
        elif tag == "s":
            out.append(("s", d["size"]))
        elif tag == "p":
            out.append(("p", d["protected"]))
        elif tag == "w":
            out.append(("w", d["off"], d["len"], d["bytes"]))
        elif tag == "z":
            out.append(("z", d["off"], d["len"]))
        elif tag == "e":
            out.append(("e",))
        elif tag in ("O", "T", "U", "C"):
            out.append((tag, d["value"]))
    return out


@pytest.mark.parametrize("name", DIFFS + EXP2)
def test_records_match_independent_dump(name: str) -> None:
    """RECORDS.txt is gen/diffparse.py's dump of each stream: an independent parser."""
    data = load(name)
    recs = feed_chunked(ExportV2Reader() if name.endswith(".exp2") else DiffReader(), data)
    assert _summary(recs) == _summary_txt(_records_txt()[name])


@pytest.mark.parametrize("img", ["img1", "img2"])
@pytest.mark.parametrize("wo", ["", ".wo"])
def test_diffs_rebuild_images(img: str, wo: str) -> None:
    image = apply(bytearray(1 << 20), parse_diff(load(f"{img}-s1{wo}.diff")))
    assert sha(image) == SHA[img, "s1"]
    assert sha(image) == sha(load(f"{img}-s1.raw"))
    apply(image, parse_diff(load(f"{img}-s1-s2{wo}.diff")))
    assert sha(image) == SHA[img, "s2"] == sha(load(f"{img}-s2.raw"))
    recs = parse_diff(load(f"{img}-s2-head.diff"))
    assert recs == [FromSnap("s2"), Size(len(image)), End()]
    assert sha(apply(image, recs)) == SHA[img, "s2"]


@pytest.mark.parametrize("img", ["img1", "img2"])
def test_merged_diff_fixture(img: str) -> None:
    merged = load(f"{img}-merged-s2.diff")
    assert sha(apply(bytearray(1 << 20), parse_diff(merged))) == SHA[img, "s2"]
    first, second = load(f"{img}-s1.diff"), load(f"{img}-s1-s2.diff")
    chunks = [first[i:i + 100000] for i in range(0, len(first), 100000)]
    assert merge_diffs(chunks, [second]) == merged


def test_merge_rejects_unrelated_snapshots() -> None:
    with pytest.raises(InvalidArgument) as ei:
        merge_diffs([load("img1-s1-s2.diff")], [load("img1-s1-s2.diff")])
    assert ei.value.errno == errno.EINVAL


@pytest.mark.parametrize("img", ["img1", "img2"])
def test_raw_exports(img: str) -> None:
    for snap in ("s1", "s2"):
        raw = load(f"{img}-{snap}.raw")
        reader = RawImportReader(len(raw))
        recs = feed_chunked(reader, raw, 1 << 20)
        assert sha(apply(bytearray(), [Size(len(raw))] + recs)) == SHA[img, snap]
        # re-export from the non-zero 4 KiB pieces, as a sparse exporter would
        pieces = [p for r in recs for p in split_sparse(r.offset, r.data) if isinstance(p, Write)]
        w = RawExportWriter(len(raw))
        out = b"".join(b"".join(w.write(p.offset, p.data)) for p in pieces) + b"".join(w.end())
        assert sha(out) == SHA[img, snap]


@pytest.mark.parametrize("name", EXP2)
def test_export_v2_fixture(name: str) -> None:
    img = name.split(".")[0]
    data = load(name)
    recs = feed_chunked(ExportV2Reader(), data)
    assert sha(encode_export_v2(recs)) == SUMS[name]
    # the whole image, snapshot by snapshot
    image = bytearray()
    shas = []
    for r in recs:
        apply(image, [r])
        if isinstance(r, End):
            shas.append(sha(image))
    assert shas == [SHA[img, "s1"], SHA[img, "s2"], SHA[img, "s2"]]
    # and the writer produces the same bytes from the same facts
    fields = {r.tag: r.value for r in recs if isinstance(r, HeaderField)}
    sizes = [r.size for r in recs if isinstance(r, Size)]
    w = ExportV2Writer(fields["O"], fields["T"], fields["U"], fields["C"], {},
                       [ExportSnap("s1", sizes[0]), ExportSnap("s2", sizes[1])], sizes[2])
    out = [w.header()]
    index = -1
    for r in recs:
        if isinstance(r, DiffStart):
            index = r.index
            dw = w.diff_writer(index)
            out.append(dw.header())
        elif isinstance(r, (Write, Zero)):
            out.append(dw.write(r.offset, r.data) if isinstance(r, Write) else dw.zero(r.offset, r.length))
        elif isinstance(r, End) and index >= 0:
            out.append(dw.end())
    assert sha(b"".join(out)) == SUMS[name]


def test_export_v2_metadata_round_trip() -> None:
    w = ExportV2Writer(22, 61, 4 << 20, 1, {"conf_rbd_cache": "false", "k": "v\u00e9"}, [], 4096)
    dw = w.diff_writer(0)
    blob = w.header() + dw.header() + dw.extent(0, b"x" * 10) + dw.extent(512, bytes(512)) + dw.end()
    recs = feed_chunked(ExportV2Reader(), blob, 7)
    assert encode_export_v2(recs) == blob
    assert recs[-3:] == [Write(0, b"x" * 10), Zero(512, 512), End()]


# ----------------------------------------------------------------- broken streams


def _errors() -> dict[str, dict]:
    path = STREAMS / "import-diff-errors.json"
    if not path.exists():
        return {}
    return {r["file"]: r for r in json.loads(path.read_text())["results"] if r["file"].startswith("bad-")}


ERRORS = _errors()


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_bad_streams_like_rbd_import_diff(name: str) -> None:
    case = ERRORS[name]
    data = load(name)
    if case["exit_code"] == 0:
        # Ceph skips unknown v1 tags a byte at a time; strict mode refuses them
        with pytest.raises(MalformedStream) as ei:
            parse_diff(data)
        assert ei.value.errno == errno.EBADMSG
        recs = parse_diff(data, strict=False)
        skipped = [r.tag for r in recs if isinstance(r, Unknown)]
        ceph = [int(x) for x in _lines(case["stderr"], "unrecognized tag byte ")]
        assert skipped == ceph
        assert encode_diff(recs, 1) == data
        return
    reader = DiffReader()
    with pytest.raises(StreamError) as ei:
        seen = reader.feed(data)
        reader.close()
    assert ei.value.errno == case["exit_code"]
    reason = case["stderr"].split("\n")[0].removeprefix("rbd: ")
    if case["exit_code"] == errno.EINVAL:
        assert isinstance(ei.value, BadBanner)
        assert "invalid or unexpected diff banner" in str(ei.value)
    else:
        assert isinstance(ei.value, TruncatedStream)
        assert reason in str(ei.value)  # e.g. "failed to decode write data"
        # import-diff is not atomic: what was decoded before the cut had been applied
        if name.startswith("bad-trunc"):
            image = apply(bytearray(load("img1-s1.raw")), seen)
            assert sha(image) == case["state_after"]["head_sha256"]
            assert len(image) == case["state_after"]["size"]


def _lines(stderr: str, prefix: str) -> list[str]:
    return [ln.split(prefix)[1].split()[0] for ln in stderr.splitlines() if prefix in ln]


# ----------------------------------------------------------------- worked example

# ceph-facts.md §5: 8192-byte image, to-snap s1, "ABCD" at 0, a zero extent 4096+4096
V1_EXAMPLE = bytes.fromhex(
    "72626420646966662076310a" "74020000007331" "730020000000000000"
    "77" "0000000000000000" "0400000000000000" "41424344"
    "7a" "0010000000000000" "0010000000000000" "65"
)


def _v2_example(p_len: int) -> bytes:
    def u64(v: int) -> str:
        return v.to_bytes(8, "little").hex()
    return bytes.fromhex(
        "72626420646966662076320a" "74" + u64(6) + "020000007331" "70" + u64(p_len) + "00"
        "73" + u64(8) + u64(8192) + "77" + u64(20) + u64(0) + u64(4) + "41424344"
        "7a" + u64(16) + u64(4096) + u64(4096) + "65"
    )


def test_worked_example_v1() -> None:
    assert len(V1_EXAMPLE) == 67
    w = DiffWriter(1, to_snap="s1", size=8192)
    assert w.header() + w.write(0, b"ABCD") + w.zero(4096, 4096) + w.end() == V1_EXAMPLE
    recs = parse_diff(V1_EXAMPLE)
    assert recs == [ToSnap("s1"), Size(8192), Write(0, b"ABCD"), Zero(4096, 4096), End()]
    assert encode_diff(recs, 1) == V1_EXAMPLE


@pytest.mark.parametrize("p_len", [1, 8])
def test_worked_example_v2(p_len: int) -> None:
    """The doc's example declares `p` length 1; Ceph 16 itself declares 8 (see *.exp2)."""
    blob = _v2_example(p_len)
    assert len(blob) == 109
    recs = parse_diff(blob)
    assert recs[1] == Protected(False, p_len)
    assert encode_diff(recs, 2) == blob
    if p_len == 8:
        w = DiffWriter(2, to_snap="s1", protected=False, size=8192)
        assert w.header() + w.write(0, b"ABCD") + w.zero(4096, 4096) + w.end() == blob


def test_zero_extents_follow_ceph_rule() -> None:
    w = DiffWriter(1, size=1 << 20)
    assert w.extent(0, bytes(4096)) == w.zero(0, 4096)
    mixed = bytes(4096) + b"\x01"
    assert w.extent(0, mixed) == w.write(0, mixed)  # never split, zeros ride along
    assert split_sparse(4000, bytes(96) + b"\x01" * 4100) == [Zero(4000, 96), Write(4096, b"\x01" * 4100)]


def test_trailing_bytes_after_end() -> None:
    with pytest.raises(MalformedStream):
        parse_diff(V1_EXAMPLE + b"x")
    r = DiffReader(strict=False)
    assert r.feed(V1_EXAMPLE + b"xy")[-1] == End()
    r.close()
    assert r.unused == b"xy"

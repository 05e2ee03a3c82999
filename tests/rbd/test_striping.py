"""Striping map: worked example, fixture cross-checks, properties."""

from __future__ import annotations

import ast
import errno
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.rbd.striping import Layout, LayoutError, ObjectExtent

FIXTURES = Path("/work/shared/reference/fixtures")
KiB, MiB = 1 << 10, 1 << 20


def test_worked_example() -> None:
    lay = Layout(22, 64 * KiB, 4)
    assert lay.map_offset(300000) == (0, 103392)
    ext = lay.file_to_extents(300000, 1)
    assert ext == [ObjectExtent(0, 103392, 1, [(0, 1)])]


def test_defaults_and_validation() -> None:
    lay = Layout(22, 0, 0)
    assert (lay.stripe_unit, lay.stripe_count, lay.object_size, lay.period) == (4 * MiB, 1, 4 * MiB, 4 * MiB)
    assert lay.is_default
    assert Layout() == lay
    assert Layout.from_object_size(MiB, 64 * KiB, 4) == Layout(20, 64 * KiB, 4)
    assert not Layout(20, 64 * KiB, 4).is_default
    assert Layout(20, 64 * KiB, 4).period == 4 * MiB
    with pytest.raises(LayoutError) as ei:
        Layout(11)
    assert ei.value.errno == errno.EDOM
    with pytest.raises(LayoutError):
        Layout(26)
    Layout(12), Layout(25)
    with pytest.raises(ValueError, match="both"):
        Layout(22, 65536, 0)
    with pytest.raises(LayoutError, match="factor"):
        Layout(22, 3 * KiB, 2)
    with pytest.raises(LayoutError, match="factor"):
        Layout(20, 2 * MiB, 2)
    with pytest.raises(LayoutError):
        Layout.from_object_size(3 * MiB)


def test_split_and_merge() -> None:
    lay = Layout(20, 64 * KiB, 4)
    # 300 KiB starting mid stripe unit: blocks 0..4 → objects 0,1,2,3,0 (stripe 1).
    ext = lay.file_to_extents(1000, 300 * KiB)
    assert [e.objectno for e in ext] == [0, 1, 2, 3]
    e0 = ext[0]
    assert e0.offset == 1000
    assert e0.length == (64 * KiB - 1000) + (300 * KiB + 1000 - 4 * 64 * KiB)
    assert e0.buffer_extents == [(0, 64 * KiB - 1000), (4 * 64 * KiB - 1000, 300 * KiB + 1000 - 4 * 64 * KiB)]
    # Default layout: one object extent per object, contiguous buffer.
    d = Layout(22)
    ext = d.file_to_extents(4 * MiB - 10, 20)
    assert ext == [ObjectExtent(0, 4 * MiB - 10, 10, [(0, 10)]), ObjectExtent(1, 0, 10, [(10, 10)])]
    assert d.file_to_extents(5, 0) == []
    # stripe_count 1 with su < os: adjacent pieces in one object and one buffer run.
    s1 = Layout(22, 64 * KiB, 1)
    assert s1.file_to_extents(10, 200 * KiB) == [ObjectExtent(0, 10, 200 * KiB, [(0, 200 * KiB)])]
    assert s1.extent_to_file(0, 10, 200 * KiB) == [(10, 200 * KiB)]


def test_object_count_matches_rbd_info() -> None:
    # rbd info: img2 6 MiB / order 20 / 64K x 4 → 8 objects; base 16 MiB default → 4.
    assert Layout(20, 64 * KiB, 4).object_count(6 * MiB) == 8
    assert Layout(22).object_count(16 * MiB) == 4
    assert Layout(22).object_count(0) == 0
    assert Layout(22).object_count(1) == 1
    # A partial period shorter than one stripe row reaches only some objects.
    assert Layout(20, 64 * KiB, 4).object_count(4 * MiB + 100 * KiB) == 4 + 2
    assert Layout(20, 64 * KiB, 4).object_count(4 * MiB + 300 * KiB) == 8
    info = FIXTURES / "json" / "rbd-info-striped.json"
    if info.exists():
        d = json.loads(info.read_text())
        lay = Layout(d["order"], d["stripe_unit"], d["stripe_count"])
        assert lay.object_count(d["size"]) == d["objects"]


def test_objects_in_range() -> None:
    lay = Layout(20, 64 * KiB, 4)
    assert lay.objects_in_range(0, 64 * KiB) == [0]
    assert lay.objects_in_range(0, 64 * KiB + 1) == [0, 1]
    assert lay.objects_in_range(0, 6 * MiB) == list(range(8))
    assert lay.objects_in_range(4 * MiB - 1, 2) == [3, 4]
    assert lay.objects_in_range(7, 0) == []


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for off, ln in sorted(ranges):
        if out and out[-1][0] + out[-1][1] >= off:
            o, n = out[-1]
            out[-1] = (o, max(n, off + ln - o))
        else:
            out.append((off, ln))
    return out


def _records(name: str) -> list[dict]:
    text = (FIXTURES / "streams" / "RECORDS.txt").read_text().splitlines()
    start = text.index(f"== {name}")
    out = []
    for line in text[start + 1 :]:
        if line.startswith("=="):
            break
        out.append(ast.literal_eval(line))
    return out


needs_records = pytest.mark.skipif(
    not (FIXTURES / "streams" / "RECORDS.txt").exists(), reason="reference fixtures not present"
)


@needs_records
def test_fixture_img2_s1_diff_extents() -> None:
    """rbd export-diff of img2@s1 reports each existing object from 0 to its length,
    reverse-mapped to image offsets. Rebuild that from writes A, B, C and compare."""
    lay = Layout(20, 64 * KiB, 4)
    writes = [(0, 4096), (MiB + 512, 65536), (3 * MiB - 8, 16)]
    obj_len: dict[int, int] = {}
    for off, ln in writes:
        for e in lay.file_to_extents(off, ln):
            obj_len[e.objectno] = max(obj_len.get(e.objectno, 0), e.offset + e.length)
    assert sorted(obj_len) == [0, 1, 3]
    ranges = [r for no, ln in obj_len.items() for r in lay.extent_to_file(no, 0, ln)]
    expected = [(r["off"], r["len"]) for r in _records("img2-s1.diff") if r.get("tag") in ("w", "z")]
    assert _merge(ranges) == _merge(expected)


@needs_records
def test_fixture_img2_whole_object_diff() -> None:
    """--whole-object diff s1→s2: write D and the discard touch only object 0, whose
    whole extent maps to 16 stripe units spread over the first object set."""
    lay = Layout(20, 64 * KiB, 4)
    touched = set(lay.objects_in_range(2 * MiB, 4096)) | set(lay.objects_in_range(MiB, 65536))
    assert touched == {0}
    ranges = lay.extent_to_file(0, 0, lay.object_size)
    expected = [(r["off"], r["len"]) for r in _records("img2-s1-s2.wo.diff") if r.get("tag") in ("w", "z")]
    assert ranges == expected


layouts = st.builds(
    lambda order, su_shift, sc: Layout(order, 1 << (order - su_shift), sc),
    st.integers(12, 16),
    st.integers(0, 4),
    st.integers(1, 6),
)


@settings(max_examples=200, deadline=None)
@given(layouts, st.integers(0, 1 << 22), st.integers(0, 1 << 18))
def test_forward_covers_every_byte_once(lay: Layout, off: int, length: int) -> None:
    ext = lay.file_to_extents(off, length)
    assert [e.objectno for e in ext] == sorted({e.objectno for e in ext})
    assert sum(e.length for e in ext) == length
    bufs = sorted(b for e in ext for b in e.buffer_extents)
    pos = 0
    for b_off, b_len in bufs:
        assert b_off == pos and b_len > 0
        pos += b_len
    assert pos == length
    for e in ext:
        assert 0 <= e.offset and e.offset + e.length <= lay.object_size
        assert sum(n for _, n in e.buffer_extents) == e.length
        # Reverse map sends the object extent back to exactly its buffer pieces.
        back = lay.extent_to_file(e.objectno, e.offset, e.length)
        assert _merge(back) == _merge([(off + b, n) for b, n in e.buffer_extents])
    assert [e.objectno for e in ext] == lay.objects_in_range(off, length)


@settings(max_examples=200, deadline=None)
@given(layouts, st.integers(0, 1 << 24))
def test_point_roundtrip(lay: Layout, off: int) -> None:
    no, obj_off = lay.map_offset(off)
    assert lay.object_to_file(no, obj_off) == off
    assert no < lay.object_count(off + 1)


@settings(max_examples=100, deadline=None)
@given(st.integers(12, 25), st.integers(0, 1 << 40))
def test_default_layout_reduces(order: int, off: int) -> None:
    lay = Layout(order)
    os_ = 1 << order
    assert lay.map_offset(off) == (off // os_, off % os_)


@settings(max_examples=100, deadline=None)
@given(layouts, st.integers(0, 1 << 22))
def test_object_count_is_max_object_plus_one(lay: Layout, size: int) -> None:
    expected = max(lay.objects_in_range(0, size), default=-1) + 1
    assert lay.object_count(size) == expected

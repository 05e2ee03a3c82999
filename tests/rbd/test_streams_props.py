"""Property tests of the stream codecs: round trips, truncation at every byte, junk."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.rbd.streams import (
    DiffReader,
    DiffWriter,
    End,
    ExportSnap,
    ExportV2Reader,
    ExportV2Writer,
    StreamError,
    TruncatedStream,
    Write,
    Zero,
    encode_diff,
    encode_export_v2,
    merge_diffs,
    parse_diff,
)

names = st.text(max_size=12)
SIZE = 1 << 16
extents = st.lists(
    st.one_of(
        st.builds(lambda o, d: Write(o, d), st.integers(0, SIZE - 64), st.binary(max_size=64)),
        st.builds(lambda o, n: Zero(o, n), st.integers(0, SIZE - 64), st.integers(0, 64)),
    ),
    max_size=8,
)


def _stream(version: int, f: str | None, t: str | None, prot: bool, exts: list) -> tuple[bytes, list]:
    w = DiffWriter(version, f, t, prot if version == 2 else None, SIZE)
    recs = [*w.header_records(), *exts, End()]
    parts = [w.header()]
    for e in exts:
        parts.append(w.write(e.offset, e.data) if isinstance(e, Write) else w.zero(e.offset, e.length))
    parts.append(w.end())
    return b"".join(parts), recs


def _feed(reader: DiffReader | ExportV2Reader, blob: bytes, chunk: int) -> list:
    out: list = []
    for i in range(0, len(blob), chunk):
        out.extend(reader.feed(blob[i:i + chunk]))
    reader.close()
    return out


@given(st.sampled_from([1, 2]), st.none() | names, st.none() | names, st.booleans(), extents,
       st.integers(1, 300))
def test_writer_reader_round_trip(version: int, f: str | None, t: str | None, prot: bool, exts: list,
                                  chunk: int) -> None:
    blob, recs = _stream(version, f, t, prot, exts)
    assert encode_diff(recs, version) == blob
    got = _feed(DiffReader(), blob, chunk)
    assert got == recs
    assert encode_diff(got, version) == blob


def _small_streams() -> list[bytes]:
    w1 = DiffWriter(1, "a", "b", None, 8192)
    w2 = DiffWriter(2, "a", "b", True, 8192)
    ex = ExportV2Writer(22, 61, 1 << 22, 1, {"key": "value"}, [ExportSnap("s1", 4096, True)], 8192)
    d0, d1 = ex.diff_writer(0), ex.diff_writer(1)
    return [
        w1.header() + w1.write(0, b"ABCD") + w1.zero(4096, 4096) + w1.end(),
        w2.header() + w2.write(100, b"xyz") + w2.zero(0, 10) + w2.end(),
        ex.header() + d0.header() + d0.write(0, b"hi") + d0.end() + d1.header() + d1.zero(0, 2) + d1.end(),
    ]


@pytest.mark.parametrize("blob", _small_streams())
def test_truncation_at_every_byte(blob: bytes) -> None:
    export = blob.startswith(b"rbd image")
    for cut in range(len(blob)):
        reader = ExportV2Reader() if export else DiffReader()
        recs = reader.feed(blob[:cut])
        assert not any(isinstance(r, End) for r in recs[-1:]) or export
        with pytest.raises(TruncatedStream) as ei:
            reader.close()
        assert ei.value.errno == 74
    reader = ExportV2Reader() if export else DiffReader()
    recs = _feed(reader, blob, 1)
    assert (encode_export_v2(recs) if export else encode_diff(recs, 1 if b"v1" in blob[:12] else 2)) == blob


@given(st.binary(max_size=300), st.sampled_from([b"", b"rbd diff v1\n", b"rbd diff v2\n"]),
       st.booleans())
@settings(max_examples=400)
def test_junk_only_raises_codec_errors(junk: bytes, prefix: bytes, strict: bool) -> None:
    reader = DiffReader(strict=strict)
    try:
        reader.feed(prefix + junk)
        reader.close()
    except StreamError:
        pass


@given(st.binary(max_size=300), st.sampled_from([b"", b"rbd image v2\n"]))
@settings(max_examples=300)
def test_export_junk_only_raises_codec_errors(junk: bytes, prefix: bytes) -> None:
    reader = ExportV2Reader()
    try:
        reader.feed(prefix + junk)
        reader.close()
    except StreamError:
        pass


@given(st.data())
@settings(max_examples=300)
def test_mutated_streams_only_raise_codec_errors(data: st.DataObject) -> None:
    blob = bytearray(data.draw(st.sampled_from(_small_streams())))
    i = data.draw(st.integers(0, len(blob) - 1))
    blob[i] = data.draw(st.integers(0, 255))
    reader = ExportV2Reader() if blob.startswith(b"rbd image") else DiffReader()
    try:
        _feed(reader, bytes(blob), data.draw(st.integers(1, 50)))
    except StreamError:
        pass


def _apply(image: bytearray, recs: list) -> bytearray:
    for r in recs:
        if isinstance(r, Write):
            image[r.offset:r.offset + len(r.data)] = r.data
        elif isinstance(r, Zero):
            image[r.offset:r.offset + r.length] = bytes(r.length)
    return image


@st.composite
def ordered_extents(draw: st.DrawFn) -> list:
    """Ascending, non-overlapping extents: what `rbd export-diff` produces."""
    out: list = []
    pos = 0
    for gap, data, zero in draw(st.lists(st.tuples(st.integers(0, 3000), st.binary(min_size=1, max_size=64),
                                                   st.booleans()), max_size=10)):
        pos += gap
        if pos + len(data) > SIZE:
            break
        out.append(Zero(pos, len(data)) if zero else Write(pos, data))
        pos += len(data)
    return out


@given(ordered_extents(), ordered_extents())
def test_merge_equals_applying_both(a: list, b: list) -> None:
    first, _ = _stream(1, None, "s1", False, a)
    second, _ = _stream(1, "s1", "s2", False, b)
    merged = merge_diffs([first], [second])
    want = _apply(_apply(bytearray(SIZE), parse_diff(first)), parse_diff(second))
    assert _apply(bytearray(SIZE), parse_diff(merged)) == want


@given(ordered_extents(), ordered_extents(), st.integers(1, SIZE), st.integers(1, SIZE))
def test_merge_with_resize(a: list, b: list, size1: int, size2: int) -> None:
    a = [e for e in a if e.offset + (len(e.data) if isinstance(e, Write) else e.length) <= size1]
    b = [e for e in b if e.offset + (len(e.data) if isinstance(e, Write) else e.length) <= size2]

    def stream(f: str | None, t: str, size: int, exts: list) -> bytes:
        w = DiffWriter(1, f, t, None, size)
        return w.header() + b"".join(
            w.write(e.offset, e.data) if isinstance(e, Write) else w.zero(e.offset, e.length) for e in exts
        ) + w.end()

    def apply_sized(image: bytearray, blob: bytes) -> bytearray:
        recs = parse_diff(blob)
        size = next(r.size for r in recs if hasattr(r, "size"))
        del image[size:]
        image.extend(bytes(size - len(image)))
        return _apply(image, recs)

    first, second = stream(None, "s1", size1, a), stream("s1", "s2", size2, b)
    merged = merge_diffs([first], [second])
    # start from junk: the merged diff alone must define every byte the two diffs touched
    base = bytearray(b"\xee" * 100)
    assert apply_sized(bytearray(base), merged) == apply_sized(apply_sized(bytearray(base), first), second)

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.errors import ProtocolError
from shoal.wire.frame import FrameDecoder, frame_bytes

metas = st.dictionaries(st.text(max_size=8), st.one_of(st.integers(-2**63, 2**63 - 1), st.text(max_size=20),
                                                       st.binary(max_size=20)), max_size=5)


@given(st.lists(st.tuples(st.integers(0, 65535), metas, st.binary(max_size=3000)), max_size=6),
       st.integers(1, 5000))
def test_round_trip_any_chunking(frames, chunk):
    blob = b"".join(frame_bytes(t, m, d) for t, m, d in frames)
    dec = FrameDecoder()
    out = []
    for i in range(0, len(blob), chunk):
        out.extend(dec.feed(blob[i:i + chunk]))
    assert [(f.type, f.meta, bytes(f.data)) for f in out] == frames


@given(st.binary(max_size=200))
@settings(max_examples=300)
def test_junk_is_rejected_or_incomplete(junk):
    dec = FrameDecoder()
    try:
        assert dec.feed(junk) == [] or junk.startswith(b"SH")
    except ProtocolError:
        pass


def test_flipped_bit_fails_checksum():
    blob = bytearray(frame_bytes(3, {"a": 1}, b"payload"))
    blob[20] ^= 1
    with pytest.raises(ProtocolError):
        FrameDecoder().feed(bytes(blob))


def test_truncation_at_every_byte_yields_no_frame():
    blob = frame_bytes(7, {"k": "v"}, b"x" * 100)
    for cut in range(len(blob)):
        assert FrameDecoder().feed(blob[:cut]) == []


def test_oversized_frame_rejected_before_allocation():
    blob = frame_bytes(1, {}, b"x" * 100)
    with pytest.raises(ProtocolError):
        FrameDecoder(max_data=10).feed(blob)

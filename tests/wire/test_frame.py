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


def _pair(secure: bool):
    from shoal.auth.session import FrameOpener, FrameSealer

    key = bytes(range(16))
    return FrameSealer(key, secure, 1), FrameOpener(key, secure, 1)


@pytest.mark.parametrize("secure", [False, True])
@pytest.mark.parametrize("size", [0, 100, 70_000])
def test_sealed_round_trip_and_secure_mode_hides_payload(secure, size):
    sealer, opener = _pair(secure)
    payload = b"secret-payload!!" * (size // 16 + 1)
    payload = payload[:size]
    blob = frame_bytes(5, {"k": "visible-meta"}, payload, sealer=sealer) + frame_bytes(6, {}, b"x", sealer=sealer)
    dec = FrameDecoder()
    dec.opener = opener
    frames = dec.feed(blob)
    assert [(f.type, f.meta, bytes(f.data)) for f in frames] == [(5, {"k": "visible-meta"}, payload), (6, {}, b"x")]
    if secure:
        assert b"visible-meta" not in blob and (not payload or b"secret-payload" not in blob)


def test_every_flipped_bit_of_a_sealed_frame_is_rejected():
    sealer, _ = _pair(False)
    blob = frame_bytes(5, {"a": 1}, b"data", sealer=sealer)
    for i in range(len(blob) * 8):
        bad = bytearray(blob)
        bad[i // 8] ^= 1 << (i % 8)
        _, opener = _pair(False)
        dec = FrameDecoder()
        dec.opener = opener
        try:
            assert dec.feed(bytes(bad)) == []  # a length field grew: frame still incomplete
        except ProtocolError:
            pass


def test_replayed_sealed_frame_is_rejected():
    sealer, opener = _pair(False)
    one = frame_bytes(5, {"a": 1}, b"data", sealer=sealer)
    dec = FrameDecoder()
    dec.opener = opener
    assert len(dec.feed(one)) == 1
    with pytest.raises(ProtocolError):
        dec.feed(one)


def test_sealed_frame_waits_for_the_opener_and_unsealed_frames_are_refused_after():
    sealer, opener = _pair(False)
    blob = frame_bytes(1, {"hello": 1}) + frame_bytes(2, {"sealed": 1}, sealer=sealer)
    dec = FrameDecoder()
    first = dec.feed(blob)
    assert [f.type for f in first] == [1]  # the sealed one waits in the buffer
    dec.opener = opener
    assert [f.type for f in dec.buffer_updated(0)] == [2]
    with pytest.raises(ProtocolError):
        dec.feed(frame_bytes(3, {}))

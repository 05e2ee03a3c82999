"""Frame sealing: sign and secure modes, tampering, replay, reordering, cross-connection."""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import shoal.auth.session as session_mod
from shoal.auth.cephx_core import AuthError, FrameAuthError
from shoal.auth.session import (
    STREAM_MIN,
    FrameOpener,
    FrameSealer,
    connection_keys,
    session_pair,
)
from shoal.errors import ProtocolError
from shoal.wire.frame import HEADER, MAGIC, VERSION

SESSION_KEY = os.urandom(16)
AUTH_FLAG = 0x01  # whichever bit the driver uses; only needs to be in the authenticated header


def header(meta: bytes, data: bytes | memoryview, type_: int = 30) -> bytes:
    return HEADER.pack(MAGIC, VERSION, AUTH_FLAG, type_, 0, len(meta), len(data))


def pair(secure: bool, cn: bytes | None = None, sn: bytes | None = None,
         context: bytes = b"") -> tuple[tuple[FrameSealer, FrameOpener], tuple[FrameSealer, FrameOpener]]:
    cn = cn or os.urandom(16)
    sn = sn or os.urandom(16)
    return (session_pair(SESSION_KEY, cn, sn, client=True, secure=secure, context=context),
            session_pair(SESSION_KEY, cn, sn, client=False, secure=secure, context=context))


def seal(sealer: FrameSealer, meta: bytes, data: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    h = header(meta, data)
    m, d, tag = sealer.seal(h, meta, data)
    return h, bytes(m), bytes(d), tag


@pytest.mark.parametrize("secure", [False, True])
@pytest.mark.parametrize("size", [0, 1, 4096, STREAM_MIN - 1, STREAM_MIN, 4 << 20])
def test_round_trip_both_directions(secure: bool, size: int) -> None:
    client, server = pair(secure)
    data = os.urandom(size)
    for tx, rx in ((client[0], server[1]), (server[0], client[1])):
        for i in range(3):
            meta = bytes([0x81, 0xA3]) + b"tid" + bytes([i])  # msgpack {"tid": i}
            h, m, d, tag = seal(tx, meta, data)
            assert len(m) == len(meta) and len(d) == size and len(tag) == 16
            out_meta, out_data = rx.open(h, m, d, tag)
            assert bytes(out_meta) == meta and bytes(out_data) == data
    assert client[0].seq == 3 and server[1].seq == 3


def test_streaming_and_one_shot_paths_agree() -> None:
    """The sealer may pick either API by size; the wire bytes must not depend on it."""
    key = os.urandom(16)
    data = os.urandom(STREAM_MIN + 17)
    for secure in (False, True):
        small = FrameSealer(key, secure)
        big = FrameSealer(key, secure)
        h = header(b"meta", data)
        one = big.seal(h, b"meta", data)
        old = session_mod.STREAM_MIN
        session_mod.STREAM_MIN = 1 << 40  # force the one-shot path
        try:
            other = small.seal(h, b"meta", data)
        finally:
            session_mod.STREAM_MIN = old
        assert [bytes(x) for x in one] == [bytes(x) for x in other]


@pytest.mark.parametrize("secure", [False, True])
def test_every_bit_flip_is_rejected(secure: bool) -> None:
    key = os.urandom(16)
    meta, data = b"\x82\xa3tid\x07\xa2op\xa5write", os.urandom(64)
    h, m, d, tag = seal(FrameSealer(key, secure), meta, data)
    frame = [h, m, d, tag]
    for part in range(4):
        for bit in range(len(frame[part]) * 8):
            mutated = list(frame)
            b = bytearray(mutated[part])
            b[bit // 8] ^= 1 << (bit % 8)
            mutated[part] = bytes(b)
            with pytest.raises(FrameAuthError):
                FrameOpener(key, secure).open(*mutated)
    assert FrameOpener(key, secure).open(*frame) == (meta, data)


@pytest.mark.parametrize("secure", [False, True])
def test_bit_flips_in_a_large_payload(secure: bool) -> None:
    rnd = random.Random(4)  # the seed is fixed: failures reproduce
    key = os.urandom(16)
    data = os.urandom(1 << 20)
    h, m, d, tag = seal(FrameSealer(key, secure), b"meta", data)
    for _ in range(64):
        bit = rnd.randrange(len(d) * 8)
        b = bytearray(d)
        b[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(FrameAuthError):
            FrameOpener(key, secure).open(h, m, b, tag)
    for cut in (b"", d[:-1], d + b"\0"):
        with pytest.raises(FrameAuthError):
            FrameOpener(key, secure).open(h, m, cut, tag)


@pytest.mark.parametrize("secure", [False, True])
def test_replay_reorder_and_drop_are_rejected(secure: bool) -> None:
    client, server = pair(secure)
    frames = [seal(client[0], b"m%d" % i, b"d%d" % i) for i in range(3)]
    # replay on the same connection
    rx = server[1]
    rx.open(*frames[0])
    with pytest.raises(FrameAuthError):
        rx.open(*frames[0])
    # reorder
    client3, server3 = pair(secure)
    f = [seal(client3[0], b"m", b"d") for _ in range(2)]
    with pytest.raises(FrameAuthError):
        server3[1].open(*f[1])
    # drop: frame 1 lost, frame 2 arrives
    client4, server4 = pair(secure)
    g = [seal(client4[0], b"m", b"d") for _ in range(3)]
    server4[1].open(*g[0])
    with pytest.raises(FrameAuthError):
        server4[1].open(*g[2])


@pytest.mark.parametrize("secure", [False, True])
def test_frame_from_another_connection_or_direction_fails(secure: bool) -> None:
    cn, sn = os.urandom(16), os.urandom(16)
    a_client, a_server = pair(secure, cn, sn)
    b_client, b_server = pair(secure, cn, os.urandom(16))  # same session key, other server nonce
    frame = seal(b_client[0], b"meta", b"data")
    with pytest.raises(FrameAuthError):
        a_server[1].open(*frame)
    # reflected back to its sender: the other direction's key and nonce prefix
    own = seal(a_client[0], b"meta", b"data")
    with pytest.raises(FrameAuthError):
        a_client[1].open(*own)
    # a connection whose agreed context (e.g. ms_mode) was tampered with
    _, c_server = pair(secure, cn, sn, context=b"ms_mode=crc")
    with pytest.raises(FrameAuthError):
        c_server[1].open(*seal(pair(secure, cn, sn, context=b"ms_mode=secure")[0][0], b"m", b"d"))


def test_mode_mismatch_fails() -> None:
    key = os.urandom(16)
    frame = seal(FrameSealer(key, secure=False), b"meta", b"data")
    with pytest.raises(FrameAuthError):
        FrameOpener(key, secure=True).open(*frame)
    frame = seal(FrameSealer(key, secure=True), b"meta", b"data")
    with pytest.raises(FrameAuthError):
        FrameOpener(key, secure=False).open(*frame)


@pytest.mark.parametrize("size", [100, 4 << 20])
def test_secure_mode_hides_the_plaintext(size: int) -> None:
    key = os.urandom(16)
    secret_meta = b"\x81\xa4name\xb0rbd_data.abc.0001"
    payload = (b"TOP-SECRET-PAYLOAD" * (size // 18 + 1))[:size]
    h, m, d, tag = seal(FrameSealer(key, secure=True), secret_meta, payload)
    on_wire = h + m + d + tag
    assert b"TOP-SECRET" not in on_wire and b"rbd_data" not in on_wire
    out_meta, out_data = FrameOpener(key, secure=True).open(h, m, d, tag)
    assert out_meta == secret_meta and bytes(out_data) == payload


def test_sign_mode_leaves_data_readable_but_authenticated() -> None:
    key = os.urandom(16)
    meta, payload = b"\x81\xa2op\xa5write", b"hello world" * 10
    h, m, d, tag = seal(FrameSealer(key, secure=False), meta, payload)
    assert (m, d) == (meta, payload)
    forged = payload.replace(b"hello", b"HELLO")
    with pytest.raises(FrameAuthError):
        FrameOpener(key, secure=False).open(h, m, forged, tag)


def test_opener_stays_failed_and_errors_are_protocol_errors() -> None:
    client, server = pair(True)
    good = seal(client[0], b"m", b"d")
    with pytest.raises(ProtocolError):  # the connection driver's existing catch closes the connection
        server[1].open(good[0], good[1], good[2], bytes(16))
    with pytest.raises(FrameAuthError):
        server[1].open(*good)  # even the genuine frame: the connection is dead
    with pytest.raises(FrameAuthError):
        FrameOpener(os.urandom(16), True).open(good[0], good[1], good[2], b"short")


def test_sequence_never_wraps() -> None:
    sealer = FrameSealer(os.urandom(16), secure=False)
    sealer._seq = (1 << 64) - 1
    with pytest.raises(FrameAuthError):
        sealer.seal(b"h" * 16, b"m", b"d")


def test_connection_keys() -> None:
    cn, sn = os.urandom(16), os.urandom(16)
    c2s, s2c = connection_keys(SESSION_KEY, cn, sn)
    assert c2s != s2c and len(c2s) == len(s2c) == 16
    assert connection_keys(SESSION_KEY, cn, sn) == (c2s, s2c)
    assert connection_keys(SESSION_KEY, sn, cn)[0] not in (c2s, s2c)
    assert connection_keys(SESSION_KEY, cn, sn, b"ctx") != (c2s, s2c)
    assert connection_keys(os.urandom(16), cn, sn) != (c2s, s2c)
    with pytest.raises(AuthError):
        connection_keys(SESSION_KEY, cn[:8], sn)
    with pytest.raises(AuthError):
        connection_keys(b"short", cn, sn)


def test_reprs_hold_no_keys() -> None:
    key = os.urandom(16)
    for obj in (FrameSealer(key, True), FrameOpener(key, False)):
        text = repr(obj)
        assert key.hex() not in text and repr(key)[2:-1] not in text and "seq=0" in text


@settings(max_examples=200, deadline=None)
@given(meta=st.binary(max_size=300), data=st.binary(max_size=3000), secure=st.booleans(),
       frames=st.integers(1, 4))
def test_hypothesis_round_trip(meta: bytes, data: bytes, secure: bool, frames: int) -> None:
    client, server = pair(secure)
    for _ in range(frames):
        h, m, d, tag = seal(client[0], meta, data)
        assert server[1].open(h, m, d, tag) == (meta, data)


@settings(max_examples=300, deadline=None)
@given(secure=st.booleans(), h=st.binary(max_size=40), m=st.binary(max_size=200),
       d=st.binary(max_size=200), tag=st.binary(max_size=32))
def test_hypothesis_junk_never_opens(secure: bool, h: bytes, m: bytes, d: bytes, tag: bytes) -> None:
    with pytest.raises(FrameAuthError):
        FrameOpener(SESSION_KEY, secure).open(h, m, d, tag)


@settings(max_examples=300, deadline=None)
@given(secure=st.booleans(), meta=st.binary(max_size=64), data=st.binary(max_size=256),
       part=st.integers(0, 3), pos=st.integers(0, 10_000), xor=st.integers(1, 255))
def test_hypothesis_any_byte_change_fails(secure: bool, meta: bytes, data: bytes, part: int, pos: int,
                                          xor: int) -> None:
    key = os.urandom(16)
    frame = list(seal(FrameSealer(key, secure), meta, data))
    if not frame[part]:
        return
    b = bytearray(frame[part])
    b[pos % len(b)] ^= xor
    frame[part] = bytes(b)
    with pytest.raises(FrameAuthError):
        FrameOpener(key, secure).open(*frame)


@pytest.mark.parametrize("as_view", [False, True])
def test_large_secure_payload_decrypted_in_place(as_view: bool) -> None:
    """The decoder's payload bytearray is decrypted where it lies (no second 4 MiB buffer)."""
    key = os.urandom(16)
    payload = os.urandom((1 << 20) + 3)
    h, m, d, tag = seal(FrameSealer(key, secure=True), b"meta", payload)
    received = bytearray(d)
    arg = memoryview(received) if as_view else received
    out_meta, out_data = FrameOpener(key, secure=True).open(h, m, arg, tag)
    assert out_meta == b"meta" and out_data is arg and bytes(received) == payload
    tampered = bytearray(d)
    tampered[12345] ^= 0x40
    with pytest.raises(FrameAuthError):
        FrameOpener(key, secure=True).open(h, m, tampered, tag)
    # read-only input is left alone
    ro = memoryview(bytes(d))
    assert bytes(FrameOpener(key, secure=True).open(h, m, ro, tag)[1]) == payload
    assert bytes(ro) == d

"""Ceph encode/decode helpers: byte-exact primitives, round trips, truncation is EINVAL."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.cls import encoding as e
from shoal.errors import InvalidArgument

U64 = st.integers(0, (1 << 64) - 1)


def test_known_bytes() -> None:
    assert e.enc_u64(16777216) == b"\x00\x00\x00\x01\x00\x00\x00\x00"
    assert e.enc_u8(22) == b"\x16"
    assert e.enc_string("ab") == b"\x02\x00\x00\x00ab"
    assert e.enc_utime(1, 2) == b"\x01\x00\x00\x00\x02\x00\x00\x00"
    assert e.enc_i64(-1) == b"\xff" * 8
    assert e.enc_string_set({"b", "a"}) == b"\x02\x00\x00\x00" + e.enc_string("a") + e.enc_string("b")
    assert e.enc_struct(2, 1, b"xy") == b"\x02\x01\x02\x00\x00\x00xy"


def test_out_of_range_refused() -> None:
    for fn, v in ((e.enc_u8, 256), (e.enc_u32, -1), (e.enc_u64, 1 << 64), (e.enc_i64, 1 << 63)):
        with pytest.raises(InvalidArgument):
            fn(v)


@pytest.mark.parametrize("data", [b"", b"\x01", b"\x05\x00\x00\x00ab", b"\x02\x00\x00\x00"])
def test_truncation_is_einval(data: bytes) -> None:
    with pytest.raises(InvalidArgument):
        e.dec_string(data)


def test_trailing_bytes_and_bad_utf8_are_einval() -> None:
    with pytest.raises(InvalidArgument):
        e.dec_u64(bytes(9))
    with pytest.raises(InvalidArgument):
        e.dec_string(b"\x01\x00\x00\x00\xff")
    with pytest.raises(InvalidArgument):
        e.dec_string_set(b"\xff\xff\xff\xff")
    with pytest.raises(InvalidArgument):
        e.Decoder(e.enc_struct(3, 3, b"")).struct_start(max_compat=2)


@given(U64, st.integers(0, 255), st.integers(-(1 << 63), (1 << 63) - 1), st.text(), st.sets(st.text()))
def test_round_trips(u: int, b: int, i: int, s: str, ss: set[str]) -> None:
    assert e.dec_u64(e.enc_u64(u)) == u
    assert e.dec_u8(e.enc_u8(b)) == b
    assert e.dec_i64(e.enc_i64(i)) == i
    assert e.dec_string(e.enc_string(s)) == s
    assert e.dec_string_set(e.enc_string_set(ss)) == ss
    body = e.enc_u64(u) + e.enc_string(s)
    d = e.Decoder(e.enc_struct(4, 1, body) + b"rest")
    version, inner = d.struct_start(max_compat=1)
    assert version == 4 and inner.u64() == u and inner.string() == s
    inner.finish()
    assert d.take(4) == b"rest"


@given(st.binary(max_size=40))
def test_decoding_garbage_only_raises_invalid_argument(data: bytes) -> None:
    for fn in (e.dec_u64, e.dec_string, e.dec_utime, e.dec_string_set, e.dec_u8, e.dec_i64):
        try:
            fn(data)
        except InvalidArgument:
            pass

"""cephx keys: Ceph's encoding, round trips, and clean refusals of anything else."""

from __future__ import annotations

import base64
import json
import os
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.auth.keys import ENCODED_LEN, CryptoKey

FIXTURES = Path(os.environ.get("SHOAL_SHARED", Path(__file__).resolve().parents[3] / "shared")) / "reference" / "fixtures"
TRANSCRIPT_KEY = "AQCprgRrhkyrMxAAfAzj5EJRkILSaeS44kiBgA=="  # client.glance in real-ceph-transcripts.md


def test_transcript_key_decodes_and_reencodes_identically() -> None:
    key = CryptoKey.decode(TRANSCRIPT_KEY)
    raw = base64.b64decode(TRANSCRIPT_KEY)
    assert raw[:2] == b"\x01\x00"  # type 1 = AES
    assert len(key.secret) == 16 and key.secret == raw[12:]
    assert key.created == struct.unpack_from("<II", raw, 2)
    assert key.encode() == TRANSCRIPT_KEY
    assert key.to_bytes() == raw and len(raw) == ENCODED_LEN == 28


def test_every_key_in_the_real_fixtures_round_trips() -> None:
    path = FIXTURES / "json" / "ceph-auth-ls.json"
    if not path.exists():
        pytest.skip("shared fixtures not available")
    for entry in json.loads(path.read_text())["auth_dump"]:
        assert CryptoKey.decode(entry["key"]).encode() == entry["key"]


def test_generate_makes_a_ceph_shaped_key_stamped_now() -> None:
    key = CryptoKey.generate(now=1795468969.5)
    text = key.encode()
    assert len(text) == 40 and text.startswith("AQ") and text.endswith("==")
    assert key.created == (1795468969, 500_000_000)
    assert CryptoKey.decode(text) == key
    assert CryptoKey.generate().secret != CryptoKey.generate().secret


def test_decode_ignores_whitespace_like_a_keyfile_with_a_newline() -> None:
    assert CryptoKey.decode(f"  {TRANSCRIPT_KEY}\n").encode() == TRANSCRIPT_KEY
    assert CryptoKey.decode(TRANSCRIPT_KEY[:20] + "\n" + TRANSCRIPT_KEY[20:]).encode() == TRANSCRIPT_KEY
    assert CryptoKey.decode(TRANSCRIPT_KEY.encode()).encode() == TRANSCRIPT_KEY


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize(
    "text,message",
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("not base64!!", "not valid base64"),
        (TRANSCRIPT_KEY.rstrip("="), "not valid base64"),  # padding missing
        ("AQCp\u00e9", "non-ASCII"),
        (_b64(b"\x01\x00" + b"\x00" * 6), "truncated"),
        (_b64(struct.pack("<HIIH", 2, 0, 0, 16) + b"k" * 16), "unsupported cephx key type 2"),
        (_b64(struct.pack("<HIIH", 0, 0, 0, 16) + b"k" * 16), "unsupported cephx key type 0"),
        (_b64(struct.pack("<HIIH", 1, 0, 0, 32) + b"k" * 32), "must be 16 bytes"),
        (_b64(struct.pack("<HIIH", 1, 0, 0, 16) + b"k" * 15), "has 27 bytes"),
        (_b64(struct.pack("<HIIH", 1, 0, 0, 16) + b"k" * 17), "has 29 bytes"),
    ],
)
def test_bad_keys_are_refused_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CryptoKey.decode(text)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        CryptoKey(b"short")
    with pytest.raises(ValueError):
        CryptoKey(b"k" * 16, (2**32, 0))
    with pytest.raises(ValueError, match="must be text"):
        CryptoKey.decode(1234)  # type: ignore[arg-type]


def test_repr_and_str_never_show_the_secret() -> None:
    key = CryptoKey.decode(TRANSCRIPT_KEY)
    for shown in (repr(key), str(key), f"{key}", repr([key])):
        assert TRANSCRIPT_KEY not in shown and key.secret.hex() not in shown and "secret=<16 bytes>" in shown


@given(st.binary(min_size=16, max_size=16), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_any_key_round_trips(secret: bytes, sec: int, nsec: int) -> None:
    key = CryptoKey(secret, (sec, nsec))
    text = key.encode()
    assert text.startswith("AQ") and len(text) == 40
    assert CryptoKey.decode(text) == key
    assert CryptoKey.from_bytes(key.to_bytes()) == key


@settings(max_examples=300)
@given(st.one_of(st.text(max_size=80), st.binary(max_size=80)))
def test_random_input_never_crashes_decode(data: str | bytes) -> None:
    try:
        key = CryptoKey.decode(data)
    except ValueError:
        return
    assert len(key.secret) == 16


@settings(max_examples=300)
@given(st.binary(max_size=40))
def test_random_bytes_never_crash_from_bytes_and_base64_of_them(data: bytes) -> None:
    for attempt in (lambda: CryptoKey.from_bytes(data), lambda: CryptoKey.decode(_b64(data))):
        try:
            key = attempt()
        except ValueError:
            continue
        assert key.to_bytes() == data

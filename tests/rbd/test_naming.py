"""Object names, image ids and image specs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.rbd import naming as n

FIXTURES = Path("/work/shared/reference/fixtures/json")


def test_object_names() -> None:
    assert n.id_object("img1") == "rbd_id.img1"
    assert n.header_object("10226b8b4567") == "rbd_header.10226b8b4567"
    prefix = n.data_prefix("10226b8b4567")
    assert prefix == "rbd_data.10226b8b4567"
    assert n.data_object(prefix, 5) == "rbd_data.10226b8b4567.0000000000000005"
    assert n.data_object(prefix, 0xABC) == "rbd_data.10226b8b4567.0000000000000abc"
    assert n.object_map_object("abc") == "rbd_object_map.abc"
    assert n.object_map_object("abc", n.CEPH_NOSNAP) == "rbd_object_map.abc"
    assert n.object_map_object("abc", 4) == "rbd_object_map.abc.0000000000000004"
    assert (n.RBD_DIRECTORY, n.RBD_CHILDREN, n.RBD_INFO, n.RBD_TRASH) == (
        "rbd_directory",
        "rbd_children",
        "rbd_info",
        "rbd_trash",
    )
    with pytest.raises(ValueError):
        n.data_object(prefix, -1)


def test_generate_image_id() -> None:
    # The striped fixture image's id splits as global id 0x1057 + rand 0x2371ba7b.
    assert n.generate_image_id(0x1057, 0x2371BA7B) == "10572371ba7b"
    p = FIXTURES / "rbd-info-striped.json"
    if p.exists():
        d = json.loads(p.read_text())
        assert n.data_prefix(d["id"]) == d["block_name_prefix"]
    # rand is reduced mod 0xFFFFFFFF; no zero padding.
    assert n.generate_image_id(1, 0xFFFFFFFF) == "10"
    assert n.generate_image_id(0x12, 0x5) == "125"
    # Long ids keep their last 14 characters.
    assert n.generate_image_id(0x123456789ABCDEF, 0xDEADBEEF) == "789abcdefdeadbeef"[-14:]


@given(st.integers(0, 1 << 64), st.integers(0, 1 << 32))
def test_image_id_shape(gid: int, rand: int) -> None:
    image_id = n.generate_image_id(gid, rand)
    assert 1 <= len(image_id) <= 14
    assert all(c in "0123456789abcdef" for c in image_id)


def test_validate_image_name() -> None:
    n.validate_image_name("vol-1_ok.img")
    for bad in ("", "a/b", "a@b"):
        with pytest.raises(ValueError):
            n.validate_image_name(bad)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("image", (None, "", "image", None)),
        ("image@snap", (None, "", "image", "snap")),
        ("pool/image", ("pool", "", "image", None)),
        ("pool/ns/image@snap", ("pool", "ns", "image", "snap")),
        ("pool/image@snap", ("pool", "", "image", "snap")),
    ],
)
def test_parse_spec(spec: str, expected: tuple) -> None:
    assert n.parse_image_spec(spec) == expected


@pytest.mark.parametrize("spec", ["", "a/b/c/d", "pool/", "/image", "img@", "img@a@b", "a@b/c", "p/img@s/x"])
def test_parse_spec_invalid(spec: str) -> None:
    with pytest.raises(ValueError, match="invalid spec"):
        n.parse_image_spec(spec)


def test_parse_spec_relaxed() -> None:
    assert n.parse_image_spec("pool/weird/name@snap@x", validate=False) == ("pool", "weird", "name", "snap@x")

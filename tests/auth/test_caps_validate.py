"""`validate_caps`: what `ceph auth` accepts for each service, and Ceph's messages when it refuses."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.auth.caps import CapsError, validate_caps
from shoal.errors import InvalidArgument

FIXTURES = Path(os.environ.get("SHOAL_SHARED", Path(__file__).resolve().parents[3] / "shared")) / "reference" / "fixtures"


def test_every_cap_of_a_real_cluster_is_valid() -> None:
    path = FIXTURES / "json" / "ceph-auth-ls.json"
    if not path.exists():
        pytest.skip("shared fixtures not available")
    for entry in json.loads(path.read_text())["auth_dump"]:
        for service, caps in entry["caps"].items():
            validate_caps(service, caps)


@pytest.mark.parametrize(
    "service,text",
    [
        ("mon", "profile rbd"),
        ("osd", "profile rbd pool=volumes, profile rbd pool=vms, profile rbd-read-only pool=images"),
        ("mgr", "profile rbd pool=volumes, profile rbd pool=vms"),
        ("mgr", "profile rbd pool=images namespace=x"),
        ("mgr", "profile rbd-read-only"),
        ("mgr", "allow *"),
        ("mgr", "allow r"),
        ("mgr", "allow profile osd"),
        ("mgr", "profile crash"),
        ("mgr", "allow service status r"),
        ("mgr", "allow module rbd_support with pool = x rw"),
        ("mgr", 'allow command "osd perf counters get" with key=value'),
        ("mds", "allow"),
        ("mds", "allow *"),
        ("mds", "allow rw"),
        ("mds", "allow rwps path=/volumes"),
        ("mds", "allow r path=/a uid=100 gids=1,2"),
        ("mds", "allow rw fsname=cephfs path=/x root_squash, allow r"),
        ("mds", "allow rw network 10.0.0.0/8"),
    ],
)
def test_accepted(service: str, text: str) -> None:
    validate_caps(service, text)


@pytest.mark.parametrize(
    "service,text,message",
    [
        ("foo", "allow *", "unknown cap type 'foo'"),
        ("client", "allow *", "unknown cap type 'client'"),
        ("mon", "", "mon capability parse failed, stopped at end of ''"),
        ("osd", "", "osd capability parse failed, stopped at '' of ''"),
        ("osd", "allow rw pool=", "osd capability parse failed, stopped at 'pool=' of 'allow rw pool='"),
        ("mgr", "profile foo", "mgr capability parse failed during profile evaluation: unrecognized profile 'foo'"),
        ("mgr", "profile rbd image=x",
         "mgr capability parse failed during profile evaluation: profile 'rbd' does not recognize key 'image'"),
        ("mgr", "allow wr", "mgr capability parse failed, stopped at 'r' of 'allow wr'"),
        ("mgr", "", "mgr capability parse failed, stopped at end of ''"),
        ("mds", "allow rwx", "mds capability parse failed, stopped at 'x' of 'allow rwx'"),
        ("mds", "allow rw path", "mds capability parse failed, stopped at 'path' of 'allow rw path'"),
        ("mds", "", "mds capability parse failed, stopped at '' of ''"),
    ],
)
def test_refused_with_cephs_message(service: str, text: str, message: str) -> None:
    with pytest.raises(CapsError) as info:
        validate_caps(service, text)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError) and isinstance(info.value, InvalidArgument)
    assert info.value.errno == errno.EINVAL


@settings(max_examples=300)
@given(st.sampled_from(["mon", "osd", "mgr", "mds"]), st.text(max_size=50))
def test_random_caps_never_crash_validation(service: str, text: str) -> None:
    try:
        validate_caps(service, text)
    except CapsError as exc:
        assert str(exc)

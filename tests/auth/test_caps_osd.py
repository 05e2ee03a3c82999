"""OSD caps: Ceph's grammar (including its ordered-choice quirks), profile expansion, evaluation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.auth.caps import CapsError, OSDCap, validate_caps
from shoal.auth.caps_osd import CAP_ANY, CAP_CLS_R, CAP_CLS_W, CAP_R, CAP_W, CAP_X, OSDMatch, OSDSpec

GET_SIZE = ("rbd", "get_size", True, False)
SET_SIZE = ("rbd", "set_size", True, True)
HELLO_RD = ("hello", "say_hello", True, False)


def allows(caps: str, pool: str = "p", oid: str = "obj", nspace: str = "", *, read: bool = False,
           write: bool = False, calls: tuple = (), **kw: object) -> bool:
    return OSDCap.parse(caps).allows(pool, nspace, oid, read=read, write=write, cls_calls=calls, **kw)  # type: ignore[arg-type]


# -- grammar ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text,match,spec",
    [
        ("allow *", OSDMatch(), OSDSpec(CAP_ANY)),
        ("allow all", OSDMatch(), OSDSpec(CAP_ANY)),
        ("allow rwx", OSDMatch(), OSDSpec(CAP_R | CAP_W | CAP_X)),
        ("allow r", OSDMatch(), OSDSpec(CAP_R)),
        ("allow wx", OSDMatch(), OSDSpec(CAP_W | CAP_X)),
        ("allow r class-read", OSDMatch(), OSDSpec(CAP_R | CAP_CLS_R)),
        ("allow class-read class-write", OSDMatch(), OSDSpec(CAP_CLS_R | CAP_CLS_W)),
        ("allow class-write", OSDMatch(), OSDSpec(CAP_CLS_W)),
        ("allow r pool=foo", OSDMatch(pool="foo"), OSDSpec(CAP_R)),
        ("allow r pool foo", OSDMatch(pool="foo"), OSDSpec(CAP_R)),
        ("allow pool foo rwx", OSDMatch(pool="foo"), OSDSpec(CAP_R | CAP_W | CAP_X)),
        ("allow rw pool='my pool'", OSDMatch(pool="my pool"), OSDSpec(CAP_R | CAP_W)),
        ("allow rw pool=foo namespace=bar", OSDMatch(pool="foo", nspace="bar"), OSDSpec(CAP_R | CAP_W)),
        ("allow rw namespace bar*", OSDMatch(nspace="bar*"), OSDSpec(CAP_R | CAP_W)),
        ('allow rw namespace ""', OSDMatch(nspace=""), OSDSpec(CAP_R | CAP_W)),
        ("allow class-read object_prefix rbd_children", OSDMatch(object_prefix="rbd_children"), OSDSpec(CAP_CLS_R)),
        ("allow rwx pool=a object_prefix rbd_data.", OSDMatch(pool="a", object_prefix="rbd_data."), OSDSpec(CAP_R | CAP_W | CAP_X)),
        ("allow r tag rbd key=val", OSDMatch(tag=("rbd", "key", "val")), OSDSpec(CAP_R)),
        ("allow rw tag cephfs data = *", OSDMatch(tag=("cephfs", "data", "*")), OSDSpec(CAP_R | CAP_W)),
        ("allow class rbd", OSDMatch(), OSDSpec(0, "rbd", "")),
        ("allow class rbd metadata_list", OSDMatch(), OSDSpec(0, "rbd", "metadata_list")),
        ("allow pool=foo class rbd", OSDMatch(pool="foo"), OSDSpec(0, "rbd", "")),
        ("  allow r  ", OSDMatch(), OSDSpec(CAP_R)),
        ("\tallow r\n", OSDMatch(), OSDSpec(CAP_R)),
        ("allow r network 10.0.0.0/8", OSDMatch(), OSDSpec(CAP_R)),
    ],
)
def test_grants_parse_like_ceph(text: str, match: OSDMatch, spec: OSDSpec) -> None:
    cap = OSDCap.parse(text)
    assert len(cap.grants) == 1
    assert cap.grants[0].match == match and cap.grants[0].spec == spec
    validate_caps("osd", text)


def test_separators_and_profiles() -> None:
    cap = OSDCap.parse("profile rbd pool=volumes, profile rbd pool=vms; profile rbd-read-only pool=images")
    assert [(g.profile, g.match.pool) for g in cap.grants] == [("rbd", "volumes"), ("rbd", "vms"), ("rbd-read-only", "images")]
    assert OSDCap.parse("profile=rbd").grants[0].profile == "rbd"
    ns = OSDCap.parse("profile rbd pool=p namespace=n").grants[0]
    assert ns.match == OSDMatch(pool="p", nspace="n")
    assert OSDCap.parse("profile osd").grants[0].profile_grants == ()  # parses, grants nothing on OSDs


@pytest.mark.parametrize(
    "text,rest",
    [
        ("allow read", "ead"),  # `allow r` parsed, then nothing can follow
        ("allow wr", "r"),  # letters only in the order r, w, x
        ("allow class rbd pool=foo", "=foo"),  # the method name swallows `pool`: Ceph's quirk
        ("allow r class foo", "class foo"),
        ("allow class-write class-read", "class-read"),
        ("allow r,", ","),
        ("allow foo", "allow foo"),
        ("allow", "allow"),
        ("bogus", "bogus"),
        ("allow r pool = foo", "pool = foo"),  # the grant's trailing blanks are consumed
        ("allow rw object_prefix=x", "object_prefix=x"),
        ("allow r pool=\"\"", "pool=\"\""),  # a pool name cannot be empty
        ("   allow x y", "y"),
    ],
)
def test_malformed_caps_fail_where_ceph_stops(text: str, rest: str) -> None:
    with pytest.raises(CapsError) as info:
        OSDCap.parse(text)
    assert str(info.value) == f"osd capability parse failed, stopped at '{rest}' of '{text}'"
    assert OSDCap.for_session(text).grants == ()


def test_empty_caps_grant_nothing_but_are_not_valid_to_store() -> None:
    assert OSDCap.parse("").grants == () and OSDCap.parse(" \n").grants == ()
    assert not allows("", read=True)
    with pytest.raises(CapsError, match="osd capability parse failed, stopped at '' of ''"):
        validate_caps("osd", "")


# -- evaluation -----------------------------------------------------------------------------

def test_rwx_bits() -> None:
    assert allows("allow r", read=True) and not allows("allow r", write=True)
    assert allows("allow w", write=True) and not allows("allow w", read=True)
    assert allows("allow rw", read=True, write=True)
    assert allows("allow r", read=False, write=False)  # an op that neither reads nor writes (e.g. a no-op)


def test_pool_namespace_and_prefix_matching() -> None:
    assert allows("allow r pool=a", "a", read=True) and not allows("allow r pool=a", "b", read=True)
    assert allows("allow r namespace=n", nspace="n", read=True)
    assert not allows("allow r namespace=n", nspace="", read=True)
    assert not allows('allow r namespace ""', nspace="n", read=True)
    assert allows('allow r namespace ""', nspace="", read=True)
    assert allows("allow r namespace=ns*", nspace="ns1", read=True)
    assert not allows("allow r namespace=ns*", nspace="xns", read=True)
    assert allows("allow r object_prefix rbd_data.", oid="rbd_data.1.0", read=True)
    assert not allows("allow r object_prefix rbd_data.", oid="rbd_header.1", read=True)


def test_tags_match_pool_application_metadata() -> None:
    meta = {"cephfs": {"data": "fs1", "metadata": "fs1"}}
    assert allows("allow rw tag cephfs data=fs1", read=True, app_metadata=meta)
    assert not allows("allow rw tag cephfs data=fs2", read=True, app_metadata=meta)
    assert allows("allow rw tag cephfs *=fs1", read=True, app_metadata=meta)
    assert allows("allow rw tag cephfs data=*", read=True, app_metadata=meta)
    assert allows("allow rw tag cephfs * = *", read=True, app_metadata=meta)
    assert not allows("allow rw tag rbd *=*", read=True, app_metadata=meta)
    assert not allows("allow rw tag cephfs data=fs1", read=True)  # no metadata given: no match


def test_class_calls_need_x_or_the_matching_class_read_write() -> None:
    assert allows("allow x", calls=(GET_SIZE, SET_SIZE))
    assert allows("allow class-read", calls=(GET_SIZE,)) and not allows("allow class-read", calls=(SET_SIZE,))
    assert not allows("allow class-write", calls=(GET_SIZE,))
    assert allows("allow class-read class-write", calls=(SET_SIZE,))
    assert not allows("allow rw", calls=(GET_SIZE,))
    assert allows("allow class rbd", calls=(GET_SIZE, SET_SIZE))
    assert allows("allow class rbd get_size", calls=(GET_SIZE,))
    assert not allows("allow class rbd get_size", calls=(SET_SIZE,))
    assert not allows("allow class rbd", calls=(HELLO_RD,))


def test_a_call_needs_no_read_or_write_but_data_ops_still_do() -> None:
    assert allows("allow class rbd", calls=(SET_SIZE,))
    assert not allows("allow class rbd", read=True, calls=(GET_SIZE,))
    assert allows("allow r class-read", read=True, calls=(GET_SIZE,))


def test_class_permissions_accumulate_across_matching_grants() -> None:
    calls = (GET_SIZE, HELLO_RD)
    assert allows("allow class rbd, allow class hello", calls=calls)
    assert allows("allow class hello, allow class rbd", calls=calls)
    assert not allows("allow class rbd", calls=calls)


def test_star_allows_even_classes_outside_the_default_list() -> None:
    not_listed = ("secret", "m", True, True, False)
    assert allows("allow *", read=True, write=True, calls=(not_listed,))
    assert not allows("allow rwx", calls=(not_listed,))
    assert allows("allow class secret", calls=(not_listed,))


def test_network_restricted_grants_need_a_matching_peer() -> None:
    caps = "allow r network 10.0.0.0/8"
    assert allows(caps, read=True, addr="10.1.2.3")
    assert allows(caps, read=True, addr="v1:10.1.2.3:0/1234")
    assert not allows(caps, read=True, addr="192.168.0.1:6789")
    assert not allows(caps, read=True)  # unknown peer
    assert not allows("allow r network 10.0.0.0", read=True, addr="10.0.0.0")  # not a CIDR: never applies
    assert allows("allow r network ::1/128", read=True, addr="[::1]:6789")


def test_allow_all_and_unmanaged_snaps() -> None:
    assert OSDCap.parse("allow *").allow_all()
    assert not OSDCap.parse("allow rwx").allow_all()
    assert not OSDCap.parse("allow * pool=a").allow_all()
    assert OSDCap.parse("allow rw").allows_unmanaged_snaps("a")
    assert OSDCap.parse("allow rw pool=a").allows_unmanaged_snaps("a")
    assert not OSDCap.parse("allow rw pool=a").allows_unmanaged_snaps("b")
    assert not OSDCap.parse("allow rw pool=a").allows_unmanaged_snaps(None)
    assert not OSDCap.parse("allow r").allows_unmanaged_snaps("a")
    assert OSDCap.parse("profile rbd pool=images").allows_unmanaged_snaps("images")
    assert not OSDCap.parse("profile rbd-read-only pool=images").allows_unmanaged_snaps("images")


# -- robustness -----------------------------------------------------------------------------

_OPS = [
    dict(read=True, write=False, cls_calls=()),
    dict(read=False, write=True, cls_calls=()),
    dict(read=False, write=False, cls_calls=(GET_SIZE,)),
    dict(read=True, write=True, cls_calls=(SET_SIZE, ("x", "y", False, False, False))),
]
_TARGETS = [("p", "", "obj"), ("rbd", "", "rbd_header.1"), ("images", "ns", "rbd_info")]


def _grants_nothing(cap: OSDCap) -> bool:
    return not any(cap.allows(p, n, o, addr="10.0.0.1", **op) for p, n, o in _TARGETS for op in _OPS)  # type: ignore[arg-type]


def _check(text: str) -> None:
    try:
        cap = OSDCap.parse(text)
    except CapsError as exc:
        assert str(exc).startswith("osd capability parse failed, stopped at '")
        assert _grants_nothing(OSDCap.for_session(text))
        return
    assert cap.text == text
    for p, n, o in _TARGETS:
        for op in _OPS:
            cap.allows(p, n, o, **op)  # type: ignore[arg-type]


_ALPHABET = st.sampled_from(list("allow rwx*=,;'\"poolnamespace_object_prefixclass-readwriteprofilerbdtagnetwork0123456789./ \t\n"))
_VALID = [
    "allow *", "allow rwx pool=images", "profile rbd pool=volumes, profile rbd-read-only pool=images",
    "allow class-read object_prefix rbd_children, allow rwx pool=images", "allow r namespace=ns* tag rbd a=b",
    "allow pool=foo class rbd metadata_list network 10.0.0.0/8", "profile rbd pool='x y' namespace=\"\"",
]


@settings(max_examples=500)
@given(st.text(max_size=60))
def test_random_strings_never_crash_and_malformed_ones_grant_nothing(text: str) -> None:
    _check(text)


@settings(max_examples=500)
@given(st.text(_ALPHABET, max_size=60))
def test_cap_like_strings_never_crash(text: str) -> None:
    _check(text)


@settings(max_examples=800)
@given(st.sampled_from(_VALID), st.data())
def test_mutated_valid_caps_never_crash(base: str, data: st.DataObject) -> None:
    text = base
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(text)))
        action = data.draw(st.sampled_from(["insert", "delete", "replace", "swap"]))
        ch = data.draw(_ALPHABET)
        if action == "insert":
            text = text[:i] + ch + text[i:]
        elif action == "delete":
            text = text[:i] + text[i + 1:]
        elif action == "replace":
            text = text[:i] + ch + text[i + 1:]
        elif i + 1 < len(text):
            text = text[:i] + text[i + 1] + text[i] + text[i + 2:]
    _check(text)

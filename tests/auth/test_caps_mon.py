"""Mon caps: Ceph's grammar, profiles, and the per-command permission check."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.auth.caps import MON_COMMAND_PERMS, CapsError, MonCap, command_perms, validate_caps
from shoal.auth.caps_mon import MON_ALL, MON_ANY, MON_R, MON_W, MON_X, StringConstraint, stringify_args


def can(cap_text: str, prefix: str, *, who: str = "client.x", **args: object) -> bool:
    return MonCap.parse(cap_text, who).allows_command(prefix, {"prefix": prefix, **args})


# -- grammar ------------------------------------------------------------------------------

def test_grant_forms() -> None:
    g = MonCap.parse("allow *").grants[0]
    assert g.allow == MON_ANY and g.is_allow_all()
    assert MonCap.parse("allow all").grants[0].is_allow_all()
    assert MonCap.parse("allow rwx").grants[0].allow == MON_ALL
    assert MonCap.parse("allow rx").grants[0].allow == MON_R | MON_X
    assert MonCap.parse("profile rbd").grants[0].profile == "rbd"
    assert MonCap.parse("allow profile osd").grants[0].profile == "osd"
    assert MonCap.parse("profile=mgr").grants[0].profile == "mgr"
    svc = MonCap.parse("allow service osd rw").grants[0]
    assert (svc.service, svc.allow) == ("osd", MON_R | MON_W)
    cmd = MonCap.parse('allow command "osd blocklist" with blocklistop=add addr regex "^[^/]+/[0-9]+$"').grants[0]
    assert cmd.command == "osd blocklist"
    assert dict(cmd.command_args) == {
        "blocklistop": StringConstraint("equal", "add"), "addr": StringConstraint("regex", "^[^/]+/[0-9]+$"),
    }
    pre = MonCap.parse("allow command config-key with key prefix rbd/").grants[0]
    assert dict(pre.command_args) == {"key": StringConstraint("prefix", "rbd/")}
    many = MonCap.parse("allow r, allow service osd w ;allow command=fsid, profile rbd network 10.0.0.0/8")
    assert len(many.grants) == 4 and many.grants[3].network == "10.0.0.0/8"


@pytest.mark.parametrize(
    "text,message",
    [
        ("", "mon capability parse failed, stopped at end of ''"),
        ("allow wr", "mon capability parse failed, stopped at 'r' of 'allow wr'"),
        ("allow", "mon capability parse failed, stopped at 'allow' of 'allow'"),
        ("allow foo", "mon capability parse failed, stopped at 'allow foo' of 'allow foo'"),
        ("allow r,", "mon capability parse failed, stopped at ',' of 'allow r,'"),
        ("allow command osd blocklist", "mon capability parse failed, stopped at 'blocklist' of 'allow command osd blocklist'"),
        ("allow command foo with", "mon capability parse failed, stopped at 'with' of 'allow command foo with'"),
        ("allow service osd", "mon capability parse failed, stopped at 'allow service osd' of 'allow service osd'"),
    ],
)
def test_malformed(text: str, message: str) -> None:
    with pytest.raises(CapsError) as info:
        validate_caps("mon", text)
    assert str(info.value) == message


# -- evaluation -----------------------------------------------------------------------------

def test_every_command_in_the_table_has_a_known_module_and_perms() -> None:
    for prefix, (module, perms) in MON_COMMAND_PERMS.items():
        assert module in {"mon", "osd", "pg", "auth", "config", "config-key", "log", "mgr", "mds", "fs"}, prefix
        assert perms and set(perms) <= set("rwx"), prefix
    assert command_perms("osd pool create") == ("osd", "rw")
    assert command_perms("auth get") == ("auth", "rx")
    assert command_perms("bogus") is None


@pytest.mark.parametrize(
    "caps,prefix,allowed",
    [
        ("allow *", "auth get-or-create", True),
        ("allow *", "config-key get", True),
        ("allow *", "unknown command", True),
        ("allow r", "status", True),
        ("allow r", "osd dump", True),
        ("allow r", "osd pool create", False),
        ("allow r", "auth get", False),  # auth reads need x too
        ("allow rx", "auth get", True),
        ("allow rx", "auth get-or-create", False),
        ("allow rwx", "auth get-or-create", True),
        ("allow rwx", "config-key get", False),  # only `allow *` reaches config-key
        ("allow rwx", "unknown command", False),
        ("allow rw", "osd pool create", True),
        ("allow service osd rw", "osd pool create", True),
        ("allow service osd rw", "status", False),
        ("allow r, allow service osd w", "osd pool create", True),  # permissions accumulate
        ("allow service osd w, allow r", "osd pool create", True),
        ("allow command \"osd pool create\"", "osd pool create", True),
        ("allow command \"osd pool create\"", "osd pool rm", False),
        ("profile read-only", "osd dump", True),
        ("profile read-only", "auth ls", False),
        ("profile read-write", "osd pool create", True),
        ("profile osd", "osd down", True),
        ("profile osd", "mon dump", True),
        ("profile osd", "auth get", False),
        ("profile mon", "mon dump", True),
        ("profile mgr", "auth get", True),
        ("profile mgr", "auth get-or-create", False),
        ("profile admin", "status", False),  # no such profile in Ceph: parses, grants nothing
        ("profile simple-rados-client", "osd dump", True),
        ("profile simple-rados-client", "osd blocklist", False),
        ("profile role-definer", "auth get-or-create", True),
        ("profile role-definer", "osd dump", False),
        ("profile crash", "mon dump", True),
    ],
)
def test_commands(caps: str, prefix: str, allowed: bool) -> None:
    assert can(caps, prefix) is allowed


def test_command_argument_constraints() -> None:
    caps = 'allow command "config-key get" with key prefix app/, allow command fsid with x=1 y regex "^[0-9]+$"'
    with pytest.raises(CapsError):  # unquoted, a regex is not a word of the grammar
        MonCap.parse("allow command fsid with y regex ^[0-9]+$")
    assert can(caps, "config-key get", key="app/secret")
    assert not can(caps, "config-key get", key="other/secret")
    assert not can(caps, "config-key get")  # a constrained argument must be present
    assert can(caps, "fsid", x=1, y="42")
    assert not can(caps, "fsid", x=1, y="4a")
    assert not can('allow command fsid with y regex "(["', "fsid", y="(")  # an invalid regex matches nothing


def test_daemon_profiles_own_their_private_config_keys() -> None:
    assert can("profile osd", "config-key get", who="osd.3", key="daemon-private/osd.3/k")
    assert not can("profile osd", "config-key get", who="osd.3", key="daemon-private/osd.4/k")
    assert not can("profile osd", "config-key rm", who="osd.3", key="daemon-private/osd.3/k")


def test_bootstrap_profiles_restrict_what_they_create() -> None:
    rbd = "allow profile bootstrap-rbd"
    assert can(rbd, "auth get-or-create", entity="client.cinder", caps=["mon", "profile rbd", "osd", "profile rbd pool=volumes"])
    assert can(rbd, "auth get-or-create", entity="client.c", caps=["mon", "profile rbd", "osd", "profile rbd pool=a, profile rbd-read-only pool=b"])
    assert not can(rbd, "auth get-or-create", entity="client.c", caps=["mon", "allow *", "osd", "profile rbd"])
    assert not can(rbd, "auth get-or-create", entity="client.c", caps=["mon", "profile rbd", "osd", "allow *"])
    assert not can(rbd, "auth get-or-create", entity="osd.1", caps=["mon", "profile rbd", "osd", "profile rbd"])
    assert can("allow profile bootstrap-osd", "osd new", uuid="u")
    assert can("allow profile bootstrap-mgr", "auth get-or-create", entity="mgr.x", caps=["mon", "allow profile mgr"])
    assert not can("allow profile bootstrap-mgr", "auth get-or-create", entity="client.x", caps=["mon", "allow profile mgr"])


def test_services() -> None:
    assert MonCap.parse("allow r").allows_service("osd", "r")
    assert not MonCap.parse("allow r").allows_service("osd", "w")
    assert not MonCap.parse("allow r").allows_service("config-key", "r")
    assert MonCap.parse("allow *").allows_service("config-key", "rw")
    assert MonCap.parse("profile osd").allows_service("osd", "rwx")
    assert not MonCap.parse('allow command "osd dump"').allows_service("osd", "r")


def test_network_grants() -> None:
    cap = MonCap.parse("allow * network 10.0.0.0/8")
    assert cap.allows_command("status", {}, addr="10.2.3.4:0/1")
    assert not cap.allows_command("status", {}, addr="192.168.1.1:0/1")
    assert not cap.allows_command("status", {})


def test_empty_and_bad_caps_grant_nothing() -> None:
    assert not MonCap.parse("").allows_command("status", {})
    assert MonCap.for_session("allow foo").grants == ()
    assert not MonCap.for_session(None).allows_service("mon", "r")


def test_stringify_args_like_ceph() -> None:
    got = stringify_args({"prefix": "auth get-or-create", "entity": "client.a", "caps": ["mon", "allow r", "osd", "allow *"],
                          "ids": ["1", "2"], "yes": True, "n": 3})
    assert got == {"entity": "client.a", "caps_mon": "allow r", "caps_osd": "allow *", "ids": "1,2", "yes": "true", "n": "3"}


_ALPHABET = st.sampled_from(list("allow rwx*=,;'\"profilerbdservicecommandwithprefixregexnetwork0123456789./ \t\n"))
_VALID = ["allow *", "profile rbd", "allow r, allow command \"osd blocklist\" with blocklistop=add addr regex \"^[^/]+/[0-9]+$\"",
          "allow service osd rw network 10.0.0.0/8", "allow profile osd; allow command fsid with a prefix b"]


def _check(text: str) -> None:
    try:
        cap = MonCap.parse(text)
    except CapsError as exc:
        assert str(exc).startswith("mon capability parse failed, stopped at ")
        bad = MonCap.for_session(text)
        assert not any(bad.allows_command(p, {}) for p in ("status", "auth get", "osd pool create", "config-key get"))
        assert not bad.allows_service("mon", "r")
        return
    for prefix in ("status", "auth get", "osd blocklist", "config-key get", "nope"):
        cap.allows_command(prefix, {"addr": "1.2.3.4:0/1", "blocklistop": "add"}, addr="10.0.0.1")


@settings(max_examples=500)
@given(st.text(max_size=60))
def test_random_strings_never_crash(text: str) -> None:
    _check(text)


@settings(max_examples=800)
@given(st.sampled_from(_VALID), st.lists(st.tuples(st.integers(0, 200), _ALPHABET, st.booleans()), max_size=4))
def test_mutated_valid_caps_never_crash(base: str, edits: list[tuple[int, str, bool]]) -> None:
    text = base
    for pos, ch, insert in edits:
        i = pos % (len(text) + 1)
        text = text[:i] + ch + text[i + (0 if insert else 1):]
    _check(text)

"""Entity addresses and blocklist matching (shoal/placement/blocklist.py), and the monitor's
pure `osd blocklist` handlers (shoal/mon/commands_blocklist.py)."""

from __future__ import annotations

import errno
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.mon.commands import handle_command
from shoal.mon.commands_blocklist import expire_entries
from shoal.mon.state import MonMap, MonState
from shoal.placement.blocklist import AddrError, client_addr, is_blocklisted, parse_entity_addr
from shoal.placement.osdmap import OSDMap

T0 = 1_795_469_816.0


@pytest.mark.parametrize("text, canonical", [
    ("10.0.0.5", "10.0.0.5:0/0"),
    ("10.0.0.5:0/3710147553", "10.0.0.5:0/3710147553"),
    ("v1:10.0.0.5:6789/0", "10.0.0.5:6789/0"),
    ("any:10.0.0.5/7", "10.0.0.5:0/7"),
    ("[::1]:0/7", "[::1]:0/7"),
    ("::1", "[::1]:0/0"),
    (" 10.0.0.5:0/1 ", "10.0.0.5:0/1"),
])
def test_parse(text: str, canonical: str) -> None:
    assert parse_entity_addr(text) == canonical


@pytest.mark.parametrize("text", ["", "host:0/1", "10.0.0.5:x/1", "10.0.0.5/", "10.0.0.5:0/1/2", "[::1",
                                  "10.0.0.5:70000/1", "10.0.0.5:0/4294967296", "10.0.0.5:0/-1", "1.2.3"])
def test_parse_refuses(text: str) -> None:
    with pytest.raises(AddrError, match="unable to parse address"):
        parse_entity_addr(text)


@given(st.text(max_size=40))
def test_parse_never_crashes(text: str) -> None:
    try:
        out = parse_entity_addr(text)
    except AddrError:
        return
    assert parse_entity_addr(out) == out  # canonical text parses to itself


def test_matching() -> None:
    me = client_addr("127.0.0.1:40312", 99)
    assert me == "127.0.0.1:0/99"
    assert not is_blocklisted({}, me)
    assert is_blocklisted({"127.0.0.1:0/99": 1.0}, me)
    assert not is_blocklisted({"127.0.0.1:0/98": 1.0}, me)
    assert is_blocklisted({"127.0.0.1:0/0": 1.0}, me)  # the whole ip, as Ceph
    assert client_addr("[::1]:5000", 3) == "[::1]:0/3"


def _state() -> MonState:
    osdmap = OSDMap(fsid="f", epoch=10, created=T0, modified=T0)
    return MonState(osdmap=osdmap, monmap=MonMap(fsid="f"), conf=lambda name: None)


def _run(state: MonState, now: float = T0, **cmd: object):  # type: ignore[no-untyped-def]
    result = handle_command(state, dict(cmd), now)
    if result.new_osdmap is not None:
        state.osdmap = result.new_osdmap
    return result


def test_handlers_add_ls_rm_clear() -> None:
    s = _state()
    r = _run(s, prefix="osd blocklist", blocklistop="add", addr="10.0.0.5:0/1", expire=90.0)
    assert (r.ret, r.outs) == (0, "blocklisting 10.0.0.5:0/1 until 2026-11-23T21:38:26.000000+0000 (90 sec)")
    assert s.osdmap.epoch == 11 and s.osdmap.blocklist == {"10.0.0.5:0/1": T0 + 90}
    r = _run(s, prefix="osd blacklist", blacklistop="add", addr="10.0.0.6/2")
    assert "(3600 sec)" in r.outs and s.osdmap.epoch == 12
    r = _run(s, prefix="osd blocklist ls", format="json")
    assert json.loads(r.outbuf) == [{"addr": "10.0.0.5:0/1", "until": "2026-11-23T21:38:26.000000+0000"},
                                    {"addr": "10.0.0.6:0/2", "until": "2026-11-23T22:36:56.000000+0000"}]
    assert r.outs == "listed 2 entries"
    r = _run(s, prefix="osd blacklist ls")
    assert r.outbuf.decode().splitlines()[0] == "10.0.0.5:0/1 2026-11-23T21:38:26.000000+0000"
    r = _run(s, prefix="osd blocklist", blocklistop="rm", addr="10.0.0.5:0/1")
    assert (r.ret, r.outs, s.osdmap.epoch) == (0, "un-blocklisting 10.0.0.5:0/1", 13)
    r = _run(s, prefix="osd blocklist", blocklistop="rm", addr="10.0.0.5:0/1")
    assert (r.ret, r.outs, r.new_osdmap) == (0, "10.0.0.5:0/1 isn't blocklisted", None)
    r = _run(s, prefix="osd blocklist clear")
    assert (r.outs, s.osdmap.blocklist, s.osdmap.epoch) == (" removed all blocklist entries", {}, 14)


@pytest.mark.parametrize("cmd", [
    {"blocklistop": "add", "addr": "nope"},
    {"blocklistop": "add"},
    {"blocklistop": "del", "addr": "10.0.0.5:0/1"},
    {"blocklistop": "add", "addr": "10.0.0.5:0/1", "expire": -1},
    {"blocklistop": "add", "addr": "10.0.0.5:0/1", "expire": "soon"},
    {"blocklistop": "add", "addr": "10.0.0.5:0/1", "expire": float("nan")},
])
def test_handlers_refuse_bad_input(cmd: dict[str, object]) -> None:
    s = _state()
    r = _run(s, prefix="osd blocklist", **cmd)
    assert r.ret == -errno.EINVAL and r.outs and r.new_osdmap is None
    assert s.osdmap.epoch == 10


def test_expiry() -> None:
    s = _state()
    _run(s, prefix="osd blocklist", blocklistop="add", addr="10.0.0.5:0/1", expire=5.0)
    _run(s, prefix="osd blocklist", blocklistop="add", addr="10.0.0.5:0/2", expire=50.0)
    assert expire_entries(s.osdmap, T0 + 4) is None
    new = expire_entries(s.osdmap, T0 + 6)
    assert new is not None and new.epoch == s.osdmap.epoch + 1 and list(new.blocklist) == ["10.0.0.5:0/2"]


def test_map_round_trip() -> None:
    m = OSDMap(fsid="f", epoch=3, blocklist={"10.0.0.5:0/1": T0})
    assert OSDMap.from_dict(m.to_dict()).blocklist == {"10.0.0.5:0/1": T0}
    old = m.to_dict()
    del old["blocklist"]  # a map stored before the blocklist existed
    assert OSDMap.from_dict(old).blocklist == {}

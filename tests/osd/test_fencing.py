"""Blocklist enforcement on the OSD (shoal/osd/fencing.py, decision record 0007), without I/O:
which sender an op is from, when the current map fences it, and dropping fenced watchers."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from shoal.osd.fencing import fenced, newly_blocklisted, op_nonce, sender_addr
from shoal.osd.watch import WatchRegistry
from shoal.placement.osdmap import OSDMap

KEY = ("1.3", "", "rbd_header.abc")


def conn(peer: str = "127.0.0.1:40000", entity: str = "client.admin") -> Any:
    return SimpleNamespace(peer=peer, info={"entity": entity})


def test_sender_address_from_op_or_watch_nonce() -> None:
    assert op_nonce({"nonce": 7, "ops": []}) == 7
    assert op_nonce({"ops": [{"op": "watch", "nonce": 9}]}) == 9
    assert op_nonce({"ops": []}) == 0 and op_nonce({"nonce": "junk"}) == 0
    c = conn()
    assert sender_addr(c, {"nonce": 7}) == "127.0.0.1:0/7"
    assert sender_addr(c, {"nonce": 8}) == "127.0.0.1:0/8"  # the cache follows the nonce


def test_fenced_by_the_current_map_only() -> None:
    m = OSDMap(fsid="f", epoch=5)
    c = conn()
    assert fenced(m, c, {"nonce": 7}) is None
    m.blocklist["127.0.0.1:0/7"] = 1e12
    assert fenced(m, c, {"nonce": 7}) == "127.0.0.1:0/7"
    assert fenced(m, c, {"nonce": 8}) is None
    m.blocklist = {"127.0.0.1:0/0": 1e12}  # the whole ip
    assert fenced(m, c, {"nonce": 8}) == "127.0.0.1:0/8"
    assert fenced(m, conn(entity="osd.1"), {"nonce": 8}) is None  # peers are never fenced


def test_newly_blocklisted() -> None:
    old = OSDMap(fsid="f", epoch=5, blocklist={"10.0.0.1:0/1": 10.0})
    new = old.copy()
    assert not newly_blocklisted(old, new)
    new.blocklist["10.0.0.1:0/2"] = 10.0
    assert newly_blocklisted(old, new)
    assert not newly_blocklisted(new, old)  # a removal fences nobody


def test_drop_where_removes_fenced_watchers_and_unblocks_notifies() -> None:
    reg, s1, s2 = WatchRegistry(), object(), object()
    fenced_w, _ = reg.watch(KEY, 4100, 1, "127.0.0.1:0/7", 30.0, s1, now=0.0)
    kept, _ = reg.watch(KEY, 4101, 1, "127.0.0.1:0/8", 30.0, s2, now=0.0)
    n = reg.start_notify(KEY, 4101, b"", 30.0, now=0.0, epoch=5)
    assert reg.ack(s2, n.notify_id, 1, b"") is None  # still waiting for the other
    gone, finished = reg.drop_where(lambda w: w.addr == "127.0.0.1:0/7")
    assert gone == [fenced_w] and finished == [n] and n.done
    assert reg.watchers(KEY) == [kept] and s1 not in reg.sessions

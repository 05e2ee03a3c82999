"""The OSD's watch/notify bookkeeping (shoal/osd/watch.py `WatchRegistry`), without I/O.

Sessions are plain objects: the registry only compares them by identity.
"""

from __future__ import annotations

import errno

import pytest

from shoal.osd.watch import WatchError, WatchRegistry

KEY = ("1.3", "", "rbd_header.abc")
OTHER = ("1.3", "ns", "rbd_header.abc")
ADDR = "127.0.0.1:0/42"


def make() -> tuple[WatchRegistry, object, object]:
    return WatchRegistry(), object(), object()


def test_watch_registers_and_refreshes() -> None:
    reg, s1, s2 = make()
    w, new = reg.watch(KEY, 4100, 1, ADDR, 30.0, s1, now=0.0)
    assert new and w.wkey == (4100, 1)
    again, new = reg.watch(KEY, 4100, 1, ADDR, 10.0, s1, now=5.0)
    assert again is w and not new
    assert (w.timeout, w.last_seen) == (10.0, 5.0)
    # Same watch from a new session (a reconnect): it moves there, still one watcher.
    moved, new = reg.watch(KEY, 4100, 1, ADDR, 10.0, s2, now=6.0)
    assert moved is w and not new and w.session is s2
    assert s1 not in reg.sessions and list(reg.sessions[s2].values()) == [w]
    assert reg.watchers(KEY) == [w]
    assert reg.watchers(OTHER) == []  # namespaces are distinct objects


def test_describe_is_librados_obj_watch() -> None:
    reg, s1, _ = make()
    w, _ = reg.watch(KEY, 4123, 7, ADDR, 30.0, s1, now=0.0)
    assert w.describe() == {"name": "client.4123", "watcher_id": 4123, "addr": ADDR, "cookie": 7, "timeout": 30}


def test_ping_only_from_the_holding_session() -> None:
    reg, s1, s2 = make()
    w, _ = reg.watch(KEY, 1, 1, ADDR, 30.0, s1, now=0.0)
    assert reg.ping(KEY, 1, 1, s1, now=3.0) == 0 and w.last_seen == 3.0
    assert reg.ping(KEY, 1, 1, s2, now=4.0) == -errno.ENOTCONN
    assert reg.ping(KEY, 1, 2, s1, now=4.0) == -errno.ENOTCONN
    assert reg.ping(OTHER, 1, 1, s1, now=4.0) == -errno.ENOTCONN
    assert w.last_seen == 3.0


def test_notify_without_watchers_is_done_at_once() -> None:
    reg, _, _ = make()
    n = reg.start_notify(KEY, notifier=9, payload=b"p", timeout=5.0, now=0.0, epoch=12)
    assert n.done and n.result == 0 and n.acks == {} and n.timeouts == []
    assert reg.notifies == {}
    assert n.notify_id >> 32 == 12  # Ceph's id: epoch in the high half


def test_notify_completes_on_the_last_ack() -> None:
    reg, s1, s2 = make()
    reg.watch(KEY, 1, 10, ADDR, 30.0, s1, now=0.0)
    reg.watch(KEY, 2, 20, ADDR, 30.0, s2, now=0.0)
    reg.watch(OTHER, 3, 30, ADDR, 30.0, s2, now=0.0)  # another object: not notified
    n = reg.start_notify(KEY, 9, b"hello", 5.0, 0.0, 1)
    assert not n.done and sorted(n.waiting) == [(1, 10), (2, 20)]
    assert reg.ack(s1, n.notify_id, 10, b"one") is None
    assert reg.ack(s1, n.notify_id, 10, b"again") is None  # a duplicate ack changes nothing
    done = reg.ack(s2, n.notify_id, 20, b"")
    assert done is n and n.done and n.result == 0
    assert n.acks == {(1, 10): b"one", (2, 20): b""}
    assert reg.notifies == {}


def test_acks_from_elsewhere_are_ignored() -> None:
    reg, s1, s2 = make()
    reg.watch(KEY, 1, 10, ADDR, 30.0, s1, now=0.0)
    n = reg.start_notify(KEY, 9, b"", 5.0, 0.0, 1)
    assert reg.ack(s2, n.notify_id, 10, b"x") is None  # right cookie, wrong session
    assert reg.ack(s1, n.notify_id, 11, b"x") is None  # right session, wrong cookie
    assert reg.ack(s1, n.notify_id + 1, 10, b"x") is None  # unknown notify
    assert not n.done and n.acks == {}


def test_timeout_lists_who_missed_it() -> None:
    reg, s1, s2 = make()
    reg.watch(KEY, 1, 10, ADDR, 30.0, s1, now=0.0)
    reg.watch(KEY, 2, 20, ADDR, 30.0, s2, now=0.0)
    n = reg.start_notify(KEY, 9, b"", 1.0, 0.0, 1)
    reg.ack(s1, n.notify_id, 10, b"ok")
    assert reg.time_out(n.notify_id) is n
    assert n.done and n.result == -errno.ETIMEDOUT
    assert n.acks == {(1, 10): b"ok"} and n.timeouts == [(2, 20)]
    assert reg.time_out(n.notify_id) is None  # once
    assert reg.ack(s2, n.notify_id, 20, b"late") is None


def test_closed_session_drops_its_watchers_and_ends_their_waits() -> None:
    reg, s1, s2 = make()
    reg.watch(KEY, 1, 10, ADDR, 30.0, s1, now=0.0)
    reg.watch(OTHER, 1, 11, ADDR, 30.0, s1, now=0.0)
    reg.watch(KEY, 2, 20, ADDR, 30.0, s2, now=0.0)
    n = reg.start_notify(KEY, 9, b"", 5.0, 0.0, 1)
    reg.ack(s2, n.notify_id, 20, b"ok")
    gone, finished = reg.drop_session(s1)
    assert sorted(w.wkey for w in gone) == [(1, 10), (1, 11)]
    # A removed watcher is neither an ack nor a timeout (Ceph's complete_watcher_remove).
    assert finished == [n] and n.result == 0 and n.acks == {(2, 20): b"ok"} and n.timeouts == []
    assert reg.watchers(OTHER) == [] and OTHER not in reg.objects
    assert s1 not in reg.sessions
    assert reg.drop_session(s1) == ([], [])


def test_unwatch_during_a_notify() -> None:
    reg, s1, s2 = make()
    reg.watch(KEY, 1, 10, ADDR, 30.0, s1, now=0.0)
    reg.watch(KEY, 2, 20, ADDR, 30.0, s2, now=0.0)
    n = reg.start_notify(KEY, 9, b"", 5.0, 0.0, 1)
    w, finished = reg.unwatch(KEY, 1, 10)
    assert w is not None and finished == [] and list(n.waiting) == [(2, 20)]
    _, finished = reg.unwatch(KEY, 2, 20)
    assert finished == [n] and n.done
    assert reg.unwatch(KEY, 2, 20) == (None, [])
    assert KEY not in reg.objects and reg.sessions == {}


def test_deleted_object_loses_its_watchers() -> None:
    reg, s1, s2 = make()
    reg.watch(KEY, 1, 10, ADDR, 30.0, s1, now=0.0)
    reg.watch(OTHER, 1, 11, ADDR, 30.0, s1, now=0.0)
    n = reg.start_notify(KEY, 9, b"", 5.0, 0.0, 1)
    gone, finished = reg.remove_object(KEY)
    assert [w.wkey for w in gone] == [(1, 10)] and finished == [n] and n.result == 0
    assert [w.wkey for w in reg.watchers(OTHER)] == [(1, 11)]
    assert reg.remove_object(KEY) == ([], [])


def test_silent_watchers_expire() -> None:
    reg, s1, s2 = make()
    reg.watch(KEY, 1, 10, ADDR, 2.0, s1, now=0.0)
    reg.watch(KEY, 2, 20, ADDR, 2.0, s2, now=0.0)
    n = reg.start_notify(KEY, 9, b"", 60.0, 0.0, 1)
    reg.ping(KEY, 2, 20, s2, now=1.5)
    assert reg.expire(now=2.0) == ([], [])  # not past the timeout yet
    gone, finished = reg.expire(now=2.5)
    assert [w.wkey for w in gone] == [(1, 10)] and finished == []
    assert list(n.waiting) == [(2, 20)]
    gone, finished = reg.expire(now=10.0)
    assert [w.wkey for w in gone] == [(2, 20)] and finished == [n]
    assert reg.objects == {} and reg.sessions == {}


def test_objects_of_moved_pgs_are_forgotten() -> None:
    reg, s1, _ = make()
    moved_key = ("1.7", "", "x")
    reg.watch(KEY, 1, 10, ADDR, 30.0, s1, now=0.0)
    reg.watch(moved_key, 1, 11, ADDR, 30.0, s1, now=0.0)
    n_moved = reg.start_notify(moved_key, 9, b"", 5.0, 0.0, 1)
    n_kept = reg.start_notify(KEY, 9, b"", 5.0, 0.0, 1)
    gone, aborted = reg.drop_objects(lambda key: key[0] == "1.7")
    assert [w.wkey for w in gone] == [(1, 11)]
    assert aborted == [n_moved] and n_moved.aborted and n_moved.done
    assert not n_kept.done and list(reg.notifies) == [n_kept.notify_id]
    assert [w.wkey for w in reg.watchers(KEY)] == [(1, 10)]


def test_pending_notifies_follow_a_reconnecting_watcher() -> None:
    reg, s1, s2 = make()
    w, _ = reg.watch(KEY, 1, 10, ADDR, 30.0, s1, now=0.0)
    n = reg.start_notify(KEY, 9, b"p", 5.0, 0.0, 1)
    reg.watch(KEY, 1, 10, ADDR, 30.0, s2, now=1.0)  # reconnect on a new session
    assert reg.pending_for(w) == [n]
    assert reg.ack(s1, n.notify_id, 10, b"old session") is None
    assert reg.ack(s2, n.notify_id, 10, b"new") is n and n.acks == {(1, 10): b"new"}
    assert reg.pending_for(w) == []


def test_limits() -> None:
    reg = WatchRegistry(max_watchers=2, max_notifies=1)
    s = object()
    reg.watch(KEY, 1, 1, ADDR, 30.0, s, 0.0)
    reg.watch(KEY, 1, 2, ADDR, 30.0, s, 0.0)
    reg.watch(KEY, 1, 2, ADDR, 30.0, s, 1.0)  # a refresh is not a new watcher
    with pytest.raises(WatchError) as exc:
        reg.watch(KEY, 1, 3, ADDR, 30.0, s, 0.0)
    assert exc.value.errno == errno.ENOSPC
    reg.start_notify(KEY, 9, b"", 5.0, 0.0, 1)
    with pytest.raises(WatchError) as exc:
        reg.start_notify(KEY, 9, b"", 5.0, 0.0, 1)
    assert exc.value.errno == errno.EBUSY
    # Notifies to objects nobody watches never occupy a slot.
    assert reg.start_notify(OTHER, 9, b"", 5.0, 0.0, 1).done

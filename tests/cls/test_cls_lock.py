"""cls_lock methods over MemoryStore + ObjectContext (each call committed only on success)."""

from __future__ import annotations

import errno
import importlib.util
import pathlib
import time

import pytest

_spec = importlib.util.spec_from_file_location("cls_rbd_tests_l", pathlib.Path(__file__).with_name("test_cls_rbd.py"))
assert _spec and _spec.loader
_base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_base)
Cluster = _base.Cluster

OBJ = "rbd_header.lk"
EXCL, SHARED = 1, 2


@pytest.fixture
def cl() -> Cluster:
    return Cluster()


def lk(cl: Cluster, caller: str, cookie: str, ltype: int = EXCL, **kw: object) -> None:
    cl.call(OBJ, "lock", {"name": "rbd_lock", "type": ltype, "cookie": cookie, "caller": caller, **kw}, cls="lock")


def test_exclusive_lock_lifecycle(cl: Cluster) -> None:
    lk(cl, "client.1", "auto 1", tag="internal", description="d")
    assert "lock.rbd_lock" in cl.state(OBJ)[2]
    info = cl.call(OBJ, "get_info", {"name": "rbd_lock"}, cls="lock")
    assert info["type"] == EXCL and info["tag"] == "internal"
    assert [(x["locker"], x["cookie"], x["description"]) for x in info["lockers"]] == [("client.1", "auto 1", "d")]
    assert cl.call(OBJ, "list_locks", cls="lock") == ["rbd_lock"]
    base = {"name": "rbd_lock", "type": EXCL, "cookie": "auto 1", "caller": "client.1"}
    cl.refuse(errno.EEXIST, OBJ, "lock", {**base, "tag": "internal"}, cls="lock")
    cl.refuse(errno.EBUSY, OBJ, "lock", {**base, "caller": "client.2", "tag": "internal"}, cls="lock")
    cl.refuse(errno.EBUSY, OBJ, "lock", {**base, "caller": "client.2", "type": SHARED, "tag": "internal"}, cls="lock")
    cl.call(OBJ, "lock", {**base, "tag": "internal", "flags": 1}, cls="lock")  # MAY_RENEW
    cl.call(OBJ, "assert_locked", {**base, "tag": "internal"}, cls="lock")
    cl.refuse(errno.EBUSY, OBJ, "assert_locked", {**base, "tag": "other"}, cls="lock")
    cl.refuse(errno.EBUSY, OBJ, "assert_locked", {**base, "tag": "internal", "type": SHARED}, cls="lock")
    cl.refuse(errno.EBUSY, OBJ, "assert_locked", {**base, "tag": "internal", "cookie": "x"}, cls="lock")
    cl.refuse(errno.ENOENT, OBJ, "unlock", {"name": "rbd_lock", "cookie": "auto 1", "caller": "client.2"}, cls="lock")
    cl.call(OBJ, "set_cookie", {**base, "tag": "internal", "new_cookie": "auto 2"}, cls="lock")
    cl.refuse(errno.EBUSY, OBJ, "set_cookie", {**base, "tag": "internal", "new_cookie": "auto 3"}, cls="lock")
    cl.call(OBJ, "unlock", {"name": "rbd_lock", "cookie": "auto 2", "caller": "client.1"}, cls="lock")
    assert cl.call(OBJ, "list_locks", cls="lock") == ["rbd_lock"]  # Ceph keeps the (empty) lock xattr
    info = cl.call(OBJ, "get_info", {"name": "rbd_lock"}, cls="lock")
    assert info["lockers"] == []
    cl.refuse(errno.EBUSY, OBJ, "assert_locked", {**base, "tag": "internal"}, cls="lock")
    cl.refuse(errno.EBUSY, OBJ, "set_cookie", {**base, "new_cookie": "n"}, cls="lock")
    cl.refuse(errno.ENOENT, OBJ, "unlock", {"name": "rbd_lock", "cookie": "auto 2", "caller": "client.1"},
              cls="lock")
    # Unheld, so anyone may now take it under any tag.
    cl.call(OBJ, "lock", {**base, "caller": "client.2", "tag": "other"}, cls="lock")


def test_shared_and_break(cl: Cluster) -> None:
    lk(cl, "client.1", "c", SHARED, tag="t")
    lk(cl, "client.2", "c", SHARED, tag="t")
    cl.refuse(errno.EBUSY, OBJ, "lock", {"name": "rbd_lock", "type": SHARED, "cookie": "c", "caller": "client.3",
                                       "tag": "u"}, cls="lock")
    cl.refuse(errno.EBUSY, OBJ, "lock", {"name": "rbd_lock", "type": EXCL, "cookie": "c", "caller": "client.3",
                                       "tag": "t"}, cls="lock")
    assert len(cl.call(OBJ, "get_info", {"name": "rbd_lock"}, cls="lock")["lockers"]) == 2
    cl.refuse(errno.ENOENT, OBJ, "break_lock", {"name": "rbd_lock", "locker": "client.9", "cookie": "c"}, cls="lock")
    cl.call(OBJ, "break_lock", {"name": "rbd_lock", "locker": "client.1", "cookie": "c"}, cls="lock")
    assert [x["locker"] for x in cl.call(OBJ, "get_info", {"name": "rbd_lock"}, cls="lock")["lockers"]] == ["client.2"]
    cl.refuse(errno.EBUSY, OBJ, "set_cookie", {"name": "rbd_lock", "type": EXCL, "cookie": "c", "caller": "client.2",
                                             "tag": "t", "new_cookie": "d"}, cls="lock")


def test_refusals_and_renew_flags(cl: Cluster) -> None:
    cl.refuse(errno.EINVAL, OBJ, "lock", {"name": "n", "type": 0, "cookie": "c"}, cls="lock")
    cl.refuse(errno.EINVAL, OBJ, "lock", {"name": "", "type": 1, "cookie": "c"}, cls="lock")
    cl.refuse(errno.EINVAL, OBJ, "lock", {"name": "n", "type": 1, "cookie": "c", "flags": 8}, cls="lock")
    cl.refuse(errno.EINVAL, OBJ, "lock", {"name": "n", "type": 1, "cookie": "c", "duration": -1}, cls="lock")
    cl.refuse(errno.ENOENT, OBJ, "lock", {"name": "n", "type": 1, "cookie": "c", "flags": 2}, cls="lock")
    cl.refuse(errno.ENOENT, OBJ, "get_info", {"name": "n"}, cls="lock")
    cl.refuse(errno.ENOENT, OBJ, "list_locks", cls="lock")
    cl.refuse(errno.ENOENT, OBJ, "assert_locked", {"name": "n", "type": 1, "cookie": "c"}, cls="lock")
    cl.refuse(errno.EINVAL, OBJ, "assert_locked", {"name": "n", "type": 7, "cookie": "c"}, cls="lock")
    cl.refuse(errno.ENOENT, OBJ, "unlock", {"name": "n", "cookie": "c"}, cls="lock")
    cl.refuse(errno.ENOENT, OBJ, "break_lock", {"name": "n", "locker": "client.1", "cookie": "c"}, cls="lock")
    # The tag is checked before "already held by you".
    lk(cl, "client.1", "c", tag="t")
    cl.refuse(errno.EBUSY, OBJ, "lock", {"name": "rbd_lock", "type": 1, "cookie": "c", "caller": "client.1",
                                         "tag": "u"}, cls="lock")
    cl.call(OBJ, "lock", {"name": "rbd_lock", "type": 1, "cookie": "c", "caller": "client.1", "tag": "t",
                          "flags": 2}, cls="lock")  # MUST_RENEW of a held lock


def test_expired_locker_is_ignored(cl: Cluster) -> None:
    lk(cl, "client.1", "c", duration=0.05)
    time.sleep(0.1)
    lk(cl, "client.2", "c")  # the first locker expired
    info = cl.call(OBJ, "get_info", {"name": "rbd_lock"}, cls="lock")
    assert [x["locker"] for x in info["lockers"]] == ["client.2"]


def test_default_caller(cl: Cluster) -> None:
    cl.call(OBJ, "lock", {"name": "n", "type": EXCL, "cookie": "c"}, cls="lock")
    info = cl.call(OBJ, "get_info", {"name": "n"}, cls="lock")
    assert info["lockers"][0]["locker"] == "client.unknown"


def test_ephemeral_lock_removes_object_on_unlock(cl: Cluster) -> None:
    lk(cl, "client.1", "c", 3)
    assert cl.state(OBJ) is not None
    cl.call(OBJ, "unlock", {"name": "rbd_lock", "cookie": "c", "caller": "client.1"}, cls="lock")
    assert cl.state(OBJ) is None

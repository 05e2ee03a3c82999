"""The `lock` object class (cls_lock work-alike): advisory, optionally timed object locks.

A lock named N lives in the object's xattr `lock.N` (Ceph's LOCK_PREFIX), stored as
msgpack {type, tag, lockers: [[entity, cookie, expiration, address, description], ...]}
(Ceph's lock_info_t bytes are not reproduced). As in Ceph the xattr stays when the last
locker goes (so `list_locks` still names it), except for an exclusive-ephemeral lock,
whose unlock removes the whole object. Behaviour and errno follow
ceph:src/cls/lock/cls_lock.cc.

The locker entity is the calling client. Until the OSD passes the authenticated entity,
callers supply it as the optional `caller` input (default "client.unknown"); the OSD
is expected to overwrite it with the real entity name.

Types: 1 = exclusive, 2 = shared, 3 = exclusive-ephemeral (ClsLockType). Flags:
1 = MAY_RENEW, 2 = MUST_RENEW. Expired lockers are dropped whenever the lock is read
(an expired ephemeral lock's object is only removed by the next write method, since
read methods can't write here).
"""

from __future__ import annotations

import time
from typing import Any

from shoal.cls import rbd_common as c
from shoal.cls.registry import RD, WR, MethodContext, method
from shoal.errors import Busy, Exists, InvalidArgument, NoData, NotFound

LOCK_PREFIX = "lock."
LOCK_NONE, LOCK_EXCLUSIVE, LOCK_SHARED, LOCK_EXCLUSIVE_EPHEMERAL = 0, 1, 2, 3
FLAG_MAY_RENEW, FLAG_MUST_RENEW = 1, 2
DEFAULT_CALLER = "client.unknown"


def _name(a: dict[str, Any]) -> str:
    name = c.get_str(a, "name")
    if not name:
        raise InvalidArgument("empty lock name")
    return name


def _caller(a: dict[str, Any]) -> str:
    return c.get_str(a, "caller", DEFAULT_CALLER)


def _read(ctx: MethodContext, name: str) -> dict[str, Any]:
    """The lock's state with expired lockers dropped. ENOENT for a missing object;
    a missing xattr is an unheld lock."""
    c.require_object(ctx)
    try:
        raw = ctx.getxattr(LOCK_PREFIX + name)
    except NoData:
        return {"type": LOCK_NONE, "tag": "", "lockers": []}
    info = c.unpack_record(raw)
    now = time.time()
    info["lockers"] = [lk for lk in info["lockers"] if not lk[2] or lk[2] >= now]
    return info


def _write(ctx: MethodContext, name: str, info: dict[str, Any]) -> None:
    if not info["lockers"] and info["type"] == LOCK_EXCLUSIVE_EPHEMERAL:
        ctx.remove()  # an ephemeral lock's object lives only as long as the lock
        return
    ctx.setxattr(LOCK_PREFIX + name, c.pack_record(info))


def _find(info: dict[str, Any], entity: str, cookie: str) -> int:
    for i, lk in enumerate(info["lockers"]):
        if lk[0] == entity and lk[1] == cookie:
            return i
    return -1


@method("lock", "lock", RD | WR)
def lock(ctx: MethodContext, data: bytes) -> bytes:
    """In: {name, type, cookie, tag="", description="", duration=0 (s, 0 = forever), flags=0, caller}.

    Out: nil. Creates the object if needed. EINVAL bad type, name or flags (both renew
    flags); EBUSY held under another tag; EEXIST the same locker (entity+cookie) already
    holds it (unless a renew flag); ENOENT MUST_RENEW but not held; EBUSY held
    exclusively or asked exclusively while held.
    """
    a = c.args(data)
    name = _name(a)
    ltype = c.get_int(a, "type")
    cookie = c.get_str(a, "cookie", "")
    tag = c.get_str(a, "tag", "")
    description = c.get_str(a, "description", "")
    duration = a.get("duration", 0)
    flags = c.get_int(a, "flags", 0)
    entity = _caller(a)
    if ltype not in (LOCK_EXCLUSIVE, LOCK_SHARED, LOCK_EXCLUSIVE_EPHEMERAL):
        raise InvalidArgument(f"bad lock type {ltype}")
    if flags & ~(FLAG_MAY_RENEW | FLAG_MUST_RENEW) or flags == FLAG_MAY_RENEW | FLAG_MUST_RENEW:
        raise InvalidArgument(f"bad lock flags {flags}")
    if not isinstance(duration, (int, float)) or isinstance(duration, bool) or duration < 0:
        raise InvalidArgument("bad duration")
    try:
        info = _read(ctx, name)
    except NotFound:  # locking creates the object
        info = {"type": LOCK_NONE, "tag": "", "lockers": []}
    # The tag is checked first, so a renewal can't slip past a conflicting tag.
    if info["lockers"] and info["tag"] != tag:
        raise Busy("lock held with another tag")
    idx = _find(info, entity, cookie)
    if idx >= 0:
        if not flags & (FLAG_MAY_RENEW | FLAG_MUST_RENEW):
            raise Exists("already locked by this locker")
        del info["lockers"][idx]  # renewing: re-added below with a fresh expiration
    elif flags & FLAG_MUST_RENEW:
        raise NotFound("lock not held, can't renew")
    if info["lockers"]:
        if ltype != LOCK_SHARED or info["type"] != LOCK_SHARED:
            raise Busy("lock held incompatibly")
    expiration = time.time() + duration if duration else 0
    info["type"], info["tag"] = ltype, tag
    # The locker's address is the caller's as the OSD sees it (cls_get_request_origin): what
    # `rbd lock ls` shows and what a lock breaker blocklists.
    info["lockers"].append([entity, cookie, expiration, str(getattr(ctx, "origin", "") or ""), description])
    _write(ctx, name, info)
    return b""


@method("lock", "unlock", RD | WR)
def unlock(ctx: MethodContext, data: bytes) -> bytes:
    """In: {name, cookie, caller}. Out: nil. ENOENT if this locker doesn't hold it."""
    a = c.args(data)
    name = _name(a)
    info = _read(ctx, name)
    idx = _find(info, _caller(a), c.get_str(a, "cookie", ""))
    if idx < 0:
        raise NotFound("not locked by this locker")
    del info["lockers"][idx]
    _write(ctx, name, info)
    return b""


@method("lock", "break_lock", RD | WR)
def break_lock(ctx: MethodContext, data: bytes) -> bytes:
    """In: {name, locker (entity), cookie}. Out: nil. ENOENT missing object or that locker doesn't hold it."""
    a = c.args(data)
    name = _name(a)
    info = _read(ctx, name)
    idx = _find(info, c.get_str(a, "locker"), c.get_str(a, "cookie", ""))
    if idx < 0:
        raise NotFound("no such locker")
    del info["lockers"][idx]
    _write(ctx, name, info)
    return b""


@method("lock", "get_info", RD)
def get_info(ctx: MethodContext, data: bytes) -> bytes:
    """In: {name}. Out: {lockers: [{locker, cookie, expiration, address, description}], type, tag}.

    ENOENT if the object is missing; an unheld lock reads as no lockers (type as last held,
    0 if never).
    """
    a = c.args(data)
    name = _name(a)
    info = _read(ctx, name)
    lockers = [{"locker": e, "cookie": ck, "expiration": exp, "address": addr, "description": d}
               for e, ck, exp, addr, d in info["lockers"]]
    return c.out({"lockers": lockers, "type": info["type"], "tag": info["tag"]})


@method("lock", "list_locks", RD)
def list_locks(ctx: MethodContext, data: bytes) -> bytes:
    """In: nothing. Out: sorted names of the object's locks (held or not). ENOENT missing object."""
    c.require_object(ctx)
    return c.out(sorted(k[len(LOCK_PREFIX):] for k in ctx.getxattrs() if k.startswith(LOCK_PREFIX)))


@method("lock", "assert_locked", RD)
def assert_locked(ctx: MethodContext, data: bytes) -> bytes:
    """In: {name, type, cookie, tag="", caller}. Out: nil.

    EINVAL bad type or name; ENOENT missing object; EBUSY not locked, wrong type or tag,
    or this locker isn't among the holders.
    """
    a = c.args(data)
    ltype = c.get_int(a, "type")
    if ltype not in (LOCK_EXCLUSIVE, LOCK_SHARED, LOCK_EXCLUSIVE_EPHEMERAL):
        raise InvalidArgument(f"bad lock type {ltype}")
    name = _name(a)
    info = _read(ctx, name)
    if not info["lockers"]:
        raise Busy("not locked")
    if info["type"] != ltype or info["tag"] != c.get_str(a, "tag", ""):
        raise Busy("lock type or tag differs")
    if _find(info, _caller(a), c.get_str(a, "cookie", "")) < 0:
        raise Busy("not locked by this locker")
    return b""


@method("lock", "set_cookie", RD | WR)
def set_cookie(ctx: MethodContext, data: bytes) -> bytes:
    """In: {name, type, cookie, tag="", new_cookie, caller}. Out: nil.

    EINVAL bad type or name; ENOENT missing object; EBUSY not locked, wrong type or tag,
    this locker not a holder, or new_cookie already in use.
    """
    a = c.args(data)
    ltype = c.get_int(a, "type")
    if ltype not in (LOCK_EXCLUSIVE, LOCK_SHARED, LOCK_EXCLUSIVE_EPHEMERAL):
        raise InvalidArgument(f"bad lock type {ltype}")
    name = _name(a)
    entity = _caller(a)
    new_cookie = c.get_str(a, "new_cookie")
    info = _read(ctx, name)
    if not info["lockers"]:
        raise Busy("not locked")
    if info["type"] != ltype or info["tag"] != c.get_str(a, "tag", ""):
        raise Busy("lock type or tag differs")
    idx = _find(info, entity, c.get_str(a, "cookie", ""))
    if idx < 0:
        raise Busy("not locked by this locker")
    if _find(info, entity, new_cookie) >= 0:
        raise Busy("new cookie already in use")
    info["lockers"][idx][1] = new_cookie
    _write(ctx, name, info)
    return b""

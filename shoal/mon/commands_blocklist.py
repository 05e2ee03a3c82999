"""`osd blocklist add|rm|ls|clear` (and the old spelling `osd blacklist …`), as Ceph 16.

The blocklist lives in the OSD map (`OSDMap.blocklist`: address → expiry time), so every
change is a new epoch that reaches OSDs and clients like any other map change; OSDs refuse
ops from a listed address with ESHUTDOWN (decision record 0007). Status lines, errno and
the `ls` layouts follow `OSDMonitor::prepare_command` / `preprocess_command`:

  add   outs "blocklisting ADDR until STAMP (N sec)"; expire defaults to
        `mon_osd_blocklist_default_expire` (3600 s); adding a listed address moves its expiry
  rm    outs "un-blocklisting ADDR", or "ADDR isn't blocklisted" (ret 0, no new epoch)
  ls    data [{addr, until}] (JSON) or "ADDR STAMP\\n" lines; outs "listed N entries"
  clear outs " removed all blocklist entries" (Ceph's leading space); always a new epoch

The monitor's tick drops expired entries (`expire_entries`), as `OSDMonitor::tick` does.
"""

from __future__ import annotations

import errno
import math
from typing import Any

from shoal.mon.commands_common import CommandError, Handler, Reply, Request, next_map, reply, stamp
from shoal.placement.blocklist import AddrError, parse_entity_addr
from shoal.placement.osdmap import OSDMap

MAX_EXPIRE = 10 * 365 * 86400.0  # bound an entry's life (a typo must not fence a client for ever)


def _cxx_double(x: float) -> str:
    """A double as C++'s default ostream prints it (6 significant digits): 3600, 0.5, 1e+06."""
    return format(x, ".6g")


def _op(req: Request) -> str:
    # Ceph reads `blocklistop`, then the old name, whichever spelling the prefix had.
    op = req.str_arg("blocklistop") or req.str_arg("blacklistop")
    if op not in ("add", "rm"):
        raise CommandError(errno.EINVAL, f"invalid blocklist operation '{op or ''}': expected add|rm")
    return op


def _addr(req: Request) -> str:
    text = req.required_str("addr", "<EntityAddr>")
    try:
        return parse_entity_addr(text)
    except AddrError as exc:
        raise CommandError(errno.EINVAL, str(exc)) from None


def _expire(req: Request) -> float:
    value = req.cmd.get("expire")
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if value is None:
        return float(req.conf("mon_osd_blocklist_default_expire"))
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise CommandError(errno.EINVAL, f"invalid value for 'expire': '{value}' is not a number") from None
    if not math.isfinite(seconds) or seconds < 0 or isinstance(value, bool):
        raise CommandError(errno.EINVAL, f"expire {value} not in range [0, {MAX_EXPIRE:g}]")
    return min(seconds, MAX_EXPIRE)


def _blocklist(req: Request) -> Reply:
    op, addr = _op(req), _addr(req)
    if op == "add":
        seconds = _expire(req)
        new = next_map(req)
        until = req.now + seconds
        new.blocklist[addr] = until
        return reply(outs=f"blocklisting {addr} until {stamp(until)} ({_cxx_double(seconds)} sec)", new_osdmap=new)
    if addr not in req.osdmap.blocklist:
        return reply(outs=f"{addr} isn't blocklisted")
    new = next_map(req)
    del new.blocklist[addr]
    return reply(outs=f"un-blocklisting {addr}", new_osdmap=new)


def _ls(req: Request) -> Reply:
    entries = list(req.osdmap.blocklist.items())
    outs = f"listed {len(entries)} entries"
    if req.wants_json:
        return reply([{"addr": addr, "until": stamp(until)} for addr, until in entries], outs=outs)
    return reply("".join(f"{addr} {stamp(until)}\n" for addr, until in entries), outs=outs)


def _clear(req: Request) -> Reply:
    new = next_map(req)
    new.blocklist.clear()
    return reply(outs=" removed all blocklist entries", new_osdmap=new)


def expire_entries(osdmap: OSDMap, now: float) -> OSDMap | None:
    """The next epoch without the entries that expired by `now`, or None if none did."""
    expired = [addr for addr, until in osdmap.blocklist.items() if until < now]
    if not expired:
        return None
    new = osdmap.copy()
    new.epoch += 1
    new.modified = now
    for addr in expired:
        del new.blocklist[addr]
    return new


def blocklist_dump(osdmap: OSDMap) -> dict[str, Any]:
    """`osd dump`'s "blocklist" object: {addr: until}."""
    return {addr: stamp(until) for addr, until in osdmap.blocklist.items()}


HANDLERS: dict[str, Handler] = {
    "osd blocklist": _blocklist,
    "osd blacklist": _blocklist,
    "osd blocklist ls": _ls,
    "osd blacklist ls": _ls,
    "osd blocklist clear": _clear,
    "osd blacklist clear": _clear,
}

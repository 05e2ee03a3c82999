"""Plain text of `ceph mon dump` and `ceph fsid`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shoal.mon.render_osdmap import addrvec_text


def _stamp(text: str) -> str:
    """The monmap JSON writes "...764930Z"; the plain dump writes the same moment as "...764930+0000"."""
    return text[:-1] + "+0000" if text.endswith("Z") else text


def render_mon_dump(d: Mapping[str, Any]) -> str:
    text = (f"epoch {d.get('epoch', 0)}\nfsid {d.get('fsid', '')}\nlast_changed {_stamp(d.get('modified', ''))}\n"
            f"created {_stamp(d.get('created', ''))}\n"
            f"min_mon_release {d.get('min_mon_release', 0)} ({d.get('min_mon_release_name', '')})\n"
            f"election_strategy: {d.get('election_strategy', 1)}\n")
    if d.get("stretch_mode"):
        text += f"stretch_mode_enabled 1\ntiebreaker_mon {d.get('tiebreaker_mon', '')}\n"
    for mon in sorted(d.get("mons") or [], key=lambda m: m.get("rank", 0)):
        text += f"{mon.get('rank', 0)}: {addrvec_text(mon.get('public_addrs'))} mon.{mon.get('name', '')}\n"
    return text


def mon_dump_status(d: Mapping[str, Any]) -> str:
    """What `ceph mon dump` prints on stderr, in plain and JSON mode alike."""
    return f"dumped monmap epoch {d.get('epoch', 0)}\n"


def render_mon_stat(d: Mapping[str, Any]) -> str:
    """"e1: 1 mons at {a=[v2:...,v1:...]} removed_ranks: {}, election epoch 3, leader 0 a, quorum 0 a".

    Ceph's JSON lacks the addresses and the election epoch: the document carries them as
    `_mon_addrs` ({name: {"addrvec": [...]}}) and `_election_epoch`.
    """
    addrs = d.get("_mon_addrs") or {}
    quorum = sorted(d.get("quorum") or [], key=lambda m: m["rank"])
    names = sorted(addrs) if addrs else [m["name"] for m in quorum]
    mons = ",".join(f"{n}={addrvec_text(addrs.get(n))}" for n in names)
    leader = d.get("leader", "")
    leader_rank = next((m["rank"] for m in quorum if m["name"] == leader), 0)
    return (f"e{d.get('epoch', 0)}: {d.get('num_mons', len(names))} mons at {{{mons}}} removed_ranks: {{}}, "
            f"election epoch {d.get('_election_epoch', 0)}, leader {leader_rank} {leader}, "
            f"quorum {','.join(str(m['rank']) for m in quorum)} {','.join(m['name'] for m in quorum)}\n")


def render_version(d: Any) -> str:
    return f"{d['version'] if isinstance(d, Mapping) else d}\n"


def render_fsid(d: Any) -> str:
    return f"{d['fsid'] if isinstance(d, Mapping) else d}\n"

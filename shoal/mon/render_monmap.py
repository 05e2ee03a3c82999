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


def render_fsid(d: Any) -> str:
    return f"{d['fsid'] if isinstance(d, Mapping) else d}\n"

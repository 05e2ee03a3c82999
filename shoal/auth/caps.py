"""Capabilities: what an entity may do on the monitor and on OSDs (Ceph's cap language).

The grammars and evaluators live in `caps_osd` (OSDCap), `caps_mon` (MonCap and the
per-command permission table) and `caps_mgr` (mgr/mds caps, validated only); this
module is the one to import:

    OSDCap.parse("profile rbd pool=volumes").allows("volumes", "", "rbd_data.1.0",
                                                    read=False, write=True)
    MonCap.parse("profile rbd").allows_command("osd blocklist", {...})
    validate_caps("osd", text)   # what `ceph auth` runs before storing caps

Refusals as Ceph gives them: an OSD op that caps do not allow fails with EPERM; a
mon command answers EACCES with "access denied".
"""

from __future__ import annotations

from shoal.auth.caps_common import CapsError
from shoal.auth.caps_mgr import parse_mds_caps, parse_mgr_caps
from shoal.auth.caps_mon import MonCap, MonGrant, StringConstraint
from shoal.auth.caps_mon_commands import MON_COMMAND_PERMS, command_perms
from shoal.auth.caps_osd import OSDCap, OSDGrant, OSDMatch, OSDSpec

SERVICES = ("mon", "osd", "mgr", "mds")


def validate_caps(service: str, text: str) -> None:
    """Raise CapsError (EINVAL) naming the service and the problem, as `ceph auth` does.

    Messages are Ceph's: `unknown cap type 'foo'`, `osd capability parse failed,
    stopped at 'x' of 'allow x'`, `mon capability parse failed, stopped at end of ''`.
    Unlike the evaluators' `parse`, an empty string is refused: Ceph cannot parse it.
    """
    if not isinstance(text, str):
        raise CapsError(f"{service} caps must be a string")
    if service == "mon":
        if not text.strip():
            raise CapsError(f"mon capability parse failed, stopped at end of '{text}'")
        MonCap.parse(text)
    elif service == "osd":
        if not text.strip(" \t\n\v\f\r"):
            raise CapsError(f"osd capability parse failed, stopped at '{text.lstrip()}' of '{text}'")
        OSDCap.parse(text)
    elif service == "mgr":
        parse_mgr_caps(text)
    elif service == "mds":
        parse_mds_caps(text)
    else:
        raise CapsError(f"unknown cap type '{service}'")


__all__ = [
    "MON_COMMAND_PERMS",
    "SERVICES",
    "CapsError",
    "MonCap",
    "MonGrant",
    "OSDCap",
    "OSDGrant",
    "OSDMatch",
    "OSDSpec",
    "StringConstraint",
    "command_perms",
    "validate_caps",
]

"""Which connection mode (crc = authenticated frames, secure = encrypted) two peers use.

The client offers its `ms_mode` list in HELLO, the server picks the first offered mode it
also allows and says so in HELLO_REPLY. Neither message is authenticated, so the chosen
mode is bound into the session keys (`context`): a tampered negotiation breaks the first
sealed frame instead of silently downgrading the connection.
"""

from __future__ import annotations

from collections.abc import Sequence

from shoal.auth.cephx_core import AuthError

MODES = ("crc", "secure")


def choose_mode(offered: Sequence[str], allowed: Sequence[str]) -> str:
    for mode in offered:
        if mode in allowed and mode in MODES:
            return mode
    raise AuthError(f"no common connection mode: offered {list(offered)}, allowed {list(allowed)}")


def check_chosen(chosen: object, offered: Sequence[str]) -> str:
    if not isinstance(chosen, str) or chosen not in offered:
        raise AuthError(f"server chose connection mode {chosen!r}, not one of {list(offered)}")
    return chosen


def context(mode: str) -> bytes:
    return b"ms_mode=" + mode.encode()


def is_secure(mode: str) -> bool:
    return mode == "secure"

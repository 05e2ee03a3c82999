"""Shared pieces of the monitor command handlers.

A handler takes a `Request` (state, the client's command dict, the time) and returns a
`Reply`: the `CommandResult` plus the JSON-able data document (None when the command
only has a status line). Handlers never mutate the state: a command that changes the
OSD map returns a modified copy from `next_map`. Bad input raises `CommandError`,
which `commands.command_data` turns into a result with a negative errno.
"""

from __future__ import annotations

import errno
import json
import math
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shoal.mon.state import CommandResult, MonState
from shoal.placement.osdmap import OSDMap

Reply = tuple[CommandResult, Any]
Handler = Callable[["Request"], Reply]

JSON_FORMATS = ("json", "json-pretty")

# Fallbacks for options the config schema does not (yet) answer. `mon_max_pg_per_osd`
# is Shoal's default (Ceph's is 250); the others are Ceph 16's defaults.
CONF_DEFAULTS: dict[str, Any] = {
    "mon_allow_pool_delete": False,
    "mon_allow_pool_size_one": False,
    "mon_max_pg_per_osd": 1000,
    "mon_max_pool_pg_num": 65536,
    "osd_pool_default_size": 3,
    "osd_pool_default_min_size": 0,
    "osd_pool_default_pg_num": 32,
    "osd_pool_default_pgp_num": 0,
    "osd_pool_default_type": "replicated",
    "osd_pool_default_flag_hashpspool": True,
    "osd_pool_default_flag_nodelete": False,
    "osd_pool_default_flag_nopgchange": False,
    "osd_pool_default_flag_nosizechange": False,
    "mon_osd_full_ratio": 0.95,
    "mon_osd_backfillfull_ratio": 0.90,
    "mon_osd_nearfull_ratio": 0.85,
    "mon_warn_on_pool_no_app": True,
    "mon_warn_on_pool_no_app_grace": 300.0,
    "mon_osd_blocklist_default_expire": 3600.0,
}

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0", "")


class CommandError(Exception):
    """A command failed: `ret` is the negative errno, `outs` the status line."""

    def __init__(self, err: int, outs: str) -> None:
        super().__init__(outs)
        self.ret = -abs(err)
        self.outs = outs


@dataclass(frozen=True)
class Request:
    state: MonState
    cmd: dict[str, Any]
    now: float

    @property
    def prefix(self) -> str:
        return str(self.cmd.get("prefix", ""))

    @property
    def wants_json(self) -> bool:
        return self.cmd.get("format") in JSON_FORMATS

    @property
    def osdmap(self) -> OSDMap:
        return self.state.osdmap

    def conf(self, name: str) -> Any:
        return conf_value(self.state, name)

    def str_arg(self, name: str, default: str | None = None) -> str | None:
        return str_arg(self.cmd, name, default)

    def required_str(self, name: str, what: str) -> str:
        value = str_arg(self.cmd, name)
        if value is None or value == "":
            raise CommandError(errno.EINVAL, f"missing required parameter {name}({what})")
        return value

    def int_arg(self, name: str, default: int | None = None) -> int | None:
        return int_arg(self.cmd, name, default)

    def bool_arg(self, name: str) -> bool:
        return bool_arg(self.cmd, name)


def reply(data: Any = None, outs: str = "", new_osdmap: OSDMap | None = None, ret: int = 0) -> Reply:
    return CommandResult(ret=ret, outs=outs, new_osdmap=new_osdmap), data


def next_map(req: Request) -> OSDMap:
    """A copy of the current OSD map as the next epoch, stamped `now`."""
    new = req.osdmap.copy()
    new.epoch += 1
    new.modified = req.now
    return new


# -- configuration --------------------------------------------------------------------

def conf_value(state: MonState, name: str) -> Any:
    """`state.conf(name)` coerced to the type of Shoal's fallback, or the fallback."""
    default = CONF_DEFAULTS.get(name)
    try:
        value = state.conf(name)
    except KeyError:  # a schema that does not know the option
        value = None
    if value is None:
        return default
    if isinstance(default, bool):
        return _as_bool(value, default)
    if isinstance(default, int):
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return default
    if isinstance(default, float):
        try:
            return float(value)
        except (TypeError, ValueError):
            return default
    return value


def _as_bool(value: Any, default: bool) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return default


# -- arguments --------------------------------------------------------------------------

def str_arg(cmd: dict[str, Any], name: str, default: str | None = None) -> str | None:
    """A string argument; a one-element list (as some CLIs send) counts as its element."""
    value = cmd.get(name)
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if value is None:
        return default
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise CommandError(errno.EINVAL, f"invalid value for '{name}': expected a string")


def parse_int(text: str) -> int | None:
    """Strict base-10 integer (optional sign, surrounding blanks allowed), else None."""
    text = text.strip()
    if not re.fullmatch(r"[+-]?\d+", text):
        return None
    return int(text)


def int_arg(cmd: dict[str, Any], name: str, default: int | None = None) -> int | None:
    value = cmd.get(name)
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if value is None:
        return default
    if isinstance(value, bool):
        raise CommandError(errno.EINVAL, f"invalid value for '{name}': {value!r} is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    parsed = parse_int(value) if isinstance(value, str) else None
    if parsed is None:
        raise CommandError(errno.EINVAL, f"invalid value for '{name}': '{value}' is not an integer")
    return parsed


def bool_arg(cmd: dict[str, Any], name: str) -> bool:
    """A CephBool: JSON true/false, "true"/"1", or the CLI's `--name-with-dashes` spelling."""
    value = cmd.get(name)
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if value is None:
        return False
    if isinstance(value, bool | int):
        return bool(value)
    text = str(value).strip().lower()
    return text in _TRUE or text == "--" + name.replace("_", "-")


def list_arg(cmd: dict[str, Any], name: str) -> list[str]:
    value = cmd.get(name)
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, str):
        return value.split()
    return [str(value)]


_SI = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15, "e": 10**18}


def parse_si(text: str) -> int:
    """`1000`, `1k`, `2M`: a count with an optional decimal (SI) suffix."""
    m = re.fullmatch(r"\s*(\d+)\s*([kKmMgGtTpPeE]?)\s*", text)
    if not m:
        raise ValueError(f"not a non-negative integer with an optional SI suffix: '{text}'")
    return int(m.group(1)) * _SI[m.group(2).lower()]


def parse_iec(text: str) -> int:
    """`1073741824`, `1G`, `1GiB`, `512K`: a byte count with an optional binary suffix."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:([KMGTPE])(?:i?B?)?|B)?\s*", text, re.IGNORECASE)
    if not m:
        raise ValueError(f"not a non-negative integer with an optional unit: '{text}'")
    unit = (m.group(2) or "").upper()
    return int(m.group(1)) << (10 * " KMGTPE".index(unit) if unit else 0)


# -- output formatting --------------------------------------------------------------------

def stamp(t: float) -> str:
    """Ceph's utime_t text: `2026-11-23T21:36:56.822471+0000` (UTC); `0.000000` for zero."""
    if not t:
        return "0.000000"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")


def stamp_z(t: float) -> str:
    """The monmap's timestamp form: `2026-11-23T21:36:56.764930Z`."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def num(x: float) -> int | float:
    """A float as Ceph's formatter prints it: integral values without a fraction."""
    if isinstance(x, float) and math.isfinite(x) and x.is_integer():
        return int(x)
    return x


def f32(x: float) -> int | float:
    """A value Ceph keeps as a C `float`, widened to double as its JSON shows it."""
    return num(struct.unpack("<f", struct.pack("<f", x))[0])


def crush_weight(weight: float) -> int | float:
    """CRUSH weights are 16.16 fixed point: 0.0078 TiB shows as 0.0077972412109375."""
    return num(round(weight * 0x10000) / 0x10000)


def addr_with_nonce(addr: str) -> str:
    """`127.0.0.1:6789` → `127.0.0.1:6789/0` (what `mons[].addr` carries); `-` if unset."""
    if not addr:
        return "-"
    return addr if "/" in addr else addr + "/0"


def addrvec(addr: str) -> dict[str, Any]:
    """One legacy-style (`v1`) entry for the single address a Shoal daemon listens on."""
    if not addr:
        return {"addrvec": []}
    host, _, nonce = addr.partition("/")
    return {"addrvec": [{"type": "v1", "addr": host, "nonce": int(nonce or 0)}]}


def encode_json(data: Any, pretty: bool, trailing_newline: bool = False) -> bytes:
    """JSON as Ceph's formatters write it: compact (`json`) or indented by 4 (`json-pretty`).

    Ceph prints doubles with 17 significant digits (0.036596458405256271 where Python's
    repr says 0.03659645840525627), so this is a small encoder of its own.
    """
    text = _encode(data, 0, pretty)
    if pretty or trailing_newline:
        text += "\n"
    return text.encode("utf-8")


def _encode(x: Any, level: int, pretty: bool) -> str:
    if isinstance(x, str):
        return json.dumps(x, ensure_ascii=False)
    if x is True or x is False or x is None:
        return json.dumps(x)
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return format(x, ".17g") if math.isfinite(x) else "null"
    if isinstance(x, dict):
        sep = ": " if pretty else ":"
        items = [f"{json.dumps(str(k), ensure_ascii=False)}{sep}{_encode(v, level + 1, pretty)}"
                 for k, v in x.items()]
        return _wrap("{", items, "}", level, pretty)
    if isinstance(x, list | tuple):
        return _wrap("[", [_encode(v, level + 1, pretty) for v in x], "]", level, pretty)
    raise TypeError(f"cannot encode {type(x).__name__} as JSON")


def _wrap(open_: str, items: list[str], close: str, level: int, pretty: bool) -> str:
    if not items:
        return open_ + close
    if not pretty:
        return open_ + ",".join(items) + close
    inner = "\n" + "    " * (level + 1)
    return open_ + inner + ("," + inner).join(items) + "\n" + "    " * level + close


def plural(n: int, word: str) -> str:
    """`1 pg` / `2 pgs`: the way health summaries count."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"

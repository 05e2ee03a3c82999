"""Plain text of the `ceph auth` commands: keyrings (`get`, `get-or-create`), `ls` and `get-key`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _entries(data: Any) -> Sequence[Mapping[str, Any]]:
    if isinstance(data, Mapping):
        return data.get("auth_dump") or [data]
    return data


def render_keyring(data: Any, with_caps: bool) -> str:
    """`[client.x]` / `key = ...` / `caps mon = "..."` sections; `get-or-create` shows only the key."""
    text = ""
    for entry in _entries(data):
        text += f"[{entry['entity']}]\n\tkey = {entry['key']}\n"
        if with_caps:
            text += "".join(f'\tcaps {svc} = "{cap}"\n' for svc, cap in (entry.get("caps") or {}).items())
    return text


def render_auth_ls(data: Any) -> str:
    text = ""
    for entry in _entries(data):
        text += f"{entry['entity']}\n\tkey: {entry['key']}\n"
        text += "".join(f"\tcaps: [{svc}] {cap}\n" for svc, cap in (entry.get("caps") or {}).items())
    return text


def render_auth_key(data: Any) -> str:
    """`auth get-key` / `print-key`: the bare key, with no newline after it."""
    return str(data["key"] if isinstance(data, Mapping) else data)


def auth_get_status(data: Any) -> str:
    entries = _entries(data)
    return f"exported keyring for {entries[0]['entity']}\n" if entries else ""

"""Keyring files in Ceph's INI form, and finding an entity's key from the configuration.

A keyring is what `ceph auth get client.cinder -o FILE` writes:

    [client.cinder]
    \tkey = AQCqrgRrorLoARAA2GuzF9tY49XrM4uptfTb+Q==
    \tcaps mon = "profile rbd"
    \tcaps osd = "profile rbd pool=volumes, profile rbd pool=vms, profile rbd-read-only pool=images"

Reading follows Ceph's `KeyRing::decode_plaintext`: the text is parsed with the same
INI grammar as ceph.conf (`shoal.config.conffile`), a `[global]` section is skipped,
every other section must be an entity name, and its settings may only be `key`,
`caps <service>` or the obsolete `auid` (ignored). Anything else is an error naming
the file and line. Writing follows `KeyRing::print`: tab indent, caps sorted by
service and double-quoted with `"` escaped.

Keys are secrets: no message here ever contains one.
"""

from __future__ import annotations

import errno as _errno
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from shoal.auth.entity import is_valid_entity
from shoal.auth.keys import CryptoKey
from shoal.config.conffile import ConfFileError, parse_conf
from shoal.config.config import keyring_search_paths
from shoal.errors import InvalidArgument


class KeyringError(InvalidArgument, ValueError):
    """A keyring that cannot be read; the message names the file and line."""

    errno = _errno.EINVAL

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


@dataclass
class Entry:
    """One entity of a keyring or of the monitor's auth database."""

    name: str  # "client.glance"
    key: CryptoKey | None = None
    caps: dict[str, str] = field(default_factory=dict)  # {"mon": "profile rbd", "osd": "..."}

    def copy(self) -> Entry:
        return Entry(self.name, self.key, dict(self.caps))


# ------------------------------------------------------------------- reading

def parse_keyring(text: str, path: str = "<keyring>") -> dict[str, Entry]:
    """Entities of a keyring's text, in file order. KeyringError on anything malformed."""
    if not isinstance(text, str):
        raise KeyringError(path, None, "a keyring must be text")
    try:
        conf = parse_conf(text, path)
    except ConfFileError as exc:
        raise KeyringError(path, exc.line, exc.reason) from None
    entries: dict[str, Entry] = {}
    for name, section in conf.sections.items():
        if name == "global":  # a ceph.conf pasted in front of a keyring; Ceph skips it too
            continue
        if not is_valid_entity(name):
            raise KeyringError(path, section.line, f"bad entity name in keyring: {name}")
        entry = Entry(name)
        for norm, conf_entry in section.entries.items():
            _set_modifier(entry, norm, conf_entry.key, conf_entry.value, path, conf_entry.line)
        entries[name] = entry
    return entries


def _set_modifier(entry: Entry, norm: str, written: str, value: str, path: str, line: int) -> None:
    if norm == "key":
        try:
            entry.key = CryptoKey.decode(value)
        except ValueError as exc:
            # The value itself is never echoed: it may be a mistyped secret.
            raise KeyringError(path, line, f"bad key for [{entry.name}]: {exc}") from None
    elif norm.startswith("caps_") and len(norm) > 5:
        # Ceph turns `caps_mon` back into `caps mon` and takes what follows the space.
        entry.caps[norm[5:].replace("_", " ")] = value
    elif norm == "auid":
        pass  # obsolete; Ceph ignores it so old keyrings still load
    else:
        raise KeyringError(
            path, line, f"error setting modifier for [{entry.name}] type={written} val={value}"
        )


def read_keyring(path: str | os.PathLike[str]) -> dict[str, Entry]:
    """Read and parse a keyring file (text form; Ceph's binary `keyring.bin` is not supported)."""
    spath = os.fspath(path)
    with open(spath, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise KeyringError(spath, None, "not a text keyring (binary keyrings are not supported)") from None
    return parse_keyring(text, spath)


# ------------------------------------------------------------------- writing

def _quote_caps(caps: str) -> str:
    if "\n" in caps or "\r" in caps:
        raise ValueError("caps cannot contain line breaks in a keyring file")
    # Ceph escapes only '"'. A backslash is escaped too, but only when there is one,
    # so every ordinary keyring is byte-identical to Ceph's and a rare cap with a
    # backslash still reads back unchanged.
    if "\\" in caps:
        caps = caps.replace("\\", "\\\\")
    return '"' + caps.replace('"', '\\"') + '"'


def format_keyring(entries: Iterable[Entry]) -> str:
    """Keyring text in Ceph's layout, entries in the order given, caps sorted by service."""
    out: list[str] = []
    for entry in entries:
        if not is_valid_entity(entry.name) or any(c in entry.name for c in "]\n\r"):
            raise ValueError(f"cannot write entity name {entry.name!r} in a keyring")
        out.append(f"[{entry.name}]\n")
        if entry.key is not None:
            out.append(f"\tkey = {entry.key.encode()}\n")
        for service in sorted(entry.caps):
            if not service or not all(c.isalnum() or c in "-_." for c in service):
                raise ValueError(f"cannot write caps for service {service!r} in a keyring")
            out.append(f"\tcaps {service} = {_quote_caps(entry.caps[service])}\n")
    return "".join(out)


def write_keyring(path: str | os.PathLike[str], entries: Iterable[Entry], mode: int = 0o600) -> None:
    """Write a keyring atomically: temp file (mode 0600 from the start), fsync, rename, fsync dir.

    The file never exists with wider permissions or half-written contents, even
    after a crash.
    """
    spath = os.fspath(path)
    data = format_keyring(entries).encode("utf-8")
    directory = os.path.dirname(os.path.abspath(spath))
    fd, tmp = tempfile.mkstemp(prefix=".keyring.", suffix=".tmp", dir=directory)  # created 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, spath)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


# ------------------------------------------------------------------- looking a key up

def find_key(config: Any, entity_name: str) -> CryptoKey | None:
    """This entity's key from the configuration, with Ceph's precedence.

    Ceph (`KeyRing::from_ceph_context`) takes the **first keyring file of the search
    path that can be opened** — whether or not it holds the entity — and then lets a
    `key` option, else a `keyfile`, override that entry. So:

    1. `key` (base64 text) if set;
    2. else `keyfile` (a file holding only the base64 key) if set;
    3. else the entity's key in the first existing file of `keyring`
       (`shoal.config.config.keyring_search_paths`); None when that file lacks it or
       no file exists.

    A malformed key, keyfile or keyring raises ValueError (KeyringError names the file
    and line) rather than being mistaken for "no key".
    """
    key_text = config.get("key")
    if key_text:
        try:
            return CryptoKey.decode(str(key_text))
        except ValueError as exc:
            raise ValueError(f"option 'key' for {entity_name}: {exc}") from None
    keyfile = config.get("keyfile")
    if keyfile:
        try:
            with open(str(keyfile), "rb") as f:
                data = f.read()
        except OSError as exc:
            raise OSError(exc.errno, f"cannot read keyfile {keyfile}: {exc.strerror}") from None
        try:
            return CryptoKey.decode(data)
        except ValueError as exc:
            raise ValueError(f"keyfile {keyfile}: {exc}") from None
    for path in keyring_search_paths(config):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            continue  # Ceph moves on to the next path when open() fails
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise KeyringError(path, None, "not a text keyring (binary keyrings are not supported)") from None
        entry = parse_keyring(text, path).get(entity_name)
        return entry.key if entry is not None else None
    return None

"""The `ceph auth ...` monitor commands, answered as Ceph 16's AuthMonitor answers them.

`handle_auth_command(db, cmd, inbuf, now)` takes the auth database, the JSON command
(`{"prefix": "auth get-or-create", "entity": "client.glance", "caps": ["mon",
"profile rbd", "osd", "profile rbd pool=images"], "format": "json"}`), the input
buffer (`auth import` / `auth add` read a keyring from it, as `ceph ... -i FILE`
sends it) and the time, and returns `(ret, outbuf, outs, new_db)`. It never changes
`db`; `new_db` is a changed copy (version + 1) when the command changed entities.

Outputs are Ceph's (see `shared/reference/fixtures`):

* `get-or-create`: plain `[client.x]\\n\\tkey = ...\\n`; JSON `[{"entity", "key", "caps"}]`.
  Idempotent when the given caps equal the stored ones; otherwise EINVAL `key for
  client.x exists but cap mon does not match`.
* `get-or-create-key`, `get-key`, `print-key`: the bare key (no newline); JSON `{"key"}`.
* `get`: the keyring section; outs `exported keyring for client.x`.
* `ls`: `name\\n\\tkey: ...\\n\\tcaps: [svc] ...`, outs `installed auth entries:`;
  JSON `{"auth_dump": [...]}`.
* `export [entity]`: keyring text of one or all entities.
* `add`, `import` (keyring in `inbuf`), `caps`, `del`/`rm`.

As in Ceph, `auth del` of an entity that does not exist succeeds (ret 0) with
`entity client.x does not exist`.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Any

from shoal.auth.caps import CapsError, validate_caps
from shoal.auth.entity import is_valid_entity
from shoal.auth.keyring import Entry, KeyringError, format_keyring, parse_keyring
from shoal.auth.keys import CryptoKey
from shoal.mon.auth_db import AuthDB
from shoal.mon.commands_common import encode_json
from shoal.mon.state import CommandResult

# Prefixes that change the database (Ceph's prepare_command) and those that only read.
_WRITE = frozenset({"auth import", "auth add", "auth get-or-create-key", "auth get-or-create",
                    "auth caps", "auth del", "auth rm"})
_READ = frozenset({"auth export", "auth get", "auth get-key", "auth print-key", "auth print_key",
                   "auth list", "auth ls"})
AUTH_PREFIXES = _WRITE | _READ

Reply = tuple[int, bytes, str, AuthDB | None]


@dataclass
class AuthCommandResult(CommandResult):
    """A CommandResult that also carries the changed auth database, if any."""

    new_auth_db: AuthDB | None = None


class _Fail(Exception):
    def __init__(self, err: int, outs: str) -> None:
        super().__init__(outs)
        self.ret = -abs(err)
        self.outs = outs


@dataclass
class _Ctx:
    db: AuthDB
    cmd: dict[str, Any]
    inbuf: bytes
    now: float
    prefix: str

    @property
    def fmt(self) -> str | None:
        fmt = self.cmd.get("format")
        return fmt if fmt in ("json", "json-pretty") else None

    def out(self, data: Any) -> bytes:
        return encode_json(data, pretty=self.fmt == "json-pretty")

    def entity(self) -> str:
        value = self.cmd.get("entity")
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if value is None or value == "":
            raise _Fail(errno.EINVAL, "missing required parameter entity(<string>)")
        if not isinstance(value, str):
            raise _Fail(errno.EINVAL, "invalid value for 'entity': expected a string")
        return value

    def caps_pairs(self) -> list[tuple[str, str]]:
        raw = self.cmd.get("caps", [])
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list | tuple) or not all(isinstance(x, str) for x in raw):
            raise _Fail(errno.EINVAL, "invalid value for 'caps': expected a list of strings")
        if len(raw) % 2:
            raise _Fail(errno.EINVAL, "bad capabilities request; odd number of arguments")
        return [(raw[i], raw[i + 1]) for i in range(0, len(raw), 2)]


def _entry_json(entry: Entry, caps: dict[str, str] | None = None) -> dict[str, Any]:
    caps = entry.caps if caps is None else caps
    return {"entity": entry.name, "key": entry.key.encode() if entry.key else "",
            "caps": dict(sorted(caps.items()))}


def _keyring_out(ctx: _Ctx, entries: list[Entry]) -> bytes:
    if ctx.fmt:
        return ctx.out([_entry_json(e) for e in entries])
    return format_keyring(entries).encode("utf-8")


def _key_out(ctx: _Ctx, key: CryptoKey) -> bytes:
    if ctx.fmt:
        return ctx.out({"key": key.encode()})
    return key.encode().encode("ascii")


def _validated_caps(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Check every (service, caps) pair as Ceph's valid_caps does; later pairs win."""
    caps: dict[str, str] = {}
    for service, text in pairs:
        try:
            validate_caps(service, text)
        except CapsError as exc:
            raise _Fail(errno.EINVAL, str(exc)) from None
        caps[service] = text
    return caps


def _changed(ctx: _Ctx) -> AuthDB:
    new = ctx.db.copy()
    new.version += 1
    return new


def _read_keyring(ctx: _Ctx, what: str) -> dict[str, Entry]:
    try:
        text = ctx.inbuf.decode("utf-8")
    except UnicodeDecodeError:
        raise _Fail(errno.EINVAL, f"{what}: not a text keyring (binary keyrings are not supported)") from None
    try:
        return parse_keyring(text, "<input>")
    except KeyringError as exc:
        raise _Fail(errno.EINVAL, f"{what} {exc.reason}") from None


# ------------------------------------------------------------------- reading commands

def _get(ctx: _Ctx, name: str) -> Reply:
    entry = ctx.db.get(name)
    if entry is None:
        raise _Fail(errno.ENOENT, f"failed to find {name} in keyring")
    return 0, _keyring_out(ctx, [entry]), f"exported keyring for {name}", None


def _get_key(ctx: _Ctx, name: str) -> Reply:
    entry = ctx.db.get(name)
    if entry is None or entry.key is None:
        raise _Fail(errno.ENOENT, f"don't have {name}")
    return 0, _key_out(ctx, entry.key), "", None


def _ls(ctx: _Ctx) -> Reply:
    entries = ctx.db.sorted_entries()
    if ctx.fmt:
        return 0, ctx.out({"auth_dump": [_entry_json(e) for e in entries]}), "", None
    text = "".join(
        f"{e.name}\n\tkey: {e.key.encode() if e.key else ''}\n"
        + "".join(f"\tcaps: [{svc}] {e.caps[svc]}\n" for svc in sorted(e.caps))
        for e in entries
    )
    outs = "installed auth entries:\n" if text else "no installed auth entries!\n"
    return 0, text.encode("utf-8"), outs, None


def _export(ctx: _Ctx) -> Reply:
    if ctx.cmd.get("entity") in (None, "", []):
        return 0, _keyring_out(ctx, ctx.db.sorted_entries()), "exported master keyring", None
    name = ctx.entity()
    entry = ctx.db.get(name)
    if entry is None:
        # Ceph prints the (empty) auth record it failed to find, not the name.
        raise _Fail(errno.ENOENT, "no key for auth(key=AAAAAAAAAAAAAAAA with 0 caps)")
    key = entry.key.encode() if entry.key else ""
    return 0, _keyring_out(ctx, [entry]), f"export auth(key={key} with {len(entry.caps)} caps)", None


# ------------------------------------------------------------------- changing commands

def _get_or_create(ctx: _Ctx, name: str, pairs: list[tuple[str, str]]) -> Reply:
    wanted = _validated_caps(pairs)
    only_key = ctx.prefix == "auth get-or-create-key"
    existing = ctx.db.get(name)
    if existing is not None and existing.key is not None:
        for service in sorted(wanted):
            if existing.caps.get(service) != wanted[service]:
                raise _Fail(errno.EINVAL, f"key for {name} exists but cap {service} does not match")
        if only_key:
            return 0, _key_out(ctx, existing.key), "", None
        return 0, _new_keyring_out(ctx, existing), "", None
    new = _changed(ctx)
    entry = Entry(name, CryptoKey.generate(ctx.now), wanted)
    new.add(entry)
    if only_key:
        return 0, _key_out(ctx, entry.key), "", new  # type: ignore[arg-type]
    return 0, _new_keyring_out(ctx, entry), "", new


def _new_keyring_out(ctx: _Ctx, entry: Entry) -> bytes:
    """get-or-create shows the caps in JSON but only the key in plain text, as Ceph does."""
    if ctx.fmt:
        return ctx.out([_entry_json(entry)])
    return format_keyring([Entry(entry.name, entry.key, {})]).encode("utf-8")


def _add(ctx: _Ctx, name: str, pairs: list[tuple[str, str]]) -> Reply:
    has_keyring = len(ctx.inbuf) > 0
    keyring = _read_keyring(ctx, "error decoding keyring:") if has_keyring else {}
    new_caps = _validated_caps(pairs)
    key: CryptoKey | None = None
    if has_keyring:
        given = keyring.get(name)
        if given is None or given.key is None:
            raise _Fail(errno.EINVAL, f"key for {name} not found in provided keyring")
        if new_caps and given.caps:
            raise _Fail(errno.EINVAL, "caps cannot be specified both in keyring and in command")
        if not new_caps:
            new_caps = dict(given.caps)
        key = given.key
    existing = ctx.db.get(name)
    if existing is not None:
        if key is not None and existing.key is not None and existing.key.secret != key.secret:
            raise _Fail(errno.EEXIST, f"entity {name} exists but key does not match")
        if len(new_caps) != len(existing.caps):
            raise _Fail(errno.EINVAL, f"entity {name} exists but caps do not match")
        for service in sorted(new_caps):
            if existing.caps.get(service) != new_caps[service]:
                raise _Fail(errno.EINVAL, f"entity {name} exists but cap {service} does not match")
        return 0, b"", "", None  # the command restates what is there: nothing to do
    new = _changed(ctx)
    new.add(Entry(name, key or CryptoKey.generate(ctx.now), new_caps))
    return 0, b"", f"added key for {name}", new


def _import(ctx: _Ctx) -> Reply:
    if not ctx.inbuf:
        raise _Fail(errno.EINVAL, "auth import: no data supplied")
    entries = _read_keyring(ctx, "error decoding keyring")
    for entry in entries.values():
        if not entry.caps:
            raise _Fail(errno.EINVAL, "auth import: no caps supplied")
        if entry.key is None:
            raise _Fail(errno.EINVAL, f"auth import: no key for {entry.name}")
    new = _changed(ctx)
    for entry in entries.values():
        new.add(entry)
    if new.entities == ctx.db.entities:
        return 0, b"", "imported keyring", None
    return 0, b"", "imported keyring", new


def _caps(ctx: _Ctx, name: str, pairs: list[tuple[str, str]]) -> Reply:
    if ctx.db.get(name) is None:
        raise _Fail(errno.ENOENT, f"couldn't find entry {name}")
    caps = _validated_caps(pairs)
    new = _changed(ctx)
    new.set_caps(name, caps)
    return 0, b"", f"updated caps for {name}", new


def _del(ctx: _Ctx, name: str) -> Reply:
    if ctx.db.get(name) is None:
        return 0, b"", f"entity {name} does not exist", None
    new = _changed(ctx)
    new.remove(name)
    return 0, b"", "updated", new


# ------------------------------------------------------------------- dispatch

def _dispatch(ctx: _Ctx) -> Reply:
    prefix = ctx.prefix
    if prefix in _WRITE:
        pairs = ctx.caps_pairs()  # Ceph checks the caps list before the entity name
        if prefix == "auth import":
            return _import(ctx)
        name = ctx.entity()
        if not is_valid_entity(name):
            raise _Fail(errno.EINVAL, "bad entity name")
        if prefix in ("auth get-or-create", "auth get-or-create-key"):
            return _get_or_create(ctx, name, pairs)
        if prefix == "auth add":
            return _add(ctx, name, pairs)
        if prefix == "auth caps":
            return _caps(ctx, name, pairs)
        return _del(ctx, name)
    if prefix in ("auth ls", "auth list"):
        return _ls(ctx)
    if prefix == "auth export":
        if ctx.cmd.get("entity") not in (None, "", []) and not is_valid_entity(ctx.entity()):
            raise _Fail(errno.EINVAL, f"invalid entity_auth {ctx.entity()}")
        return _export(ctx)
    name = ctx.entity()
    if not is_valid_entity(name):
        raise _Fail(errno.EINVAL, f"invalid entity_auth {name}")
    if prefix == "auth get":
        return _get(ctx, name)
    return _get_key(ctx, name)


def handle_auth_command(db: AuthDB, cmd: dict[str, Any], inbuf: bytes, now: float) -> Reply:
    """Answer one `auth ...` command: (ret, outbuf, outs, new_db or None)."""
    prefix = cmd.get("prefix") if isinstance(cmd, dict) else None
    if not isinstance(prefix, str) or prefix not in AUTH_PREFIXES:
        return -errno.EINVAL, b"", "command not known", None
    ctx = _Ctx(db, cmd, bytes(inbuf or b""), now, prefix)
    try:
        return _dispatch(ctx)
    except _Fail as fail:
        return fail.ret, b"", fail.outs, None


def auth_command_result(db: AuthDB | None, cmd: dict[str, Any], inbuf: bytes, now: float) -> AuthCommandResult:
    """`handle_auth_command` as the CommandResult `commands.handle_command` returns."""
    if db is None:
        return AuthCommandResult(ret=-errno.EOPNOTSUPP, outs="this monitor was given no auth database")
    ret, outbuf, outs, new_db = handle_auth_command(db, cmd, inbuf, now)
    return AuthCommandResult(ret=ret, outbuf=outbuf, outs=outs, new_auth_db=new_db)

"""Ceph's admin socket protocol, sans-IO (ceph-facts §8; `src/pybind/ceph_daemon.py`).

One request per connection: the client sends a JSON command (`{"prefix": "perf dump"}`)
and a NUL byte; the server answers with a u32 big-endian length and that many bytes,
then closes. `ceph daemon` first asks `get_command_descriptions` (signatures keyed
`cmd000`, `cmd001`…), matches the words the operator typed against them and sends the
resulting dict. This module holds the framing, the signature format and that matching,
shared by the server (asok.py) and our `ceph daemon` (asok_client.py).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

MAX_REQUEST = 64 << 10  # a command is a small JSON object; anything bigger is junk
SOCK_VERSION = "2"  # CEPH_ADMIN_SOCK_VERSION, the answer to the legacy "0" ping


class RequestError(ValueError):
    pass


def frame_reply(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


def frame_request(cmd: dict[str, Any] | str) -> bytes:
    text = cmd if isinstance(cmd, str) else json.dumps(cmd)
    return text.encode() + b"\0"


def parse_request(raw: bytes) -> dict[str, Any]:
    """The command dict of one request (the bytes before the NUL).

    Old clients send bare words (`perf dump`) instead of JSON; Ceph accepts both."""
    text = raw.split(b"\0", 1)[0].decode("utf-8", errors="replace").strip()
    if not text:
        raise RequestError("empty request")
    if text.startswith("{"):
        try:
            cmd = json.loads(text)
        except ValueError as exc:
            raise RequestError(f"malformed JSON command: {exc}") from exc
        if not isinstance(cmd, dict) or not isinstance(cmd.get("prefix"), str):
            raise RequestError("command has no prefix")
        return cmd
    return {"prefix": text}


# -- signatures ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Param:
    name: str
    type: str = "CephString"  # CephString | CephInt | CephChoices
    req: bool = True
    many: bool = False  # n = "N": every remaining word
    strings: tuple[str, ...] = ()  # CephChoices

    def descriptor(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.many:
            d["n"] = "N"
        if not self.req:
            d["req"] = "false"
        if self.strings:
            d["strings"] = "|".join(self.strings)
        return d

    def usage(self) -> str:
        text = f"<{self.name}>" + ("..." if self.many else "")
        return text if self.req else f"[{text}]"


@dataclass(frozen=True)
class Signature:
    prefix: str
    params: tuple[Param, ...] = ()
    help: str = ""

    def descriptor(self) -> dict[str, Any]:
        return {"sig": [*self.prefix.split(), *(p.descriptor() for p in self.params)], "help": self.help,
                "module": "", "perm": "", "flags": 0}

    def usage(self) -> str:
        return " ".join([self.prefix, *(p.usage() for p in self.params)])


def describe(sigs: list[Signature]) -> dict[str, Any]:
    """The `get_command_descriptions` reply."""
    return {f"cmd{i:03d}": s.descriptor() for i, s in enumerate(sigs)}


def help_table(sigs: list[Signature]) -> dict[str, str]:
    """The `help` reply: usage -> help text, sorted as Ceph prints it."""
    return dict(sorted((s.usage(), s.help) for s in sigs))


def _sig_from_descriptor(desc: dict[str, Any]) -> Signature:
    words, params = [], []
    for item in desc.get("sig", []):
        if isinstance(item, str):
            words.append(item)
            continue
        params.append(Param(str(item.get("name")), str(item.get("type", "CephString")),
                            str(item.get("req", "true")).lower() not in ("false", "0"),
                            str(item.get("n", "1")) in ("N", "n"),
                            tuple(str(item.get("strings", "")).split("|")) if item.get("strings") else ()))
    return Signature(" ".join(words), tuple(params), str(desc.get("help", "")))


def match_words(descriptions: dict[str, Any], words: list[str]) -> dict[str, Any]:
    """The command dict for the words an operator typed (`config get rbd_cache`), as
    `ceph daemon` builds it from the descriptions; the longest matching prefix wins."""
    best: tuple[int, dict[str, Any]] | None = None
    errors: list[str] = []
    for desc in descriptions.values():
        sig = _sig_from_descriptor(desc)
        pw = sig.prefix.split()
        if words[:len(pw)] != pw:
            continue
        try:
            cmd = _bind(sig, words[len(pw):])
        except RequestError as exc:
            errors.append(str(exc))
            continue
        if best is None or len(pw) > best[0]:
            best = (len(pw), cmd)
    if best is None:
        raise RequestError(errors[0] if errors else f"invalid command: {' '.join(words)}")
    return best[1]


def _bind(sig: Signature, rest: list[str]) -> dict[str, Any]:
    cmd: dict[str, Any] = {"prefix": sig.prefix}
    for p in sig.params:
        if not rest:
            if p.req:
                raise RequestError(f"{sig.usage()}: missing required parameter {p.name}")
            break
        if p.many:
            cmd[p.name], rest = list(rest), []
            break
        word, rest = rest[0], rest[1:]
        if p.type == "CephInt":
            try:
                cmd[p.name] = int(word)
            except ValueError as exc:
                raise RequestError(f"{p.name}: {word!r} is not an integer") from exc
        elif p.strings and word not in p.strings:
            raise RequestError(f"{p.name}: {word!r} is not one of {'|'.join(p.strings)}")
        else:
            cmd[p.name] = word
    if rest:
        raise RequestError(f"{sig.usage()}: too many arguments ({' '.join(rest)})")
    return cmd


def render(value: Any, fmt: str | None) -> bytes:
    """A reply in the requested format; Ceph's default for the admin socket is json-pretty."""
    if fmt == "json":
        return json.dumps(value, separators=(",", ":")).encode()
    return (json.dumps(value, indent=4) + "\n").encode()

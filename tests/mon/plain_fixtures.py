"""Reader for `shared/reference/fixtures/plain-outputs.md`: the real Ceph plain outputs.

Each block is a ``` fence whose first line is "$ <command>", then the command's stdout with its
trailing newlines stripped (or "[no output]"; "[no trailing newline]" marks a missing final
newline), then optionally "[stderr]" and the stderr, then optionally "[exit N]". A block belongs
to the "## name" heading above it (error blocks have none).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(os.environ.get("SHOAL_SHARED", _REPO.parent / "shared")) / "reference" / "fixtures"


@dataclass(frozen=True)
class PlainBlock:
    name: str | None
    command: str
    stdout: str  # with its final newline restored (unless the fixture says it had none)
    stderr: str | None  # as in the fixture: trailing newlines stripped
    exit_code: int


def _block(name: str | None, lines: list[str]) -> PlainBlock:
    command = lines[0].removeprefix("$ ")
    body, stderr, exit_code = lines[1:], None, 0
    if body and re.fullmatch(r"\[exit \d+\]", body[-1]):
        exit_code = int(body.pop()[6:-1])
    if "[stderr]" in body:
        at = body.index("[stderr]")
        body, stderr = body[:at], "\n".join(body[at + 1:])
    if body == ["[no output]"] or not body:
        return PlainBlock(name, command, "", stderr, exit_code)
    if body[-1] == "[no trailing newline]":
        return PlainBlock(name, command, "\n".join(body[:-1]), stderr, exit_code)
    return PlainBlock(name, command, "\n".join(body) + "\n", stderr, exit_code)


@cache
def plain_blocks() -> dict[str, PlainBlock]:
    """The named blocks of plain-outputs.md, by heading name (the text before any " (")."""
    blocks: dict[str, PlainBlock] = {}
    name: str | None = None
    fence: list[str] | None = None
    for line in (FIXTURES / "plain-outputs.md").read_text().split("\n"):
        if fence is None and line.startswith("## "):
            name = line[3:].split(" (")[0].strip()
        elif fence is None and line == "```":
            fence = []
        elif fence is not None and line == "```":
            if fence and fence[0].startswith("$ ") and name is not None:
                blocks[name] = _block(name, fence)
            fence, name = None, None
        elif fence is not None:
            fence.append(line)
        elif line.startswith("# "):
            name = None  # the error section: blocks without names
    return blocks


def json_fixture(name: str) -> Any:
    return json.loads((FIXTURES / "json" / f"{name}.json").read_text())

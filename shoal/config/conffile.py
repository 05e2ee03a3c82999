"""ceph.conf parsing: INI text in, sections of `key -> value` out (sans-IO).

The same grammar serves keyring files, which are INI too. The rules, in the order
they apply to the text:

* a line ending in an odd number of backslashes continues on the next line (the
  backslash and the line break are dropped);
* blank lines and lines starting with `#` or `;` are comments;
* `[name]` starts a section (`global`, `mon`, `osd.0`, `client.cinder`...); sections
  may repeat and then merge;
* `key = value` or `key: value`; key spellings with spaces, dashes or underscores
  are the same key; if a key repeats, the last value wins (with a warning);
* a value is either quoted (`"..."` or `'...'`, where a backslash escapes the quote
  character or a backslash) or bare, in which case a `#` or `;` that starts the value
  or follows whitespace begins a trailing comment.

Keys the schema does not know are kept: a keyring pasted into ceph.conf
(`caps mon = "profile rbd"`) must parse, and later layers simply ignore them.
"""

from __future__ import annotations

import errno as _errno
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from shoal.config.options import normalize_name
from shoal.errors import InvalidArgument


class ConfFileError(InvalidArgument, ValueError):
    """A ceph.conf (or keyring) that does not parse; says which file and line."""

    errno = _errno.EINVAL

    def __init__(self, path: str, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


@dataclass
class ConfEntry:
    """One `key = value`: the value after unquoting and where it came from."""

    value: str
    line: int
    key: str  # the key as written, before normalisation (for messages)


@dataclass
class ConfSection:
    name: str
    line: int
    entries: dict[str, ConfEntry] = field(default_factory=dict)

    def values(self) -> dict[str, str]:
        return {k: e.value for k, e in self.entries.items()}


@dataclass
class ConfFile:
    """A parsed file: sections in file order, plus warnings worth showing an operator."""

    path: str
    sections: dict[str, ConfSection] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def get(self, section: str, key: str) -> str | None:
        sec = self.sections.get(section)
        if sec is None:
            return None
        entry = sec.entries.get(normalize_name(key))
        return entry.value if entry else None

    def section(self, name: str) -> dict[str, str]:
        sec = self.sections.get(name)
        return sec.values() if sec else {}

    def lookup(self, key: str, sections: Iterable[str]) -> tuple[str, ConfEntry] | None:
        """The entry for `key` from the last of `sections` (lowest precedence first) that has it."""
        found = None
        norm = normalize_name(key)
        for name in sections:
            sec = self.sections.get(name)
            if sec is not None and norm in sec.entries:
                found = (name, sec.entries[norm])
        return found

    def as_dict(self) -> dict[str, dict[str, str]]:
        return {name: sec.values() for name, sec in self.sections.items()}


_SECTION_RE = re.compile(r"\[\s*([^\]]*?)\s*\]\s*(?:[#;].*)?")


def _logical_lines(text: str) -> Iterable[tuple[int, str]]:
    """Join continued lines; yield (number of the first physical line, text)."""
    if text.startswith("\ufeff"):  # a BOM left by some editors
        text = text[1:]
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if not pending:
            start = number
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2 == 1:
            pending.append(line[:-1])
            continue
        pending.append(line)
        yield start, "".join(pending)
        pending = []
    if pending:  # a continuation on the last line has nothing to join: keep what there is
        yield start, "".join(pending)


def _parse_quoted(text: str, path: str, line: int) -> tuple[str, str]:
    """Parse a quoted value at the start of `text`; return (value, rest of line)."""
    quote = text[0]
    out: list[str] = []
    i = 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in (quote, "\\"):
            out.append(text[i + 1])
            i += 2
            continue
        if ch == quote:
            return "".join(out), text[i + 1 :]
        out.append(ch)
        i += 1
    raise ConfFileError(path, line, f"unterminated quoted value (missing closing {quote})")


def _parse_value(text: str, path: str, line: int) -> str:
    text = text.lstrip()
    if text[:1] in ('"', "'"):
        value, rest = _parse_quoted(text, path, line)
        rest = rest.strip()
        if rest and rest[0] not in "#;":
            raise ConfFileError(path, line, f"unexpected text after quoted value: {rest!r}")
        return value
    # A bare value ends at a comment that starts it or follows whitespace, so
    # `a#b` keeps its `#` while `a  # note` loses the note.
    m = re.search(r"(?:^|\s)[#;]", text)
    if m:
        text = text[: m.start()]
    return text.rstrip()


def parse_conf(text: str, path: str = "<string>") -> ConfFile:
    """Parse ceph.conf / keyring text. `path` is only used in messages."""
    conf = ConfFile(path)
    current: ConfSection | None = None
    for number, raw in _logical_lines(text):
        stripped = raw.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if stripped[0] == "[":
            m = _SECTION_RE.fullmatch(stripped)
            if not m:
                raise ConfFileError(path, number, f"malformed section header {stripped!r}")
            name = m.group(1)
            if not name:
                raise ConfFileError(path, number, "empty section name")
            current = conf.sections.get(name)
            if current is None:
                current = conf.sections[name] = ConfSection(name, number)
            continue
        sep = re.search(r"[=:]", stripped)
        if sep is None:
            raise ConfFileError(path, number, f"expected 'key = value', got {stripped!r}")
        key = stripped[: sep.start()].strip()
        if not key:
            raise ConfFileError(path, number, "missing option name before '='")
        if current is None:
            raise ConfFileError(
                path, number, f"option {key!r} is outside any section (put [global] above it)"
            )
        value = _parse_value(stripped[sep.end() :], path, number)
        norm = normalize_name(key)
        old = current.entries.get(norm)
        if old is not None:
            conf.warnings.append(
                f"{path}:{number}: {key!r} in [{current.name}] repeats line {old.line}; the later value wins"
            )
        current.entries[norm] = ConfEntry(value, number, key)
    return conf


# ------------------------------------------------------------------- writing

_BARE_SAFE = re.compile(r"[^\s\"'#;\\]([^#;\\\n\r]*[^\s\\])?")


def quote_value(value: str) -> str:
    """`value` as ceph.conf text that `parse_conf` reads back unchanged."""
    if "\n" in value or "\r" in value:
        raise ValueError("ceph.conf values cannot contain line breaks")
    # Bare when nothing in it could be read as a quote, comment, escape or padding.
    if _BARE_SAFE.fullmatch(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dump_conf(sections: Mapping[str, Mapping[str, str]]) -> str:
    """INI text for `{section: {key: value}}` (used to write ceph.conf for `shoal up`)."""
    out: list[str] = []
    for name, entries in sections.items():
        if not name or "]" in name or "\n" in name or name != name.strip():
            raise ValueError(f"cannot write section name {name!r}")
        out.append(f"[{name}]")
        for key, value in entries.items():
            if not re.fullmatch(r"[A-Za-z0-9_.\- ]+", key) or key != key.strip():
                raise ValueError(f"cannot write option name {key!r}")
            out.append(f"\t{key} = {quote_value(value)}")
        out.append("")
    return "\n".join(out)

"""Pieces shared by the capability grammars: the error, a small PEG scanner, networks.

Ceph writes its cap grammars with Boost.Spirit Qi, whose alternatives are *ordered*
and never revisited once one succeeds (a PEG). The parsers in `caps_osd`, `caps_mon`
and `caps_mgr` follow those grammars rule by rule with this scanner, so a string
Ceph rejects is rejected here too, and the "stopped at" position in the message is
the one Ceph reports.
"""

from __future__ import annotations

import errno as _errno
import ipaddress
import re
from collections.abc import Callable
from typing import TypeVar

from shoal.errors import InvalidArgument

T = TypeVar("T")

# Character classes of the grammars.
WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./-")
NETWORK_CHARS = frozenset("/.:abcdefABCDEF0123456789][")
ASCII_SPACE = " \t\n\v\f\r"  # Spirit's ascii::space (the OSD grammar's skipper and `spaces`)
MON_SPACE = " \n\t"  # the mon/mgr/mds grammars' `spaces`
BLANK = " \t"


class CapsError(InvalidArgument, ValueError):
    """A capability string that does not parse (Ceph answers EINVAL)."""

    errno = _errno.EINVAL


class NoMatch(Exception):
    """A grammar rule did not match at the scanner's position (internal to the parsers)."""


class Scanner:
    """A cursor over cap text with the primitives of the Spirit grammars."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    @property
    def rest(self) -> str:
        return self.text[self.pos:]

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def lit(self, word: str) -> str:
        if not self.text.startswith(word, self.pos):
            raise NoMatch
        self.pos += len(word)
        return word

    def run(self, chars: frozenset[str] | str, minimum: int = 1) -> str:
        """A run of characters from `chars` (greedy; Spirit's `+char_(...)` / `*char_(...)`)."""
        start = self.pos
        text = self.text
        while self.pos < len(text) and text[self.pos] in chars:
            self.pos += 1
        if self.pos - start < minimum:
            self.pos = start
            raise NoMatch
        return text[start:self.pos]

    def attempt(self, rule: Callable[[], T]) -> tuple[bool, T | None]:
        """Run `rule`; on NoMatch put the cursor back and report failure."""
        saved = self.pos
        try:
            return True, rule()
        except NoMatch:
            self.pos = saved
            return False, None

    def optional(self, rule: Callable[[], T], default: T) -> T:
        ok, value = self.attempt(rule)
        return value if ok else default  # type: ignore[return-value]

    def first(self, *rules: Callable[[], T]) -> T:
        """Ordered choice: the first rule that matches wins, the others are never tried."""
        for rule in rules:
            ok, value = self.attempt(rule)
            if ok:
                return value  # type: ignore[return-value]
        raise NoMatch

    # -- tokens shared by all grammars -----------------------------------------------------

    def quoted(self, allow_empty: bool) -> str:
        """`"..."` or `'...'` (no escapes; the other quote may appear inside)."""
        quote = self.peek()
        if quote not in ('"', "'"):
            raise NoMatch
        end = self.text.find(quote, self.pos + 1)
        if end < 0 or (end == self.pos + 1 and not allow_empty):
            raise NoMatch
        value = self.text[self.pos + 1:end]
        self.pos = end + 1
        return value

    def word(self) -> str:
        return self.run(WORD_CHARS)

    def string(self) -> str:
        """`str`: a non-empty quoted string or an unquoted word."""
        return self.first(lambda: self.quoted(False), self.word)

    def network(self, space: str) -> str:
        """`spaces network spaces <cidr>` (the caller makes it optional)."""
        self.run(space)
        self.lit("network")
        self.run(space)
        return self.run(NETWORK_CHARS)


def parse_grant_list(
    sc: Scanner, grant: Callable[[], T], separator: Callable[[], object]
) -> list[T]:
    """`grant % separator` in Spirit: one grant, then more after each separator.

    A separator not followed by a grant is given back, so the caller sees exactly
    where the list stopped. Raises NoMatch when not even one grant matches.
    """
    grants = [grant()]
    while True:
        saved = sc.pos
        try:
            separator()
            grants.append(grant())
        except NoMatch:
            sc.pos = saved
            return grants


# -- networks (`... network 10.0.0.0/8`) ---------------------------------------------------

def parse_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """A `network` clause's CIDR, or None when it is not one (such a grant never applies)."""
    if "/" not in text:
        return None
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def peer_ip(addr: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP of a peer address: `10.0.0.1`, `10.0.0.1:6789`, `v1:10.0.0.1:0/123`, `[::1]:6789`."""
    if not addr:
        return None
    text = addr.strip()
    for prefix in ("v1:", "v2:", "any:"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    text = text.split("/", 1)[0]
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def network_allows(network: str, addr: str | None) -> bool:
    """Whether a grant restricted to `network` applies to a peer at `addr`."""
    net = parse_network(network)
    ip = peer_ip(addr)
    return net is not None and ip is not None and ip.version == net.version and ip in net


# -- string constraints (`allow command X with k=v | k prefix v | k regex v`) -------------

def regex_full_match(pattern: str, value: str) -> bool:
    """Ceph matches `regex` constraints with std::regex (POSIX extended) over the whole value.

    Python's `re` reads the patterns Ceph's profiles and operators use the same way;
    a pattern it cannot compile matches nothing, as an invalid std::regex does in Ceph.
    """
    try:
        return re.fullmatch(pattern, value) is not None
    except (re.error, RecursionError, OverflowError):
        return False

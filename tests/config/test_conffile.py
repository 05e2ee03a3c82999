"""ceph.conf parsing: comments, quoting, continuations, name spellings, errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.config.conffile import ConfFileError, dump_conf, parse_conf, quote_value
from shoal.errors import InvalidArgument


def one(text: str, section: str = "global") -> dict[str, str]:
    return parse_conf(text, "ceph.conf").section(section)


def test_basic_sections_and_both_separators() -> None:
    conf = parse_conf(
        "[global]\nfsid = abc\nmon_host: 10.0.0.1\n\n[client.cinder]\nkeyring = /etc/ceph/x\n[osd.0]\nosd data=/d\n",
        "ceph.conf",
    )
    assert list(conf.sections) == ["global", "client.cinder", "osd.0"]
    assert conf.section("global") == {"fsid": "abc", "mon_host": "10.0.0.1"}
    assert conf.get("client.cinder", "keyring") == "/etc/ceph/x"
    assert conf.get("osd.0", "osd-data") == "/d"
    assert conf.get("mon", "x") is None and conf.get("global", "nope") is None


def test_name_spellings_are_one_key() -> None:
    got = one("[global]\nmon host = a\nrbd-cache = false\nrbd_cache_size = 1\n  log   file = /l\n")
    assert got == {"mon_host": "a", "rbd_cache": "false", "rbd_cache_size": "1", "log_file": "/l"}


@pytest.mark.parametrize(
    "line,value",
    [
        ("k = v # trailing", "v"),
        ("k = v ; trailing", "v"),
        ("k = v\t# tab before", "v"),
        ("k = a#b", "a#b"),  # no whitespace before '#': part of the value
        ("k = a;b", "a;b"),
        ("k = # only a comment", ""),
        ("k =", ""),
        ("k = [v2:10.0.0.1:3300,v1:10.0.0.1:6789]", "[v2:10.0.0.1:3300,v1:10.0.0.1:6789]"),
        ("k = a = b", "a = b"),
        ("k = x:y", "x:y"),
        ("k: x = y", "x = y"),
        ("k =    spaced value   ", "spaced value"),
        (r"k = C:\path\to", r"C:\path\to"),
    ],
)
def test_values_and_trailing_comments(line: str, value: str) -> None:
    assert one(f"[global]\n{line}\n") == {"k": value}


def test_whole_line_comments_and_blank_lines() -> None:
    text = "# top comment\n; another\n\n[global]\n   # indented comment\n\tk = v\n;k = ignored\n"
    assert one(text) == {"k": "v"}


@pytest.mark.parametrize(
    "line,value",
    [
        ('k = "quoted # not a comment ; either"', "quoted # not a comment ; either"),
        ('k = "with \\"escaped\\" quotes"', 'with "escaped" quotes'),
        ('k = "back\\\\slash"', "back\\slash"),
        ('k = "keep \\n as is"', "keep \\n as is"),
        ("k = 'single \"quotes\"'", 'single "quotes"'),
        ("k = 'it\\'s'", "it's"),
        ('k = "  padded  "', "  padded  "),
        ('k = ""', ""),
        ('k = "v"   # comment after', "v"),
        ('caps mon = "profile rbd"', "profile rbd"),
    ],
)
def test_quoted_values(line: str, value: str) -> None:
    got = one(f"[global]\n{line}\n")
    assert list(got.values()) == [value]


def test_continuation_lines() -> None:
    text = "[global]\nmon host = 10.0.0.1,\\\n10.0.0.2,\\\n10.0.0.3\nnext = x\n"
    assert one(text) == {"mon_host": "10.0.0.1,10.0.0.2,10.0.0.3", "next": "x"}


def test_continuation_keeps_line_numbers_of_the_first_line() -> None:
    conf = parse_conf("[global]\na = 1\\\n2\nb = 3\n")
    assert conf.sections["global"].entries["a"].line == 2
    assert conf.sections["global"].entries["b"].line == 4


def test_escaped_backslash_at_end_is_not_a_continuation() -> None:
    assert one("[global]\na = x\\\\\nb = y\n") == {"a": "x\\\\", "b": "y"}


def test_continuation_on_last_line() -> None:
    assert one("[global]\na = x\\") == {"a": "x"}


def test_crlf_and_bom() -> None:
    assert one('\ufeff[global]\r\nk = v\r\nj = "q"\r\n') == {"k": "v", "j": "q"}


def test_pasted_keyring_parses() -> None:
    # What os-brick writes: a keyring pasted into a conf, tabs and quoted caps included.
    text = (
        "[global]\nmon_host = 10.0.0.1:6789\n\n"
        "[client.cinder]\n"
        "\tkey = AQBLzNlf6fXTKRAAmfiO8sPL+ti4uwQmhtZrkA==\n"
        '\tcaps mon = "profile rbd"\n'
        '\tcaps osd = "profile rbd pool=volumes, profile rbd pool=vms, profile rbd-read-only pool=images"\n'
    )
    conf = parse_conf(text, "/tmp/brick.conf")
    sec = conf.section("client.cinder")
    assert sec["key"] == "AQBLzNlf6fXTKRAAmfiO8sPL+ti4uwQmhtZrkA=="
    assert sec["caps_mon"] == "profile rbd"
    assert sec["caps_osd"].startswith("profile rbd pool=volumes")
    assert conf.sections["client.cinder"].entries["caps_mon"].key == "caps mon"


def test_duplicate_keys_last_wins_with_a_warning() -> None:
    conf = parse_conf("[global]\nk = 1\nk = 2\n[global]\nk = 3\n", "c.conf")
    assert conf.get("global", "k") == "3"
    assert len(conf.warnings) == 2
    assert "c.conf:3" in conf.warnings[0] and "line 2" in conf.warnings[0]


def test_section_headers_tolerate_spaces_and_comments() -> None:
    conf = parse_conf("[ client.rgw.gw-1 ]  # a gateway\nk = v\n")
    assert conf.section("client.rgw.gw-1") == {"k": "v"}


def test_lookup_follows_section_precedence() -> None:
    conf = parse_conf("[global]\nk = g\nj = g\n[client]\nk = c\n[client.x]\nk = x\n")
    assert conf.lookup("k", ["global", "client", "client.x"])[1].value == "x"  # type: ignore[index]
    assert conf.lookup("j", ["global", "client", "client.x"])[0] == "global"  # type: ignore[index]
    assert conf.lookup("k", ["global", "client", "client.y"])[1].value == "c"  # type: ignore[index]
    assert conf.lookup("zzz", ["global"]) is None


@pytest.mark.parametrize(
    "text,line,reason",
    [
        ("[global]\nk = v\n[global\n", 3, "malformed section header"),
        ("[global]\n[]\n", 2, "empty section name"),
        ("k = v\n", 1, "outside any section"),
        ("[global]\n\njust words\n", 3, "expected 'key = value'"),
        ("[global]\n = v\n", 2, "missing option name"),
        ('[global]\nok = 1\nk = "never closed\n', 3, "unterminated quoted value"),
        ('[global]\nk = "a" b\n', 2, "unexpected text after quoted value"),
        ("[global]x\n", 1, "malformed section header"),
    ],
)
def test_errors_name_file_and_line(text: str, line: int, reason: str) -> None:
    with pytest.raises(ConfFileError) as info:
        parse_conf(text, "/etc/ceph/ceph.conf")
    err = info.value
    assert err.path == "/etc/ceph/ceph.conf" and err.line == line
    assert reason in str(err) and str(err).startswith(f"/etc/ceph/ceph.conf:{line}:")
    assert isinstance(err, ValueError) and isinstance(err, InvalidArgument)


@pytest.mark.parametrize(
    "value",
    ["plain", "", " lead", "trail ", "a # b", "a;b", '"q"', "'q'", "back\\", "\\n", "#x", "tab\tin", "ünï"],
)
def test_quote_value_round_trips(value: str) -> None:
    assert one(f"[global]\nk = {quote_value(value)}\n") == {"k": value}


def test_quote_value_refuses_line_breaks() -> None:
    with pytest.raises(ValueError):
        quote_value("a\nb")


# --- hypothesis: any conf we can write reads back the same

_value_chars = st.characters(
    blacklist_categories=("Cs",), blacklist_characters="\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
)
_values = st.text(_value_chars, max_size=30)
_lower = "abcdefghijklmnopqrstuvwxyz"
_words = st.text(_lower + "0123456789", min_size=1, max_size=6)
# Schema-style names: lower_snake_case words, starting with a letter.
_keys = st.builds(
    lambda first, rest: "_".join([first, *rest]),
    st.text(_lower, min_size=1, max_size=6),
    st.lists(_words, max_size=3),
)
_section_names = st.builds(
    str.__add__,
    st.text(_lower + "0123456789", min_size=1, max_size=1),
    st.text(_lower + "ABCXYZ0123456789._-", max_size=14),
)
_confs = st.dictionaries(_section_names, st.dictionaries(_keys, _values, max_size=6), max_size=5)


@settings(max_examples=150, deadline=None)
@given(_confs)
def test_round_trip_of_generated_conf_files(sections: dict[str, dict[str, str]]) -> None:
    text = dump_conf(sections)
    conf = parse_conf(text, "gen.conf")
    assert conf.as_dict() == sections
    assert conf.warnings == []


@settings(max_examples=100, deadline=None)
@given(_confs, st.sampled_from(["-", " "]))
def test_round_trip_with_other_key_spellings(sections: dict[str, dict[str, str]], sep: str) -> None:
    respelled = {
        name: {k.replace("_", sep): v for k, v in entries.items()} for name, entries in sections.items()
    }
    assert parse_conf(dump_conf(respelled)).as_dict() == sections


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_junk_either_parses_or_raises_conf_file_error(text: str) -> None:
    try:
        parse_conf(text, "junk.conf")
    except ConfFileError as exc:
        assert exc.line >= 1

"""Keyring files: Ceph's layout byte for byte, errors that name file and line, atomic 0600 writes,
and the key lookup order of `KeyRing::from_ceph_context`."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.auth.keyring import (
    Entry,
    KeyringError,
    find_key,
    format_keyring,
    parse_keyring,
    read_keyring,
    write_keyring,
)
from shoal.auth.keys import CryptoKey
from shoal.config.config import Config
from shoal.errors import InvalidArgument

CINDER_KEY = "AQCqrgRrorLoARAA2GuzF9tY49XrM4uptfTb+Q=="
GLANCE_KEY = "AQCprgRrhkyrMxAAfAzj5EJRkILSaeS44kiBgA=="
# `ceph auth get client.cinder` in real-ceph-transcripts.md (stdout)
CINDER_KEYRING = (
    "[client.cinder]\n"
    f"\tkey = {CINDER_KEY}\n"
    '\tcaps mon = "profile rbd"\n'
    '\tcaps osd = "profile rbd pool=volumes, profile rbd pool=vms, profile rbd-read-only pool=images"\n'
)


def test_ceph_keyring_parses_and_formats_back_byte_for_byte() -> None:
    entries = parse_keyring(CINDER_KEYRING, "ceph.client.cinder.keyring")
    assert list(entries) == ["client.cinder"]
    entry = entries["client.cinder"]
    assert entry.key is not None and entry.key.encode() == CINDER_KEY
    assert entry.caps == {
        "mon": "profile rbd",
        "osd": "profile rbd pool=volumes, profile rbd pool=vms, profile rbd-read-only pool=images",
    }
    assert format_keyring(entries.values()) == CINDER_KEYRING


def test_format_sorts_caps_by_service_and_keeps_entry_order() -> None:
    key = CryptoKey.decode(GLANCE_KEY)
    text = format_keyring([
        Entry("client.glance", key, {"osd": "profile rbd pool=images", "mgr": "profile rbd pool=images", "mon": "profile rbd"}),
        Entry("client.admin", key, {}),
    ])
    assert text == (
        f"[client.glance]\n\tkey = {GLANCE_KEY}\n"
        '\tcaps mgr = "profile rbd pool=images"\n\tcaps mon = "profile rbd"\n\tcaps osd = "profile rbd pool=images"\n'
        f"[client.admin]\n\tkey = {GLANCE_KEY}\n"
    )


def test_reading_is_as_lenient_as_ceph() -> None:
    text = (
        "# written by hand\n[global]\nfsid = x\n\n"
        f"[client.glance]\n    key={GLANCE_KEY}   ; comment\n"
        "caps_mon = 'allow r'\n  caps   osd = \"allow rwx pool=images\"\n auid = 18446744073709551615\n"
        "[client.nokey]\n\tcaps mon = \"allow r\"\n"
    )
    entries = parse_keyring(text)
    assert list(entries) == ["client.glance", "client.nokey"]  # [global] skipped
    assert entries["client.glance"].caps == {"mon": "allow r", "osd": "allow rwx pool=images"}
    assert entries["client.nokey"].key is None


@pytest.mark.parametrize(
    "text,line,reason",
    [
        ("[notanentity]\nkey = x\n", 1, "bad entity name in keyring: notanentity"),
        ("[client.a]\n\tkeyy = 1\n", 2, "error setting modifier for [client.a] type=keyy val=1"),
        ("[client.a]\n\tcaps = allow\n", 2, "error setting modifier for [client.a] type=caps val=allow"),
        ("[client.a]\n\tkey = notakey\n", 2, "bad key for [client.a]"),
        ('[client.a]\n\n\tcaps mon = "allow r\n', 3, "unterminated quoted value"),
        ("key = x\n", 1, "outside any section"),
        ("[client.a\n", 1, "malformed section header"),
    ],
)
def test_errors_name_the_file_and_line(text: str, line: int, reason: str) -> None:
    with pytest.raises(KeyringError) as info:
        parse_keyring(text, "/etc/ceph/k.keyring")
    assert info.value.line == line and reason in str(info.value)
    assert str(info.value).startswith(f"/etc/ceph/k.keyring:{line}: ")
    assert isinstance(info.value, ValueError) and isinstance(info.value, InvalidArgument)
    assert info.value.errno == errno.EINVAL


def test_a_bad_key_is_never_echoed() -> None:
    secretish = GLANCE_KEY[:-4] + "!!!!"
    with pytest.raises(KeyringError) as info:
        parse_keyring(f"[client.a]\nkey = {secretish}\n")
    assert secretish not in str(info.value)


def test_caps_with_quotes_and_backslashes_round_trip() -> None:
    caps = {"mon": 'allow command "osd blocklist" with addr regex "^[^/]+/[0-9]+$"', "osd": r"allow r object_prefix 'a\b'"}
    entry = Entry("client.x", CryptoKey.generate(), caps)
    text = format_keyring([entry])
    assert '\tcaps mon = "allow command \\"osd blocklist\\" with addr regex \\"^[^/]+/[0-9]+$\\""\n' in text
    assert parse_keyring(text)["client.x"] == entry


@pytest.mark.parametrize(
    "entry",
    [
        Entry("client.x", None, {"mon": "allow r\nallow w"}),
        Entry("nope", None, {}),
        Entry("client.]x", None, {}),
        Entry("client.x", None, {"mon = x": "allow r"}),
    ],
)
def test_unwritable_entries_are_refused(entry: Entry) -> None:
    with pytest.raises(ValueError):
        format_keyring([entry])


_caps_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["client", "osd", "mon", "mgr", "mds"]),
            st.text(st.characters(whitelist_categories=("Ll", "Lu", "Nd"), whitelist_characters="-_."), max_size=12),
            st.booleans(),
            st.dictionaries(st.sampled_from(["mon", "osd", "mgr", "mds"]), _caps_text, max_size=4),
        ),
        max_size=4,
        unique_by=lambda t: (t[0], t[1]),
    )
)
def test_format_then_parse_round_trips(specs: list[tuple[str, str, bool, dict[str, str]]]) -> None:
    entries = [Entry(f"{t}.{i}", CryptoKey.generate() if has_key else None, caps) for t, i, has_key, caps in specs]
    parsed = parse_keyring(format_keyring(entries))
    assert list(parsed.values()) == entries


@settings(max_examples=400)
@given(st.text(max_size=200))
def test_random_text_never_crashes_the_parser(text: str) -> None:
    try:
        entries = parse_keyring(text)
    except KeyringError:
        return
    for name, entry in entries.items():
        assert entry.name == name and "." in name


@settings(max_examples=200)
@given(st.binary(max_size=200))
def test_random_bytes_from_a_file_never_crash(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("kr") / "k"
    path.write_bytes(data)
    try:
        read_keyring(path)
    except KeyringError:
        pass


def test_write_is_0600_and_atomic(tmp_path: Path) -> None:
    path = tmp_path / "ceph.client.glance.keyring"
    path.write_text("old contents")
    os.chmod(path, 0o644)
    entry = Entry("client.glance", CryptoKey.decode(GLANCE_KEY), {"mon": "profile rbd"})
    write_keyring(path, [entry])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == f'[client.glance]\n\tkey = {GLANCE_KEY}\n\tcaps mon = "profile rbd"\n'
    assert read_keyring(path) == {"client.glance": entry}
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind
    write_keyring(str(path), [entry], mode=0o640)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "k"
    path.write_text("old")
    with pytest.raises(ValueError):
        write_keyring(path, [Entry("client.x", None, {"mon": "a\nb"})])
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["k"]


def test_binary_keyring_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "keyring.bin"
    path.write_bytes(b"\x01\xff\xfe\x00binary")
    with pytest.raises(KeyringError, match="binary keyrings are not supported"):
        read_keyring(path)


# -- find_key -----------------------------------------------------------------------------

def _conf(**options: str) -> Config:
    conf = Config("client", "glance")
    for name, value in options.items():
        conf.set(name, value)
    return conf


def _write(path: Path, name: str, key: str) -> None:
    path.write_text(f"[{name}]\n\tkey = {key}\n")


def test_find_key_from_the_first_existing_keyring(tmp_path: Path) -> None:
    first, second = tmp_path / "a.keyring", tmp_path / "b.keyring"
    _write(second, "client.glance", GLANCE_KEY)
    conf = _conf(keyring=f"{tmp_path}/missing.keyring,{first},{second}")
    assert find_key(conf, "client.glance") == CryptoKey.decode(GLANCE_KEY)  # missing + a absent: b is first
    _write(first, "client.cinder", CINDER_KEY)
    # Ceph semantics: the first keyring that opens is the one used, even without the entity.
    assert find_key(conf, "client.glance") is None
    assert find_key(conf, "client.cinder") == CryptoKey.decode(CINDER_KEY)


def test_find_key_option_key_and_keyfile_override_the_keyring(tmp_path: Path) -> None:
    kr = tmp_path / "k"
    _write(kr, "client.glance", GLANCE_KEY)
    keyfile = tmp_path / "glance.key"
    keyfile.write_text(CINDER_KEY + "\n")
    assert find_key(_conf(keyring=str(kr), keyfile=str(keyfile)), "client.glance") == CryptoKey.decode(CINDER_KEY)
    both = _conf(keyring=str(kr), keyfile=str(keyfile), key=GLANCE_KEY)
    assert find_key(both, "client.glance") == CryptoKey.decode(GLANCE_KEY)


def test_find_key_nothing_anywhere(tmp_path: Path) -> None:
    assert find_key(_conf(keyring=f"{tmp_path}/a,{tmp_path}/b"), "client.glance") is None


def test_find_key_errors_are_explicit(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="option 'key'"):
        find_key(_conf(key="garbage"), "client.glance")
    with pytest.raises(OSError, match="cannot read keyfile"):
        find_key(_conf(keyfile=str(tmp_path / "nope")), "client.glance")
    bad = tmp_path / "bad.keyring"
    bad.write_text("[client.glance]\nkey = nope\n")
    with pytest.raises(KeyringError, match=f"{bad}:2"):
        find_key(_conf(keyring=str(bad)), "client.glance")

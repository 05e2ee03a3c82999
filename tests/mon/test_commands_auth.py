"""`ceph auth ...` on the monitor: outputs compared with real Ceph's, errors, and the auth database."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.auth.keyring import Entry, format_keyring, parse_keyring
from shoal.auth.keys import CryptoKey
from shoal.mon import commands
from shoal.mon.auth_db import INITIAL_CAPS, OSD_CAPS, AuthDB, AuthDBError, osd_entry
from shoal.mon.commands_auth import AUTH_PREFIXES, AuthCommandResult, handle_auth_command
from shoal.mon.state import MonMap, MonState
from shoal.placement.osdmap import OSDMap

FIXTURES = Path(os.environ.get("SHOAL_SHARED", Path(__file__).resolve().parents[3] / "shared")) / "reference" / "fixtures"
NOW = 1_795_469_900.25
GLANCE_CAPS = ["mon", "profile rbd", "osd", "profile rbd pool=images"]


def run(db: AuthDB, prefix: str, inbuf: bytes = b"", **args: Any) -> tuple[int, bytes, str, AuthDB | None]:
    return handle_auth_command(db, {"prefix": prefix, **args}, inbuf, NOW)


def fixture(name: str) -> bytes:
    """A JSON capture as the monitor sends it (the `ceph` CLI prints a newline before JSON)."""
    path = FIXTURES / "json" / name
    if not path.exists():
        pytest.skip("shared fixtures not available")
    return path.read_bytes().lstrip(b"\n")


def fixture_db() -> AuthDB:
    """The auth database of the real cluster the fixtures were captured from."""
    db = AuthDB()
    for item in json.loads(fixture("ceph-auth-ls.json"))["auth_dump"]:
        db.add(Entry(item["entity"], CryptoKey.decode(item["key"]), item["caps"]))
    return db


def plain_block(name: str) -> tuple[str, str]:
    """(stdout, stderr) of a block of fixtures/plain-outputs.md."""
    text = (FIXTURES / "plain-outputs.md").read_text()
    body = text.split(f"## {name}\n", 1)[1].split("```\n", 2)[1]
    lines = body.split("\n", 1)[1]  # drop the `$ command` line
    out, _, err = lines.partition("[stderr]\n")
    return out, err


def _glance(db: AuthDB | None = None) -> AuthDB:
    ret, _, _, new = run(db or AuthDB(), "auth get-or-create", entity="client.glance", caps=GLANCE_CAPS)
    assert ret == 0 and new is not None
    return new


# -- get-or-create ------------------------------------------------------------------------------

def test_get_or_create_prints_the_new_keyring_section() -> None:
    db = AuthDB()
    ret, out, outs, new = run(db, "auth get-or-create", entity="client.glance", caps=GLANCE_CAPS)
    assert (ret, outs) == (0, "") and new is not None
    entry = new.get("client.glance")
    assert entry is not None and entry.key is not None
    assert entry.caps == {"mon": "profile rbd", "osd": "profile rbd pool=images"}
    assert out == f"[client.glance]\n\tkey = {entry.key.encode()}\n".encode()  # the transcript's layout
    assert entry.key.created == (1_795_469_900, 250_000_000)
    assert new.version == db.version + 1 and len(db) == 0  # the input is never changed


def test_get_or_create_is_idempotent_and_refuses_other_caps() -> None:
    db = _glance()
    key = db.get("client.glance").key.encode()  # type: ignore[union-attr]
    again = run(db, "auth get-or-create", entity="client.glance", caps=GLANCE_CAPS)
    assert again == (0, f"[client.glance]\n\tkey = {key}\n".encode(), "", None)
    fewer = run(db, "auth get-or-create", entity="client.glance", caps=["osd", "profile rbd pool=images"])
    assert fewer[0] == 0 and fewer[3] is None  # the caps given must match; the others are not compared
    assert run(db, "auth get-or-create", entity="client.glance")[0] == 0
    assert run(db, "auth get-or-create", entity="client.glance", caps=["mon", "allow r", "osd", "allow rwx"]) == (
        -errno.EINVAL, b"", "key for client.glance exists but cap mon does not match", None)
    assert run(db, "auth get-or-create", entity="client.glance", caps=["mgr", "profile rbd"]) == (
        -errno.EINVAL, b"", "key for client.glance exists but cap mgr does not match", None)


def test_get_or_create_json_is_cephs() -> None:
    want = fixture("ceph-auth-get-or-create.json")
    key = json.loads(want)[0]["key"]
    db = AuthDB()
    db.add(Entry("client.glance", CryptoKey.decode(key),
                 {"mon": "profile rbd", "osd": "profile rbd pool=images", "mgr": "profile rbd pool=images"}))
    caps = ["mon", "profile rbd", "osd", "profile rbd pool=images", "mgr", "profile rbd pool=images"]
    ret, out, outs, new = run(db, "auth get-or-create", entity="client.glance", caps=caps, format="json")
    assert (ret, out, outs, new) == (0, want, "", None)
    created = run(AuthDB(), "auth get-or-create", entity="client.glance", caps=caps, format="json")
    doc = json.loads(created[1])
    assert list(doc[0]) == ["entity", "key", "caps"] and list(doc[0]["caps"]) == ["mgr", "mon", "osd"]


def test_get_or_create_key() -> None:
    ret, out, outs, new = run(AuthDB(), "auth get-or-create-key", entity="client.a", caps=["mon", "allow r"])
    assert ret == 0 and new is not None and out == new.get("client.a").key.encode().encode()  # type: ignore[union-attr]
    assert run(new, "auth get-or-create-key", entity="client.a", format="json")[1] == (
        json.dumps({"key": out.decode()}, separators=(",", ":")).encode())


def test_caps_are_validated_before_anything_is_stored() -> None:
    assert run(AuthDB(), "auth get-or-create", entity="client.a", caps=["mon", "allow wr"]) == (
        -errno.EINVAL, b"", "mon capability parse failed, stopped at 'r' of 'allow wr'", None)
    assert run(AuthDB(), "auth get-or-create", entity="client.a", caps=["foo", "allow *"]) == (
        -errno.EINVAL, b"", "unknown cap type 'foo'", None)
    assert run(AuthDB(), "auth get-or-create", entity="client.a", caps=["mon"]) == (
        -errno.EINVAL, b"", "bad capabilities request; odd number of arguments", None)
    assert run(AuthDB(), "auth get-or-create", entity="glance", caps=[]) == (-errno.EINVAL, b"", "bad entity name", None)
    assert run(AuthDB(), "auth get-or-create")[:3] == (-errno.EINVAL, b"", "missing required parameter entity(<string>)")


# -- reading ----------------------------------------------------------------------------------

def test_get_key_has_no_trailing_newline() -> None:
    db = _glance()
    key = db.get("client.glance").key.encode()  # type: ignore[union-attr]
    assert run(db, "auth get-key", entity="client.glance") == (0, key.encode(), "", None)
    assert run(db, "auth print-key", entity="client.glance")[1] == key.encode()
    assert run(db, "auth print_key", entity="client.glance")[1] == key.encode()
    assert run(db, "auth get-key", entity="client.glance", format="json")[1] == f'{{"key":"{key}"}}'.encode()
    assert run(db, "auth get-key", entity="client.nope") == (-errno.ENOENT, b"", "don't have client.nope", None)
    assert run(db, "auth get-key", entity="nope")[:3] == (-errno.EINVAL, b"", "invalid entity_auth nope")


def test_get_plain_and_json_as_ceph() -> None:
    db = fixture_db()
    out, err = plain_block("ceph-auth-get")
    assert run(db, "auth get", entity="client.glance") == (0, out.encode(), err.rstrip("\n"), None)
    want = fixture("ceph-auth-get.json")
    assert run(db, "auth get", entity="client.glance", format="json") == (0, want, "exported keyring for client.glance", None)
    assert run(db, "auth get", entity="client.nope") == (-errno.ENOENT, b"", "failed to find client.nope in keyring", None)


def test_get_output_is_a_keyring_file() -> None:
    db = _glance()
    out = run(db, "auth get", entity="client.glance")[1]
    assert parse_keyring(out.decode())["client.glance"] == db.get("client.glance")


def test_ls_plain_and_json_as_ceph() -> None:
    db = fixture_db()
    out, err = plain_block("ceph-auth-ls")
    assert run(db, "auth ls") == (0, out.encode(), "installed auth entries:\n", None)
    assert err.startswith("installed auth entries:")
    assert run(db, "auth list")[1] == out.encode()
    assert run(db, "auth ls", format="json") == (0, fixture("ceph-auth-ls.json"), "", None)
    pretty = run(db, "auth ls", format="json-pretty")[1]
    assert json.loads(pretty) == json.loads(fixture("ceph-auth-ls.json")) and pretty.endswith(b"\n")
    assert run(AuthDB(), "auth ls") == (0, b"", "no installed auth entries!\n", None)


def test_export() -> None:
    db = _glance(AuthDB.create_initial(now=NOW))
    ret, out, outs, _ = run(db, "auth export")
    assert (ret, outs) == (0, "exported master keyring")
    assert out.decode() == format_keyring(db.sorted_entries())
    entry = db.get("client.glance")
    ret, out, outs, _ = run(db, "auth export", entity="client.glance")
    assert out.decode() == format_keyring([entry])  # type: ignore[list-item]
    assert outs == f"export auth(key={entry.key.encode()} with 2 caps)"  # type: ignore[union-attr]
    assert json.loads(run(db, "auth export", format="json")[1])[0]["entity"] == "client.admin"
    assert run(db, "auth export", entity="client.nope")[0] == -errno.ENOENT


# -- changing ---------------------------------------------------------------------------------

def test_del_and_rm() -> None:
    db = _glance()
    ret, out, outs, new = run(db, "auth del", entity="client.glance")
    assert (ret, out, outs) == (0, b"", "updated") and new is not None and "client.glance" not in new
    assert "client.glance" in db
    assert run(db, "auth rm", entity="client.glance")[3] is not None
    # As in Ceph, deleting what is not there succeeds and says so.
    assert run(db, "auth del", entity="client.nope") == (0, b"", "entity client.nope does not exist", None)
    assert run(db, "auth rm", entity="bad")[:3] == (-errno.EINVAL, b"", "bad entity name")


def test_caps_replaces_all_caps() -> None:
    db = _glance()
    ret, _, outs, new = run(db, "auth caps", entity="client.glance", caps=["osd", "allow r"])
    assert (ret, outs) == (0, "updated caps for client.glance")
    assert new.get("client.glance").caps == {"osd": "allow r"}  # type: ignore[union-attr]
    assert new.get("client.glance").key == db.get("client.glance").key  # type: ignore[union-attr]
    assert run(db, "auth caps", entity="client.nope", caps=["osd", "allow r"]) == (
        -errno.ENOENT, b"", "couldn't find entry client.nope", None)
    assert run(db, "auth caps", entity="client.glance", caps=["osd", "allow bogus"])[0] == -errno.EINVAL
    assert run(db, "auth caps", entity="client.glance", caps=["rgw", "allow *"])[2] == "unknown cap type 'rgw'"


def test_add_with_and_without_a_keyring() -> None:
    ret, _, outs, db = run(AuthDB(), "auth add", entity="client.a", caps=["mon", "allow r"])
    assert (ret, outs) == (0, "added key for client.a") and db is not None
    # restating what is there is a no-op; anything else is refused
    assert run(db, "auth add", entity="client.a", caps=["mon", "allow r"]) == (0, b"", "", None)
    assert run(db, "auth add", entity="client.a") == (-errno.EINVAL, b"", "entity client.a exists but caps do not match", None)
    assert run(db, "auth add", entity="client.a", caps=["mon", "allow w"])[2] == "entity client.a exists but cap mon does not match"
    key = CryptoKey.generate()
    keyring = format_keyring([Entry("client.b", key, {"osd": "allow rw"})]).encode()
    ret, _, outs, db2 = run(db, "auth add", keyring, entity="client.b")
    assert (ret, outs) == (0, "added key for client.b") and db2.get("client.b") == Entry("client.b", key, {"osd": "allow rw"})  # type: ignore[union-attr]
    no_caps = format_keyring([Entry("client.c", key, {})]).encode()
    assert run(db, "auth add", no_caps, entity="client.c", caps=["mon", "allow r"])[3].get("client.c").key == key  # type: ignore[union-attr]
    assert run(db, "auth add", keyring, entity="client.b", caps=["mon", "allow r"])[2] == (
        "caps cannot be specified both in keyring and in command")
    assert run(db, "auth add", keyring, entity="client.z")[2] == "key for client.z not found in provided keyring"
    other = format_keyring([Entry("client.a", CryptoKey.generate(), {"mon": "allow r"})]).encode()
    assert run(db, "auth add", other, entity="client.a")[:3] == (
        -errno.EEXIST, b"", "entity client.a exists but key does not match")
    assert run(db, "auth add", b"[nope]\n", entity="client.a")[0] == -errno.EINVAL


def test_import() -> None:
    db = _glance()
    new_key = CryptoKey.generate()
    text = format_keyring([Entry("client.glance", new_key, {"mon": "allow r"}),
                           Entry("client.x", CryptoKey.generate(), {"osd": "allow *"})])
    ret, out, outs, new = run(db, "auth import", text.encode())
    assert (ret, out, outs) == (0, b"", "imported keyring") and new is not None
    assert new.get("client.glance") == Entry("client.glance", new_key, {"mon": "allow r"})  # replaced
    assert "client.x" in new
    assert run(new, "auth import", text.encode())[3] is None  # nothing new
    assert run(db, "auth import") == (-errno.EINVAL, b"", "auth import: no data supplied", None)
    nocaps = format_keyring([Entry("client.y", new_key, {})]).encode()
    assert run(db, "auth import", nocaps) == (-errno.EINVAL, b"", "auth import: no caps supplied", None)
    bad = run(db, "auth import", b"[client.a]\nkey = nope\n")
    assert bad[0] == -errno.EINVAL and bad[2].startswith("error decoding keyring bad key for [client.a]")
    assert run(db, "auth import", b"\xff\xfe")[0] == -errno.EINVAL


def test_unknown_auth_prefix() -> None:
    assert run(AuthDB(), "auth rotate", entity="client.a") == (-errno.EINVAL, b"", "command not known", None)
    assert handle_auth_command(AuthDB(), {"prefix": ["x"]}, b"", NOW)[0] == -errno.EINVAL  # type: ignore[dict-item]


# -- through mon.commands ---------------------------------------------------------------------

def _state() -> MonState:
    return MonState(osdmap=OSDMap(fsid="f", epoch=1), monmap=MonMap(fsid="f"))


def test_handle_command_routes_auth_prefixes() -> None:
    assert all(p.startswith("auth ") for p in AUTH_PREFIXES)
    db = AuthDB()
    cmd = {"prefix": "auth get-or-create", "entity": "client.a", "caps": ["mon", "allow r"]}
    result = commands.handle_command(_state(), cmd, NOW, auth_db=db)
    assert isinstance(result, AuthCommandResult) and result.ret == 0 and result.new_auth_db is not None
    assert result.outbuf.startswith(b"[client.a]\n\tkey = AQ")
    imported = commands.handle_command(
        _state(), {"prefix": "auth import"}, NOW, auth_db=db,
        inbuf=format_keyring([Entry("client.b", CryptoKey.generate(), {"mon": "allow r"})]).encode())
    assert imported.ret == 0 and "client.b" in imported.new_auth_db  # type: ignore[attr-defined,operator]
    no_db = commands.handle_command(_state(), cmd, NOW)
    assert no_db.ret == -errno.EOPNOTSUPP
    assert commands.handle_command(_state(), {"prefix": "auth rotate"}, NOW).outs == "command not known"


# -- the database ------------------------------------------------------------------------------

def test_initial_database_is_cephs() -> None:
    admin = CryptoKey.generate()
    db = AuthDB.create_initial(now=NOW, admin_key=admin, extra=[osd_entry(0), osd_entry(1)])
    assert db.get("client.admin") == Entry("client.admin", admin, INITIAL_CAPS["client.admin"])
    assert [e.name for e in db] == [
        "osd.0", "osd.1", "client.admin", "client.bootstrap-mds", "client.bootstrap-mgr", "client.bootstrap-osd",
        "client.bootstrap-rbd", "client.bootstrap-rbd-mirror", "client.bootstrap-rgw",
    ]
    assert db.get("osd.1").caps == OSD_CAPS  # type: ignore[union-attr]
    assert db.invalid_caps() == []


def test_entities_sort_like_ceph() -> None:
    db = AuthDB()
    for name in ["mgr.x", "client.b", "osd.10", "mon.", "osd.2", "client.a", "mds.a"]:
        db.add(Entry(name, CryptoKey.generate(), {}))
    assert [e.name for e in db.sorted_entries()] == ["mon.", "mds.a", "osd.10", "osd.2", "client.a", "client.b", "mgr.x"]


def test_to_dict_round_trip_and_refusals() -> None:
    db = _glance(AuthDB.create_initial(now=NOW))
    data = json.loads(json.dumps(db.to_dict()))
    back = AuthDB.from_dict(data)
    assert back == db and back.version == db.version
    with pytest.raises(AuthDBError, match="unsupported format 2"):
        AuthDB.from_dict({**data, "format": 2})
    with pytest.raises(AuthDBError, match="bad key for client.x"):
        AuthDB.from_dict({"format": 1, "entities": [{"entity": "client.x", "key": "nope", "caps": {}}]})
    with pytest.raises(AuthDBError, match="bad entity name"):
        AuthDB.from_dict({"format": 1, "entities": [{"entity": "x", "key": None}]})
    with pytest.raises(AuthDBError, match="bad caps"):
        AuthDB.from_dict({"format": 1, "entities": [{"entity": "client.x", "key": db.get("client.admin").key.encode(),  # type: ignore[union-attr]
                                                      "caps": {"mon": 1}}]})


def test_database_edits() -> None:
    db = AuthDB()
    with pytest.raises(ValueError):
        db.add(Entry("client.a", None, {}))
    with pytest.raises(ValueError):
        db.add(Entry("a", CryptoKey.generate(), {}))
    db.add(Entry("client.a", CryptoKey.generate(), {"mon": "allow r"}))
    db.set_caps("client.a", {"osd": "allow bogus"})
    assert db.caps_of("client.a", "osd") == "allow bogus"
    assert db.invalid_caps() == [("client.a", "client.a osd capability parse failed, stopped at 'allow bogus' of 'allow bogus'")]
    with pytest.raises(KeyError):
        db.set_caps("client.b", {})
    assert db.remove("client.a") and not db.remove("client.a")


# -- robustness --------------------------------------------------------------------------------

_values = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20),
                    st.lists(st.text(max_size=15), max_size=5), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@settings(max_examples=300)
@given(st.sampled_from(sorted(AUTH_PREFIXES)), st.dictionaries(st.sampled_from(["entity", "caps", "format", "x"]), _values),
       st.binary(max_size=60))
def test_random_commands_never_crash(prefix: str, args: dict[str, Any], inbuf: bytes) -> None:
    db = _glance()
    before = db.to_dict()
    ret, out, outs, new = handle_auth_command(db, {"prefix": prefix, **args}, inbuf, NOW)
    assert isinstance(ret, int) and ret <= 0 and isinstance(out, bytes) and isinstance(outs, str)
    assert new is None or isinstance(new, AuthDB)
    assert db.to_dict() == before

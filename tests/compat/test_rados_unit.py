"""python-rados compatibility that needs no cluster: exceptions, constants, configuration, state.

Expected strings and classes come from real python3-rados 16.2.15 (fixtures/python-errors.json)
and from Ceph's rados.pyx.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import socket
import time
from pathlib import Path

import pytest

import rados
from shoal.compat import rados as compat_rados
from shoal.config import config as config_mod

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(os.environ.get("SHOAL_SHARED", REPO.parent / "shared")) / "reference" / "fixtures"


@pytest.fixture(autouse=True)
def no_real_conf(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep /etc/ceph, ~/.ceph, ./ceph.conf and CEPH_* of the machine out of these tests."""
    monkeypatch.setattr(config_mod, "ETC_DIR", str(tmp_path / "etc-ceph"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CEPH_CONF", raising=False)
    monkeypatch.delenv("CEPH_ARGS", raising=False)
    monkeypatch.chdir(tmp_path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- module surface -------------------------------------------------------------------------------

def test_top_level_module_is_the_compat_module() -> None:
    assert rados.Rados is compat_rados.Rados
    for name in compat_rados.__all__:
        assert hasattr(rados, name), name


def test_constants_have_librados_values() -> None:
    assert rados.LIBRADOS_ALL_NSPACES == "\x01"
    assert rados.LIBRADOS_OP_FLAG_FAILOK == 2 and rados.LIBRADOS_OP_FLAG_EXCL == 1
    assert rados.LIBRADOS_OP_FLAG_FADVISE_NOCACHE == 0x40
    assert rados.LIBRADOS_OPERATION_NOFLAG == 0 and rados.LIBRADOS_OPERATION_SKIPRWLOCKS == 16
    assert rados.LIBRADOS_CREATE_EXCLUSIVE == 1 and rados.LIBRADOS_CREATE_IDEMPOTENT == 0
    assert rados.LIBRADOS_SNAP_HEAD == 2**64 - 2
    assert rados.LIBRADOS_CMPXATTR_OP_EQ == 1 and rados.LIBRADOS_CMPXATTR_OP_LTE == 6
    assert rados.MAX_ERRNO == 4095


# -- exceptions --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("err", "cls"), [
    (errno.EPERM, rados.PermissionError), (errno.ENOENT, rados.ObjectNotFound), (errno.EIO, rados.IOError),
    (errno.ENOSPC, rados.NoSpace), (errno.EEXIST, rados.ObjectExists), (errno.EBUSY, rados.ObjectBusy),
    (errno.ENODATA, rados.NoData), (errno.EINTR, rados.InterruptedOrTimeoutError),
    (errno.ETIMEDOUT, rados.TimedOut), (errno.EACCES, rados.PermissionDeniedError),
    (errno.EINVAL, rados.InvalidArgumentError), (errno.ENOTCONN, rados.NotConnected),
    (errno.ESHUTDOWN, rados.ConnectionShutdown),
])
def test_errno_map(err: int, cls: type[rados.Error]) -> None:
    for ret in (err, -err):
        exc = rados.make_ex(ret, "msg")
        assert type(exc) is cls
        assert exc.errno == err


def test_unmapped_errno_is_plain_oserror_and_mismatch_is_extendmismatch() -> None:
    exc = rados.make_ex(-errno.EDOM, "x")
    assert type(exc) is rados.OSError and exc.errno == errno.EDOM
    mismatch = rados.make_ex(-(rados.MAX_ERRNO + 3), "cmp")
    assert isinstance(mismatch, rados.ExtendMismatch) and mismatch.offset == 3


def test_hierarchy_matches_python_rados() -> None:
    for cls in (rados.PermissionError, rados.ObjectNotFound, rados.IOError, rados.NoSpace, rados.ObjectExists,
                rados.ObjectBusy, rados.NoData, rados.TimedOut, rados.InterruptedOrTimeoutError,
                rados.PermissionDeniedError):
        assert issubclass(cls, rados.OSError) and issubclass(cls, rados.Error)
    for cls in (rados.InvalidArgumentError, rados.RadosStateError, rados.IoctxStateError, rados.ObjectStateError,
                rados.LogicError):
        assert issubclass(cls, rados.Error) and not issubclass(cls, rados.OSError)
    assert issubclass(rados.Error, Exception) and not issubclass(rados.OSError, OSError)


def test_strings_match_the_recorded_python_rados() -> None:
    recorded = json.loads((FIXTURES / "python-errors.json").read_text())
    cases = {e["call"]: e for e in recorded["negative"] if str(e.get("raised") or "").startswith("rados.")}
    e = cases["cluster.open_ioctx('nosuchpool')"]
    exc = rados.make_ex(-2, "error opening pool 'nosuchpool'")
    assert str(exc) == e["str"] and list(exc.args) == e["args"]
    e = cases["ioctx.get_xattr('obj1', 'nosuchattr')"]
    assert str(rados.make_ex(-61, "Failed to get xattr 'nosuchattr'")) == e["str"]
    assert str(rados.Error("plain")) == "plain"
    assert str(rados.Error("plain", 5)) == "[errno 5] plain"


def test_exceptions_pickle_round_trip() -> None:
    exc = rados.ObjectNotFound("error opening pool 'x'", errno.ENOENT)
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is rados.ObjectNotFound and str(back) == str(exc) and back.errno == 2


# -- handle creation and configuration ------------------------------------------------------------------

def test_entity_names() -> None:
    assert rados.Rados()._conf.entity_name == "client.admin"
    assert rados.Rados(rados_id="cinder")._conf.entity_name == "client.cinder"
    assert rados.Rados(name="client.glance")._conf.entity_name == "client.glance"
    with pytest.raises(rados.Error, match="can't supply both rados_id and name"):
        rados.Rados(rados_id="admin", name="client.admin")
    for bad in ("invalid", "bad.invalid"):
        with pytest.raises(rados.Error, match="rados_initialize failed with error code: -22"):
            rados.Rados(name=bad)


@pytest.mark.parametrize("kwargs", [{"rados_id": 1}, {"name": b"client.admin"}, {"clustername": 3},
                                    {"conffile": 5}])
def test_argument_types_are_checked(kwargs: dict[str, object]) -> None:
    with pytest.raises(TypeError):
        rados.Rados(**kwargs)  # type: ignore[arg-type]


def test_conffile_semantics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "c.conf"
    conf.write_text("[global]\nmon host = 10.0.0.1:6789\nrbd default features = layering,exclusive-lock\n"
                    "[client.cinder]\n\tkey = AQBx\n\tcaps mon = \"allow r\"\n")
    # None: nothing is read.
    assert rados.Rados(conffile=None).conf_get("mon_host") == ""
    # A path: read; features given by name come back as the number.
    r = rados.Rados(conffile=str(conf), rados_id="cinder")
    assert r.conf_get("mon_host") == "10.0.0.1:6789"
    assert r.conf_get("rbd_default_features") == "5"
    assert r.conf_get("key") == "AQBx"
    # '': the default search, which honours $CEPH_CONF.
    monkeypatch.setenv("CEPH_CONF", str(conf))
    assert rados.Rados(conffile="").conf_get("mon host") == "10.0.0.1:6789"
    monkeypatch.delenv("CEPH_CONF")
    with pytest.raises(rados.ObjectNotFound) as info:
        rados.Rados(conffile="")
    assert str(info.value) == "[errno 2] RADOS object not found (error calling conf_read_file)"
    with pytest.raises(rados.ObjectNotFound, match="error calling conf_read_file"):
        rados.Rados(conffile=str(tmp_path / "missing.conf"))
    bad = tmp_path / "bad.conf"
    bad.write_text("[global\nmon host = x\n")
    with pytest.raises(rados.InvalidArgumentError):
        rados.Rados(conffile=str(bad))


def test_conf_get_and_set() -> None:
    r = rados.Rados(conf_defaults={"rados_osd_op_timeout": "3"}, conf={"client_mount_timeout": "7"})
    assert r.conf_get("rbd_default_features") == "61"
    assert r.conf_get("rados_osd_op_timeout") == "3"
    assert r.conf_get("client mount timeout") == "7"
    assert r.conf_get("no_such_option") is None
    r.conf_set("rados_mon_op_timeout", "5")
    assert r.conf_get("rados_mon_op_timeout") == "5"
    with pytest.raises(rados.ObjectNotFound, match=r"error calling conf_set"):
        r.conf_set("no_such_option", "1")
    with pytest.raises(rados.InvalidArgumentError):
        r.conf_set("rados_mon_op_timeout", "soon")
    with pytest.raises(TypeError):
        r.conf_set("rados_mon_op_timeout", 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        r.conf_get(5)  # type: ignore[arg-type]


def test_conf_parse_argv_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    r = rados.Rados()
    args = ["osd", "pool", "delete", "foobar", "foobar", "--yes-i-really-really-mean-it"]
    assert r.conf_parse_argv(args) == args
    assert r.conf_parse_argv([""]) == [""]
    assert r.conf_parse_argv([]) is None
    assert r.conf_parse_argv(["ls", "--rados-osd-op-timeout", "9", "-m", "1.2.3.4:5"]) == ["ls"]
    assert r.conf_get("rados_osd_op_timeout") == "9" and r.conf_get("mon_host") == "1.2.3.4:5"
    monkeypatch.setenv("MY_ARGS", "--rados_mon_op_timeout 4")
    r.conf_parse_env("MY_ARGS")
    assert r.conf_get("rados_mon_op_timeout") == "4"
    r.conf_parse_env("FOO_DOES_NOT_EXIST_BLAHBLAH")
    r.conf_parse_env()


def test_state_machine_before_connect() -> None:
    r = rados.Rados()
    assert r.state == "configuring"
    assert str(r.version()) == "3.0.0" and (r.version().major, r.version().minor) == (3, 0)
    for call, args in [(r.pool_exists, ("p",)), (r.pool_lookup, ("p",)), (r.pool_reverse_lookup, (0,)),
                       (r.create_pool, ("p",)), (r.delete_pool, ("p",)), (r.list_pools, ()),
                       (r.get_fsid, ()), (r.open_ioctx, ("p",)), (r.mon_command, ("{}", b"")),
                       (r.get_instance_id, ()), (r.wait_for_latest_osdmap, ())]:
        with pytest.raises(rados.RadosStateError):
            call(*args)
    r.shutdown()
    r.shutdown()  # idempotent
    assert r.state == "shutdown"
    for call, args in [(r.connect, ()), (r.conf_get, ("x",)), (r.conf_set, ("x", "y")),
                       (r.conf_read_file, ()), (r.conf_parse_env, ()), (r.open_ioctx, ("p",))]:
        with pytest.raises(rados.RadosStateError, match="Rados object in state shutdown"):
            call(*args)


def test_connect_without_monitors_is_object_not_found() -> None:
    r = rados.Rados()
    with pytest.raises(rados.ObjectNotFound, match="error connecting to the cluster"):
        r.connect()
    assert r.state == "configuring"


def test_connect_to_nothing_times_out_within_the_timeout() -> None:
    # A key is given, so what fails is reaching a monitor (not finding a keyring).
    r = rados.Rados(conf={"mon_host": f"127.0.0.1:{_free_port()}", "key": "AQCprgRrhkyrMxAAfAzj5EJRkILSaeS44kiBgA=="})
    began = time.monotonic()
    with pytest.raises(rados.TimedOut) as info:
        r.connect(timeout=1)
    assert info.value.errno == errno.ETIMEDOUT
    assert time.monotonic() - began < 5


def test_connect_without_a_keyring_fails_with_enoent() -> None:
    # librados: "unable to find a keyring" -> -ENOENT -> ObjectNotFound.
    r = rados.Rados(conf={"mon_host": f"127.0.0.1:{_free_port()}", "keyring": "/nonexistent/keyring"})
    with pytest.raises(rados.ObjectNotFound):
        r.connect(timeout=1)


def test_write_op_building() -> None:
    with rados.WriteOpCtx() as op:
        op.new(rados.LIBRADOS_CREATE_EXCLUSIVE)
        op.write(b"abc", 3)
        op.set_flags(rados.LIBRADOS_OP_FLAG_FAILOK)
        op.writesame(b"xy", 6, 10)
        op.zero(1, 2)
        op.truncate(4)
        op.execute("hello", "say_hello", b"")
        ops = op._take()
    assert [o.name for o in ops] == ["create", "write", "write", "zero", "truncate", "call"]
    assert ops[0].args == {"excl": True} and ops[1].flags == 1
    assert ops[2].payload == b"xyxyxy" and ops[2].args == {"off": 10}
    op2 = rados.WriteOp().create()
    with pytest.raises(TypeError, match="expected bytes, got str"):
        op2.write("str")  # type: ignore[arg-type]
    with pytest.raises(OverflowError):
        op2.write(b"x", -1)

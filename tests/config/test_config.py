"""Config: layers and their precedence, typed access, files, search order, argv/env."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from shoal.config import config as config_mod
from shoal.config.conffile import ConfFileError
from shoal.config.config import Config, conf_search_paths, keyring_search_paths
from shoal.config.options import OPTIONS, InvalidValue, UnknownOption

FIXED = {"host": "node1", "pid": 4242, "cctid": 77}


def make(entity_type: str = "client", entity_id: str = "admin", **kw: object) -> Config:
    return Config(entity_type, entity_id, **{**FIXED, **kw})  # type: ignore[arg-type]


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


@pytest.fixture(autouse=True)
def no_real_etc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Never let a test see the machine's /etc/ceph or its ~/.ceph or cwd."""
    monkeypatch.setattr(config_mod, "ETC_DIR", str(tmp_path / "etc-ceph"))
    monkeypatch.chdir(tmp_path)


# ---------------------------------------------------------------- precedence

PRECEDENCE_CONF = """
[global]
osd_pool_default_size = 1
rbd_cache_size = 1
rbd_cache_max_dirty = 1
rbd_cache_target_dirty = 1
rbd_concurrent_management_ops = 1
osd_pool_default_pg_num = 1
rbd_default_order = 12
[client]
rbd_cache_size = 2
rbd_cache_max_dirty = 2
rbd_cache_target_dirty = 2
rbd_concurrent_management_ops = 2
osd_pool_default_pg_num = 2
rbd_default_order = 13
[client.cinder]
rbd_cache_max_dirty = 3
rbd_cache_target_dirty = 3
rbd_concurrent_management_ops = 3
osd_pool_default_pg_num = 3
rbd_default_order = 14
[client.glance]
rbd_cache_target_dirty = 99
[osd]
rbd_cache_target_dirty = 98
"""


def test_precedence_end_to_end(tmp_path: Path) -> None:
    cfg = make("client", "cinder")
    cfg.read_file(write(tmp_path / "ceph.conf", PRECEDENCE_CONF))
    cfg.set_central(
        {
            "rbd_cache_target_dirty": "4",
            "rbd_concurrent_management_ops": "4",
            "osd_pool_default_pg_num": "4",
            "rbd_default_order": "15",
        }
    )
    cfg.parse_env(
        {"CEPH_ARGS": "--rbd_concurrent_management_ops=5 --osd_pool_default_pg_num 5 --rbd-default-order 16"}
    )
    cfg.parse_argv(["--osd_pool_default_pg_num", "6", "--rbd_default_order=17"])
    cfg.set("rbd_default_order", "18")

    expected = {
        "rbd_cache": (True, "default"),
        "osd_pool_default_size": (1, "file"),  # [global]
        "rbd_cache_size": (2, "file"),  # [client] over [global]
        "rbd_cache_max_dirty": (3, "file"),  # [client.cinder] over [client]
        "rbd_cache_target_dirty": (4, "mon"),  # central over file
        "rbd_concurrent_management_ops": (5, "env"),  # CEPH_ARGS over central
        "osd_pool_default_pg_num": (6, "cmdline"),  # argv over CEPH_ARGS
        "rbd_default_order": (18, "override"),  # set() over everything
    }
    for name, (value, source) in expected.items():
        assert (cfg.get(name), cfg.source(name)) == (value, source), name

    cfg.unset("rbd_default_order")
    assert (cfg.get("rbd_default_order"), cfg.source("rbd_default_order")) == (17, "cmdline")


def test_other_entities_sections_do_not_apply(tmp_path: Path) -> None:
    cfg = make("client", "admin")
    cfg.read_file(write(tmp_path / "ceph.conf", PRECEDENCE_CONF))
    assert cfg.get("rbd_cache_target_dirty") == 2  # not glance's 99, not [osd]'s 98
    osd = make("osd", "0")
    osd.read_file(str(tmp_path / "ceph.conf"))
    assert osd.get("rbd_cache_target_dirty") == 98


def test_set_entity_rederives_file_layer(tmp_path: Path) -> None:
    cfg = make("client", "admin")
    cfg.read_file(write(tmp_path / "ceph.conf", PRECEDENCE_CONF))
    seen: list[set[str]] = []
    cfg.add_observer(seen.append)
    cfg.set_entity("client", "glance")
    assert cfg.entity_name == "client.glance"
    assert cfg.get("rbd_cache_target_dirty") == 99
    assert seen and "rbd_cache_target_dirty" in seen[-1]


# ---------------------------------------------------------------- typed access


def test_get_and_get_str() -> None:
    cfg = make()
    assert cfg.get("rbd_cache") is True and cfg.get_str("rbd_cache") == "true"
    assert cfg.get("rbd cache size") == 32 << 20 and cfg.get_str("rbd-cache-size") == "33554432"
    assert cfg.get_str("rbd_cache_max_dirty_age") == "1.000000"
    assert cfg.get_str("osd_heartbeat_grace") == "5"
    assert cfg.get_str("rbd_default_features") == "61"


def test_unknown_names_raise_keyerror() -> None:
    cfg = make()
    for call in (cfg.get, cfg.get_str, cfg.source, cfg.unset):
        with pytest.raises(KeyError, match="rados_connect_timeout"):
            call("rados_connect_timeout")
    with pytest.raises(UnknownOption):
        cfg.set("no_such_thing", "1")
    assert "rbd_cache" in cfg and "rbd cache" in cfg and "nope" not in cfg


def test_set_validates_and_changes_nothing_on_error() -> None:
    cfg = make()
    with pytest.raises(ValueError) as info:
        cfg.set("rbd_cache", "perhaps")
    assert isinstance(info.value, InvalidValue)
    assert "rbd_cache" in str(info.value) and "'perhaps'" in str(info.value)
    with pytest.raises(InvalidValue):
        cfg.apply_options({"rbd_cache": "false", "rbd_default_order": "99"})
    assert cfg.get("rbd_cache") is True  # the valid half was not applied either


def test_openstack_timeouts_via_set() -> None:
    cfg = make()
    for name in ("rados_osd_op_timeout", "rados_mon_op_timeout", "client_mount_timeout"):
        cfg.set(name, "5")
        assert cfg.get(name) == 5.0 and cfg.get_str(name) == "5"


def test_rbd_features_names_in_conf_become_a_number(tmp_path: Path) -> None:
    cfg = make()
    cfg.read_file(write(tmp_path / "c.conf", "[client]\nrbd default features = layering, exclusive-lock\n"))
    assert cfg.get("rbd_default_features") == 5
    assert cfg.get_str("rbd_default_features") == "5"
    cfg.set("rbd_default_features", "layering")
    assert cfg.get_str("rbd_default_features") == "1"


def test_show_lists_every_option_as_text() -> None:
    shown = make().show()
    assert set(shown) == set(OPTIONS)
    assert all(isinstance(v, str) for v in shown.values())
    assert shown["mon_data"] == "/var/lib/ceph/mon/ceph-admin"


def test_diff_lists_non_default_layers(tmp_path: Path) -> None:
    cfg = make()
    cfg.read_file(write(tmp_path / "c.conf", "[global]\nrbd_cache = false\n"))
    cfg.set("rbd_cache", "true")
    cfg.set("debug_rbd", "20")
    diff = cfg.diff()
    assert set(diff) == {"rbd_cache", "debug_rbd"}
    assert diff["rbd_cache"] == {"default": "true", "file": "false", "override": "true", "final": "true"}
    assert diff["debug_rbd"] == {"default": "0/5", "override": "20/20", "final": "20/20"}


# ---------------------------------------------------------------- metavariables


def test_string_values_are_expanded_on_read() -> None:
    cfg = make("client", "cinder")
    assert cfg.get("keyring").split(",")[0] == "/etc/ceph/ceph.client.cinder.keyring"
    cfg.set("admin_socket", "/var/run/ceph/guests/$cluster-$type.$id.$pid.$cctid.asok")
    assert cfg.get("admin_socket") == "/var/run/ceph/guests/ceph-client.cinder.4242.77.asok"
    cfg.set("log_file", "/var/log/qemu/qemu-guest-$pid.log")
    assert cfg.get_str("log_file") == "/var/log/qemu/qemu-guest-4242.log"
    cfg.set("log_file", "/l/${host}.log")
    assert cfg.get("log_file") == "/l/node1.log"


def test_option_references_follow_later_changes() -> None:
    osd = make("osd", "3", cluster="backup")
    assert osd.get("admin_socket") == "/var/run/ceph/backup-osd.3.asok"
    assert osd.get("osd_data") == "/var/lib/ceph/osd/backup-3"
    osd.set("run_dir", "/srv/$cluster/run")
    assert osd.get("admin_socket") == "/srv/backup/run/backup-osd.3.asok"


def test_default_pid_and_cctid_are_real() -> None:
    a, b = Config(), Config()
    a.set("admin_socket", "$pid.$cctid")
    b.set("admin_socket", "$pid.$cctid")
    assert a.get("admin_socket").split(".")[0] == str(os.getpid())
    assert a.get("admin_socket") != b.get("admin_socket")  # two handles, two sockets


def test_daemon_defaults_apply_to_daemons_only() -> None:
    assert make("client").get("admin_socket") == ""
    assert make("client").get("log_to_stderr") is True
    assert make("mon", "a").get("log_file") == "/var/log/ceph/ceph-mon.a.log"
    assert make("mon", "a").get("log_to_stderr") is False


# ---------------------------------------------------------------- entities


def test_entity_helpers() -> None:
    cfg = make("client", "cinder", cluster="east")
    assert (cfg.entity_type, cfg.entity_id, cfg.entity_name, cfg.cluster) == (
        "client",
        "cinder",
        "client.cinder",
        "east",
    )
    assert Config().entity_name == "client.admin"
    with pytest.raises(ValueError):
        Config("bogus", "x")
    with pytest.raises(ValueError):
        Config("client", "")
    with pytest.raises(ValueError):
        Config("client", "x", "")


def test_keyring_search_paths() -> None:
    cfg = make("client", "glance")
    assert keyring_search_paths(cfg) == [
        "/etc/ceph/ceph.client.glance.keyring",
        "/etc/ceph/ceph.keyring",
        "/etc/ceph/keyring",
        "/etc/ceph/keyring.bin",
    ]
    cfg.set("keyring", "/a/$name.keyring; /b/k /c/k,/a/$name.keyring")
    assert keyring_search_paths(cfg) == ["/a/client.glance.keyring", "/b/k", "/c/k"]


# ---------------------------------------------------------------- files


def test_read_file_errors(tmp_path: Path) -> None:
    cfg = make()
    with pytest.raises(FileNotFoundError) as missing:
        cfg.read_file(str(tmp_path / "absent.conf"))
    assert missing.value.errno == errno.ENOENT and "absent.conf" in str(missing.value)

    path = write(tmp_path / "bad.conf", "[global]\nfsid = x\n\n[client]\nrbd_cache = sometimes\n")
    with pytest.raises(ConfFileError) as bad:
        cfg.read_file(path)
    assert bad.value.line == 5 and "rbd_cache" in str(bad.value) and str(bad.value).startswith(path + ":5:")
    assert cfg.conf_path is None and cfg.get("fsid") == ""  # nothing from the bad file applied

    latin1 = tmp_path / "latin1.conf"
    latin1.write_bytes(b"[global]\n# caf\xe9\n")
    with pytest.raises(ConfFileError, match=":2:"):
        cfg.read_file(str(latin1))


def test_bad_values_for_other_entities_do_not_stop_a_client(tmp_path: Path) -> None:
    # A Ceph-written conf may say bluestore for OSDs; a client must still read it.
    path = write(tmp_path / "c.conf", "[global]\nfsid = f\n[osd]\nosd_objectstore = bluestore\n")
    cfg = make()
    cfg.read_file(path)
    assert cfg.get("fsid") == "f"
    with pytest.raises(ConfFileError, match="osd_objectstore"):
        make("osd", "0").read_file(path)


def test_unknown_keys_are_kept_but_ignored(tmp_path: Path) -> None:
    path = write(
        tmp_path / "brick.conf",
        '[global]\nmon_host = 10.0.0.1\nms_bind_ipv6 = false\n[client.cinder]\n\tkey = AQAB==\n\tcaps mon = "profile rbd"\n',
    )
    cfg = make("client", "cinder")
    cfg.read_file(path)
    assert cfg.get("key") == "AQAB==" and cfg.get("mon_host") == "10.0.0.1"
    assert cfg.conf_file is not None and cfg.conf_file.get("client.cinder", "caps mon") == "profile rbd"
    assert "ms_bind_ipv6" not in cfg.show()


def test_reading_a_second_file_replaces_the_first(tmp_path: Path) -> None:
    cfg = make()
    cfg.read_file(write(tmp_path / "a.conf", "[global]\nfsid = a\nmon_host = h\n"))
    cfg.read_file(write(tmp_path / "b.conf", "[global]\nfsid = b\n"))
    assert (cfg.get("fsid"), cfg.get("mon_host"), cfg.conf_path) == ("b", "", str(tmp_path / "b.conf"))


def test_duplicate_key_warnings_reach_the_config(tmp_path: Path) -> None:
    cfg = make()
    cfg.read_file(write(tmp_path / "d.conf", "[global]\nfsid = a\nfsid = b\n"))
    assert cfg.get("fsid") == "b" and any("repeats line 2" in w for w in cfg.warnings)


# ---------------------------------------------------------------- conf search


def test_search_order(tmp_path: Path) -> None:
    home, etc = tmp_path / "home", tmp_path / "etc-ceph"
    env = {"HOME": str(home)}
    assert conf_search_paths("ceph", env) == [
        str(etc / "ceph.conf"),
        str(home / ".ceph/ceph.conf"),
        "ceph.conf",
    ]
    assert conf_search_paths("east", {}, etc_dir="/x") == ["/x/east.conf", "east.conf"]

    def found() -> str | None:
        return make(env=env, conffile="").conf_path

    assert found() is None
    write(tmp_path / "ceph.conf", "[global]\nfsid = cwd\n")
    assert found() == "ceph.conf"
    write(home / ".ceph/ceph.conf", "[global]\nfsid = home\n")
    assert found() == str(home / ".ceph/ceph.conf")
    write(etc / "ceph.conf", "[global]\nfsid = etc\n")
    assert found() == str(etc / "ceph.conf")
    assert make(env=env, conffile="").get("fsid") == "etc"
    # The cluster name picks the file.
    write(etc / "backup.conf", "[global]\nfsid = backup\n")
    assert make(cluster="backup", env=env, conffile="").get("fsid") == "backup"


def test_ceph_conf_env_replaces_the_default_list(tmp_path: Path) -> None:
    write(tmp_path / "etc-ceph/ceph.conf", "[global]\nfsid = etc\n")
    mine = write(tmp_path / "mine/ceph.conf", "[global]\nfsid = mine\n")
    assert make(env={"CEPH_CONF": mine}, conffile="").get("fsid") == "mine"
    cfg = make(env={"CEPH_CONF": str(tmp_path / "missing.conf")}, conffile="")
    assert cfg.conf_path is None and cfg.get("fsid") == ""  # no silent fallback to /etc/ceph
    assert any("did not load config file" in w for w in cfg.warnings)
    both = f"{tmp_path / 'missing.conf'}, {mine}"
    assert make(env={"CEPH_CONF": both}, conffile="").get("fsid") == "mine"


def test_conffile_none_reads_nothing_and_explicit_lists(tmp_path: Path) -> None:
    write(tmp_path / "etc-ceph/ceph.conf", "[global]\nfsid = etc\n")
    assert make(conffile=None, env={}).conf_path is None
    assert make(env={}).get("fsid") == ""
    second = write(tmp_path / "second.conf", "[global]\nfsid = second\n")
    cfg = make(conffile=f"{tmp_path}/first.conf,{second}", env={})
    assert cfg.conf_path == second
    with pytest.raises(FileNotFoundError) as info:
        make(conffile=str(tmp_path / "nope.conf"), env={})
    assert info.value.errno == errno.ENOENT and "nope.conf" in str(info.value)
    # Paths may use metavariables.
    write(tmp_path / "c/east.conf", "[global]\nfsid = east\n")
    assert make(cluster="east", conffile=f"{tmp_path}/c/$cluster.conf").get("fsid") == "east"


# ---------------------------------------------------------------- argv, env, central


def test_parse_argv_takes_schema_options_only() -> None:
    cfg = make()
    rest = cfg.parse_argv(
        [
            "--id",
            "x",
            "--rbd_cache=false",
            "pos",
            "-m",
            "10.0.0.1",
            "--size",
            "10",
            "--debug-ms",
            "1",
            "--no-rbd-cache-writethrough-until-flush",
            "-k",
            "/k",
        ]
    )
    assert rest == ["--id", "x", "pos", "--size", "10"]
    assert cfg.get("rbd_cache") is False and cfg.get("mon_host") == "10.0.0.1"
    assert cfg.get("debug_ms") == "1/1" and cfg.get("rbd_cache_writethrough_until_flush") is False
    assert cfg.get("keyring") == "/k" and cfg.source("keyring") == "cmdline"


def test_parse_env(tmp_path: Path) -> None:
    conf = write(tmp_path / "env.conf", "[client.glance]\nfsid = from-env-conf\n")
    cfg = make()
    rest = cfg.parse_env({"CEPH_ARGS": f"--id glance --conf '{conf}' --rbd_cache=false --keyring=/k stray"})
    assert rest == ["stray"]
    assert cfg.entity_name == "client.glance"
    assert cfg.get("fsid") == "from-env-conf" and cfg.conf_path == conf
    assert cfg.get("rbd_cache") is False and cfg.source("rbd_cache") == "env"
    assert make().parse_env({}) == []


def test_set_central_skips_bad_entries() -> None:
    cfg = make()
    seen: list[set[str]] = []
    cfg.add_observer(seen.append)
    problems = cfg.set_central({"rbd_cache": "false", "not_an_option": "1", "rbd_default_order": "x"})
    assert len(problems) == 2 and any("not_an_option" in p for p in problems)
    assert cfg.get("rbd_cache") is False and cfg.source("rbd_cache") == "mon"
    assert cfg.get("rbd_default_order") == 22
    cfg.set_central({})  # a new push replaces the whole layer
    assert cfg.source("rbd_cache") == "default"
    assert seen == [{"rbd_cache"}, {"rbd_cache"}]


def test_observers() -> None:
    cfg = make()
    seen: list[set[str]] = []
    cfg.add_observer(seen.append)
    cfg.set("debug osd", "10")
    cfg.unset("debug_osd")
    cfg.remove_observer(seen.append)
    cfg.set("debug_osd", "5")
    assert seen == [{"debug_osd"}, {"debug_osd"}]

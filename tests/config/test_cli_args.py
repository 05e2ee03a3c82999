"""Global CLI options and build_config (argv + CEPH_ARGS + conf file -> Config)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.config import config as config_mod
from shoal.config.cli_args import ArgvError, GlobalArgs, build_config, parse_entity_name, parse_global_args


@pytest.fixture(autouse=True)
def no_real_etc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(config_mod, "ETC_DIR", str(tmp_path / "etc-ceph"))
    monkeypatch.chdir(tmp_path)


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def test_cinder_style_argv_with_options_after_positionals() -> None:
    argv = [
        "export-diff",
        "volumes/vol@snap",
        "-",
        "--id",
        "cinder",
        "--conf",
        "/etc/ceph/ceph.conf",
        "--pool",
        "volumes",
    ]
    args, rest = parse_global_args(argv)
    assert (args.entity_id, args.conf) == ("cinder", "/etc/ceph/ceph.conf")
    assert rest == ["export-diff", "volumes/vol@snap", "-", "--pool", "volumes"]


@pytest.mark.parametrize(
    "argv,field,value",
    [
        (["--id", "x"], "entity_id", "x"),
        (["--id=x"], "entity_id", "x"),
        (["--user", "x"], "entity_id", "x"),
        (["-c", "/c"], "conf", "/c"),
        (["--conf=/c"], "conf", "/c"),
        (["--cluster", "east"], "cluster", "east"),
        (["--cluster=east"], "cluster", "east"),
    ],
)
def test_early_options(argv: list[str], field: str, value: str) -> None:
    args, rest = parse_global_args(["ls", *argv])
    assert getattr(args, field) == value and rest == ["ls"]


@pytest.mark.parametrize("flag", ["-n", "--name"])
def test_name(flag: str) -> None:
    args, _ = parse_global_args([flag, "client.rgw.gw1"])
    assert (args.entity_type, args.entity_id, args.name) == ("client", "rgw.gw1", "client.rgw.gw1")


def test_name_then_id_and_id_then_name() -> None:
    assert parse_global_args(["--name", "osd.1", "--id", "2"])[0].name == "osd.2"
    assert parse_global_args(["--id", "2", "--name", "osd.1"])[0].name == "osd.1"


@pytest.mark.parametrize("bad", ["admin", "client.", "bogus.x", ".x"])
def test_bad_entity_names(bad: str) -> None:
    with pytest.raises(ArgvError, match="TYPE.ID|type must be"):
        parse_entity_name(bad)
    with pytest.raises(ValueError):
        parse_global_args(["--name", bad])


@pytest.mark.parametrize(
    "argv,option,value",
    [
        (["-m", "10.0.0.1:6789"], "mon_host", "10.0.0.1:6789"),
        (["--mon_host", "a,b"], "mon_host", "a,b"),
        (["--mon-host=a"], "mon_host", "a"),
        (["-k", "/k"], "keyring", "/k"),
        (["--keyring=/k"], "keyring", "/k"),
        (["--key", "AQAB=="], "key", "AQAB=="),
        (["--key=AQAB=="], "key", "AQAB=="),
        (["--keyfile", "/kf"], "keyfile", "/kf"),
        (["-K", "/kf"], "keyfile", "/kf"),
        (["--debug-ms", "1"], "debug_ms", "1"),
        (["--debug_ms=1/5"], "debug_ms", "1/5"),
        (["--rbd_cache=false"], "rbd_cache", "false"),
        (["--rbd-cache", "false"], "rbd_cache", "false"),
        (["--rbd_cache", "OFF"], "rbd_cache", "OFF"),
        (["--rbd_cache"], "rbd_cache", "true"),
        (["--no-rbd-cache"], "rbd_cache", "false"),
        (["--no_rbd_cache"], "rbd_cache", "false"),
        (["--log-file", "-"], "log_file", "-"),  # a value may look like an option
    ],
)
def test_schema_options(argv: list[str], option: str, value: str) -> None:
    args, rest = parse_global_args(["cmd", *argv, "pos"])
    assert args.options == {option: value} and rest == ["cmd", "pos"]


def test_bool_option_does_not_swallow_a_positional() -> None:
    args, rest = parse_global_args(["--rbd_cache", "ls", "images"])
    assert args.options == {"rbd_cache": "true"} and rest == ["ls", "images"]


def test_last_occurrence_wins() -> None:
    args, _ = parse_global_args(["--id", "a", "-m", "x", "--id", "b", "--mon-host", "y"])
    assert args.entity_id == "b" and args.mon_host == "y"


def test_properties() -> None:
    args = GlobalArgs(options={"keyring": "/k", "key": "K", "keyfile": "/f", "mon_host": "m"})
    assert (args.keyring, args.key, args.keyfile, args.mon_host, args.name) == ("/k", "K", "/f", "m", None)


def test_double_dash_stops_parsing() -> None:
    args, rest = parse_global_args(["rm", "--id", "a", "--", "--id", "-weird-image"])
    assert args.entity_id == "a" and rest == ["rm", "--", "--id", "-weird-image"]


def test_unknown_options_and_short_flags_pass_through() -> None:
    argv = ["create", "--size", "10", "-p", "rbd", "--image-feature", "layering", "-i", "file", "--", "x"]
    assert parse_global_args(argv)[1] == argv


def test_short_id_for_daemons() -> None:
    assert parse_global_args(["-i", "0"], short_id=True)[0].entity_id == "0"
    assert parse_global_args(["-i", "0"])[1] == ["-i", "0"]


def test_late_parsing_leaves_early_options() -> None:
    args, rest = parse_global_args(
        ["--id", "a", "-c", "/c", "-m", "h", "--cluster", "x", "-n", "client.b"], early=False
    )
    assert args.options == {"mon_host": "h"} and args.entity_id is None
    assert rest == ["--id", "a", "-c", "/c", "--cluster", "x", "-n", "client.b"]


@pytest.mark.parametrize(
    "argv", [["--id"], ["ls", "-c"], ["--conf"], ["-m"], ["--debug-ms"], ["--id="], ["--name"]]
)
def test_missing_values(argv: list[str]) -> None:
    with pytest.raises(ArgvError, match="requires"):
        parse_global_args(argv)


# --- hypothesis: options anywhere, positionals untouched and in order

_positionals = st.lists(st.from_regex(r"[a-z0-9/@._]{1,10}", fullmatch=True), max_size=6)
_globals = st.lists(
    st.sampled_from(
        [
            ["--id", "cinder"],
            ["--conf=/c.conf"],
            ["-m", "10.0.0.1"],
            ["--rbd_cache=false"],
            ["--cluster", "ceph"],
            ["-k", "/k"],
            ["--debug-ms", "1"],
        ]
    ),
    max_size=5,
)


@given(_positionals, _globals, st.randoms(use_true_random=False))
def test_options_anywhere_leave_positionals_in_order(
    positionals: list[str], options: list[list[str]], rnd
) -> None:
    # Each option goes into a random gap between positionals (never inside another option).
    chunks: list[list[str]] = [[p] for p in positionals]
    for opt in options:
        chunks.insert(rnd.randint(0, len(chunks)), opt)
    argv = [word for chunk in chunks for word in chunk]
    args, rest = parse_global_args(argv)
    assert rest == positionals
    assert ("--id" in argv) == (args.entity_id == "cinder")
    assert ("-m" in argv) == (args.mon_host == "10.0.0.1")


# ---------------------------------------------------------------- build_config

CONF = """
[global]
fsid = 11111111-2222-3333-4444-555555555555
mon host = [v2:10.0.0.1:3300,v1:10.0.0.1:6789]
[client]
rbd cache = true
rbd default features = layering
[client.cinder]
keyring = /etc/ceph/$cluster.$name.keyring
"""


def test_build_config_end_to_end(tmp_path: Path) -> None:
    conf = write(tmp_path / "ceph.conf", CONF)
    env = {"CEPH_ARGS": "--rbd_cache=false --debug-rbd 10 -m 10.9.9.9", "HOME": str(tmp_path / "nohome")}
    cfg, rest = build_config(
        "client", ["ls", "-l", "volumes", "--id", "cinder", "--conf", conf, "-m", "10.0.0.2"], env
    )
    assert rest == ["ls", "-l", "volumes"]
    assert cfg.entity_name == "client.cinder" and cfg.conf_path == conf
    assert cfg.get("fsid").startswith("11111111")
    assert cfg.get_str("rbd_default_features") == "1"
    assert cfg.get("rbd_cache") is False and cfg.source("rbd_cache") == "env"
    assert cfg.get("debug_rbd") == "10/10"
    assert cfg.get("mon_host") == "10.0.0.2" and cfg.source("mon_host") == "cmdline"
    assert cfg.get("keyring") == "/etc/ceph/ceph.client.cinder.keyring"


def test_build_config_command_line_beats_ceph_args(tmp_path: Path) -> None:
    a = write(tmp_path / "a.conf", "[global]\nfsid = a\n")
    b = write(tmp_path / "b.conf", "[global]\nfsid = b\n")
    env = {"CEPH_ARGS": f"--id glance --conf {a} --rbd-cache=false --cluster east"}
    cfg, _ = build_config("client", ["--conf", b, "--rbd_cache", "true"], env)
    assert (cfg.entity_name, cfg.cluster, cfg.get("fsid"), cfg.get("rbd_cache")) == (
        "client.glance",
        "east",
        "b",
        True,
    )
    cfg, _ = build_config("client", ["--name", "client.nova"], env)
    assert (cfg.entity_name, cfg.get("fsid")) == ("client.nova", "a")


def test_build_config_default_search_uses_ceph_conf_and_cluster(tmp_path: Path) -> None:
    conf = write(tmp_path / "cluster/ceph.conf", "[global]\nfsid = via-env\n")
    cfg, rest = build_config("client", ["ls"], {"CEPH_CONF": conf})
    assert cfg.get("fsid") == "via-env" and rest == ["ls"]
    write(tmp_path / "etc-ceph/east.conf", "[global]\nfsid = east\n")
    cfg, _ = build_config("client", ["--cluster", "east", "ls"], {})
    assert cfg.get("fsid") == "east"


def test_build_config_without_any_conf_warns(tmp_path: Path) -> None:
    cfg, _ = build_config("client", ["ls"], {"HOME": str(tmp_path)})
    assert cfg.conf_path is None
    assert any("did not load config file" in w for w in cfg.warnings)


def test_build_config_explicit_missing_conf_fails(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.conf"):
        build_config("client", ["-c", str(tmp_path / "missing.conf")], {})


def test_build_config_rejects_bad_values_with_the_option_name() -> None:
    with pytest.raises(ValueError, match="rbd_default_order"):
        build_config("client", ["--rbd_default_order", "huge"], {})
    with pytest.raises(ArgvError, match="CEPH_ARGS"):
        build_config("client", [], {"CEPH_ARGS": "--id 'unbalanced"})


def test_build_config_ceph_args_quoting_and_leftovers(tmp_path: Path) -> None:
    conf = write(tmp_path / "dir with space/ceph.conf", "[global]\nfsid = spaced\n")
    cfg, rest = build_config("client", ["ls"], {"CEPH_ARGS": f'--conf "{conf}" --pool images'})
    assert cfg.get("fsid") == "spaced"
    assert rest == ["--pool", "images", "ls"]  # as Ceph does: CEPH_ARGS words come first


def test_build_config_for_a_daemon(tmp_path: Path) -> None:
    conf = write(
        tmp_path / "ceph.conf", "[osd]\nosd data = /srv/osd.$id\n[osd.3]\nosd objectstore = memory\n"
    )
    cfg, rest = build_config("osd", ["-i", "3", "-c", conf, "--foreground"], {}, short_id=True)
    assert cfg.entity_name == "osd.3" and rest == ["--foreground"]
    assert cfg.get("osd_data") == "/srv/osd.3" and cfg.get("osd_objectstore") == "memory"
    assert cfg.get("admin_socket") == "/var/run/ceph/ceph-osd.3.asok"


def test_daemon_may_parse_its_own_id_and_set_the_entity_later(tmp_path: Path) -> None:
    # What shoal/admin/daemon_main.py does: `-i` is left in argv, then set_entity().
    conf = write(
        tmp_path / "ceph.conf", "[osd]\nosd data = /srv/osd.$id\n[osd.3]\nosd objectstore = memory\n"
    )
    cfg, rest = build_config("osd", ["-i", "3", "-c", conf], {})
    assert rest == ["-i", "3"] and cfg.entity_name == "osd.admin"
    cfg.set_entity("osd", "3")
    assert cfg.get("osd_data") == "/srv/osd.3" and cfg.get("osd_objectstore") == "memory"

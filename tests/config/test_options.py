"""The option schema: its invariants and the value grammar of each type."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.config.options import (
    OPTIONS,
    RBD_FEATURES,
    InvalidValue,
    Option,
    UnknownOption,
    lookup,
    normalize_name,
    parse_bool,
    parse_int,
    parse_log_level,
    parse_ms_mode,
    parse_rbd_features,
    parse_secs,
    parse_size,
)
from shoal.errors import InvalidArgument, ShoalError

# Options the rest of Shoal (and OpenStack through python-rados) relies on, with the
# default as `config get` prints it.
EXPECTED_DEFAULTS = {
    "fsid": "",
    "mon_host": "",
    "keyring": "/etc/ceph/$cluster.$name.keyring,/etc/ceph/$cluster.keyring,/etc/ceph/keyring,/etc/ceph/keyring.bin",
    "mon_data": "/var/lib/ceph/mon/$cluster-$id",
    "osd_data": "/var/lib/ceph/osd/$cluster-$id",
    "mon_allow_pool_delete": "false",
    "mon_max_pg_per_osd": "1000",
    "osd_pool_default_size": "3",
    "osd_pool_default_min_size": "0",
    "osd_pool_default_pg_num": "32",
    "osd_pool_default_pgp_num": "0",
    "osd_crush_chooseleaf_type": "1",
    "osd_heartbeat_interval": "1",
    "osd_heartbeat_grace": "5",
    "mon_osd_down_out_interval": "600",
    "auth_cluster_required": "cephx",
    "auth_service_required": "cephx",
    "auth_client_required": "cephx",
    "rados_osd_op_timeout": "0",
    "rados_mon_op_timeout": "0",
    "client_mount_timeout": "300",
    "rbd_default_features": "61",
    "rbd_default_order": "22",
    "rbd_default_stripe_unit": "0",
    "rbd_default_stripe_count": "0",
    "rbd_default_format": "2",
    "rbd_default_clone_format": "auto",
    "rbd_cache": "true",
    "rbd_cache_writethrough_until_flush": "true",
    "rbd_cache_size": "33554432",
    "rbd_cache_max_dirty": "25165824",
    "rbd_cache_target_dirty": "16777216",
    "rbd_cache_max_dirty_age": "1.000000",
    "rbd_concurrent_management_ops": "10",
    "osd_objectstore": "sqlite",
}

QOS = [
    f"rbd_qos_{kind}"
    for kind in (
        "iops_limit",
        "iops_burst",
        "read_iops_limit",
        "write_iops_limit",
        "read_iops_burst",
        "write_iops_burst",
        "bps_limit",
        "bps_burst",
        "read_bps_limit",
        "write_bps_limit",
        "read_bps_burst",
        "write_bps_burst",
    )
]


@pytest.mark.parametrize("name,text", sorted(EXPECTED_DEFAULTS.items()))
def test_defaults_print_like_ceph(name: str, text: str) -> None:
    opt = OPTIONS[name]
    assert opt.to_str(opt.default) == text


@pytest.mark.parametrize("name", QOS)
def test_qos_limits_exist_and_default_to_unlimited(name: str) -> None:
    assert OPTIONS[name].default == 0
    assert OPTIONS[name].type == "uint"


def test_other_required_options_exist() -> None:
    for name in (
        "mon_initial_members",
        "public_addr",
        "key",
        "keyfile",
        "log_file",
        "log_to_stderr",
        "debug_ms",
        "debug_mon",
        "debug_osd",
        "debug_client",
        "debug_rbd",
        "admin_socket",
        "run_dir",
        "osd_op_num_threads",
        "auth_supported",
        "ms_mode",
    ):
        assert name in OPTIONS


def test_every_default_round_trips_through_its_text() -> None:
    for opt in OPTIONS.values():
        for entity_type in ("client", "osd"):
            default = opt.default_for(entity_type)
            assert opt.parse(opt.to_str(default)) == default, opt.name


def test_schema_entries_are_well_formed() -> None:
    for name, opt in OPTIONS.items():
        assert name == opt.name == normalize_name(name)
        assert opt.desc and opt.desc[0].isupper(), name
        assert opt.services, name
    assert list(OPTIONS) == sorted(OPTIONS)


def test_pg_limit_description_explains_the_openstack_guide() -> None:
    desc = OPTIONS["mon_max_pg_per_osd"].desc
    assert "250" in desc and "OpenStack" in desc and "512" in desc


def test_bad_schema_entries_are_rejected_at_definition() -> None:
    with pytest.raises(ValueError):
        Option("Bad-Name", "str", "", "x")
    with pytest.raises(ValueError):
        Option("ok", "string", "", "x")  # type: ignore[arg-type]


def test_names_normalise() -> None:
    assert normalize_name("mon host") == "mon_host"
    assert normalize_name(" mon-host ") == "mon_host"
    assert normalize_name("rbd  cache\twritethrough-until_flush") == "rbd_cache_writethrough_until_flush"
    assert lookup("rbd cache").name == "rbd_cache"


def test_unknown_option_is_a_keyerror_and_a_shoal_error() -> None:
    with pytest.raises(KeyError) as info:
        lookup("no_such_option")
    assert isinstance(info.value, UnknownOption) and isinstance(info.value, ShoalError)
    assert "no_such_option" in str(info.value)


def test_invalid_value_names_option_and_value() -> None:
    with pytest.raises(ValueError) as info:
        OPTIONS["osd_pool_default_size"].parse("three")
    assert isinstance(info.value, InvalidValue) and isinstance(info.value, InvalidArgument)
    assert "osd_pool_default_size" in str(info.value) and "'three'" in str(info.value)


@pytest.mark.parametrize(
    "text,value",
    [
        ("4096", 4096),
        ("4K", 4096),
        ("4k", 4096),
        ("4M", 4 << 20),
        ("4Mi", 4 << 20),
        ("4MiB", 4 << 20),
        ("1G", 1 << 30),
        ("1 G", 1 << 30),
        ("2T", 2 << 40),
        ("512B", 512),
        (" 0 ", 0),
    ],
)
def test_size_units(text: str, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "M", "-1", "1.5G", "4X", "4 MiBs", "1" + "0" * 20, "99999E"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


@given(st.integers(min_value=0, max_value=(1 << 64) - 1))
def test_size_text_round_trips(n: int) -> None:
    opt = OPTIONS["rbd_cache_size"]
    assert opt.parse(opt.to_str(n)) == n


@pytest.mark.parametrize(
    "text,value",
    [
        ("30", 30.0),
        ("0.5", 0.5),
        ("1500ms", 1.5),
        ("5m", 300.0),
        ("2 min", 120.0),
        ("1h", 3600.0),
        ("1h 30m", 5400.0),
        ("1h30m", 5400.0),
        ("1d", 86400.0),
        ("1w", 604800.0),
        ("10s", 10.0),
    ],
)
def test_secs_units(text: str, value: float) -> None:
    assert parse_secs(text) == value


@pytest.mark.parametrize("text", ["", "s", "-1", "1 2", "5 parsecs", "1h 2", "abc"])
def test_bad_secs(text: str) -> None:
    with pytest.raises(ValueError):
        parse_secs(text)


def test_secs_print_as_integers_when_whole() -> None:
    opt = OPTIONS["osd_heartbeat_grace"]
    assert opt.to_str(opt.parse("20")) == "20"
    assert opt.to_str(opt.parse("2.5")) == "2.5"


@pytest.mark.parametrize(
    "text,value",
    [
        ("true", True),
        ("TRUE", True),
        ("yes", True),
        ("on", True),
        ("1", True),
        ("2", True),
        ("false", False),
        ("No", False),
        ("off", False),
        ("0", False),
    ],
)
def test_bools(text: str, value: bool) -> None:
    assert parse_bool(text) is value


@pytest.mark.parametrize("text", ["", "maybe", "tru", "1.0"])
def test_bad_bools(text: str) -> None:
    with pytest.raises(ValueError):
        parse_bool(text)


def test_ints_take_si_suffixes_and_uints_refuse_negatives() -> None:
    assert parse_int("1K") == 1000 and parse_int("-3") == -3 and parse_int("+7") == 7
    with pytest.raises(InvalidValue):
        OPTIONS["osd_pool_default_pg_num"].parse("-1")
    with pytest.raises(ValueError):
        parse_int("1.5")


def test_floats_print_with_six_decimals_like_ceph() -> None:
    opt = OPTIONS["rbd_cache_max_dirty_age"]
    assert opt.to_str(opt.parse("2.5")) == "2.500000"
    for bad in ("nan", "inf", "x"):
        with pytest.raises(InvalidValue):
            opt.parse(bad)


def test_ranges_and_enums() -> None:
    with pytest.raises(InvalidValue, match="at most 25"):
        OPTIONS["rbd_default_order"].parse("26")
    with pytest.raises(InvalidValue, match="at least 12"):
        OPTIONS["rbd_default_order"].parse("11")
    with pytest.raises(InvalidValue, match="sqlite, memory"):
        OPTIONS["osd_objectstore"].parse("bluestore")
    assert OPTIONS["osd_objectstore"].parse("memory") == "memory"


def test_rbd_features_from_names_and_numbers() -> None:
    assert parse_rbd_features("61") == 61
    assert parse_rbd_features("layering") == 1
    assert parse_rbd_features("layering,exclusive-lock,object-map,fast-diff,deep-flatten") == 61
    assert parse_rbd_features("layering, striping") == 3
    assert parse_rbd_features("Exclusive_Lock") == 4
    assert parse_rbd_features("journaling,data-pool") == 192
    opt = OPTIONS["rbd_default_features"]
    assert opt.to_str(opt.parse("layering,striping")) == "3"
    with pytest.raises(InvalidValue, match="unknown RBD feature 'bogus'"):
        opt.parse("layering,bogus")
    with pytest.raises(InvalidValue):
        opt.parse(str(1 << 20))
    assert set(RBD_FEATURES) >= {
        "layering",
        "striping",
        "exclusive-lock",
        "object-map",
        "fast-diff",
        "deep-flatten",
        "journaling",
        "data-pool",
    }


def test_debug_levels() -> None:
    assert parse_log_level("10") == "10/10"
    assert parse_log_level("1/5") == "1/5"
    assert parse_log_level(" 0 / 5 ") == "0/5"
    with pytest.raises(ValueError):
        parse_log_level("high")


def test_ms_mode() -> None:
    assert parse_ms_mode("secure") == "secure"
    assert parse_ms_mode("crc, secure") == "crc secure"
    assert parse_ms_mode("prefer-secure") == "secure crc"
    with pytest.raises(ValueError):
        parse_ms_mode("legacy")


def test_coerce_takes_python_values() -> None:
    assert OPTIONS["rbd_cache"].coerce(False) is False
    assert OPTIONS["rbd_cache_size"].coerce(4096) == 4096
    assert OPTIONS["osd_heartbeat_grace"].coerce(2.5) == 2.5
    with pytest.raises(InvalidValue):
        OPTIONS["rbd_cache"].coerce(None)
    with pytest.raises(InvalidValue):
        OPTIONS["rbd_cache"].parse(1)  # type: ignore[arg-type]


def test_daemon_defaults() -> None:
    assert OPTIONS["admin_socket"].default_for("client") == ""
    assert OPTIONS["admin_socket"].default_for("osd") == "$run_dir/$cluster-$name.asok"
    assert OPTIONS["log_to_stderr"].default_for("client") is True
    assert OPTIONS["log_to_stderr"].default_for("mon") is False

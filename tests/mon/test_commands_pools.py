"""Pool commands behave as Ceph 16's monitor: results, errno, status lines, map changes."""

from __future__ import annotations

import errno
from typing import Any

import pytest

from tests.mon.test_commands_base import C, Cluster


@pytest.fixture
def cluster() -> Cluster:
    return Cluster(C)


def create(cluster: Cluster, name: str, pg_num: Any = 128, **more: Any) -> Any:
    return cluster.run({"prefix": "osd pool create", "pool": name, "pg_num": pg_num, **more})


# -- create -----------------------------------------------------------------------------------

def test_guide_flow_creates_the_openstack_pools(cluster: Cluster) -> None:
    epoch = cluster.state.osdmap.epoch
    for i, name in enumerate(("volumes", "images", "backups", "vms"), start=1):
        now = cluster.now
        result = create(cluster, name)
        assert (result.ret, result.outs, result.outbuf) == (0, f"pool '{name}' created", b"")
        pool = cluster.pool(name)
        assert pool.id == i and cluster.state.osdmap.pool_max == i
        assert cluster.state.osdmap.epoch == epoch + i
        assert (pool.size, pool.min_size, pool.pg_num, pool.pgp_num) == (3, 2, 128, 128)
        assert pool.flags == 1 and pool.crush_rule == 0 and pool.application == {}
        assert pool.create_time == now and pool.last_change == epoch + i


def test_too_many_pgs_is_erange_with_cephs_message() -> None:
    """The transcript's cluster: mon_max_pg_per_osd 250, 3 OSDs, the mgr's 1-PG pool."""
    cluster = Cluster(C, conf={"mon_max_pg_per_osd": 250})
    assert create(cluster, "device_health_metrics", 1).ret == 0
    assert create(cluster, "volumes", 128).outs == "pool 'volumes' created"
    result = create(cluster, "images", 128)
    assert result.ret == -34 == -errno.ERANGE
    assert f"Error ERANGE: {result.outs}" == ("Error ERANGE:  pg_num 128 size 3 would mean 771 total pgs, "
                                              "which exceeds max 750 (mon_max_pg_per_osd 250 * num_in_osds 3)")
    assert cluster.state.osdmap.pool_by_name("images") is None
    assert create(cluster, "images", 32).ret == 0
    assert create(cluster, "backups", 128).outs.startswith(" pg_num 128 size 3 would mean 867 total pgs")
    assert create(cluster, "backups", 32).ret == 0
    assert create(cluster, "vms", 32).outs == "pool 'vms' created"
    epoch = cluster.state.osdmap.epoch
    again = create(cluster, "vms", 32)
    assert (again.ret, again.outs, again.new_osdmap) == (0, "pool 'vms' already exists", None)
    assert cluster.state.osdmap.epoch == epoch


def test_numeric_arguments_may_be_strings(cluster: Cluster) -> None:
    assert create(cluster, "a", "64", pgp_num="32", size="2").ret == 0
    pool = cluster.pool("a")
    assert (pool.pg_num, pool.pgp_num, pool.size, pool.min_size) == (64, 32, 2, 1)


@pytest.mark.parametrize("pg_num", [-1, "-5", "abc", "1.5", True, {"x": 1}])
def test_invalid_pg_num_is_einval(cluster: Cluster, pg_num: Any) -> None:
    result = create(cluster, "a", pg_num)
    assert result.ret == -errno.EINVAL and result.outs


def test_zero_or_missing_pg_num_takes_the_default() -> None:
    cluster = Cluster(C, conf={"osd_pool_default_pg_num": 16})
    assert create(cluster, "a", 0).ret == 0
    assert cluster.run({"prefix": "osd pool create", "pool": "b"}).ret == 0
    assert cluster.pool("a").pg_num == cluster.pool("b").pg_num == 16


def test_pool_defaults_come_from_config() -> None:
    cluster = Cluster(C, conf={"osd_pool_default_size": 2, "osd_pool_default_min_size": "1"})
    create(cluster, "a", 8)
    assert (cluster.pool("a").size, cluster.pool("a").min_size) == (2, 1)


def test_pg_num_limits(cluster: Cluster) -> None:
    result = create(cluster, "a", 8, pgp_num=16)
    assert result.ret == -errno.ERANGE
    assert result.outs == "'pgp_num' must be greater than 0 and lower or equal than 'pg_num', which in this case is 8"
    result = create(cluster, "a", 70000)
    assert result.ret == -errno.ERANGE and result.outs.startswith("'pg_num' must be greater than 0")


def test_create_argument_errors(cluster: Cluster) -> None:
    assert cluster.run({"prefix": "osd pool create", "pg_num": 8}).ret == -errno.EINVAL
    assert create(cluster, "a", 8, pool_type="bogus").outs == "unknown pool type 'bogus'"
    assert create(cluster, "a", 8, rule="nope").ret == -errno.ENOENT
    assert create(cluster, "a", 8, rule="replicated_rule").ret == 0
    assert create(cluster, "a", 8, pool_type="erasure").outs == "pool 'a' cannot change to type erasure"
    dotted = create(cluster, ".hidden", 8)
    assert (dotted.ret, dotted.outs, dotted.new_osdmap) == (0, "pool names beginning with . are not allowed", None)


# -- delete -----------------------------------------------------------------------------------

WARNING = ("WARNING: this will *PERMANENTLY DESTROY* all data stored in pool vms.  If you are *ABSOLUTELY "
           "CERTAIN* that is what you want, pass the pool name *twice*, followed by --yes-i-really-really-mean-it.")
DISABLED = ("pool deletion is disabled; you must first set the mon_allow_pool_delete config option to true "
            "before you can destroy a pool")


def delete(cluster: Cluster, **args: Any) -> Any:
    return cluster.run({"prefix": "osd pool delete", "pool": "vms", **args})


def test_delete_needs_the_name_twice_and_the_sure_flag(cluster: Cluster) -> None:
    cluster.conf["mon_allow_pool_delete"] = True
    create(cluster, "vms", 8)
    for args in ({}, {"yes_i_really_really_mean_it": True}, {"pool2": "vms"},
                 {"pool2": "vm", "yes_i_really_really_mean_it": True}):
        result = delete(cluster, **args)
        assert (result.ret, result.outs) == (-errno.EPERM, WARNING)
    result = delete(cluster, pool2="vms", yes_i_really_really_mean_it=True)
    assert (result.ret, result.outs) == (0, "pool 'vms' removed")
    assert cluster.state.osdmap.pool_by_name("vms") is None
    assert cluster.state.osdmap.pool_max == 1  # ids are never reused


def test_delete_is_disabled_unless_configured(cluster: Cluster) -> None:
    create(cluster, "vms", 8)
    result = delete(cluster, pool2="vms", yes_i_really_really_mean_it=True)
    assert (result.ret, result.outs) == (-errno.EPERM, DISABLED)
    cluster.conf["mon_allow_pool_delete"] = "true"
    assert delete(cluster, pool2="vms", sure="--yes-i-really-really-mean-it").ret == 0


def test_delete_respects_nodelete_and_missing_pools(cluster: Cluster) -> None:
    cluster.conf["mon_allow_pool_delete"] = True
    create(cluster, "vms", 8)
    cluster.run({"prefix": "osd pool set", "pool": "vms", "var": "nodelete", "val": "true"})
    result = delete(cluster, pool2="vms", yes_i_really_really_mean_it=True)
    assert result.ret == -errno.EPERM and "nodelete" in result.outs
    gone = cluster.run({"prefix": "osd pool rm", "pool": "nope", "pool2": "nope"})
    assert (gone.ret, gone.outs, gone.new_osdmap) == (0, "pool 'nope' does not exist", None)


def test_rename(cluster: Cluster) -> None:
    create(cluster, "a", 8)
    create(cluster, "b", 8)
    assert cluster.run({"prefix": "osd pool rename", "srcpool": "a", "destpool": "b"}).ret == -errno.EEXIST
    assert cluster.run({"prefix": "osd pool rename", "srcpool": "x", "destpool": "y"}).ret == -errno.ENOENT
    result = cluster.run({"prefix": "osd pool rename", "srcpool": "a", "destpool": "c"})
    assert (result.ret, result.outs) == (0, "pool 'a' renamed to 'c'")
    assert cluster.pool("c").id == 1


# -- get / set --------------------------------------------------------------------------------

def pool_set(cluster: Cluster, var: str, val: Any, **more: Any) -> Any:
    return cluster.run({"prefix": "osd pool set", "pool": "rbd", "var": var, "val": val, **more})


def test_set_and_get(cluster: Cluster) -> None:
    create(cluster, "rbd", 32)
    result = pool_set(cluster, "size", 2)
    assert (result.ret, result.outs) == (0, "set pool 1 size to 2")
    assert cluster.json({"prefix": "osd pool get", "pool": "rbd", "var": "size"}) == \
        {"pool": "rbd", "pool_id": 1, "size": 2}
    assert cluster.pool("rbd").min_size == 1  # follows size, as Ceph's default min_size does
    assert cluster.pool("rbd").last_change == cluster.state.osdmap.epoch
    assert pool_set(cluster, "size", "3").ret == 0 and cluster.pool("rbd").min_size == 2
    assert pool_set(cluster, "min_size", 3).ret == 0 and cluster.pool("rbd").min_size == 3
    assert pool_set(cluster, "pg_num", 64).ret == 0
    assert (cluster.pool("rbd").pg_num, cluster.pool("rbd").pgp_num) == (64, 64)
    assert pool_set(cluster, "pgp_num", 32).ret == 0 and cluster.pool("rbd").pgp_num == 32
    assert pool_set(cluster, "nodelete", "true").ret == 0
    everything = cluster.json({"prefix": "osd pool get", "pool": "rbd", "var": "all"})
    assert everything["nodelete"] is True and everything["crush_rule"] == "replicated_rule"
    assert list(everything)[:7] == ["pool", "pool_id", "size", "min_size", "pg_num", "pgp_num", "crush_rule"]


def test_set_unchanged_pg_num_commits_nothing(cluster: Cluster) -> None:
    create(cluster, "rbd", 32)
    result = pool_set(cluster, "pg_num", 32)
    assert (result.ret, result.outs, result.new_osdmap) == (0, "", None)


@pytest.mark.parametrize(("var", "val", "err", "outs"), [
    ("size", 0, errno.EINVAL, "pool size must be between 1 and 10"),
    ("size", 11, errno.EINVAL, "pool size must be between 1 and 10"),
    ("size", "x", errno.EINVAL, None),
    ("size", 1, errno.EPERM, "configuring pool size as 1 is disabled by default."),
    ("min_size", 4, errno.EINVAL, "pool min_size must be between 1 and size, which is set to 3"),
    ("pgp_num", 64, errno.EINVAL, "specified pgp_num 64 > pg_num 32"),
    ("pgp_num", 0, errno.EINVAL, "specified pgp_num must > 0, but you set to 0"),
    ("pg_num", 0, errno.ERANGE, None),
    ("crush_rule", "fast", errno.ENOENT, "crush rule fast does not exist"),
    ("nodelete", "maybe", errno.EINVAL, "expecting value 'true', 'false', '0', or '1'"),
    ("hashpspool", "false", errno.EPERM, None),
    ("hit_set_count", 1, errno.EACCES, None),
    ("bogus", 1, errno.EINVAL, "unrecognized variable 'bogus'"),
])
def test_set_errors(cluster: Cluster, var: str, val: Any, err: int, outs: str | None) -> None:
    create(cluster, "rbd", 32)
    result = pool_set(cluster, var, val)
    assert result.ret == -err
    if outs is not None:
        assert result.outs == outs


def test_set_pg_num_checks_the_pg_limit() -> None:
    cluster = Cluster(C, conf={"mon_max_pg_per_osd": 250})
    create(cluster, "rbd", 128)
    result = pool_set(cluster, "pg_num", 256)
    assert result.ret == -errno.ERANGE
    assert result.outs == ("pool id 1 pg_num 256 size 3 would mean 768 total pgs, which exceeds max 750 "
                           "(mon_max_pg_per_osd 250 * num_in_osds 3)")


def test_size_one_needs_config_and_confirmation() -> None:
    cluster = Cluster(C, conf={"mon_allow_pool_size_one": True})
    create(cluster, "rbd", 8)
    assert pool_set(cluster, "size", 1).ret == -errno.EPERM
    assert pool_set(cluster, "size", 1, yes_i_really_mean_it=True).ret == 0
    assert (cluster.pool("rbd").size, cluster.pool("rbd").min_size) == (1, 1)


def test_pool_options(cluster: Cluster) -> None:
    create(cluster, "rbd", 32)
    assert cluster.run({"prefix": "osd pool get", "pool": "rbd", "var": "pg_num_min"}).ret == -errno.ENOENT
    assert pool_set(cluster, "pg_num_min", 8).ret == 0
    assert pool_set(cluster, "target_size_bytes", "1G").ret == 0
    assert cluster.json({"prefix": "osd pool get", "pool": "rbd", "var": "pg_num_min"})["pg_num_min"] == 8
    assert cluster.pool("rbd").options == {"pg_num_min": 8, "target_size_bytes": 1 << 30}
    assert pool_set(cluster, "pg_num", 4).outs == "specified pg_num 4 < pg_num_min 8"
    assert pool_set(cluster, "pg_autoscale_mode", "warn").ret == 0
    dump = cluster.json({"prefix": "osd pool ls", "detail": "detail"})[0]
    assert dump["pg_autoscale_mode"] == "warn" and "pg_autoscale_mode" not in dump["options"]


def test_get_errors(cluster: Cluster) -> None:
    create(cluster, "rbd", 8)
    unknown = cluster.run({"prefix": "osd pool get", "pool": "nope", "var": "size"})
    assert (unknown.ret, unknown.outs) == (-errno.ENOENT, "unrecognized pool 'nope'")
    tier = cluster.run({"prefix": "osd pool get", "pool": "rbd", "var": "hit_set_count"})
    assert (tier.ret, tier.outs) == (-errno.EACCES, "pool 'rbd' is not a tier pool: variable not applicable")
    assert cluster.run({"prefix": "osd pool set", "pool": "nope", "var": "size", "val": "2"}).ret == -errno.ENOENT


# -- quotas -----------------------------------------------------------------------------------

def test_quotas(cluster: Cluster) -> None:
    create(cluster, "volumes", 8)
    cluster.report_pgs(objects=1, nbytes=100)
    result = cluster.run({"prefix": "osd pool set-quota", "pool": "volumes", "field": "max_objects", "val": "1k"})
    assert (result.ret, result.outs) == (0, "set-quota max_objects = 1000 for pool volumes")
    assert cluster.run({"prefix": "osd pool set-quota", "pool": "volumes", "field": "max_bytes",
                        "val": 1073741824}).outs == "set-quota max_bytes = 1073741824 for pool volumes"
    quota = cluster.json({"prefix": "osd pool get-quota", "pool": "volumes"})
    assert quota == {"pool_name": "volumes", "pool_id": 1, "quota_max_objects": 1000, "current_num_objects": 8,
                     "quota_max_bytes": 1 << 30, "current_num_bytes": 800}
    assert cluster.run({"prefix": "osd pool set-quota", "pool": "volumes", "field": "max_bytes",
                        "val": "2GiB"}).ret == 0
    assert cluster.pool("volumes").quota_max_bytes == 2 << 30


def test_quota_errors(cluster: Cluster) -> None:
    create(cluster, "volumes", 8)
    missing = cluster.run({"prefix": "osd pool get-quota", "pool": "nosuchpool", "format": "json"})
    assert (missing.ret, missing.outs, missing.outbuf) == (-errno.ENOENT, "unrecognized pool 'nosuchpool'", b"")
    for field, val in (("max_objects", "lots"), ("max_bytes", "-1"), ("max_files", "1")):
        result = cluster.run({"prefix": "osd pool set-quota", "pool": "volumes", "field": field, "val": val})
        assert result.ret == -errno.EINVAL


# -- applications -----------------------------------------------------------------------------

def app(cluster: Cluster, verb: str, **args: Any) -> Any:
    return cluster.run({"prefix": f"osd pool application {verb}", "pool": "images", **args})


def test_application_enable_get_disable(cluster: Cluster) -> None:
    create(cluster, "images", 8)
    result = app(cluster, "enable", app="rbd")
    assert (result.ret, result.outs) == (0, "enabled application 'rbd' on pool 'images'")
    assert cluster.pool("images").application == {"rbd": {}}
    again = app(cluster, "enable", app="rbd")
    assert (again.ret, again.new_osdmap) == (0, None)
    other = app(cluster, "enable", app="rgw")
    assert other.ret == -errno.EPERM and "already has an enabled application" in other.outs
    assert app(cluster, "enable", app="rgw", yes_i_really_mean_it=True).ret == 0
    assert app(cluster, "enable", app="bad name!").ret == -errno.EINVAL
    assert app(cluster, "set", app="rbd", key="k", value="v").outs == \
        "set application 'rbd' key 'k' to 'v' on pool 'images'"
    assert cluster.json({"prefix": "osd pool application get", "pool": "images"}) == {"rbd": {"k": "v"}, "rgw": {}}
    assert cluster.json({"prefix": "osd pool application get", "pool": "images", "app": "rbd"}) == {"k": "v"}
    value = cluster.run({"prefix": "osd pool application get", "pool": "images", "app": "rbd", "key": "k"})
    assert value.outbuf == b"v\n"
    assert app(cluster, "rm", app="rbd", key="k").ret == 0
    assert app(cluster, "disable", app="rgw").ret == -errno.EPERM
    assert app(cluster, "disable", app="rgw", yes_i_really_mean_it=True).ret == 0
    assert cluster.pool("images").application == {"rbd": {}}


def test_application_get_is_pretty_json_by_default(cluster: Cluster) -> None:
    """As in the transcript: `ceph osd pool application get images` prints indented JSON."""
    create(cluster, "images", 8)
    app(cluster, "enable", app="rbd")
    out = cluster.run({"prefix": "osd pool application get", "pool": "images"}).outbuf
    assert out == b'{\n    "rbd": {}\n}\n'
    assert app(cluster, "get", app="rgw").ret == -errno.ENOENT
    assert cluster.run({"prefix": "osd pool application enable", "pool": "x", "app": "rbd"}).outs == \
        "unrecognized pool 'x'"


# -- listing ----------------------------------------------------------------------------------

def test_pool_ls(cluster: Cluster) -> None:
    for name in ("b", "a"):
        create(cluster, name, 8)
    assert cluster.json({"prefix": "osd pool ls"}) == ["b", "a"]
    detail = cluster.json({"prefix": "osd pool ls", "detail": "detail"})
    assert [(p["pool_id"], p["pool_name"], p["pg_num"]) for p in detail] == [(1, "b", 8), (2, "a", 8)]
    assert cluster.json({"prefix": "osd lspools"}) == [{"poolnum": 1, "poolname": "b"},
                                                       {"poolnum": 2, "poolname": "a"}]
    result, data = cluster.C.command_data(cluster.state, {"prefix": "osd pool ls", "detail": "detail"}, 0.0)
    assert list(data) == ["pools", "removed_snaps_queue"] and data["pools"][0]["pool"] == 1

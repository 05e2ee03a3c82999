"""Cluster reports: health checks, status, df (as OpenStack reads it), mon dump, dispatch."""

from __future__ import annotations

import errno
import json
import sys
import types
from typing import Any

import pytest

from tests.mon.test_commands_base import FSID, T0, C, Cluster, GiB, MiB, healthy_cluster


@pytest.fixture
def cluster() -> Cluster:
    return healthy_cluster(C)


def health(cluster: Cluster) -> dict[str, Any]:
    return cluster.json({"prefix": "health", "detail": "detail"})


def set_osd(cluster: Cluster, osd: int, **fields: Any) -> None:
    new = cluster.state.osdmap.copy()
    for name, value in fields.items():
        setattr(new.osds[osd], name, value)
    cluster.state.osdmap = new


# -- health -----------------------------------------------------------------------------------

def test_healthy_cluster_is_ok(cluster: Cluster) -> None:
    assert health(cluster) == {"status": "HEALTH_OK", "checks": {}, "mutes": []}
    assert cluster.json({"prefix": "health"}) == {"status": "HEALTH_OK", "checks": {}, "mutes": []}


def test_osd_down(cluster: Cluster) -> None:
    set_osd(cluster, 1, up=False)
    doc = health(cluster)
    assert doc["status"] == "HEALTH_WARN"
    assert doc["checks"]["OSD_DOWN"] == {
        "severity": "HEALTH_WARN", "summary": {"message": "1 osds down", "count": 1},
        "detail": [{"message": "osd.1 (root=default,host=vm) is down"}], "muted": False}
    assert "detail" not in cluster.json({"prefix": "health"})["checks"]["OSD_DOWN"]
    set_osd(cluster, 1, reweight=0.0)  # down and out: no longer a warning
    assert "OSD_DOWN" not in health(cluster)["checks"]


def test_whole_host_down(cluster: Cluster) -> None:
    for osd in range(3):
        set_osd(cluster, osd, up=False)
    checks = health(cluster)["checks"]
    assert checks["OSD_DOWN"]["summary"]["message"] == "3 osds down"
    assert checks["OSD_HOST_DOWN"]["summary"]["message"] == "1 host (3 osds) down"
    assert checks["OSD_ROOT_DOWN"]["summary"]["message"] == "1 root (3 osds) down"
    assert list(checks) == sorted(checks)


def test_pgs_without_reports_are_unknown_and_inactive(cluster: Cluster) -> None:
    cluster.state.pg_stats.clear()
    check = health(cluster)["checks"]["PG_AVAILABILITY"]
    assert check["summary"] == {"message": "Reduced data availability: 25 pgs inactive", "count": 25}
    assert check["detail"][0] == {"message": "pg 1.0 is unknown, acting []"}
    pgmap = cluster.json({"prefix": "status"})["pgmap"]
    assert pgmap["pgs_by_state"] == [{"state_name": "unknown", "count": 25}]
    assert pgmap["unknown_pgs_ratio"] == 1


def test_peering_and_degraded_pgs(cluster: Cluster) -> None:
    stats = cluster.state.pg_stats
    stats["2.0"].state = "peering"
    for ps in range(8):
        stats[f"3.{ps}"].state = "active+undersized+degraded"
    stats["4.0"].state = "active+undersized"
    checks = health(cluster)["checks"]
    assert checks["PG_AVAILABILITY"]["summary"]["message"] == \
        "Reduced data availability: 1 pg inactive, 1 pg peering"
    assert checks["PG_DEGRADED"]["summary"] == {
        "message": "Degraded data redundancy: 8 pgs degraded, 9 pgs undersized", "count": 9}
    assert checks["PG_DEGRADED"]["detail"][0]["message"].startswith("pg 3.0 is active+undersized+degraded, acting [")


def test_pool_without_application_warns_after_the_grace(cluster: Cluster) -> None:
    cluster.run({"prefix": "osd pool create", "pool": "bare", "pg_num": 8})
    cluster.report_pgs()
    assert health(cluster)["status"] == "HEALTH_OK"  # just created: `rbd pool init` may follow
    cluster.now += 600
    check = health(cluster)["checks"]["POOL_APP_NOT_ENABLED"]
    assert check["summary"] == {"message": "1 pool(s) do not have an application enabled", "count": 1}
    assert check["detail"][0] == {"message": "application not enabled on pool 'bare'"}
    cluster.conf["mon_warn_on_pool_no_app"] = False
    assert health(cluster)["status"] == "HEALTH_OK"


def test_too_few_osds() -> None:
    cluster = Cluster(C, n_osds=2)
    check = health(cluster)["checks"]["TOO_FEW_OSDS"]
    assert check["summary"]["message"] == "OSD count 2 < osd_pool_default_size 3"


def test_full_osds(cluster: Cluster) -> None:
    cluster.state.osd_stats[0].avail = int(8 * GiB * 0.12)  # 88% used
    cluster.state.osd_stats[1].avail = int(8 * GiB * 0.01)
    doc = health(cluster)
    assert doc["status"] == "HEALTH_ERR"
    assert doc["checks"]["OSD_NEARFULL"]["detail"] == [{"message": "osd.0 is near full"}]
    assert doc["checks"]["OSD_FULL"]["summary"]["message"] == "1 full osd(s)"


# -- status -----------------------------------------------------------------------------------

def test_status(cluster: Cluster) -> None:
    doc = cluster.json({"prefix": "status"})
    assert doc["fsid"] == FSID and doc["health"]["status"] == "HEALTH_OK"
    assert (doc["quorum"], doc["quorum_names"]) == ([0], ["a"])
    assert doc["quorum_age"] == int(cluster.now - 1 - T0)
    assert doc["osdmap"]["num_up_osds"] == 3 and doc["osdmap"]["epoch"] == cluster.state.osdmap.epoch
    pgmap = doc["pgmap"]
    assert pgmap["pgs_by_state"] == [{"state_name": "active+clean", "count": 25}]
    assert (pgmap["num_pgs"], pgmap["num_pools"], pgmap["num_objects"]) == (25, 4, 50)
    assert (pgmap["data_bytes"], pgmap["bytes_total"]) == (50 * 4096, 24 * GiB)
    assert pgmap["bytes_used"] + pgmap["bytes_avail"] == pgmap["bytes_total"]


def test_status_leaves_out_idle_io_rates(cluster: Cluster) -> None:
    cluster.state.io_rates.clear()
    pgmap = cluster.json({"prefix": "status"})["pgmap"]
    assert not {"read_bytes_sec", "write_bytes_sec", "read_op_per_sec", "write_op_per_sec"} & set(pgmap)


# -- df ---------------------------------------------------------------------------------------

def test_df_as_cinder_and_nova_read_it(cluster: Cluster) -> None:
    df = cluster.json({"prefix": "df"})
    assert df["stats"]["total_bytes"] == 24 * GiB
    assert df["stats"]["total_avail_bytes"] == 3 * (8 * GiB - 300 * MiB)
    assert df["stats"]["total_used_bytes"] == 900 * MiB
    volumes = next(p for p in df["pools"] if p["name"] == "volumes")
    stats = volumes["stats"]
    assert (volumes["id"], stats["objects"], stats["stored"]) == (4, 16, 16 * 4096)
    assert stats["bytes_used"] == 3 * stats["stored"] and stats["kb_used"] == stats["bytes_used"] // 1024
    # MAX AVAIL: what the fullest OSD still takes before full_ratio, times 3 OSDs, over size 3.
    per_osd = 8 * GiB - 300 * MiB - 0.05 * 8 * GiB
    assert abs(stats["max_avail"] - per_osd) <= 1
    assert 0 < stats["percent_used"] < 1e-4
    # cinder's capacity logic (openstack-surface §4): free = max_avail, total from stats.
    assert min(stats["max_avail"], df["stats"]["total_bytes"]) > 0


def test_df_detail_and_quota(cluster: Cluster) -> None:
    cluster.run({"prefix": "osd pool set-quota", "pool": "volumes", "field": "max_bytes", "val": "1G"})
    df = cluster.json({"prefix": "df", "detail": "detail"})
    volumes = next(p for p in df["pools"] if p["name"] == "volumes")["stats"]
    assert (volumes["quota_bytes"], volumes["quota_objects"]) == (GiB, 0)
    assert volumes["stored_raw"] == 3 * volumes["stored"]
    assert volumes["avail_raw"] == 3 * volumes["max_avail"] or abs(volumes["avail_raw"] - 3 * volumes["max_avail"]) < 3


def test_df_without_osd_reports() -> None:
    cluster = Cluster(C)
    cluster.state.osd_stats.clear()
    cluster.create_pool("rbd", 8)
    df = cluster.json({"prefix": "df"})
    assert df["stats"]["total_bytes"] == 0 and df["stats_by_class"] == {}
    assert df["pools"][0]["stats"]["max_avail"] == 0


def test_pg_stat(cluster: Cluster) -> None:
    doc = cluster.json({"prefix": "pg stat"})
    assert doc["pg_ready"] is True
    summary = doc["pg_summary"]
    assert summary["num_pg_by_state"] == [{"name": "active+clean", "num": 25}]
    assert (summary["num_pgs"], summary["num_bytes"], summary["total_bytes"]) == (25, 50 * 4096, 24 * GiB)


# -- monitors and identity ----------------------------------------------------------------------

def test_mon_dump_addresses_parse_as_openstack_does(cluster: Cluster) -> None:
    result = cluster.run({"prefix": "mon dump", "format": "json"})
    assert result.outs == "dumped monmap epoch 1"
    doc = json.loads(result.outbuf)
    addr = doc["mons"][0]["addr"]
    host, port = addr[: addr.rindex("/")].rsplit(":", 1)  # cinder/nova _get_mon_addrs
    assert (host.strip("[]"), port) == ("127.0.0.1", "6789")
    assert doc["fsid"] == FSID and doc["quorum"] == [0]
    assert doc["modified"] == "2026-11-23T21:36:56.000000Z"


def test_small_identity_commands(cluster: Cluster) -> None:
    assert cluster.json({"prefix": "fsid"}) == {"fsid": FSID}
    assert cluster.run({"prefix": "fsid"}).outbuf == f"{FSID}\n".encode()
    assert cluster.json({"prefix": "version"})["version"].startswith("ceph version 16.2.15 ")
    versions = cluster.json({"prefix": "versions"})
    assert list(versions) == ["mon", "mgr", "osd", "mds", "overall"]
    assert sum(versions["overall"].values()) == 4
    assert cluster.json({"prefix": "mon stat"}) == {"epoch": 1, "min_mon_release_name": "pacific", "num_mons": 1,
                                                    "leader": "a", "quorum": [{"rank": 0, "name": "a"}]}


# -- dispatch and formatting ----------------------------------------------------------------------

@pytest.mark.parametrize("cmd", [{"prefix": "no such thing"}, {"prefix": "osd pool mksnap", "pool": "rbd"},
                                 {}, {"prefix": 42}])
def test_unknown_commands(cluster: Cluster, cmd: dict[str, Any]) -> None:
    result = cluster.run(cmd)
    assert (result.ret, result.outbuf, result.outs, result.new_osdmap) == (-errno.EINVAL, b"", "command not known",
                                                                           None)


@pytest.mark.parametrize("cmd", [
    {"prefix": "osd pool create", "pool": {"a": 1}},
    {"prefix": "osd pool get", "pool": ["rbd", "x"], "var": "size"},
    {"prefix": "osd pool set", "pool": "rbd", "var": "size", "val": [1, 2]},
])
def test_malformed_arguments_are_einval(cluster: Cluster, cmd: dict[str, Any]) -> None:
    result = cluster.run(cmd)
    assert result.ret in (-errno.EINVAL, -errno.ENOENT) and result.new_osdmap is None


def test_plain_output_goes_through_render_plain(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, dict[str, Any], Any]] = []
    fake = types.ModuleType("shoal.mon.render")
    fake.render_plain = lambda prefix, cmd, data: calls.append((prefix, cmd, data)) or "rendered\n"
    monkeypatch.setitem(sys.modules, "shoal.mon.render", fake)
    cmd = {"prefix": "status"}
    assert cluster.run(cmd).outbuf == b"rendered\n"
    prefix, got_cmd, data = calls[0]
    assert (prefix, got_cmd) == ("status", cmd)
    assert data["_now"] == cluster.now - 1 and data["pgmap"]["num_pgs"] == 25
    assert "_pg_num" in cluster.C.command_data(cluster.state, {"prefix": "df"}, 0)[1]["pools"][0]
    assert cluster.run({"prefix": "osd down", "ids": ["0"]}).outbuf == b""  # status line only
    assert len(calls) == 1


def test_plain_falls_back_to_pretty_json_without_a_renderer(cluster: Cluster,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "shoal.mon.render", None)  # import fails
    out = cluster.run({"prefix": "osd pool get", "pool": "rbd", "var": "size"}).outbuf
    assert out == b'{\n    "pool": "rbd",\n    "pool_id": 2,\n    "size": 3\n}\n'


def test_json_documents_carry_no_plain_extras(cluster: Cluster) -> None:
    def keys(x: Any) -> set[str]:
        if isinstance(x, dict):
            return set(x) | {k for v in x.values() for k in keys(v)}
        if isinstance(x, list):
            return {k for v in x for k in keys(v)}
        return set()

    for prefix in ("status", "df", "osd stat", "osd dump", "osd pool ls"):
        doc = cluster.json({"prefix": prefix, "detail": "detail"})
        assert not {k for k in keys(doc) if k.startswith("_")}, prefix

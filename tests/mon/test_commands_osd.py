"""OSD commands: osd map agrees with placement, down/out/in change the map like Ceph."""

from __future__ import annotations

import errno

import pytest

from tests.mon.test_commands_base import T0, C, Cluster


@pytest.fixture
def cluster() -> Cluster:
    cluster = Cluster(C)
    cluster.create_pool("device_health_metrics", 1, app="mgr_devicehealth")
    cluster.create_pool("rbd", 8)
    return cluster


# -- osd map ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("obj", "nspace"), [("obj1", ""), ("rbd_header.1234", ""), ("foo", "ns1")])
def test_osd_map_agrees_with_the_osd_map_placement(cluster: Cluster, obj: str, nspace: str) -> None:
    osdmap = cluster.state.osdmap
    pool = cluster.pool("rbd")
    out = cluster.json({"prefix": "osd map", "pool": "rbd", "object": obj, "nspace": nspace})
    ps = osdmap.object_to_ps(pool, obj, nspace)
    up = osdmap.pg_to_up(pool, ps)
    assert out["pgid"] == f"{pool.id}.{ps:x}"
    assert out["raw_pgid"].startswith(f"{pool.id}.")
    assert int(out["raw_pgid"].split(".")[1], 16) % 8 == ps  # pg_num 8 is a power of two
    assert (out["up"], out["acting"], out["up_primary"], out["acting_primary"]) == (up, up, up[0], up[0])
    assert out["objname"] == (f"{nspace}/{obj}" if nspace else obj)
    assert (out["epoch"], out["pool"], out["pool_id"]) == (osdmap.epoch, "rbd", pool.id)


def test_osd_map_matches_ceph_for_the_fixture_object(cluster: Cluster) -> None:
    """`ceph osd map rbd obj1`: pool 2, pg_num 8 → raw 2.6cf8deff, pg 2.7 (needs the real hash)."""
    out = cluster.json({"prefix": "osd map", "pool": "rbd", "object": "obj1"})
    assert (out["raw_pgid"], out["pgid"]) == ("2.6cf8deff", "2.7")


def test_osd_map_errors(cluster: Cluster) -> None:
    result = cluster.run({"prefix": "osd map", "pool": "nosuchpool", "object": "obj1", "format": "json"})
    assert (result.ret, result.outs, result.outbuf) == (-errno.ENOENT, "pool nosuchpool does not exist", b"")
    assert cluster.run({"prefix": "osd map", "pool": "rbd"}).ret == -errno.EINVAL


def test_osd_map_with_a_down_osd_leaves_it_out_of_up(cluster: Cluster) -> None:
    cluster.run({"prefix": "osd down", "ids": ["0"]})
    for obj in ("a", "b", "c", "d"):
        assert 0 not in cluster.json({"prefix": "osd map", "pool": "rbd", "object": obj})["up"]


# -- down / out / in ------------------------------------------------------------------------------

def test_down_out_in(cluster: Cluster) -> None:
    epoch = cluster.state.osdmap.epoch
    now = cluster.now
    result = cluster.run({"prefix": "osd down", "ids": ["0"]})
    assert (result.ret, result.outs) == (0, "marked down osd.0. ")
    osd = cluster.state.osdmap.osds[0]
    assert (osd.up, osd.down_at, cluster.state.osdmap.epoch) == (False, epoch + 1, epoch + 1)
    assert cluster.state.osdmap.last_up_change == now
    again = cluster.run({"prefix": "osd down", "ids": ["osd.0"]})
    assert (again.ret, again.outs, again.new_osdmap) == (0, "osd.0 is already down. ", None)

    result = cluster.run({"prefix": "osd out", "ids": ["osd.0", "1"]})
    assert result.outs == "marked out osd.0. marked out osd.1. "
    assert [o.reweight for o in cluster.state.osdmap.osds.values()] == [0.0, 0.0, 1.0]
    assert cluster.json({"prefix": "osd stat"})["num_in_osds"] == 1

    result = cluster.run({"prefix": "osd in", "ids": ["all"]})
    assert result.outs == "marked in osd.0. marked in osd.1. "
    assert cluster.state.osdmap.num_in() == 3
    assert cluster.run({"prefix": "osd in", "ids": ["2"]}).outs == "osd.2 is already in. "


def test_marking_unknown_or_malformed_osds(cluster: Cluster) -> None:
    missing = cluster.run({"prefix": "osd out", "ids": ["9"]})
    assert (missing.ret, missing.outs, missing.new_osdmap) == (0, "osd.9 does not exist. ", None)
    mixed = cluster.run({"prefix": "osd down", "ids": ["9", "1"]})
    assert mixed.outs == "osd.9 does not exist. marked down osd.1. " and mixed.new_osdmap is not None
    for ids in (["x"], ["osd.-1"], []):
        result = cluster.run({"prefix": "osd down", "ids": ids})
        assert result.ret == -errno.EINVAL


def test_ids_may_be_a_single_string(cluster: Cluster) -> None:
    assert cluster.run({"prefix": "osd down", "ids": "osd.2"}).outs == "marked down osd.2. "


# -- tree / stat / ls / dump / df --------------------------------------------------------------------

def test_osd_tree_reflects_state(cluster: Cluster) -> None:
    cluster.run({"prefix": "osd down", "ids": ["1"]})
    cluster.run({"prefix": "osd out", "ids": ["1"]})
    nodes = cluster.json({"prefix": "osd tree"})["nodes"]
    assert [n["id"] for n in nodes] == [-1, -3, 0, 1, 2]
    assert nodes[1]["name"] == "vm" and nodes[1]["children"] == [2, 1, 0]
    osd1 = nodes[3]
    assert (osd1["status"], osd1["reweight"], osd1["crush_weight"]) == ("down", 0, 511 / 65536)


def test_osd_tree_with_hosts() -> None:
    cluster = Cluster(C, n_osds=4)
    new = cluster.state.osdmap.copy()
    new.osds[1].host = new.osds[3].host = "b"
    cluster.state.osdmap = new
    nodes = cluster.json({"prefix": "osd tree"})["nodes"]
    assert [n["id"] for n in nodes] == [-1, -3, 0, 2, -5, 1, 3]
    assert (nodes[0]["children"], nodes[1]["children"], nodes[4]["children"]) == ([-5, -3], [2, 0], [3, 1])


def test_osd_stat_ls_dump(cluster: Cluster) -> None:
    stat = cluster.json({"prefix": "osd stat"})
    assert stat == {"epoch": cluster.state.osdmap.epoch, "num_osds": 3, "num_up_osds": 3,
                    "osd_up_since": int(T0 + 10), "num_in_osds": 3, "osd_in_since": int(T0 + 4),
                    "num_remapped_pgs": 0}
    assert cluster.json({"prefix": "osd ls"}) == [0, 1, 2]
    dump = cluster.json({"prefix": "osd dump"})
    assert (dump["epoch"], dump["pool_max"], dump["max_osd"]) == (cluster.state.osdmap.epoch, 2, 3)
    assert dump["created"] == "2026-11-23T21:36:56.000000+0000"
    assert dump["pools"][1]["pool_name"] == "rbd" and dump["pools"][1]["application_metadata"] == {"rbd": {}}
    assert dump["osds"][0]["public_addr"] == "127.0.0.1:6802/0"
    assert dump["osds"][0]["public_addrs"] == {"addrvec": [{"type": "v1", "addr": "127.0.0.1:6802", "nonce": 0}]}
    assert dump["osds"][0]["state"] == ["exists", "up"]


def test_osd_df(cluster: Cluster) -> None:
    cluster.report_pgs()
    df = cluster.json({"prefix": "osd df"})
    assert [n["name"] for n in df["nodes"]] == ["osd.0", "osd.1", "osd.2"]
    assert df["nodes"][0]["kb"] == 8 << 20 and df["summary"]["total_kb"] == 24 << 20
    assert sum(n["pgs"] for n in df["nodes"]) == 9 * 3  # 9 PGs, 3 replicas each

"""JSON output of every read command has the exact layout real Ceph 16 prints."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.mon.test_commands_base import FIXTURES, C, Cluster, assert_layout, fixture, healthy_cluster

CASES = [
    ({"prefix": "status"}, "ceph-status.json"),
    ({"prefix": "health"}, "ceph-health.json"),
    ({"prefix": "health", "detail": "detail"}, "ceph-health-detail.json"),
    ({"prefix": "df"}, "ceph-df.json"),
    ({"prefix": "df", "detail": "detail"}, "ceph-df-detail.json"),
    ({"prefix": "mon dump"}, "ceph-mon-dump.json"),
    ({"prefix": "osd tree"}, "ceph-osd-tree.json"),
    ({"prefix": "osd stat"}, "ceph-osd-stat.json"),
    ({"prefix": "osd dump"}, "ceph-osd-dump.json"),
    ({"prefix": "osd pool ls"}, "ceph-osd-pool-ls.json"),
    ({"prefix": "osd pool ls", "detail": "detail"}, "ceph-osd-pool-ls-detail.json"),
    ({"prefix": "osd pool get", "pool": "rbd", "var": "size"}, "ceph-osd-pool-get-size.json"),
    ({"prefix": "osd pool get-quota", "pool": "volumes"}, "ceph-osd-pool-get-quota.json"),
    ({"prefix": "osd pool get-quota", "pool": "images"}, "ceph-osd-pool-get-quota-unset.json"),
    ({"prefix": "osd map", "pool": "rbd", "object": "obj1"}, "ceph-osd-map.json"),
]


@pytest.fixture
def cluster() -> Cluster:
    cluster = healthy_cluster(C)
    cluster.run({"prefix": "osd pool set-quota", "pool": "volumes", "field": "max_objects", "val": "1000"})
    cluster.run({"prefix": "osd pool set-quota", "pool": "volumes", "field": "max_bytes", "val": "1G"})
    # A pool that deleted snapshots not yet purged, as the fixture cluster had.
    new = cluster.state.osdmap.copy()
    new.pools[2].removed_snaps = [52, 53, 54, 55]
    cluster.state.osdmap = new
    return cluster


@pytest.mark.parametrize(("cmd", "name"), CASES, ids=[name for _, name in CASES])
def test_json_layout_matches_ceph(cluster: Cluster, cmd: dict[str, Any], name: str) -> None:
    assert_layout(cluster.json(cmd), fixture(name))


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("ceph-*.json")))
def test_encoder_reproduces_ceph_bytes(name: str) -> None:
    """Fed the data of any `ceph ... --format json` capture, the encoder writes its exact bytes."""
    from shoal.mon.commands_common import encode_json

    raw = (FIXTURES / name).read_bytes()
    assert raw.startswith(b"\n")  # written by the CLI before any JSON output
    body = raw[1:]
    assert encode_json(json.loads(body), pretty=False, trailing_newline=body.endswith(b"\n")) == body


@pytest.mark.parametrize(("cmd", "name"), CASES, ids=[name for _, name in CASES])
def test_outbuf_ends_like_ceph(cluster: Cluster, cmd: dict[str, Any], name: str) -> None:
    raw = (FIXTURES / name).read_bytes()
    ours = cluster.run({**cmd, "format": "json"}).outbuf
    assert ours.endswith(b"\n") == raw.endswith(b"\n")
    assert b"\n" not in ours.rstrip(b"\n") and b'": ' not in ours


def test_health_warn_layouts(cluster: Cluster) -> None:
    down = cluster.state.osdmap.copy()
    down.osds[1].up = False
    cluster.state.osdmap = down
    cluster.state.io_rates["write_bytes_sec"] = 0  # the fixture was taken while only reading
    detail = cluster.json({"prefix": "health", "detail": "detail"})
    assert detail["status"] == "HEALTH_WARN"
    assert_layout(detail, fixture("ceph-health-detail-warn.json"))
    assert_layout(cluster.json({"prefix": "status"}), fixture("ceph-status-warn.json"))


def test_json_pretty_indents_by_four(cluster: Cluster) -> None:
    out = cluster.run({"prefix": "osd pool get", "pool": "rbd", "var": "size", "format": "json-pretty"}).outbuf
    assert out == b'{\n    "pool": "rbd",\n    "pool_id": 2,\n    "size": 3\n}\n'

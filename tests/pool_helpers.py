"""A pool of a test module's own on the session cluster, and per-test namespaces in it."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import pytest

import rados
from shoal.testing.cluster import TestCluster


@contextlib.contextmanager
def admin_with_pool(cluster: TestCluster, pool: str, client: rados.Rados | None = None) -> Iterator[rados.Rados]:
    """client.admin (or the connected `client`) with `pool` created; the pool is deleted and
    the client shut down afterwards."""
    r = client
    if r is None:
        r = rados.Rados(conffile=cluster.conf_path)
        r.connect()
    ret, _, outs = r.mon_command(json.dumps({"prefix": "osd pool create", "pool": pool, "pg_num": 8}), b"")
    assert ret == 0, outs
    try:
        yield r
    finally:
        r.delete_pool(pool)
        r.shutdown()


@contextlib.contextmanager
def namespaced_ioctx(r: rados.Rados, pool: str, request: pytest.FixtureRequest) -> Iterator[rados.Ioctx]:
    """An Ioctx on `pool` in a namespace named after the test, so tests never see each
    other's objects."""
    io = r.open_ioctx(pool)
    io.set_namespace(request.node.name[:60])
    try:
        yield io
    finally:
        io.close()

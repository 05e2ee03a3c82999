"""Shared fixtures: a real cluster (mon + 3 OSD processes on 127.0.0.1) per test session."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.testing.cluster import TestCluster

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("SHOAL_SHARED", REPO.parent / "shared"))
FIXTURES = SHARED / "reference" / "fixtures"

# Daemons and CLI subprocesses must import this checkout's code.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
sys.path.insert(0, str(REPO))


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    c = TestCluster(str(tmp_path_factory.mktemp("cluster")), osds=3)
    c.start(extra_conf="mon allow pool delete = true")
    try:
        yield c
    finally:
        c.down()


@pytest.fixture(scope="session")
def noauth_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    """A cluster with `auth … required = none`, for protocol tests that speak raw frames."""
    c = TestCluster(str(tmp_path_factory.mktemp("noauth")), osds=3, auth="none")
    c.start(extra_conf="mon allow pool delete = true")
    try:
        yield c
    finally:
        c.down()


@pytest.fixture
def fresh_cluster(tmp_path: Path) -> Iterator[TestCluster]:
    """A cluster of its own, for tests that kill or stop daemons."""
    c = TestCluster(str(tmp_path / "cluster"), osds=3)
    c.start(extra_conf="mon allow pool delete = true")
    try:
        yield c
    finally:
        c.down()

"""cinder-backup's Ceph driver against the guide's cluster, natively and under eventlet."""

from __future__ import annotations

import pytest

from tests.openstack.conftest import GuideCluster, run_flow

pytestmark = [pytest.mark.openstack, pytest.mark.integration]


@pytest.mark.parametrize("eventlet", [False, True], ids=["native", "eventlet"])
@pytest.mark.parametrize("flow", ["incremental_chain", "full_restores"])
def test_cinder_backup(guide: GuideCluster, flow: str, eventlet: bool) -> None:
    run_flow(guide, "flows_backup", flow, eventlet=eventlet, timeout=600)


def test_cinder_backup_caps(guide: GuideCluster) -> None:
    run_flow(guide, "flows_backup", "caps")

"""nova-compute's RBD driver and image backend against the guide's cluster, natively and
under eventlet."""

from __future__ import annotations

import pytest

from tests.openstack.conftest import GuideCluster, run_flow

pytestmark = [pytest.mark.openstack, pytest.mark.integration]

FLOWS = ["clone_from_glance", "snapshots", "import_and_cli", "cleanup", "direct_snapshot"]


@pytest.mark.parametrize("eventlet", [False, True], ids=["native", "eventlet"])
@pytest.mark.parametrize("flow", FLOWS)
def test_nova(guide: GuideCluster, flow: str, eventlet: bool) -> None:
    run_flow(guide, "flows_nova", flow, eventlet=eventlet)

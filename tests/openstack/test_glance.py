"""glance_store's RBD store against the guide's cluster."""

from __future__ import annotations

import pytest

from tests.openstack.conftest import GuideCluster, run_flow

pytestmark = [pytest.mark.openstack, pytest.mark.integration]


@pytest.mark.parametrize("flow", ["add_known_size", "add_unknown_size", "thin_provisioning", "delete", "caps"])
def test_glance_store(guide: GuideCluster, flow: str) -> None:
    run_flow(guide, "flows_glance", flow)

"""cinder-volume's RBD driver and os-brick against the guide's cluster."""

from __future__ import annotations

import pytest

from tests.openstack.conftest import GuideCluster, run_flow

pytestmark = [pytest.mark.openstack, pytest.mark.integration]

FLOWS = ["setup_and_stats", "volume_lifecycle", "cloned_volume", "clone_depth", "clone_image",
         "image_volume_copy", "connection_os_brick", "deferred_deletion", "manage_and_status", "qos_and_multiattach", "caps"]


@pytest.mark.parametrize("flow", FLOWS)
def test_cinder_volume(guide: GuideCluster, flow: str) -> None:
    run_flow(guide, "flows_cinder", flow)


@pytest.mark.parametrize("flow", ["volume_lifecycle", "clone_image", "connection_os_brick"])
def test_cinder_volume_eventlet(guide: GuideCluster, flow: str) -> None:
    """cinder-volume's default mode: monkey-patched, rados/rbd calls through tpool."""
    run_flow(guide, "flows_cinder", flow, eventlet=True)

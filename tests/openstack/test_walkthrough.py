"""The OpenStack part of the README's walkthrough (scripts/openstack_demo.py) against the
guide's cluster, so the main job cannot rot unnoticed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.openstack.conftest import HERE, GuideCluster

pytestmark = [pytest.mark.openstack, pytest.mark.integration]


def test_openstack_walkthrough(guide: GuideCluster) -> None:
    env = guide.env()
    env["CEPH_CONF"] = guide.conf
    env["SHOAL_RUN_DIR"] = os.path.join(guide.dir, "run")  # its `rbd device map` gateway lives there
    script = HERE.parent.parent / "scripts" / "openstack_demo.py"
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, env=env, timeout=300)
    out = proc.stdout.decode()
    assert proc.returncode == 0, f"{out[-3000:]}\n{proc.stderr.decode()[-3000:]}"
    assert "sha256 matches the image: True" in out
    assert "the volume from the QCOW2 image holds the same bytes: True" in out
    assert "can_multi_conn: true" in out  # nbdinfo on the mapped volume
    assert out.rstrip().endswith("done")

"""Metavariable expansion."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shoal.config.metavars import METAVARIABLES, entity_vars, expand

VARS = entity_vars("ceph", "client", "cinder", pid=19195, cctid=32310016, host="node1")


def test_entity_vars() -> None:
    assert set(VARS) == set(METAVARIABLES)
    assert VARS["name"] == "client.cinder"
    assert VARS["pid"] == "19195" and VARS["cctid"] == "32310016"


def test_openstack_guide_admin_socket_path() -> None:
    path = "/var/run/ceph/guests/$cluster-$type.$id.$pid.$cctid.asok"
    assert expand(path, VARS) == "/var/run/ceph/guests/ceph-client.cinder.19195.32310016.asok"


def test_keyring_default() -> None:
    assert expand("/etc/ceph/$cluster.$name.keyring", VARS) == "/etc/ceph/ceph.client.cinder.keyring"


def test_braced_form_joins_with_text() -> None:
    assert expand("${cluster}x-${id}_log", VARS) == "cephx-cinder_log"
    # Unbraced names run to the end of the identifier, so this is $idx (unknown).
    assert expand("$idx", VARS) == "$idx"


def test_host() -> None:
    assert expand("/var/log/$host/$name.log", VARS) == "/var/log/node1/client.cinder.log"


def test_unknown_variables_stay() -> None:
    assert expand("$REALCEPH_DIR/$cluster.conf", VARS) == "$REALCEPH_DIR/ceph.conf"
    assert expand("cost $5 and $", VARS) == "cost $5 and $"


def test_resolver_function_and_recursion() -> None:
    values = {**VARS, "run_dir": "/run/$cluster", "admin_socket": "$run_dir/$name.asok"}
    assert expand("$admin_socket", values.get) == "/run/ceph/client.cinder.asok"


def test_loops_are_left_unexpanded() -> None:
    values = {"a": "x$b", "b": "y$a", "self": "$self!"}
    assert expand("$a", values) == "xy$a"
    assert expand("$self", values) == "$self!"


@given(st.text(st.characters(blacklist_characters="$")))
def test_text_without_dollar_is_unchanged(text: str) -> None:
    assert expand(text, VARS) == text

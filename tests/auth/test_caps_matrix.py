"""The OpenStack guide's caps evaluated as Ceph evaluates them, object by object and pool by pool.

Glance: `osd 'profile rbd pool=images'`; Cinder: `osd 'profile rbd pool=volumes, profile rbd
pool=vms, profile rbd-read-only pool=images'`; both `mon 'profile rbd'`.

The expectation below is written from Ceph's profile expansion (OSDCap::expand_profile),
not from Shoal's code: `profile rbd pool=P` = rwx on P, plus in *every* pool `r` on
`rbd_info*` and `class-read` on `rbd_children*` / `rbd_mirroring*`; `profile
rbd-read-only pool=P` = `r class-read` on P plus the `rbd` methods `child_attach` /
`child_detach` on `rbd_header.*` in P (and `metadata_list` on P's `rbd_info`).
"""

from __future__ import annotations

import itertools

import pytest

from shoal.auth.caps import MonCap, OSDCap

GLANCE = "profile rbd pool=images"
CINDER = "profile rbd pool=volumes, profile rbd pool=vms, profile rbd-read-only pool=images"
POOLS = ["images", "volumes", "vms", "backups"]
OBJECTS = ["rbd_header.1f2e3d", "rbd_data.1f2e3d.0000000000000000", "rbd_id.vol-1", "rbd_directory",
           "rbd_children", "rbd_info", "rbd_mirroring"]
# op kind -> (read, write, class calls: (class, method, method reads, method writes))
OPS = {
    "read": (True, False, ()),
    "write": (False, True, ()),
    "read+write": (True, True, ()),
    "cls-read": (False, False, (("rbd", "get_size", True, False),)),
    "cls-write": (False, False, (("rbd", "set_size", True, True),)),
    "metadata_list": (False, False, (("rbd", "metadata_list", True, False),)),
    "child_attach": (False, False, (("rbd", "child_attach", True, True),)),
    "child_detach": (False, False, (("rbd", "child_detach", True, True),)),
    "lock": (False, False, (("lock", "lock", True, True),)),
    "read+cls-read": (True, False, (("rbd", "get_id", True, False),)),
    "write+child_attach": (False, True, (("rbd", "child_attach", True, True),)),
}


def expected(profiles: list[tuple[str, str]], pool: str, oid: str, op: str) -> bool:
    read, write, calls = OPS[op]
    if ("rbd", pool) in profiles:
        return True  # rwx on the pool covers every op
    class_reads_only = all(r and not w for _, _, r, w in calls)
    if ("rbd-read-only", pool) in profiles and not write:
        if class_reads_only:
            return True  # r + class-read on the pool
        if not read and oid.startswith("rbd_header.") and all(m in ("child_attach", "child_detach") for _, m, _, _ in calls):
            return True
    if any(kind == "rbd" for kind, _ in profiles):  # grants of `profile rbd` valid in every pool
        if oid.startswith("rbd_info") and not write and not calls:
            return True
        if oid.startswith(("rbd_children", "rbd_mirroring")) and not read and not write and calls and class_reads_only:
            return True
    return False


CASES = {
    "glance": (GLANCE, [("rbd", "images")]),
    "cinder": (CINDER, [("rbd", "volumes"), ("rbd", "vms"), ("rbd-read-only", "images")]),
}


@pytest.mark.parametrize("who", sorted(CASES))
def test_guide_osd_caps_matrix(who: str) -> None:
    text, profiles = CASES[who]
    cap = OSDCap.parse(text)
    wrong = []
    for pool, oid, op in itertools.product(POOLS, OBJECTS, OPS):
        read, write, calls = OPS[op]
        got = cap.allows(pool, "", oid, read=read, write=write, cls_calls=calls)
        if got != expected(profiles, pool, oid, op):
            wrong.append((pool, oid, op, got))
    assert wrong == []


def test_guide_osd_caps_spot_checks() -> None:
    """The cases that matter to OpenStack, spelled out."""
    glance, cinder = OSDCap.parse(GLANCE), OSDCap.parse(CINDER)
    data, header = "rbd_data.abc.0000000000000000", "rbd_header.abc"
    # Glance owns images and nothing else.
    assert glance.allows("images", "", data, read=True, write=True)
    assert glance.allows("images", "", header, read=False, write=False, cls_calls=[("lock", "lock", True, True)])
    assert not glance.allows("volumes", "", data, read=True, write=False)
    # Cinder writes volumes and vms, only reads images ...
    assert cinder.allows("volumes", "", data, read=False, write=True)
    assert cinder.allows("vms", "", header, read=False, write=False, cls_calls=[("rbd", "set_size", True, True)])
    assert cinder.allows("images", "", data, read=True, write=False)
    assert not cinder.allows("images", "", data, read=False, write=True)
    assert not cinder.allows("images", "", header, read=False, write=False, cls_calls=[("rbd", "set_size", True, True)])
    # ... except that it may attach a clone to (and detach it from) a Glance image.
    assert cinder.allows("images", "", header, read=False, write=False, cls_calls=[("rbd", "child_attach", True, True)])
    assert cinder.allows("images", "", header, read=False, write=False, cls_calls=[("rbd", "child_detach", True, True)])
    assert not cinder.allows("images", "", data, read=False, write=False, cls_calls=[("rbd", "child_attach", True, True)])
    # Pool-wide helpers of `profile rbd`: rbd_info readable and rbd_children class-readable anywhere.
    assert cinder.allows("backups", "", "rbd_info", read=True, write=False)
    assert not cinder.allows("backups", "", "rbd_info", read=False, write=True)
    assert cinder.allows("backups", "", "rbd_children", read=False, write=False,
                         cls_calls=[("rbd", "get_children", True, False)])
    assert not cinder.allows("backups", "", header, read=True, write=False)
    # metadata_list on rbd_info: only in the profile's pool (its default namespace)
    ml = [("rbd", "metadata_list", True, False)]
    assert cinder.allows("images", "", "rbd_info", read=False, write=False, cls_calls=ml)
    assert cinder.allows("images", "ns", "rbd_info", read=False, write=False, cls_calls=ml)  # class-read on all of images
    assert not cinder.allows("backups", "", "rbd_info", read=False, write=False, cls_calls=ml)


def test_profile_rbd_without_pool_is_every_pool() -> None:
    cap = OSDCap.parse("profile rbd")
    assert all(cap.allows(p, "", "rbd_data.x.0", read=True, write=True) for p in POOLS)
    ro = OSDCap.parse("profile rbd-read-only")
    assert all(ro.allows(p, "", "rbd_data.x.0", read=True, write=False) for p in POOLS)
    assert not any(ro.allows(p, "", "rbd_data.x.0", read=False, write=True) for p in POOLS)


def test_profile_rbd_with_namespace() -> None:
    cap = OSDCap.parse("profile rbd pool=rbd namespace=tenant1")
    assert cap.allows("rbd", "tenant1", "rbd_data.x.0", read=True, write=True)
    assert not cap.allows("rbd", "tenant2", "rbd_data.x.0", read=True, write=True)
    assert not cap.allows("rbd", "", "rbd_header.x", read=True, write=False)
    # the pool-level config (metadata_list on the default namespace's rbd_info) stays readable
    assert cap.allows("rbd", "", "rbd_info", read=False, write=False, cls_calls=[("rbd", "metadata_list", True, False)])


@pytest.mark.parametrize(
    "prefix,args,allowed",
    [
        ("status", {}, True),
        ("health", {}, True),
        ("df", {}, True),
        ("mon dump", {}, True),
        ("osd dump", {}, True),
        ("osd pool ls", {}, True),
        ("osd pool get", {"pool": "images", "var": "size"}, True),
        ("pg stat", {}, True),
        ("osd pool create", {"pool": "x"}, False),
        ("osd pool set", {"pool": "images", "var": "size", "val": "2"}, False),
        ("osd pool application enable", {"pool": "images", "app": "rbd"}, False),
        ("osd down", {"ids": ["0"]}, False),
        ("auth get", {"entity": "client.admin"}, False),
        ("auth get-or-create", {"entity": "client.x", "caps": ["mon", "allow *"]}, False),
        ("auth ls", {}, False),
        ("config-key get", {"key": "rbd/mirror/x"}, False),
        ("osd blocklist", {"blocklistop": "add", "addr": "10.0.0.5:0/3710147553"}, True),
        ("osd blocklist", {"blocklistop": "add", "addr": "10.0.0.5:0/3710147553", "expire": 3600.0}, True),
        ("osd blocklist", {"blocklistop": "rm", "addr": "10.0.0.5:0/3710147553"}, False),
        ("osd blocklist", {"blocklistop": "add", "addr": "10.0.0.5:0"}, False),  # no nonce: would fence a whole host
        ("osd blocklist", {"blocklistop": "add"}, False),
        ("osd blacklist", {"blacklistop": "add", "addr": "10.0.0.5:0/1"}, True),
        ("osd blocklist ls", {}, True),
        ("osd blocklist clear", {}, False),
        ("no such command", {}, False),
    ],
)
def test_guide_mon_caps(prefix: str, args: dict, allowed: bool) -> None:
    assert MonCap.parse("profile rbd").allows_command(prefix, {"prefix": prefix, **args}) is allowed


def test_guide_mon_caps_services() -> None:
    cap = MonCap.parse("profile rbd")
    assert cap.allows_service("osd", "r") and cap.allows_service("mon", "r") and cap.allows_service("pg", "r")
    assert not cap.allows_service("osd", "w") and not cap.allows_service("auth", "r")
    assert not cap.allows_service("mds", "r")

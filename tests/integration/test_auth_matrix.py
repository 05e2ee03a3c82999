"""Who may do what, on a live cephx cluster: the OpenStack guide's users × pools × ops.

Users and caps are those of Ceph's "Block Devices and OpenStack" guide (and the
reference transcript), with the pools renamed `authz_*` because the `cluster` fixture is
shared with other modules:

    glance         mon 'profile rbd'  osd 'profile rbd pool=images'
    cinder         mon 'profile rbd'  osd 'profile rbd pool=volumes, profile rbd pool=vms,
                                           profile rbd-read-only pool=images'
    cinder-backup  mon 'profile rbd'  osd 'profile rbd pool=backups'
    rbd-ro         mon 'profile rbd'  osd 'profile rbd-read-only pool=images'
    admin          the harness's client.admin (allow *)

Every cell of `MATRIX`, `LISTING` and `MON` is written by hand from Ceph's documented
semantics (`OSDCap::expand_profile`, `OSDCap::is_capable`, `MonCap` `profile rbd`,
`MonCommands.h`), never computed from Shoal's code:

* `profile rbd pool=P` grants `rwx` on P and, in *every* pool, `r` on objects named
  `rbd_info*` and `class-read` on `rbd_children*` / `rbd_mirroring*` (what librbd needs to
  open images and follow clone parents anywhere), plus `rbd metadata_list` on P's `rbd_info`.
* `profile rbd-read-only pool=P` grants `r class-read` on P (and two `rbd` class methods on
  `rbd_header.*` in P); nothing outside P.
* A CALL op needs only class permission (`class-read` for a read method, `class-write`
  for a write method), not `r`/`w` (`ceph_osd_op_mode_read` excludes CALL).
* Listing (PGNLS) is checked against the empty object name librados sends and the I/O
  context's namespace, so no object-prefix grant lets a user list a pool (the transcript:
  `rados --id glance -p volumes ls` → EPERM), and the OSD answers with that namespace's
  objects only.
* Mon `profile rbd` = `mon r`, `osd r`, `pg r` (+ `osd blocklist add`): `osd pool create`
  needs `osd rw` → EACCES; `osd pool ls` / `osd pool get-quota` need `osd r`;
  `status` / `df` need `mon r` (the monitor answers `df`, cf. the no-mgr transcript).

Refused OSD ops raise `rados.PermissionError` (EPERM); refused monitor commands return
-EACCES with "access denied" (mon_command never raises). After every refused write the
object is read back as admin: data and omap unchanged, no new object. Allowed ops are
checked for their effect too.
"""

from __future__ import annotations

import errno
import json
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import rados
from shoal.testing.cluster import TestCluster
from shoal.wire.osd_op import OpBuilder

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("SHOAL_TEST_SEED", random.randrange(1 << 30)))

POOLS = ["authz_images", "authz_volumes", "authz_vms", "authz_backups"]
PG_NUM = 8

# user -> (entity, mon caps, osd caps); "admin" is the harness's client.admin.
USERS: dict[str, tuple[str, str, str]] = {
    "admin": ("client.admin", "allow *", "allow *"),
    "glance": ("client.authz-glance", "profile rbd", "profile rbd pool=authz_images"),
    "cinder": ("client.authz-cinder", "profile rbd",
               "profile rbd pool=authz_volumes, profile rbd pool=authz_vms, profile rbd-read-only pool=authz_images"),
    "cinder-backup": ("client.authz-cinder-backup", "profile rbd", "profile rbd pool=authz_backups"),
    "rbd-ro": ("client.authz-rbd-ro", "profile rbd", "profile rbd-read-only pool=authz_images"),
}

# What each user holds on each pool, read off the caps text above:
#   all  = allow *                    rbd = profile rbd pool=P       ro = profile rbd-read-only pool=P
#   rbd* = no grant naming P, but `profile rbd` on another pool: its pool-less grants apply
#   -    = nothing at all
LEVEL: dict[str, dict[str, str]] = {
    "admin":         {"authz_images": "all", "authz_volumes": "all", "authz_vms": "all", "authz_backups": "all"},
    "glance":        {"authz_images": "rbd", "authz_volumes": "rbd*", "authz_vms": "rbd*", "authz_backups": "rbd*"},
    "cinder":        {"authz_images": "ro", "authz_volumes": "rbd", "authz_vms": "rbd", "authz_backups": "rbd*"},
    "cinder-backup": {"authz_images": "rbd*", "authz_volumes": "rbd*", "authz_vms": "rbd*", "authz_backups": "rbd"},
    "rbd-ro":        {"authz_images": "ro", "authz_volumes": "-", "authz_vms": "-", "authz_backups": "-"},
}

# Object ops, in the order they run on each object (delete last: it removes the object).
OPS = ["read", "omap_get", "cls_read", "write", "create", "omap_set", "cls_write", "delete"]
WRITES = {"write", "create", "omap_set", "cls_write", "delete"}
#   read      Ioctx.read                                 needs r
#   omap_get  ReadOp get_omap_vals                       needs r
#   cls_read  execute hello.say_hello (RD method)        needs class-read
#   write     write_full                                 needs w
#   create    WriteOp.new(EXCLUSIVE) of a new object     needs w
#   omap_set  WriteOp set_omap                           needs w
#   cls_write execute hello.record_hello (WR) on a new object   needs class-write
#   delete    remove_object                              needs w
#
# Y = allowed, . = EPERM; one letter per op in OPS order, one column per level.
MATRIX_TEXT = """
object                       all       rbd       ro        rbd*      -
plain.x                      YYYYYYYY  YYYYYYYY  YYY.....  ........  ........
rbd_header.x                 YYYYYYYY  YYYYYYYY  YYY.....  ........  ........
rbd_data.x.0000000000000000  YYYYYYYY  YYYYYYYY  YYY.....  ........  ........
rbd_id.x                     YYYYYYYY  YYYYYYYY  YYY.....  ........  ........
rbd_directory                YYYYYYYY  YYYYYYYY  YYY.....  ........  ........
rbd_children                 YYYYYYYY  YYYYYYYY  YYY.....  ..Y.....  ........
rbd_info                     YYYYYYYY  YYYYYYYY  YYY.....  YY......  ........
"""
# Listing a pool (PGNLS, checked against the empty object name).
LISTING = {"all": True, "rbd": True, "ro": True, "rbd*": False, "-": False}

# Monitor commands; "{pool}" is the pool under test. `osd pool create` of an existing pool is
# a no-op that succeeds for whoever may run it, so the matrix creates nothing.
MON_COMMANDS: list[tuple[str, dict[str, Any]]] = [
    ("osd pool create", {"prefix": "osd pool create", "pool": "{pool}", "pg_num": PG_NUM}),
    ("osd pool ls", {"prefix": "osd pool ls", "format": "json"}),
    ("status", {"prefix": "status", "format": "json"}),
    ("df", {"prefix": "df", "format": "json"}),
    ("osd pool get-quota", {"prefix": "osd pool get-quota", "pool": "{pool}", "format": "json"}),
]
MON: dict[str, str] = {  # one letter per MON_COMMANDS entry
    "admin": "YYYYY",
    "glance": ".YYYY",
    "cinder": ".YYYY",
    "cinder-backup": ".YYYY",
    "rbd-ro": ".YYYY",
}


def _parse_matrix(text: str) -> dict[str, dict[str, str]]:
    """MATRIX_TEXT -> {level: {object: "YY.."}}."""
    lines = [ln.split() for ln in text.strip().splitlines()]
    levels = lines[0][1:]
    out: dict[str, dict[str, str]] = {lv: {} for lv in levels}
    for row in lines[1:]:
        assert len(row) == len(levels) + 1, row
        for lv, cells in zip(levels, row[1:], strict=True):
            assert len(cells) == len(OPS) and set(cells) <= {"Y", "."}, row
            out[lv][row[0]] = cells
    return out


MATRIX = _parse_matrix(MATRIX_TEXT)
OBJECTS = list(MATRIX["all"])


# ------------------------------------------------------------------------------ fixtures

@dataclass
class Authz:
    cluster: TestCluster
    handles: dict[str, rados.Rados]  # user -> connected handle
    keyrings: dict[str, str]  # user -> keyring file

    def ioctx(self, user: str, pool: str) -> rados.Ioctx:
        return self.handles[user].open_ioctx(pool)


def _connect(conf_path: str, entity: str, keyring: str) -> rados.Rados:
    r = rados.Rados(conffile=conf_path, rados_id=entity.split(".", 1)[1], conf={"keyring": keyring})
    r.connect(timeout=30)
    return r


@pytest.fixture(scope="module")
def authz(cluster: TestCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Authz]:
    print(f"seed={SEED}")
    keydir = tmp_path_factory.mktemp("authz_keys")
    admin_keyring = cluster.keyring_path("client.admin")
    admin = _connect(cluster.conf_path, "client.admin", admin_keyring)
    handles: dict[str, rados.Rados] = {"admin": admin}
    keyrings = {"admin": admin_keyring}
    try:
        for pool in POOLS:
            ret, _, outs = admin.mon_command(_json({"prefix": "osd pool create", "pool": pool, "pg_num": PG_NUM}),
                                             b"")
            assert ret == 0, outs
        cluster.wait_healthy(cluster.osds, 60)
        for user, (entity, mon, osd) in USERS.items():
            if user == "admin":
                continue
            path = str(keydir / f"ceph.{entity}.keyring")
            res = cluster.cli("ceph", "auth", "get-or-create", entity, "mon", mon, "osd", osd, "-o", path)
            assert res.returncode == 0, res.stderr
            text = Path(path).read_text()
            assert text.startswith(f"[{entity}]\n\tkey = AQ"), "the keyring -o writes"
            keyrings[user] = path
            handles[user] = _connect(cluster.conf_path, entity, path)
        yield Authz(cluster, handles, keyrings)
    finally:
        for user, h in handles.items():
            if user != "admin":
                h.shutdown()
        for user, (entity, _, _) in USERS.items():
            if user != "admin":
                cluster.cli("ceph", "auth", "del", entity)
        for pool in POOLS + ["authz_evil"]:
            try:
                admin.delete_pool(pool)  # the shared cluster runs with `mon allow pool delete`
            except rados.ObjectNotFound:
                pass
        admin.shutdown()


def _json(cmd: dict[str, Any]) -> str:
    return json.dumps(cmd)


# ------------------------------------------------------------------------------ helpers

MISSING = object()


def _state(io: rados.Ioctx, oid: str) -> tuple[Any, dict[str, bytes]]:
    """(data, omap) of an object as admin sees it; data is MISSING when it does not exist."""
    try:
        data = io.read(oid, 1 << 20)
    except rados.ObjectNotFound:
        return MISSING, {}
    with rados.ReadOpCtx() as op:
        it, _ = io.get_omap_vals(op, "", "", 1000)
        io.operate_read_op(op, oid)
        omap = dict(it)
    return data, omap


def _omap_get(io: rados.Ioctx, oid: str) -> dict[str, bytes]:
    with rados.ReadOpCtx() as op:
        it, _ = io.get_omap_vals(op, "", "", 1000)
        io.operate_read_op(op, oid)
        return dict(it)


def _create_excl(io: rados.Ioctx, oid: str) -> None:
    with rados.WriteOpCtx() as op:
        op.new(rados.LIBRADOS_CREATE_EXCLUSIVE)
        io.operate_write_op(op, oid)


def _omap_set(io: rados.Ioctx, oid: str) -> None:
    with rados.WriteOpCtx() as op:
        io.set_omap(op, ("k2",), (b"v2",))
        io.operate_write_op(op, oid)


def _run(fn: Callable[[], Any]) -> tuple[str, Any]:
    """("Y", result) or (".", None) for EPERM; anything else is reported as it is."""
    try:
        return "Y", fn()
    except rados.PermissionError as exc:
        if exc.errno != errno.EPERM:
            return f"PermissionError errno {exc.errno}", None
        return ".", None
    except rados.Error as exc:
        return f"{type(exc).__name__}: {exc}", None


# ------------------------------------------------------------------------------ the tests

CELLS = [(user, pool) for user in USERS for pool in POOLS]


@pytest.mark.parametrize(("user", "pool"), CELLS, ids=[f"{u}-{p}" for u, p in CELLS])
def test_osd_ops(authz: Authz, user: str, pool: str) -> None:
    """Every object op of the matrix, on every object, for one user on one pool."""
    level = LEVEL[user][pool]
    io = authz.ioctx(user, pool)
    adm = authz.ioctx("admin", pool)
    tag = f"{user}.{SEED:x}"
    wrong: list[str] = []
    try:
        for oid in OBJECTS:
            original = f"{oid}@{pool} seed={SEED}".encode()
            adm.write_full(oid, original)  # the state every op starts from
            with rados.WriteOpCtx() as op:
                adm.set_omap(op, ("k",), (b"v0",))
                adm.operate_write_op(op, oid)
            created, recorded = f"{oid}.new-{tag}", f"{oid}.rec-{tag}"
            for new in (created, recorded):
                try:
                    adm.remove_object(new)
                except rados.ObjectNotFound:
                    pass
            new_data = b"written by " + user.encode()
            actions: dict[str, Callable[[], Any]] = {
                "read": lambda oid=oid: io.read(oid, 1 << 20),
                "omap_get": lambda oid=oid: _omap_get(io, oid),
                "cls_read": lambda oid=oid: io.execute(oid, "hello", "say_hello", b""),
                "write": lambda oid=oid, data=new_data: io.write_full(oid, data),
                "create": lambda new=created: _create_excl(io, new),
                "omap_set": lambda oid=oid: _omap_set(io, oid),
                "cls_write": lambda new=recorded: io.execute(new, "hello", "record_hello", b"authz"),
                "delete": lambda oid=oid: io.remove_object(oid),
            }
            for i, name in enumerate(OPS):
                want = MATRIX[level][oid][i]
                target = created if name == "create" else recorded if name == "cls_write" else oid
                before = _state(adm, target) if name in WRITES else None
                got, result = _run(actions[name])
                where = f"{user} {name} {pool}/{oid} (level {level})"
                if got != want:
                    wrong.append(f"{where}: expected {'allowed' if want == 'Y' else 'EPERM'}, got "
                                 f"{'allowed' if got == 'Y' else 'EPERM' if got == '.' else got}")
                    continue
                after = _state(adm, target) if name in WRITES else None
                if got == ".":
                    if name in WRITES and after != before:
                        wrong.append(f"{where}: refused, yet the object changed: {before!r} -> {after!r}")
                    continue
                problem = _check_effect(name, result, before, after, original, new_data)
                if problem:
                    wrong.append(f"{where}: allowed, but {problem}")
    finally:
        io.close()
        adm.close()
    assert wrong == [], f"seed={SEED}\n" + "\n".join(wrong)


def _check_effect(name: str, result: Any, before: Any, after: Any, original: bytes, new_data: bytes) -> str:
    """What is wrong with the outcome of an allowed op ("" when nothing)."""
    if name == "read" and result != original:
        return f"read returned {result!r}"
    if name == "omap_get" and result != {"k": b"v0"}:
        return f"omap_get returned {result!r}"
    if name == "cls_read" and result != (13, b"Hello, world!"):
        return f"say_hello returned {result!r}"
    if name == "write" and after[0] != new_data:
        return f"the object holds {after[0]!r}"
    if name == "create" and (before[0] is not MISSING or after[0] != b""):
        return f"exclusive create left {after!r}"
    if name == "omap_set" and after[1].get("k2") != b"v2":
        return f"omap is {after[1]!r}"
    if name == "cls_write" and after[0] != b"Hello, authz!":
        return f"record_hello left {after[0]!r}"
    if name == "delete" and after[0] is not MISSING:
        return "the object still exists"
    return ""


@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("user", list(USERS))
def test_list_objects(authz: Authz, user: str, pool: str) -> None:
    """Listing a pool: allowed only with a grant on the pool itself."""
    adm = authz.ioctx("admin", pool)
    adm.write_full("listed.x", b"x")  # a pool that is certainly not empty
    adm.close()
    handle = authz.handles[user]
    want = LISTING[LEVEL[user][pool]]
    # python-rados' ObjectIterator ends silently on any listing error (as Ceph's does), so
    # "refused" would look like "empty"; the client core under it reports the errno.
    client = handle._client
    pool_id = client.pool_by_name(pool).id

    async def names() -> list[str]:
        return [name async for _, name in client.list_objects(pool_id)]

    try:
        got: list[str] | int = handle._loop.run(names())
    except Exception as exc:  # noqa: BLE001 - the errno is what the cell is about
        got = int(getattr(exc, "errno", 0) or -1)
    if want:
        assert isinstance(got, list) and "listed.x" in got, f"{user} ls {pool}: {got!r}"
        io = handle.open_ioctx(pool)
        assert "listed.x" in [o.key for o in io.list_objects()]  # and through python-rados
        io.close()
    else:
        assert got == errno.EPERM, f"{user} ls {pool}: expected EPERM, got {got!r}"
        io = handle.open_ioctx(pool)
        assert [o.key for o in io.list_objects()] == []  # python-rados: the iteration just ends
        io.close()


@pytest.mark.parametrize("user", list(USERS))
def test_mon_commands(authz: Authz, user: str) -> None:
    handle = authz.handles[user]
    wrong = []
    for pool in POOLS:
        for (label, template), want in zip(MON_COMMANDS, MON[user], strict=True):
            cmd = {k: (v.format(pool=pool) if isinstance(v, str) else v) for k, v in template.items()}
            ret, outbuf, outs = handle.mon_command(_json(cmd), b"", timeout=30)
            if want == "Y" and ret != 0:
                wrong.append(f"{user} `{label}` ({pool}): expected 0, got {ret} {outs!r}")
            if want == "." and (ret, outs, outbuf) != (-errno.EACCES, "access denied", b""):
                wrong.append(f"{user} `{label}` ({pool}): expected -EACCES 'access denied', got {ret} {outs!r}")
    assert wrong == [], "\n".join(wrong)


def test_refused_pool_create_creates_nothing(authz: Authz) -> None:
    for user in ("glance", "cinder", "cinder-backup", "rbd-ro"):
        ret, _, outs = authz.handles[user].mon_command(
            _json({"prefix": "osd pool create", "pool": "authz_evil", "pg_num": PG_NUM}), b"")
        assert (ret, outs) == (-errno.EACCES, "access denied"), user
    ret, outbuf, _ = authz.handles["admin"].mon_command(_json({"prefix": "osd pool ls", "format": "json"}), b"")
    assert ret == 0 and "authz_evil" not in outbuf.decode()


def test_cli_refusals_match_real_ceph(authz: Authz, tmp_path: Path) -> None:
    """The transcript's `--id glance` negative block, through our `rados` and `ceph` CLIs."""
    c = authz.cluster
    who = ["--id", "authz-glance", "--keyring", authz.keyrings["glance"]]
    src = tmp_path / "obj"
    src.write_bytes(b"hello\n")
    res = c.cli("rados", *who, "-p", "authz_volumes", "put", "glance-obj", str(src))
    assert (res.returncode, res.stdout, res.stderr) == (
        1, b"", b"error putting authz_volumes/glance-obj: (1) Operation not permitted\n")
    res = c.cli("rados", *who, "-p", "authz_volumes", "ls")
    assert (res.returncode, res.stdout, res.stderr) == (1, b"", b"rados_nobjects_list_next2: Operation not permitted\n")
    res = c.cli("ceph", *who, "osd", "pool", "create", "authz_evil", "8")
    assert (res.returncode, res.stdout, res.stderr) == (13, b"", b"Error EACCES: access denied\n")
    # ...while glance's own pool works
    res = c.cli("rados", *who, "-p", "authz_images", "put", "glance-obj", str(src))
    assert res.returncode == 0, res.stderr
    res = c.cli("rados", *who, "-p", "authz_images", "ls")
    assert res.returncode == 0 and b"glance-obj\n" in res.stdout


def test_listing_is_not_checked_against_a_client_chosen_object_name(authz: Authz) -> None:
    """A listing names no object (librados sends it with an empty name): the OSD must check
    it as listing the pool, whatever name a crafted client puts in the message. glance may
    read `rbd_info*` in every pool; that must not let it list authz_volumes by sending its
    listing under that name. (Ceph's own check takes the name from the message too, so this
    is a property we want rather than a behaviour copied from Ceph.)"""
    adm = authz.ioctx("admin", "authz_volumes")
    adm.write_full("volume-secret", b"x")
    adm.close()
    handle = authz.handles["glance"]
    client = handle._client
    pool = client.pool_by_name("authz_volumes")

    async def pgls_as(oid: str) -> list[tuple[int, list[Any]]]:
        out = []
        for ps in range(pool.pg_num):
            b = OpBuilder()
            b.add("pgls", start_after=None, max=1000)
            reply = await client.objecter.op(pool.id, oid, "", b.ops, b"", ps=ps, timeout=30)
            out.append((reply.result, reply.outs[0]["names"] if reply.outs else []))
        return out

    honest = handle._loop.run(pgls_as(""))
    assert {r for r, _ in honest} == {-errno.EPERM}
    smuggled = handle._loop.run(pgls_as("rbd_info"))
    leaked = sorted(name for _, names in smuggled for _, name in names)
    assert {r for r, _ in smuggled} == {-errno.EPERM}, (
        f"glance listed {len(leaked)} objects of authz_volumes, e.g. {leaked[:5]}")


@pytest.fixture(scope="module")
def tenant(authz: Authz, tmp_path_factory: pytest.TempPathFactory) -> Iterator[rados.Rados]:
    """A user confined to one namespace: `allow rw pool=authz_images namespace=tenant1`."""
    entity = "client.authz-tenant1"
    path = str(tmp_path_factory.mktemp("authz_tenant") / "tenant1.keyring")
    c = authz.cluster
    res = c.cli("ceph", "auth", "get-or-create", entity, "mon", "allow r", "osd",
                "allow rw pool=authz_images namespace=tenant1", "-o", path)
    assert res.returncode == 0, res.stderr
    adm = authz.ioctx("admin", "authz_images")
    adm.set_namespace("tenant2")
    adm.write_full("tenant2-secret", b"x")
    adm.set_namespace("tenant1")
    adm.write_full("tenant1-own", b"x")
    adm.close()
    handle = _connect(c.conf_path, entity, path)
    try:
        yield handle
    finally:
        handle.shutdown()
        c.cli("ceph", "auth", "del", entity)


def test_namespace_user_lists_its_namespace(tenant: rados.Rados) -> None:
    """librados sends the I/O context's namespace with the listing, so a user confined to a
    namespace (RBD namespaces, multi-tenant setups) can list it; other namespaces stay closed."""
    io = tenant.open_ioctx("authz_images")
    try:
        io.set_namespace("tenant1")
        io.write_full("tenant1-by-user", b"x")
        assert sorted(o.key for o in io.list_objects()) == ["tenant1-by-user", "tenant1-own"]
        io.set_namespace("tenant2")
        with pytest.raises(rados.PermissionError):
            io.read("tenant2-secret")
        assert [o.key for o in io.list_objects()] == []
    finally:
        io.close()


def test_listing_returns_only_the_requested_namespace(tenant: rados.Rados) -> None:
    """The OSD answers a listing in namespace N with N's objects only: the names of other
    tenants must not reach the client (filtering them out in the client is not enough)."""
    client = tenant._client
    pool = client.pool_by_name("authz_images")

    async def raw_pgls(nspace: str) -> tuple[set[int], list[tuple[str, str]]]:
        results, names = set(), []
        for ps in range(pool.pg_num):
            b = OpBuilder()
            b.add("pgls", start_after=None, max=1000)
            reply = await client.objecter.op(pool.id, "", nspace, b.ops, b"", ps=ps, timeout=30)
            results.add(reply.result)
            names += [(str(ns), str(n)) for ns, n in (reply.outs[0]["names"] if reply.outs else [])]
        return results, names

    results, names = tenant._loop.run(raw_pgls("tenant1"))
    assert results == {0}
    assert {ns for ns, _ in names} == {"tenant1"}, f"the OSD sent other namespaces' names: {sorted(names)}"

"""cls_rbd methods on pool-level objects: rbd_directory, rbd_id.<name>, rbd_children (v1),
rbd_trash, and `copyup` on data objects.

Bytes follow ceph-facts §1: directory `name_<name>` → encoded string id and
`id_<id>` → encoded string name; `rbd_id.<name>` data = encoded string id;
`rbd_children` key = raw (u64 parent pool, string parent image id, u64 parent snap)
and value = encoded set<string> of child ids. Our omap keys are `str`, so the raw
children key is carried byte-for-code-point (latin-1): `key.encode("latin-1")` gives
Ceph's bytes back. Trash specs (`id_<id>`) are msgpack (Ceph's layout unverified).
"""

from __future__ import annotations

from typing import Any

from shoal.cls import rbd_common as c
from shoal.cls.encoding import dec_string, dec_string_set, enc_string, enc_string_set, enc_u64
from shoal.cls.registry import RD, WR, MethodContext, method
from shoal.errors import Corrupt, Exists, InvalidArgument, NotFound

NAME_PREFIX = "name_"
ID_PREFIX = "id_"


def _valid_id(image_id: str) -> bool:
    # Image ids are hex strings; Ceph's is_valid_id only insists on alphanumerics.
    return bool(image_id) and image_id.isascii() and image_id.isalnum()


# -- rbd_directory -----------------------------------------------------------------------
@method("rbd", "dir_add_image", RD | WR)
def dir_add_image(ctx: MethodContext, data: bytes) -> bytes:
    """In: {name, id}. Out: nil. Creates the directory. EEXIST dup name, EBADF dup id, EINVAL bad input."""
    a = c.args(data)
    name, image_id = c.get_str(a, "name"), c.get_str(a, "id")
    if not name or not _valid_id(image_id):
        raise InvalidArgument("bad image name or id")
    if c.read_key(ctx, NAME_PREFIX + name) is not None:
        raise Exists(f"image {name!r} exists")
    if c.read_key(ctx, ID_PREFIX + image_id) is not None:
        raise c.BadFd(f"image id {image_id!r} exists")
    ctx.create(False)
    ctx.omap_set({NAME_PREFIX + name: enc_string(image_id), ID_PREFIX + image_id: enc_string(name)})
    return b""


def _check_entry(ctx: MethodContext, name: str, image_id: str) -> None:
    raw = c.read_key(ctx, NAME_PREFIX + name)
    if raw is None:
        raise NotFound(f"no image {name!r}")
    raw_name = c.read_key(ctx, ID_PREFIX + image_id)
    if raw_name is None:
        raise NotFound(f"no image id {image_id!r}")
    # A mismatch means this call raced with a rename.
    if dec_string(raw) != image_id or dec_string(raw_name) != name:
        raise c.Stale(f"image {name!r} does not have id {image_id!r}")


@method("rbd", "dir_remove_image", RD | WR)
def dir_remove_image(ctx: MethodContext, data: bytes) -> bytes:
    """In: {name, id}. Out: nil. ENOENT unknown name or id; ESTALE name/id mismatch (a racing rename)."""
    a = c.args(data)
    name, image_id = c.get_str(a, "name"), c.get_str(a, "id")
    _check_entry(ctx, name, image_id)
    ctx.omap_rm([NAME_PREFIX + name, ID_PREFIX + image_id])
    return b""


@method("rbd", "dir_rename_image", RD | WR)
def dir_rename_image(ctx: MethodContext, data: bytes) -> bytes:
    """In: {src, dest, id}. Out: nil. EEXIST dest taken; ENOENT src missing; ESTALE id mismatch."""
    a = c.args(data)
    src, dest, image_id = c.get_str(a, "src"), c.get_str(a, "dest"), c.get_str(a, "id")
    if not dest:
        raise InvalidArgument("empty destination name")
    if c.read_key(ctx, NAME_PREFIX + dest) is not None:
        raise Exists(f"image {dest!r} exists")
    _check_entry(ctx, src, image_id)
    ctx.omap_rm([NAME_PREFIX + src])
    ctx.omap_set({NAME_PREFIX + dest: enc_string(image_id), ID_PREFIX + image_id: enc_string(dest)})
    return b""


@method("rbd", "dir_list", RD)
def dir_list(ctx: MethodContext, data: bytes) -> bytes:
    """In: {start_after="", max_return=1024}. Out: {name: id}, a page in name order. ENOENT no directory."""
    a = c.args(data)
    start = c.get_str(a, "start_after", "")
    max_return = c.get_int(a, "max_return", 1024, lo=1, hi=1 << 20)
    c.require_object(ctx)
    after = NAME_PREFIX + start if start else ""
    return c.out({k[len(NAME_PREFIX):]: dec_string(v) for k, v in c.all_vals(ctx, NAME_PREFIX, after, max_return)})


@method("rbd", "dir_get_id", RD)
def dir_get_id(ctx: MethodContext, data: bytes) -> bytes:
    """In: {name}. Out: the image id. ENOENT."""
    name = c.get_str(c.args(data), "name")
    raw = c.read_key(ctx, NAME_PREFIX + name)
    if raw is None:
        raise NotFound(f"no image {name!r}")
    return c.out(dec_string(raw))


@method("rbd", "dir_get_name", RD)
def dir_get_name(ctx: MethodContext, data: bytes) -> bytes:
    """In: {id}. Out: the image name. ENOENT."""
    image_id = c.get_str(c.args(data), "id")
    raw = c.read_key(ctx, ID_PREFIX + image_id)
    if raw is None:
        raise NotFound(f"no image id {image_id!r}")
    return c.out(dec_string(raw))


# -- rbd_id.<name> -------------------------------------------------------------------------
@method("rbd", "get_id", RD)
def get_id(ctx: MethodContext, data: bytes) -> bytes:
    """In: nothing. Out: the image id stored as the object's data. ENOENT missing or empty object; EIO garbage."""
    c.require_object(ctx)
    if not ctx.size:
        raise NotFound("image id not set")
    try:
        return c.out(dec_string(ctx.read(0, 0)))
    except InvalidArgument as exc:
        raise Corrupt("undecodable image id") from exc


@method("rbd", "set_id", RD | WR)
def set_id(ctx: MethodContext, data: bytes) -> bytes:
    """In: {id}. Out: nil. ENOENT the object must already exist (librbd creates it in the
    same op vector); EINVAL non-alphanumeric id; EEXIST when the object is not empty."""
    image_id = c.get_str(c.args(data), "id")
    c.require_object(ctx)
    if not _valid_id(image_id):
        raise InvalidArgument(f"invalid image id {image_id!r}")
    if ctx.exists and ctx.size:
        raise Exists("image id already set")
    ctx.write_full(enc_string(image_id))
    return b""


# -- rbd_children (clone v1) ---------------------------------------------------------------
def children_key(pool_id: int, image_id: str, snap_id: int) -> str:
    raw = enc_u64(pool_id) + enc_string(image_id) + enc_u64(snap_id)
    return raw.decode("latin-1")


def _v1_args(a: dict[str, Any]) -> tuple[str, str | None]:
    key = children_key(c.get_int(a, "pool_id", hi=(1 << 63) - 1), c.get_str(a, "image_id"), c.get_int(a, "snap_id"))
    child = a.get("child_id")
    if child is not None and (not isinstance(child, str) or not child):
        raise InvalidArgument("bad child id")
    return key, child


@method("rbd", "add_child", RD | WR)
def add_child(ctx: MethodContext, data: bytes) -> bytes:
    """In: {pool_id, image_id, snap_id, child_id} (the parent spec + child). Out: nil. EEXIST."""
    key, child = _v1_args(c.args(data))
    if child is None:
        raise InvalidArgument("missing child id")
    raw = c.read_key(ctx, key)
    children = set() if raw is None else dec_string_set(raw)
    if child in children:
        raise Exists("child already registered")
    children.add(child)
    ctx.omap_set({key: enc_string_set(children)})
    return b""


@method("rbd", "remove_child", RD | WR)
def remove_child(ctx: MethodContext, data: bytes) -> bytes:
    """In: {pool_id, image_id, snap_id, child_id}. Out: nil. ENOENT when not registered."""
    key, child = _v1_args(c.args(data))
    raw = c.read_key(ctx, key)
    children = set() if raw is None else dec_string_set(raw)
    if child not in children:
        raise NotFound("child not registered")
    children.discard(child)
    if children:
        ctx.omap_set({key: enc_string_set(children)})
    else:
        ctx.omap_rm([key])
    return b""


@method("rbd", "get_children", RD)
def get_children(ctx: MethodContext, data: bytes) -> bytes:
    """In: {pool_id, image_id, snap_id}. Out: sorted child ids. ENOENT when none registered."""
    key, _ = _v1_args(c.args(data))
    raw = c.read_key(ctx, key)
    if raw is None:
        raise NotFound("no children")
    return c.out(sorted(dec_string_set(raw)))


# -- rbd_trash -----------------------------------------------------------------------------
TRASH_STATES = {0: "normal", 1: "moving", 2: "removing", 3: "restoring"}


@method("rbd", "trash_add", RD | WR)
def trash_add(ctx: MethodContext, data: bytes) -> bytes:
    """In: {id, spec: {source, name, deletion_time, deferment_end_time, state=0}}. Out: nil. EEXIST."""
    a = c.args(data)
    image_id = c.get_str(a, "id")
    spec = a.get("spec")
    if not _valid_id(image_id) or not isinstance(spec, dict):
        raise InvalidArgument("bad trash entry")
    spec = dict(spec)
    spec.setdefault("state", 0)
    if spec["state"] not in TRASH_STATES:
        raise InvalidArgument("bad trash state")
    if c.read_key(ctx, ID_PREFIX + image_id) is not None:
        raise Exists(f"image {image_id!r} already in the trash")
    ctx.omap_set({ID_PREFIX + image_id: c.pack_record(spec)})
    return b""


@method("rbd", "trash_remove", RD | WR)
def trash_remove(ctx: MethodContext, data: bytes) -> bytes:
    """In: {id}. Out: nil. ENOENT."""
    key = ID_PREFIX + c.get_str(c.args(data), "id")
    if c.read_key(ctx, key) is None:
        raise NotFound("not in the trash")
    ctx.omap_rm([key])
    return b""


@method("rbd", "trash_get", RD)
def trash_get(ctx: MethodContext, data: bytes) -> bytes:
    """In: {id}. Out: the spec. ENOENT."""
    raw = c.read_key(ctx, ID_PREFIX + c.get_str(c.args(data), "id"))
    if raw is None:
        raise NotFound("not in the trash")
    return c.out(c.unpack_record(raw))


@method("rbd", "trash_list", RD)
def trash_list(ctx: MethodContext, data: bytes) -> bytes:
    """In: {start_after="", max_return=1024}. Out: {id: spec} page. A missing rbd_trash is ENOENT."""
    a = c.args(data)
    start = c.get_str(a, "start_after", "")
    max_return = c.get_int(a, "max_return", 1024, lo=1, hi=1 << 20)
    c.require_object(ctx)
    after = ID_PREFIX + start if start else ""
    return c.out({k[len(ID_PREFIX):]: c.unpack_record(v) for k, v in c.all_vals(ctx, ID_PREFIX, after, max_return)})


@method("rbd", "trash_state_set", RD | WR)
def trash_state_set(ctx: MethodContext, data: bytes) -> bytes:
    """In: {id, state, expect_state}. Out: nil. ENOENT; ESTALE when the state isn't expect_state."""
    a = c.args(data)
    key = ID_PREFIX + c.get_str(a, "id")
    state, expect = c.get_int(a, "state"), c.get_int(a, "expect_state")
    if state not in TRASH_STATES:
        raise InvalidArgument("bad trash state")
    raw = c.read_key(ctx, key)
    if raw is None:
        raise NotFound("not in the trash")
    spec = c.unpack_record(raw)
    if spec.get("state", 0) == state:
        return b""
    if spec.get("state", 0) != expect:
        raise c.Stale("trash state changed")
    spec["state"] = state
    ctx.omap_set({key: c.pack_record(spec)})
    return b""


# -- data objects ----------------------------------------------------------------------------
@method("rbd", "copyup", RD | WR)
def copyup(ctx: MethodContext, data: bytes) -> bytes:
    """In: the raw parent data (NOT msgpack). Out: nil. Writes only if the object is missing (§4).

    Even empty data creates the object, so it masks the parent from then on.
    """
    if ctx.exists:
        return b""
    ctx.create(False)
    ctx.write(0, data)
    return b""

"""RBD format-2 object names, image ids and image specs (sans-IO).

Names from `ceph:src/include/rbd_types.h` and `src/librbd/Utils.cc`; spec parsing
from the rbd CLI's `extract_spec` (`src/tools/rbd/Utils.cc`). See ceph-facts §1.
"""

from __future__ import annotations

import re

from shoal.errors import InvalidArgument

RBD_DIRECTORY = "rbd_directory"
RBD_CHILDREN = "rbd_children"
RBD_INFO = "rbd_info"
RBD_TRASH = "rbd_trash"

RBD_ID_PREFIX = "rbd_id."
RBD_HEADER_PREFIX = "rbd_header."
RBD_DATA_PREFIX = "rbd_data."
RBD_OBJECT_MAP_PREFIX = "rbd_object_map."

# RBD_MAX_BLOCK_NAME_SIZE (24) - len("rbd_data.") - 1: the id must leave room for
# the block name prefix in the old fixed-size header field.
RBD_MAX_IMAGE_ID_LENGTH = 14

# CEPH_NOSNAP: the "head" snap id, which has no suffix in object-map names.
CEPH_NOSNAP = (1 << 64) - 2


class SpecError(InvalidArgument, ValueError):
    """An invalid image name or image spec (EINVAL, like the rbd CLI)."""


def id_object(name: str) -> str:
    """Object whose data holds the image id for image `name`."""
    return RBD_ID_PREFIX + name


def header_object(image_id: str) -> str:
    return RBD_HEADER_PREFIX + image_id


def data_prefix(image_id: str) -> str:
    """The `object_prefix` header value / `block_name_prefix` of `rbd info`."""
    return RBD_DATA_PREFIX + image_id


def data_object(prefix: str, objectno: int) -> str:
    """Data object name: prefix, '.', 16 lowercase hex digits."""
    if objectno < 0:
        raise ValueError("object number must not be negative")
    return f"{prefix}.{objectno:016x}"


def object_map_object(image_id: str, snap_id: int | None = None) -> str:
    """Object map of HEAD, or of snapshot `snap_id` (".%016x" suffix)."""
    oid = RBD_OBJECT_MAP_PREFIX + image_id
    if snap_id is not None and snap_id != CEPH_NOSNAP:
        oid += f".{snap_id:016x}"
    return oid


def generate_image_id(global_id: int, rand: int) -> str:
    """librbd's image id: hex(global id) + hex(rand % 0xFFFFFFFF), last 14 chars.

    `rand` is the C library rand() value; callers supply it so ids are reproducible
    in tests. Hex digits are unpadded, as a C++ ostream prints them.
    """
    if global_id < 0 or rand < 0:
        raise ValueError("global id and rand must not be negative")
    image_id = f"{global_id:x}{rand % 0xFFFFFFFF:x}"
    if len(image_id) > RBD_MAX_IMAGE_ID_LENGTH:
        image_id = image_id[-RBD_MAX_IMAGE_ID_LENGTH:]
    return image_id


def validate_image_name(name: str) -> None:
    """Reject names the rbd CLI's full spec validation would reject.

    With `rbd_validate_names` (default true) pool, namespace, image and snap names
    may not be empty nor contain '/' or '@'.
    """
    if not isinstance(name, str) or not name:
        raise SpecError("image name must not be empty")
    if "/" in name or "@" in name:
        raise SpecError(f"invalid image name '{name}': '/' and '@' are not allowed")


# rbd CLI extract_spec, SPEC_VALIDATION_FULL: [pool/[namespace/]]image[@snap],
# no '/' or '@' inside any component.
_SPEC_FULL = re.compile(r"^(?:([^/@]+)/(?:([^/@]+)/)?)?([^/@]+)(?:@([^/@]+))?$")
# SPEC_VALIDATION_NONE (rbd_validate_names = false): the relaxed form.
_SPEC_RELAXED = re.compile(r"^(?:([^/]+)/(?:([^/@]+)/)?)?([^@]+)(?:@(.+))?$")


def parse_image_spec(spec: str, validate: bool = True) -> tuple[str | None, str, str, str | None]:
    """Split `[pool/[namespace/]]image[@snap]` into (pool, namespace, image, snap).

    Pool and snap are None when absent; the namespace is "" (the default namespace)
    when absent, matching how rbd fills it. Merging with --pool/--image/--snap and
    the default pool is the caller's job.
    """
    m = (_SPEC_FULL if validate else _SPEC_RELAXED).fullmatch(spec)
    if m is None:
        raise SpecError(f"rbd: invalid spec '{spec}'")
    pool, namespace, image, snap = m.groups()
    return pool, namespace or "", image, snap

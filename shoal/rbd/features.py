"""RBD image feature bits, names and the rules for setting them (sans-IO).

Values and sets from `ceph:src/include/rbd/features.h` (Pacific-era, with NON_PRIMARY
and DIRTY_CACHE); create-time rules from `librbd/image/CreateRequest.cc`
(validate_features) and enable/disable rules from `librbd/Operations.cc`
(update_features). See ceph-facts §9.
"""

from __future__ import annotations

import errno as _errno
from collections.abc import Iterable
from enum import IntEnum

from shoal.errors import InvalidArgument

LAYERING = 1 << 0
STRIPINGV2 = 1 << 1
EXCLUSIVE_LOCK = 1 << 2
OBJECT_MAP = 1 << 3
FAST_DIFF = 1 << 4
DEEP_FLATTEN = 1 << 5
JOURNALING = 1 << 6
DATA_POOL = 1 << 7
OPERATIONS = 1 << 8
MIGRATING = 1 << 9
NON_PRIMARY = 1 << 10
DIRTY_CACHE = 1 << 11

# Ceph's print order is bit order (the rbd CLI walks its feature map by bit).
FEATURE_NAMES: dict[int, str] = {
    LAYERING: "layering",
    STRIPINGV2: "striping",
    EXCLUSIVE_LOCK: "exclusive-lock",
    OBJECT_MAP: "object-map",
    FAST_DIFF: "fast-diff",
    DEEP_FLATTEN: "deep-flatten",
    JOURNALING: "journaling",
    DATA_POOL: "data-pool",
    OPERATIONS: "operations",
    MIGRATING: "migrating",
    NON_PRIMARY: "non-primary",
    DIRTY_CACHE: "dirty-cache",
}
FEATURES_BY_NAME: dict[str, int] = {name: bit for bit, name in FEATURE_NAMES.items()}

DEFAULT = LAYERING | EXCLUSIVE_LOCK | OBJECT_MAP | FAST_DIFF | DEEP_FLATTEN  # 61
ALL = sum(FEATURE_NAMES)
# Clients that do not understand these cannot open the image at all.
INCOMPATIBLE = LAYERING | STRIPINGV2 | DATA_POOL | DIRTY_CACHE
# ... and these make it unwritable for them.
RW_INCOMPATIBLE = (
    INCOMPATIBLE
    | EXCLUSIVE_LOCK
    | OBJECT_MAP
    | FAST_DIFF
    | DEEP_FLATTEN
    | JOURNALING
    | OPERATIONS
    | MIGRATING
    | NON_PRIMARY
)
MUTABLE = EXCLUSIVE_LOCK | OBJECT_MAP | FAST_DIFF | JOURNALING | NON_PRIMARY | DIRTY_CACHE
# Mutable, but only by librbd itself (mirroring, the pwl cache), never by a user.
MUTABLE_INTERNAL = NON_PRIMARY | DIRTY_CACHE
DISABLE_ONLY = DEEP_FLATTEN
SINGLE_CLIENT = EXCLUSIVE_LOCK | OBJECT_MAP | FAST_DIFF | JOURNALING | DIRTY_CACHE
# Not in rbd_default_features yet accepted at create (set implicitly by librbd).
IMPLICIT_ENABLE = STRIPINGV2 | DATA_POOL | FAST_DIFF | OPERATIONS | MIGRATING | NON_PRIMARY | DIRTY_CACHE
INTERNAL = OPERATIONS | MIGRATING

# Operation features (header key `op_features`, meaningful with OPERATIONS set).
OP_CLONE_PARENT = 1 << 0
OP_CLONE_CHILD = 1 << 1
OP_GROUP = 1 << 2
OP_SNAP_TRASH = 1 << 3
OP_FEATURE_NAMES: dict[int, str] = {
    OP_CLONE_PARENT: "clone-parent",
    OP_CLONE_CHILD: "clone-child",
    OP_GROUP: "group",
    OP_SNAP_TRASH: "snap-trash",
}
OP_FEATURES_ALL = sum(OP_FEATURE_NAMES)


class SnapNamespaceType(IntEnum):
    """cls::rbd::SnapshotNamespaceType (encoded as u32 in the snapshot record)."""

    USER = 0
    GROUP = 1
    TRASH = 2
    MIRROR = 3


SNAP_NAMESPACE_NAMES: dict[SnapNamespaceType, str] = {
    SnapNamespaceType.USER: "user",
    SnapNamespaceType.GROUP: "group",
    SnapNamespaceType.TRASH: "trash",
    SnapNamespaceType.MIRROR: "mirror",
}


class FeatureError(InvalidArgument, ValueError):
    """A feature request librbd would refuse (EINVAL, or ENOSYS for unknown bits)."""


def parse_features(spec: str | int | Iterable[str | int]) -> int:
    """Feature mask from an int, a comma-separated name list, or a list of names/ints.

    A numeric string is taken as a mask, as `rbd_default_features = 61` is.
    Unknown names raise ValueError naming them.
    """
    if isinstance(spec, bool):
        raise FeatureError("features must be an int, a string or a list")
    if isinstance(spec, int):
        if spec < 0:
            raise FeatureError(f"invalid feature mask {spec}")
        return spec
    if isinstance(spec, str):
        text = spec.strip()
        if text.isdigit():
            return int(text)
        items: list[str | int] = [p.strip() for p in text.split(",") if p.strip()]
    else:
        items = list(spec)
    mask = 0
    unknown: list[str] = []
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool):
            mask |= parse_features(item)
            continue
        bit = FEATURES_BY_NAME.get(str(item).strip())
        if bit is None:
            unknown.append(str(item))
        else:
            mask |= bit
    if unknown:
        raise FeatureError(f"unknown image feature(s): {', '.join(unknown)}")
    return mask


def format_features(features: int) -> list[str]:
    """Names of the set bits in Ceph's (bit) order; unknown bits are left out."""
    return [name for bit, name in FEATURE_NAMES.items() if features & bit]


def format_op_features(op_features: int) -> list[str]:
    return [name for bit, name in OP_FEATURE_NAMES.items() if op_features & bit]


def implied_features(features: int, striped: bool) -> int:
    """Features as librbd stores them at create: STRIPINGV2 follows the layout.

    librbd sets STRIPINGV2 when the layout is not the default and clears it
    otherwise, whatever the caller asked for.
    """
    return features | STRIPINGV2 if striped else features & ~STRIPINGV2


def validate_features(features: int, striped: bool = False) -> None:
    """Create-time checks of librbd's CreateRequest::validate_features.

    Apply `implied_features` first; `striped` is accepted so a caller can pass the
    raw request and have STRIPINGV2 reconciled the same way.
    """
    features = implied_features(features, striped)
    if features & ~ALL:
        raise FeatureError("librbd does not support requested features.", errno=_errno.ENOSYS)
    if features & INTERNAL:
        raise FeatureError("cannot use internally controlled features")
    if features & FAST_DIFF and not features & OBJECT_MAP:
        raise FeatureError("cannot use fast diff without object map")
    if features & OBJECT_MAP and not features & EXCLUSIVE_LOCK:
        raise FeatureError("cannot use object map without exclusive lock")
    if features & JOURNALING and not features & EXCLUSIVE_LOCK:
        raise FeatureError("cannot use journaling without exclusive lock")


def update_features(current: int, mask: int, enabled: bool) -> int:
    """New feature set after `rbd feature enable|disable` of `mask`, or FeatureError.

    Follows librbd Operations::update_features and the Enable/DisableFeatures
    requests: only MUTABLE bits (plus DISABLE_ONLY when disabling) and never the
    librbd-internal ones; object-map and fast-diff travel together; a bit already in
    the requested state is an error; dependencies must hold afterwards.
    """
    disable_mask = MUTABLE | DISABLE_ONLY
    if (enabled and mask & ~MUTABLE) or (not enabled and mask & ~disable_mask) or mask & MUTABLE_INTERNAL:
        raise FeatureError("cannot update immutable features")
    set_om, set_fd = bool(mask & OBJECT_MAP), bool(mask & FAST_DIFF)
    has_om, has_fd = bool(current & OBJECT_MAP), bool(current & FAST_DIFF)
    # Enabling one of object-map/fast-diff brings the other along when it is absent;
    # disabling object-map while fast-diff is on takes fast-diff with it.
    if (enabled and ((set_om and not has_fd) or (set_fd and not has_om))) or (
        not enabled and set_om and has_fd
    ):
        mask |= OBJECT_MAP | FAST_DIFF
    if mask == 0:
        raise FeatureError("update requires at least one feature")
    if enabled:
        if mask & current:
            raise FeatureError("one or more requested features are already enabled")
        new = current | mask
        if mask & OBJECT_MAP and not new & EXCLUSIVE_LOCK:
            raise FeatureError(
                "cannot enable object-map. exclusive-lock must be enabled before enabling object-map."
            )
        if mask & JOURNALING and not new & EXCLUSIVE_LOCK:
            raise FeatureError(
                "cannot enable journaling. exclusive-lock must be enabled before enabling journaling."
            )
        return new
    if mask & ~current:
        raise FeatureError("one or more requested features are already disabled")
    new = current & ~mask
    if mask & EXCLUSIVE_LOCK and new & (OBJECT_MAP | JOURNALING):
        raise FeatureError(
            "cannot disable exclusive-lock. object-map or journaling must be disabled before disabling exclusive-lock."
        )
    return new

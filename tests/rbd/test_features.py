"""Feature bits, names and librbd's create / enable / disable rules."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.rbd import features as f
from shoal.rbd.features import FeatureError

FIXTURES = Path("/work/shared/reference/fixtures/json")


def test_values_and_sets() -> None:
    assert [f.LAYERING, f.STRIPINGV2, f.EXCLUSIVE_LOCK, f.OBJECT_MAP, f.FAST_DIFF] == [1, 2, 4, 8, 16]
    assert [f.DEEP_FLATTEN, f.JOURNALING, f.DATA_POOL, f.OPERATIONS, f.MIGRATING] == [32, 64, 128, 256, 512]
    assert (f.NON_PRIMARY, f.DIRTY_CACHE) == (1024, 2048)
    assert f.DEFAULT == 61
    assert (
        f.INCOMPATIBLE & (f.LAYERING | f.STRIPINGV2 | f.DATA_POOL) == f.LAYERING | f.STRIPINGV2 | f.DATA_POOL
    )
    assert f.MUTABLE & ~f.MUTABLE_INTERNAL == f.EXCLUSIVE_LOCK | f.OBJECT_MAP | f.FAST_DIFF | f.JOURNALING
    assert f.DISABLE_ONLY == f.DEEP_FLATTEN
    assert f.INTERNAL == f.OPERATIONS | f.MIGRATING
    assert (f.OP_CLONE_PARENT, f.OP_CLONE_CHILD, f.OP_GROUP, f.OP_SNAP_TRASH) == (1, 2, 4, 8)
    assert f.format_op_features(3) == ["clone-parent", "clone-child"]
    assert int(f.SnapNamespaceType.TRASH) == 2


def test_format_matches_rbd_info() -> None:
    assert f.format_features(61) == ["layering", "exclusive-lock", "object-map", "fast-diff", "deep-flatten"]
    assert f.format_features(0) == []
    for name in ("rbd-info-striped.json", "rbd-info-plain.json", "rbd-info-clone.json"):
        p = FIXTURES / name
        if p.exists():
            d = json.loads(p.read_text())
            mask = f.parse_features(d["features"])
            assert f.format_features(mask) == d["features"]
    p = FIXTURES / "rbd-info-striped.json"
    if p.exists():
        assert f.parse_features(json.loads(p.read_text())["features"]) == 63


def test_parse() -> None:
    assert f.parse_features("layering,exclusive-lock") == 5
    assert f.parse_features(" layering , striping ") == 3
    assert f.parse_features("61") == 61
    assert f.parse_features(61) == 61
    assert f.parse_features(["object-map", 4]) == 12
    assert f.parse_features("") == 0
    with pytest.raises(ValueError, match="bogus"):
        f.parse_features("layering,bogus")
    with pytest.raises(ValueError):
        f.parse_features(-1)


@given(st.integers(0, f.ALL))
def test_roundtrip(mask: int) -> None:
    assert f.parse_features(",".join(f.format_features(mask))) == mask


def test_validate_create() -> None:
    f.validate_features(f.DEFAULT)
    f.validate_features(f.DEFAULT | f.STRIPINGV2, striped=True)
    f.validate_features(f.LAYERING)
    assert f.implied_features(f.DEFAULT, True) == 63
    assert f.implied_features(63, False) == 61
    with pytest.raises(FeatureError, match="object map without exclusive lock"):
        f.validate_features(f.LAYERING | f.OBJECT_MAP)
    with pytest.raises(FeatureError, match="fast diff without object map"):
        f.validate_features(f.EXCLUSIVE_LOCK | f.FAST_DIFF)
    with pytest.raises(FeatureError, match="journaling without exclusive lock"):
        f.validate_features(f.JOURNALING)
    with pytest.raises(FeatureError, match="internally controlled") as ei:
        f.validate_features(f.OPERATIONS)
    assert ei.value.errno == errno.EINVAL
    with pytest.raises(FeatureError) as ei:
        f.validate_features(1 << 20)
    assert ei.value.errno == errno.ENOSYS


def test_update_enable() -> None:
    base = f.LAYERING
    with pytest.raises(FeatureError, match="exclusive-lock must be enabled"):
        f.update_features(base, f.OBJECT_MAP, True)
    el = f.update_features(base, f.EXCLUSIVE_LOCK, True)
    assert el == base | f.EXCLUSIVE_LOCK
    # object-map brings fast-diff along, and vice versa.
    assert f.update_features(el, f.OBJECT_MAP, True) == el | f.OBJECT_MAP | f.FAST_DIFF
    assert f.update_features(el, f.FAST_DIFF, True) == el | f.OBJECT_MAP | f.FAST_DIFF
    assert f.update_features(el, f.JOURNALING, True) == el | f.JOURNALING
    with pytest.raises(FeatureError, match="already enabled"):
        f.update_features(el, f.EXCLUSIVE_LOCK, True)
    for immutable in (f.LAYERING, f.STRIPINGV2, f.DEEP_FLATTEN, f.DATA_POOL, f.OPERATIONS, f.MIGRATING):
        with pytest.raises(FeatureError, match="immutable") as ei:
            f.update_features(el, immutable, True)
        assert ei.value.errno == errno.EINVAL
    with pytest.raises(FeatureError, match="immutable"):
        f.update_features(el, f.NON_PRIMARY, True)
    with pytest.raises(FeatureError, match="at least one"):
        f.update_features(el, 0, True)


def test_update_disable() -> None:
    cur = f.DEFAULT
    assert f.update_features(cur, f.DEEP_FLATTEN, False) == cur & ~f.DEEP_FLATTEN
    with pytest.raises(FeatureError, match="immutable"):
        f.update_features(cur, f.LAYERING, False)
    # Disabling object-map takes fast-diff with it; fast-diff alone may go.
    assert f.update_features(cur, f.OBJECT_MAP, False) == cur & ~(f.OBJECT_MAP | f.FAST_DIFF)
    assert f.update_features(cur, f.FAST_DIFF, False) == cur & ~f.FAST_DIFF
    with pytest.raises(FeatureError, match="cannot disable exclusive-lock"):
        f.update_features(cur, f.EXCLUSIVE_LOCK, False)
    assert f.update_features(cur, f.EXCLUSIVE_LOCK | f.OBJECT_MAP, False) == f.LAYERING | f.DEEP_FLATTEN
    with pytest.raises(FeatureError, match="already disabled"):
        f.update_features(f.LAYERING, f.JOURNALING, False)

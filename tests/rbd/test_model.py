"""Model-based test of RBD images through python-rbd (`import rbd`) against a real cluster.

A hypothesis state machine runs random programs of write / discard / write_zeroes / resize /
snapshot create, protect, unprotect, rollback, remove / clone (format 1 from a protected
snapshot, format 2 from any) / flatten / image remove over images with several layouts
(`rbd_model.LAYOUTS`: order 12-17, default striping and stripe_unit < object size with
stripe_count 2-4, with and without exclusive-lock/object-map) and compares every read -
heads and every snapshot opened read-only, parents and children - with an in-memory
bytearray model (`rbd_model.py`, whose docstring states the Ceph semantics it encodes,
including librbd's partial-discard pruning).

Failures print the hypothesis program (each step and its draws) and the seed; rerun a
failure with SHOAL_RBD_MODEL_SEED=<seed> (add SHOAL_RBD_MODEL_SHRINK=1 to shrink it). The
default run is bounded (SHOAL_RBD_MODEL_EXAMPLES, default 150 programs of 30 steps, about
45 s, no shrinking); `-m slow` runs 400 programs of 60 steps and shrinks.
"""

from __future__ import annotations

import functools
import itertools
import os
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from shoal.testing.cluster import TestCluster
from tests.rbd.rbd_helpers import pool_ioctx, read_all
from tests.rbd.rbd_model import (
    LAYOUT_BY_NAME,
    LAYOUTS,
    ImageModel,
    Layout,
    SnapModel,
    first_difference,
    pattern,
)

try:
    import rbd
except ImportError:  # python-rbd drop-in not written yet: the tests fail (not skip) until it lands
    rbd = None  # type: ignore[assignment]

POOL = "rbd_model"
MAX_IMAGES = 6
SNAP_NAMES = ("a", "b", "c", "d")
USER_NS = 0  # RBD_SNAP_NAMESPACE_TYPE_USER
LAYOUT_NAMES = [lay.name for lay in LAYOUTS]


@pytest.fixture(scope="module")
def ioctx(cluster: TestCluster) -> Iterator[Any]:
    assert rbd is not None, "`import rbd` failed: shoal/compat/rbd.py (python-rbd drop-in) is missing"
    with pool_ioctx(cluster, POOL) as io:
        yield io


def step(fn: Callable[..., None]) -> Callable[..., None]:
    """Marks the machine failed when a step raises, so teardown does not mask the first error."""
    @functools.wraps(fn)
    def wrapper(self: RbdMachine, *args: Any, **kwargs: Any) -> None:
        try:
            fn(self, *args, **kwargs)
        except BaseException:
            self.failed = True
            raise
    return wrapper


def expect_error(exc: type[BaseException], what: str, fn: Callable[[], Any]) -> None:
    try:
        fn()
    except exc:
        return
    except Exception as other:  # noqa: BLE001 - reported with the expectation
        raise AssertionError(f"{what}: expected {exc.__name__}, got {type(other).__name__}: {other}") from other
    raise AssertionError(f"{what}: expected {exc.__name__}, nothing raised")


def draw_point(data: st.DataObject, lay: Layout, limit: int, label: str) -> int:
    """A point in [0, limit], often on or next to a stripe-unit / object / object-set boundary."""
    grain = data.draw(st.sampled_from([1, 512, lay.su, lay.object_size, lay.period]), label=f"{label} grain")
    k = data.draw(st.integers(0, limit // grain), label=f"{label} k")
    jitter = data.draw(st.sampled_from([0, 0, 0, 1, -1, 5]), label=f"{label} jitter") if grain > 1 else 0
    return min(max(k * grain + jitter, 0), limit)


def draw_extent(data: st.DataObject, lay: Layout, size: int, max_len: int, label: str) -> tuple[int, int]:
    """(offset, length) with 0 <= offset < size and 1 <= length <= min(max_len, size - offset)."""
    off = draw_point(data, lay, size - 1, f"{label} offset")
    room = min(max_len, size - off)
    end = draw_point(data, lay, off + room, f"{label} end")
    if end <= off:
        end = off + data.draw(st.integers(1, room), label=f"{label} length")
    return off, end - off


def draw_size(data: st.DataObject, lay: Layout, label: str) -> int:
    return draw_point(data, lay, lay.max_size, label)


class RbdMachine(RuleBasedStateMachine):
    ioctx: Any = None
    runs = itertools.count()

    def __init__(self) -> None:
        super().__init__()
        self.run = next(self.runs)
        self.counter = itertools.count()
        self.images: dict[str, ImageModel] = {}
        self.handles: dict[str, Any] = {}
        self.failed = False
        self.rbd = rbd.RBD()

    # -- plumbing --------------------------------------------------------------------------------------
    def handle(self, name: str) -> Any:
        if name not in self.handles:
            self.handles[name] = rbd.Image(self.ioctx, name)
        return self.handles[name]

    def close(self, name: str) -> None:
        img = self.handles.pop(name, None)
        if img is not None:
            img.close()

    def pick(self, data: st.DataObject, pred: Callable[[ImageModel], bool] = lambda m: True,
             label: str = "image") -> ImageModel:
        names = sorted(n for n, m in self.images.items() if pred(m))
        return self.images[data.draw(st.sampled_from(names), label=label)]

    def has(self, pred: Callable[[ImageModel], bool]) -> bool:
        return any(pred(m) for m in self.images.values())

    def where(self, m: ImageModel, snap: str | None = None) -> str:
        parent = f", clone v{m.clone_format} of {m.parent[0]}@{m.parent[1]}" if m.parent else ""
        return f"{m.name}{'@' + snap if snap else ''} (layout {m.layout.name}{parent})"

    def check_window(self, m: ImageModel, off: int, length: int, what: str) -> None:
        """Reads back [off-1 object, off+length+1 object) through the writing handle."""
        img = self.handle(m.name)
        lo = max(0, off - m.layout.object_size)
        hi = min(m.size, off + length + m.layout.object_size)
        if hi <= lo:
            return
        got = img.read(lo, hi - lo)
        want = bytes(m.data[lo:hi])
        assert got == want, f"{what}: {self.where(m)} bytes [{lo}, {hi}) {first_difference(want, got)}"

    def check_full(self, m: ImageModel) -> None:
        """Head and every snapshot through fresh read-only handles; snapshot list; parent; children."""
        if m.name in self.handles:
            self.handles[m.name].flush()  # a fresh handle reads the cluster, not this handle's cache
        with rbd.Image(self.ioctx, m.name, read_only=True) as img:
            assert img.size() == m.size, f"{self.where(m)} size {img.size()} != model {m.size}"
            got = read_all(img, m.size)
            assert got == bytes(m.data), f"head of {self.where(m)}: {first_difference(bytes(m.data), got)}"
            snaps = [s for s in img.list_snaps() if s.get("namespace", USER_NS) == USER_NS]
            listed = {s["name"]: s["size"] for s in snaps}
            want = {n: len(s.data) for n, s in m.snaps.items()}
            assert listed == want, f"list_snaps of {self.where(m)}: {listed} != model {want}"
            if m.parent:
                pool, image, snap = img.parent_info()
                assert (pool, image) == (POOL, m.parent[0]), f"parent_info of {self.where(m)}: {pool, image, snap}"
                if any(x is m.parent_snap for x in self.images[m.parent[0]].snaps.values()):
                    assert snap == m.parent[1], f"parent_info of {self.where(m)}: {pool, image, snap}"
            else:
                expect_error(rbd.ImageNotFound, f"parent_info of non-clone {self.where(m)}", img.parent_info)
        for name, s in m.snaps.items():
            with rbd.Image(self.ioctx, m.name, snapshot=name, read_only=True) as snap_img:
                assert snap_img.size() == len(s.data), f"{self.where(m, name)} size {snap_img.size()} != {len(s.data)}"
                got = read_all(snap_img, len(s.data))
                assert got == s.data, f"snapshot {self.where(m, name)}: {first_difference(s.data, got)}"
                children = {c for p, c in snap_img.list_children() if p == POOL}
                assert children == s.children, f"list_children of {self.where(m, name)}: {children} != {s.children}"

    # -- rules: images -----------------------------------------------------------------------------------
    def _create_image(self, data: st.DataObject) -> None:
        lay = LAYOUT_BY_NAME[data.draw(st.sampled_from(LAYOUT_NAMES), label="layout")]
        size = draw_size(data, lay, "size")
        name = f"m{self.run}_{next(self.counter)}"
        self.rbd.create(self.ioctx, name, size, **lay.create_kwargs())
        m = self.images[name] = ImageModel(name, lay, bytearray(size))
        img = self.handle(name)
        assert img.size() == size
        assert img.stat()["order"] == lay.order, f"{self.where(m)}: order {img.stat()['order']}"
        assert (img.stripe_unit(), img.stripe_count()) == (lay.su, lay.sc), \
            f"{self.where(m)}: striping {img.stripe_unit(), img.stripe_count()} != {lay.su, lay.sc}"
        assert img.features() == lay.features, f"{self.where(m)}: features {img.features()} != {lay.features}"

    @initialize(data=st.data())
    @step
    def first_image(self, data: st.DataObject) -> None:
        self._create_image(data)

    @initialize(data=st.data())
    @step
    def second_image(self, data: st.DataObject) -> None:
        self._create_image(data)

    @precondition(lambda self: len(self.images) < MAX_IMAGES)
    @rule(data=st.data())
    @step
    def create_image(self, data: st.DataObject) -> None:
        self._create_image(data)

    @precondition(lambda self: len(self.images) > 2 and self.has(lambda m: not any(s.children for s in m.trashed)))
    @rule(data=st.data())
    @step
    def remove_image(self, data: st.DataObject) -> None:
        """(An image whose trashed snapshots still have clone v2 children is left alone: Ceph's answer varies.)"""
        m = self.pick(data, lambda m: not any(s.children for s in m.trashed))
        self.close(m.name)
        if m.snaps:
            expect_error(rbd.ImageHasSnapshots, f"remove {self.where(m)} with snapshots {list(m.snaps)}",
                         lambda: self.rbd.remove(self.ioctx, m.name))
            return
        self.rbd.remove(self.ioctx, m.name)
        self.detach(m)
        del self.images[m.name]
        expect_error(rbd.ImageNotFound, f"open removed {m.name}", lambda: rbd.Image(self.ioctx, m.name))
        assert m.name not in self.rbd.list(self.ioctx), f"removed {m.name} still listed"

    @precondition(lambda self: self.images)
    @rule(data=st.data())
    @step
    def reopen(self, data: st.DataObject) -> None:
        self.close(self.pick(data).name)

    # -- rules: I/O ----------------------------------------------------------------------------------------
    def _write(self, data: st.DataObject) -> None:
        m = self.pick(data, lambda m: m.size > 0)
        off, length = draw_extent(data, m.layout, m.size, min(4 * m.layout.period, 256 * 1024), "write")
        kind = data.draw(st.sampled_from(["random", "random", "random", "byte", "zeros"]), label="kind")
        payload = pattern(data.draw(st.integers(0, 1 << 30), label="seed"), length, kind)
        n = self.handle(m.name).write(payload, off)
        assert n == length, f"write returned {n}, wrote {length}"
        m.write(off, payload)
        self.check_window(m, off, length, f"after write {off}+{length}")

    @precondition(lambda self: self.has(lambda m: m.size > 0))
    @rule(data=st.data())
    @step
    def write(self, data: st.DataObject) -> None:
        self._write(data)

    @precondition(lambda self: self.has(lambda m: m.size > 0))
    @rule(data=st.data())
    @step
    def write_again(self, data: st.DataObject) -> None:
        self._write(data)  # writes are the commonest step

    @precondition(lambda self: self.images)
    @rule(data=st.data())
    @step
    def write_past_end(self, data: st.DataObject) -> None:
        """python-rbd clips a write that crosses the end (IncompleteWriteError); one at/after it is EINVAL."""
        m = self.pick(data)
        off = data.draw(st.integers(max(0, m.size - 2 * m.layout.su), m.size + 10), label="offset")
        length = data.draw(st.integers(1, 3 * m.layout.su), label="length")
        payload = pattern(off, length)
        img = self.handle(m.name)
        if off >= m.size:
            expect_error(rbd.InvalidArgument, f"write {off}+{length} past end of {self.where(m)} size {m.size}",
                         lambda: img.write(payload, off))
        elif off + length > m.size:
            expect_error(rbd.IncompleteWriteError, f"write {off}+{length} across end {m.size} of {self.where(m)}",
                         lambda: img.write(payload, off))
            m.write(off, payload[:m.size - off])
        else:
            assert img.write(payload, off) == length
            m.write(off, payload)
        assert img.size() == m.size
        self.check_window(m, off, min(length, max(0, m.size - off)), f"after write past end {off}+{length}")
        if m.size:
            got = img.read(m.size - 1, 10)  # a read across the end is short
            assert got == bytes(m.data[-1:]), f"read across the end of {self.where(m)}: {got!r}"
        expect_error(rbd.InvalidArgument, f"read at the end of {self.where(m)}", lambda: img.read(m.size, 1))

    @precondition(lambda self: self.has(lambda m: m.size > 0))
    @rule(data=st.data())
    @step
    def discard(self, data: st.DataObject) -> None:
        m = self.pick(data, lambda m: m.size > 0)
        off, length = draw_extent(data, m.layout, m.size, 4 * m.layout.period, "discard")
        self.handle(m.name).discard(off, length)
        zeroed = m.discard(off, length)
        self.check_window(m, off, length, f"after discard {off}+{length} (Ceph zeroes {zeroed}, rest untouched: "
                                          "rbd_skip_partial_discard, granularity min(64K, object size))")

    @precondition(lambda self: self.has(lambda m: m.size > 0))
    @rule(data=st.data())
    @step
    def write_zeroes(self, data: st.DataObject) -> None:
        m = self.pick(data, lambda m: m.size > 0)
        off, length = draw_extent(data, m.layout, m.size, 4 * m.layout.period, "zeroes")
        self.handle(m.name).write_zeroes(off, length)
        m.zero(off, length)
        self.check_window(m, off, length, f"after write_zeroes {off}+{length}")

    @precondition(lambda self: self.images)
    @rule(data=st.data())
    @step
    def resize(self, data: st.DataObject) -> None:
        m = self.pick(data)
        new_size = draw_size(data, m.layout, "new size")
        img = self.handle(m.name)
        if new_size < m.size and data.draw(st.booleans(), label="allow_shrink=False"):
            expect_error(rbd.InvalidArgument, f"shrink {self.where(m)} with allow_shrink=False",
                         lambda: img.resize(new_size, allow_shrink=False))
            assert img.size() == m.size
            return
        old = m.size
        img.resize(new_size)
        m.resize(new_size)
        assert img.size() == new_size, f"{self.where(m)}: size {img.size()} after resize to {new_size}"
        edge = min(old, new_size)
        self.check_window(m, edge, abs(new_size - old), f"after resize {old} -> {new_size}")

    # -- rules: snapshots ------------------------------------------------------------------------------------
    @precondition(lambda self: self.images)
    @rule(data=st.data())
    @step
    def create_snap(self, data: st.DataObject) -> None:
        self._create_snap(data)

    @precondition(lambda self: self.images)
    @rule(data=st.data())
    @step
    def create_snap_again(self, data: st.DataObject) -> None:
        self._create_snap(data)  # snapshots feed clones, rollbacks and removals

    def _create_snap(self, data: st.DataObject) -> None:
        m = self.pick(data)
        name = data.draw(st.sampled_from(SNAP_NAMES), label="snap")
        img = self.handle(m.name)
        if name in m.snaps:
            expect_error(rbd.ImageExists, f"create existing snapshot {self.where(m, name)}",
                         lambda: img.create_snap(name))
            return
        img.create_snap(name)
        m.snaps[name] = SnapModel(bytes(m.data))

    def pick_snap(self, data: st.DataObject, pred: Callable[[SnapModel], bool] = lambda s: True
                  ) -> tuple[ImageModel, str, SnapModel]:
        m = self.pick(data, lambda m: any(pred(s) for s in m.snaps.values()))
        name = data.draw(st.sampled_from(sorted(n for n, s in m.snaps.items() if pred(s))), label="snap")
        return m, name, m.snaps[name]

    @precondition(lambda self: self.has(lambda m: bool(m.snaps)))
    @rule(data=st.data())
    @step
    def protect_snap(self, data: st.DataObject) -> None:
        m, name, s = self.pick_snap(data)
        img = self.handle(m.name)
        if s.protected:
            expect_error(rbd.ImageBusy, f"protect protected {self.where(m, name)}", lambda: img.protect_snap(name))
        else:
            img.protect_snap(name)
            s.protected = True
        assert img.is_protected_snap(name) is True

    @precondition(lambda self: self.has(lambda m: bool(m.snaps)))
    @rule(data=st.data())
    @step
    def unprotect_snap(self, data: st.DataObject) -> None:
        m, name, s = self.pick_snap(data)
        img = self.handle(m.name)
        if not s.protected:
            expect_error(rbd.InvalidArgument, f"unprotect unprotected {self.where(m, name)}",
                         lambda: img.unprotect_snap(name))
        elif s.children:
            expect_error(rbd.ImageBusy, f"unprotect {self.where(m, name)} with children {s.children}",
                         lambda: img.unprotect_snap(name))
        else:
            img.unprotect_snap(name)
            s.protected = False
        assert img.is_protected_snap(name) is s.protected

    @precondition(lambda self: self.has(lambda m: bool(m.snaps)))
    @rule(data=st.data())
    @step
    def remove_snap(self, data: st.DataObject) -> None:
        m, name, s = self.pick_snap(data)
        img = self.handle(m.name)
        if s.protected:
            expect_error(rbd.ImageBusy, f"remove protected {self.where(m, name)}", lambda: img.remove_snap(name))
            return
        img.remove_snap(name)
        del m.snaps[name]
        if s.children:  # clone v2 children keep it alive in the trash namespace
            m.trashed.append(s)
        expect_error(rbd.ImageNotFound, f"open removed snapshot {self.where(m, name)}",
                     lambda: rbd.Image(self.ioctx, m.name, snapshot=name, read_only=True))

    @precondition(lambda self: self.has(lambda m: bool(m.snaps)))
    @rule(data=st.data())
    @step
    def rollback_to_snap(self, data: st.DataObject) -> None:
        m, name, s = self.pick_snap(data)
        img = self.handle(m.name)
        img.rollback_to_snap(name)
        m.data = bytearray(s.data)
        assert img.size() == m.size, f"{self.where(m)} size {img.size()} after rollback to {name} ({m.size})"
        self.check_window(m, 0, min(m.size, 2 * m.layout.period), f"after rollback to {name}")

    # -- rules: clones -----------------------------------------------------------------------------------------
    @precondition(lambda self: len(self.images) < MAX_IMAGES and self.has(lambda m: bool(m.snaps)))
    @rule(data=st.data())
    @step
    def clone(self, data: st.DataObject) -> None:
        self._clone(data)

    @precondition(lambda self: len(self.images) < MAX_IMAGES and self.has(lambda m: bool(m.snaps)))
    @rule(data=st.data())
    @step
    def clone_again(self, data: st.DataObject) -> None:
        self._clone(data)

    def _clone(self, data: st.DataObject) -> None:
        parent, snap_name, s = self.pick_snap(data)
        fmt = data.draw(st.sampled_from([1, 2]), label="clone_format")
        choice = data.draw(st.sampled_from(["inherit", *LAYOUT_NAMES]), label="child layout")
        if choice == "inherit":  # no order/striping given: the child takes the parent's (CloneRequest)
            lay, kwargs = parent.layout, {"features": parent.layout.features}
        else:
            lay = LAYOUT_BY_NAME[choice]
            kwargs = lay.clone_kwargs()
        child = f"m{self.run}_{next(self.counter)}"

        def do_clone() -> None:
            self.rbd.clone(self.ioctx, parent.name, snap_name, self.ioctx, child, clone_format=fmt, **kwargs)

        if fmt == 1 and not s.protected:
            expect_error(rbd.InvalidArgument, f"clone v1 of unprotected {self.where(parent, snap_name)}", do_clone)
            expect_error(rbd.ImageNotFound, f"open failed clone {child}", lambda: rbd.Image(self.ioctx, child))
            return
        if not s.data:  # cls_rbd parent attach refuses an overlap of 0 (EINVAL); librbd removes the child again
            expect_error(rbd.InvalidArgument, f"clone of empty {self.where(parent, snap_name)}", do_clone)
            expect_error(rbd.ImageNotFound, f"open failed clone {child}", lambda: rbd.Image(self.ioctx, child))
            return
        do_clone()
        m = self.images[child] = ImageModel(child, lay, bytearray(s.data), parent=(parent.name, snap_name),
                                            parent_snap=s, clone_format=fmt)
        s.children.add(child)
        img = self.handle(child)
        assert img.size() == len(s.data), f"clone {self.where(m)} size {img.size()} != parent snap {len(s.data)}"
        layout = (img.stat()["order"], img.stripe_unit(), img.stripe_count())
        assert layout == (lay.order, lay.su, lay.sc), f"clone {self.where(m)} ({choice}): order/striping {layout}"
        assert img.parent_info() == (POOL, parent.name, snap_name), f"parent_info of {self.where(m)}"
        self.check_window(m, 0, min(m.size, m.layout.period), "fresh clone")

    @precondition(lambda self: self.images)
    @rule(data=st.data())
    @step
    def flatten(self, data: st.DataObject) -> None:
        m = self.pick(data, label="image (clone or not)")
        img = self.handle(m.name)
        if m.parent is None:
            expect_error(rbd.InvalidArgument, f"flatten non-clone {self.where(m)}", img.flatten)
            return
        img.flatten()
        self.detach(m)
        expect_error(rbd.ImageNotFound, f"parent_info of flattened {self.where(m)}", img.parent_info)
        self.check_window(m, 0, min(m.size, 2 * m.layout.period), "after flatten")

    def detach(self, m: ImageModel) -> None:
        """The clone `m` no longer references its parent snapshot (flattened, with deep-flatten, or removed)."""
        if m.parent is None:
            return
        parent = self.images[m.parent[0]]
        assert m.parent_snap is not None
        m.parent_snap.children.discard(m.name)
        if not m.parent_snap.children and m.parent_snap in parent.trashed:
            parent.trashed.remove(m.parent_snap)  # librbd removes a trashed snapshot with its last child
        m.parent = m.parent_snap = None

    # -- rules: checks -------------------------------------------------------------------------------------------
    @precondition(lambda self: self.images)
    @rule(data=st.data())
    @step
    def check_image(self, data: st.DataObject) -> None:
        self.check_full(self.pick(data))

    @precondition(lambda self: self.has(lambda m: bool(m.snaps)))
    @rule(data=st.data())
    @step
    def read_snapshot_only(self, data: st.DataObject) -> None:
        """A snapshot handle refuses writes (ReadOnlyImage) and reads its own content."""
        m, name, s = self.pick_snap(data)
        with rbd.Image(self.ioctx, m.name, snapshot=name, read_only=True) as img:
            expect_error(rbd.ReadOnlyImage, f"write to snapshot {self.where(m, name)}",
                         lambda: img.write(b"x", 0))
            if s.data:
                off = data.draw(st.integers(0, len(s.data) - 1), label="offset")
                got = img.read(off, min(4096, len(s.data) - off))
                want = s.data[off:off + 4096]
                assert got == want, f"snapshot {self.where(m, name)} at {off}: {first_difference(want, got)}"

    @precondition(lambda self: self.has(lambda m: bool(m.snaps)))
    @rule(data=st.data())
    @step
    def read_via_set_snap(self, data: st.DataObject) -> None:
        """Image.set_snap(name) turns an open handle into a read-only view of the snapshot; set_snap(None) back."""
        m, name, s = self.pick_snap(data)
        img = self.handle(m.name)
        img.set_snap(name)
        try:
            assert img.size() == len(s.data), f"set_snap({name!r}) on {self.where(m)}: size {img.size()}"
            expect_error(rbd.ReadOnlyImage, f"write after set_snap({name!r}) on {self.where(m)}",
                         lambda: img.write(b"y", 0))
            if s.data:
                off = data.draw(st.integers(0, len(s.data) - 1), label="offset")
                got = img.read(off, min(3 * m.layout.period, len(s.data) - off))
                want = s.data[off:off + len(got)]
                assert got == want, f"set_snap {self.where(m, name)} at {off}: {first_difference(want, got)}"
        finally:
            img.set_snap(None)
        assert img.size() == m.size, f"set_snap(None) on {self.where(m)}: size {img.size()} != {m.size}"

    @precondition(lambda self: self.has(lambda m: m.size > 0))
    @rule(data=st.data())
    @step
    def diff_iterate_covers_changes(self, data: st.DataObject) -> None:
        """diff_iterate(from snapshot or the beginning) reports, in order and without overlap, extents that
        cover every byte of the head that differs from the snapshot (every non-zero byte from the beginning,
        parent data included) - what export-diff and backups rely on."""
        m = self.pick(data, lambda m: m.size > 0)
        from_snap = data.draw(st.sampled_from([None, *sorted(m.snaps)]), label="from snapshot")
        whole = data.draw(st.booleans(), label="whole_object")
        extents: list[tuple[int, int, bool]] = []
        self.handle(m.name).diff_iterate(0, m.size, from_snap, lambda o, n, e: extents.append((o, n, bool(e))),
                                         include_parent=True, whole_object=whole)
        what = f"diff_iterate(from {from_snap}, whole_object={whole}) of {self.where(m)}: {extents[:12]}"
        mask = bytearray(m.size)
        end = 0
        for off, n, _ in extents:
            assert off >= end and n > 0 and off + n <= m.size, f"{what}: unordered, overlapping or out of range"
            end = off + n
            mask[off:off + n] = b"\x01" * n
        base = bytearray(m.snaps[from_snap].data[:m.size]) if from_snap else bytearray()
        base.extend(bytes(m.size - len(base)))
        head = m.data
        for c in range(0, m.size, 4096):
            if head[c:c + 4096] != base[c:c + 4096] and mask[c:c + 4096].count(0):
                missed = next((c + i for i in range(min(4096, m.size - c))
                               if head[c + i] != base[c + i] and not mask[c + i]), None)
                assert missed is None, f"{what}: changed byte {missed} not reported"

    def teardown(self) -> None:
        try:
            if not self.failed:
                for m in list(self.images.values()):
                    self.check_full(m)
                listed = set(self.rbd.list(self.ioctx))
                mine = {n for n in listed if n.startswith(f"m{self.run}_")}
                assert mine == set(self.images), f"RBD.list: {sorted(mine)} != model {sorted(self.images)}"
        finally:
            for name in list(self.handles):
                try:
                    self.close(name)
                except Exception:  # noqa: BLE001 - closing must not mask the verdict
                    pass


def run_model(ioctx: Any, examples: int, steps: int, shrink: bool) -> None:
    """Shrinking replays programs against the cluster (up to hypothesis' 5 minutes), so the default run
    reports the unshrunk program; SHOAL_RBD_MODEL_SHRINK=1 (with the printed seed) shrinks it."""
    seed = int(os.environ.get("SHOAL_RBD_MODEL_SEED") or random.randrange(1 << 32))
    shrink = shrink or bool(os.environ.get("SHOAL_RBD_MODEL_SHRINK"))
    print(f"rbd model seed {seed} (SHOAL_RBD_MODEL_SEED={seed} reruns this)")

    class Machine(RbdMachine):
        pass

    Machine.ioctx = ioctx
    hypothesis_seed(seed)(Machine)
    try:
        run_state_machine_as_test(Machine, settings=settings(
            max_examples=examples, stateful_step_count=steps, deadline=None, database=None,
            print_blob=True, suppress_health_check=list(HealthCheck),
            phases=[p for p in Phase if shrink or p != Phase.shrink]))
    except BaseException as exc:
        exc.add_note(f"rbd model seed {seed}: rerun with SHOAL_RBD_MODEL_SEED={seed}"
                     + ("" if shrink else " SHOAL_RBD_MODEL_SHRINK=1 for a minimal program"))
        raise


def test_rbd_model(ioctx: Any) -> None:
    run_model(ioctx, int(os.environ.get("SHOAL_RBD_MODEL_EXAMPLES", "150")), 30, shrink=False)


@pytest.mark.slow
def test_rbd_model_long(ioctx: Any) -> None:
    run_model(ioctx, int(os.environ.get("SHOAL_RBD_MODEL_EXAMPLES", "400")), 60, shrink=True)

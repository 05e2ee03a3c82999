"""Both ObjectStores pass the same conformance suite (CONVENTIONS §2)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from shoal.osd.store.base import ObjectStore
from shoal.osd.store.conformance import CHECKS, check_object_store, run_check
from shoal.osd.store.memory import MemoryStore
from shoal.osd.store.sqlite_store import SqliteStore


def _factories(tmp_path: Path) -> dict[str, Callable[[], ObjectStore]]:
    counter = iter(range(1 << 30))
    return {
        "memory": MemoryStore,
        "sqlite": lambda: SqliteStore(str(tmp_path / f"store{next(counter)}")),
        # small blocks put many block boundaries inside the suite's objects
        "sqlite-4k": lambda: SqliteStore(str(tmp_path / f"small{next(counter)}"), block_size=4096),
    }


@pytest.mark.parametrize("kind", ["memory", "sqlite", "sqlite-4k"])
@pytest.mark.parametrize("check", sorted(CHECKS))
def test_store_conformance(kind: str, check: str, tmp_path: Path) -> None:
    run_check(_factories(tmp_path)[kind], check)


def test_store_conformance_sqlite_leaves_a_consistent_store(tmp_path: Path) -> None:
    """After the whole suite on one store directory at a time, fsck finds nothing."""
    stores: list[SqliteStore] = []

    def make() -> SqliteStore:
        s = SqliteStore(str(tmp_path / f"s{len(stores)}"), block_size=4096)
        stores.append(s)
        return s

    check_object_store(make, only=["clone", "random_extents", "zero", "truncate", "atomic_failure"])
    for s in stores:
        s.mount()
        try:
            assert s.fsck() == [], s.path
        finally:
            s.umount()

"""The monitor's store: a small transactional key/value map.

Backends: SQLite (one monitor, the embedded default), memory (tests); an etcd
backend for several monitors implements the same three methods.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping


class MonStore(ABC):
    @abstractmethod
    def get(self, key: str) -> bytes | None: ...

    @abstractmethod
    def commit(self, puts: Mapping[str, bytes], deletes: tuple[str, ...] = ()) -> None:
        """Apply all puts and deletes atomically and durably."""

    @abstractmethod
    def items(self, prefix: str = "") -> Iterator[tuple[str, bytes]]: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

from __future__ import annotations

from collections.abc import Iterator, Mapping

from shoal.mon.store.base import MonStore


class MemoryMonStore(MonStore):
    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self._data.get(key)

    def commit(self, puts: Mapping[str, bytes], deletes: tuple[str, ...] = ()) -> None:
        for key in deletes:
            self._data.pop(key, None)
        self._data.update(puts)

    def items(self, prefix: str = "") -> Iterator[tuple[str, bytes]]:
        for key in sorted(self._data):
            if key.startswith(prefix):
                yield key, self._data[key]

"""Object classes: named methods run by the primary against one object, atomically.

A method gets a `MethodContext` (the object as its op vector sees it) and the input
bytes, and returns output bytes or raises a `ShoalError` for its errno. Its changes
join the op's transaction, so they replicate like any write. Methods declare whether
they read and/or write, which the OSD checks against the caller's caps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

RD = 1
WR = 2


class MethodContext(Protocol):
    """What a method may do with its object (implemented by the OSD's ObjectContext)."""

    exists: bool
    size: int

    def read(self, offset: int, length: int) -> bytes: ...
    def write(self, offset: int, data: bytes) -> None: ...
    def write_full(self, data: bytes) -> None: ...
    def truncate(self, size: int) -> None: ...
    def create(self, exclusive: bool) -> None: ...
    def remove(self) -> None: ...
    def getxattr(self, name: str) -> bytes: ...
    def getxattrs(self) -> dict[str, bytes]: ...
    def setxattr(self, name: str, value: bytes) -> None: ...
    def rmxattr(self, name: str) -> None: ...
    def omap_get_vals(self, start_after: str, prefix: str, max_return: int) -> tuple[list[tuple[str, bytes]], bool]: ...
    def omap_get_vals_by_keys(self, keys: list[str]) -> dict[str, bytes]: ...
    def omap_get_header(self) -> bytes: ...
    def omap_set(self, kv: dict[str, bytes]) -> None: ...
    def omap_rm(self, keys: list[str]) -> None: ...
    def omap_set_header(self, header: bytes) -> None: ...


Method = Callable[[MethodContext, bytes], bytes]


@dataclass(frozen=True)
class ClassMethod:
    cls: str
    name: str
    flags: int
    fn: Method


_METHODS: dict[tuple[str, str], ClassMethod] = {}


def method(cls: str, name: str, flags: int) -> Callable[[Method], Method]:
    """Decorator registering `fn` as `cls.name`."""

    def register(fn: Method) -> Method:
        _METHODS[(cls, name)] = ClassMethod(cls, name, flags, fn)
        return fn

    return register


def lookup(cls: str, name: str) -> ClassMethod | None:
    _load_builtin_classes()
    return _METHODS.get((cls, name))


_loaded = False


def _load_builtin_classes() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        from shoal.cls import hello, lock, rbd  # noqa: F401 - registers on import

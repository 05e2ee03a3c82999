"""What the server needs from an export, and the in-memory twin the protocol tests use.

An export is shared by every connection that opens its name (CAN_MULTI_CONN): one image
handle, so a FLUSH on any connection covers the writes of all of them.
"""

from __future__ import annotations

from typing import Protocol

from shoal.nbd import constants as C


class ExportError(Exception):
    """A lookup that failed: the NBD option reply type to send and a message for the client."""

    def __init__(self, reply_type: int, message: str) -> None:
        super().__init__(message)
        self.reply_type = reply_type
        self.message = message


class Backend(Protocol):
    name: str
    read_only: bool

    @property
    def size(self) -> int: ...

    async def read(self, off: int, length: int) -> bytes | bytearray | memoryview: ...
    async def write(self, off: int, data: bytes) -> None: ...
    async def trim(self, off: int, length: int) -> None: ...
    async def write_zeroes(self, off: int, length: int, no_hole: bool) -> None: ...
    async def flush(self) -> None: ...
    async def block_status(self, off: int, length: int) -> list[tuple[int, int]]: ...


class Registry(Protocol):
    async def lookup(self, name: str) -> Backend: ...
    async def names(self) -> list[str]: ...


class MemoryBackend:
    """A sparse in-memory disk with `block`-sized allocation (holes read as zeros)."""

    def __init__(self, name: str, size: int, read_only: bool = False, block: int = 64 << 10) -> None:
        self.name = name
        self.read_only = read_only
        self._size = size
        self.block = block
        self.blocks: dict[int, bytearray] = {}
        self.flushes = 0

    @property
    def size(self) -> int:
        return self._size

    async def read(self, off: int, length: int) -> bytes:
        out = bytearray(length)
        pos = off
        while pos < off + length:
            b, inner = divmod(pos, self.block)
            n = min(self.block - inner, off + length - pos)
            data = self.blocks.get(b)
            if data is not None:
                out[pos - off:pos - off + n] = data[inner:inner + n]
            pos += n
        return bytes(out)

    async def write(self, off: int, data: bytes) -> None:
        assert not self.read_only and off + len(data) <= self._size
        pos = off
        while pos < off + len(data):
            b, inner = divmod(pos, self.block)
            n = min(self.block - inner, off + len(data) - pos)
            blk = self.blocks.setdefault(b, bytearray(self.block))
            blk[inner:inner + n] = data[pos - off:pos - off + n]
            pos += n

    async def trim(self, off: int, length: int) -> None:
        await self.write_zeroes(off, length, no_hole=False)

    async def write_zeroes(self, off: int, length: int, no_hole: bool) -> None:
        assert not self.read_only and off + length <= self._size
        pos = off
        while pos < off + length:
            b, inner = divmod(pos, self.block)
            n = min(self.block - inner, off + length - pos)
            if n == self.block and not no_hole:
                self.blocks.pop(b, None)
            elif b in self.blocks or no_hole:
                self.blocks.setdefault(b, bytearray(self.block))[inner:inner + n] = bytes(n)
            pos += n

    async def flush(self) -> None:
        self.flushes += 1

    async def block_status(self, off: int, length: int) -> list[tuple[int, int]]:
        out = []
        pos = off
        while pos < off + length:
            b, inner = divmod(pos, self.block)
            n = min(self.block - inner, off + length - pos)
            out.append((n, 0 if b in self.blocks else C.STATE_HOLE | C.STATE_ZERO))
            pos += n
        return out


class MemoryRegistry:
    def __init__(self, *backends: MemoryBackend) -> None:
        self.backends = {b.name: b for b in backends}

    async def lookup(self, name: str) -> Backend:
        backend = self.backends.get(name)
        if backend is None:
            raise ExportError(C.REP_ERR_UNKNOWN, f"no export named {name!r}")
        return backend

    async def names(self) -> list[str]:
        return sorted(self.backends)

"""Moving large byte strings of a message out of its meta into the frame's data segment.

A transaction shipped to replicas holds write payloads; packing them into msgpack meta
would copy them and bound them by the meta limit. `detach` replaces every bytes value
of at least `min_size` with a small reference (a msgpack ext value naming an offset and
length in the data segment); `attach` puts slices of the received data back.
"""

from __future__ import annotations

import struct
from typing import Any

import msgpack

from shoal.errors import ProtocolError

PAYLOAD_EXT = 1
_REF = struct.Struct("<QQ")
Buffer = bytes | bytearray | memoryview


def detach(obj: Any, min_size: int = 4096) -> tuple[Any, list[Buffer]]:
    chunks: list[Buffer] = []
    offset = 0

    def walk(x: Any) -> Any:
        nonlocal offset
        if isinstance(x, (bytes, bytearray, memoryview)) and len(x) >= min_size:
            ref = msgpack.ExtType(PAYLOAD_EXT, _REF.pack(offset, len(x)))
            chunks.append(x)
            offset += len(x)
            return ref
        if isinstance(x, (list, tuple)):
            return [walk(i) for i in x]
        if isinstance(x, dict):
            return {k: walk(v) for k, v in x.items()}
        return x

    return walk(obj), chunks


def joined(chunks: list[Buffer]) -> Buffer:
    if not chunks:
        return b""
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def attach(obj: Any, data: Buffer) -> Any:
    view = memoryview(data)

    def walk(x: Any) -> Any:
        if isinstance(x, msgpack.ExtType):
            if x.code != PAYLOAD_EXT or len(x.data) != _REF.size:
                raise ProtocolError(f"unknown msgpack extension {x.code}")
            off, length = _REF.unpack(x.data)
            if off + length > len(view):
                raise ProtocolError("payload reference outside the frame data")
            return view[off:off + length]
        if isinstance(x, list):
            return [walk(i) for i in x]
        if isinstance(x, dict):
            return {k: walk(v) for k, v in x.items()}
        return x

    return walk(obj)

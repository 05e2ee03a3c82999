"""A tiny example class (like Ceph's cls_hello), used to test the framework."""

from __future__ import annotations

from shoal.cls.registry import RD, WR, MethodContext, method
from shoal.errors import Exists, InvalidArgument


@method("hello", "say_hello", RD)
def say_hello(ctx: MethodContext, data: bytes) -> bytes:
    if len(data) > 100:
        raise InvalidArgument("name too long")
    return b"Hello, " + (data or b"world") + b"!"


@method("hello", "record_hello", WR)
def record_hello(ctx: MethodContext, data: bytes) -> bytes:
    if ctx.exists and ctx.size:
        raise Exists("already said hello")
    ctx.write_full(b"Hello, " + (data or b"world") + b"!")
    return b""


@method("hello", "replay", RD)
def replay(ctx: MethodContext, data: bytes) -> bytes:
    return ctx.read(0, 0)

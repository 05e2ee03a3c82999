"""Plumbing of the python-rbd module: from a `rados.Ioctx` to the RBD core on the loop thread.

Every call runs a coroutine of shoal.rbd on the shared client loop thread and blocks the
calling thread (native or eventlet tpool) for the result, turning a `ShoalError` into the
python-rbd exception for its errno with python-rbd's message. Progress callbacks of long
operations are relayed to the calling thread: user code never runs on the loop thread,
so a callback may itself call into rbd/rados.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Coroutine
from typing import Any

from shoal.client.loop_thread import Call, LoopThread, _real_threading
from shoal.compat.rados_ioctx import Ioctx as RadosIoctx
from shoal.compat.rbd_errors import make_ex
from shoal.errors import ShoalError
from shoal.rbd.ioctx import IoCtx

_threading = _real_threading()


def core_io(ioctx: Any) -> IoCtx:
    """The core's view of a python-rados Ioctx (pool, namespace, client)."""
    if not isinstance(ioctx, RadosIoctx):
        raise TypeError(f"Argument 'ioctx' has incorrect type (expected rados.Ioctx, got {type(ioctx).__name__})")
    ioctx._ready()
    return IoCtx(ioctx.rados._client, ioctx.pool_id, ioctx.nspace)


def loop_of(ioctx: RadosIoctx) -> LoopThread:
    return ioctx.rados._loop  # type: ignore[no-any-return]


def management_ops(io: IoCtx) -> int:
    """rbd_concurrent_management_ops: object ops in flight in copy, flatten, remove…"""
    try:
        return max(1, int(io.client.conf.get("rbd_concurrent_management_ops")))
    except Exception:  # noqa: BLE001 - a configuration without the option: librbd's default
        return 10


def run(loop: LoopThread, coro: Coroutine[Any, Any, Any], what: str) -> Any:
    try:
        return loop.run(coro)
    except ShoalError as exc:
        raise make_ex(exc.errno, what) from exc


class ProgressRelay:
    """Collects (offset, total) progress on the loop thread; the caller thread delivers them."""

    def __init__(self) -> None:
        self._cond = _threading.Condition(_threading.Lock())
        self._items: collections.deque[tuple[int, int]] = collections.deque()
        self._done = False

    def __call__(self, offset: int, total: int) -> None:
        with self._cond:
            self._items.append((offset, total))
            self._cond.notify()

    def _finished(self, _call: Call) -> None:
        with self._cond:
            self._done = True
            self._cond.notify()

    def run(self, loop: LoopThread, coro: Coroutine[Any, Any, Any], on_progress: Callable[[int, int], Any],
            what: str) -> Any:
        call = loop.submit(coro)
        call.add_done_callback(self._finished)
        while True:
            with self._cond:
                while not self._items and not self._done:
                    self._cond.wait()
                items, done = list(self._items), self._done
                self._items.clear()
            for offset, total in items:
                on_progress(offset, total)
            if done:
                break
        try:
            return call.result(0)
        except ShoalError as exc:
            raise make_ex(exc.errno, what) from exc


def run_with_progress(loop: LoopThread, make: Callable[[Callable[[int, int], Any] | None], Coroutine[Any, Any, Any]],
                      on_progress: Callable[[int, int], Any] | None, what: str) -> Any:
    """Run `make(progress)`; with an `on_progress` callback its calls reach the caller's thread."""
    if on_progress is None:
        return run(loop, make(None), what)
    relay = ProgressRelay()
    return relay.run(loop, make(relay), on_progress, what)


async def anext_(agen: Any) -> Any:
    """`await agen.__anext__()` as a coroutine (what the loop thread runs)."""
    return await agen.__anext__()


async def aclose(agen: Any) -> None:
    await agen.aclose()

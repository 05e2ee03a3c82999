"""A private asyncio loop on a real OS thread, shared by every client in the process.

Callers (python-rados style synchronous calls, possibly from eventlet's native tpool
threads or green threads) submit coroutines and block on the result; the loop thread
never runs caller code, so a caller blocking cannot stall another caller's I/O.

Waiting uses unpatched (native) threading primitives (`Call`). `concurrent.futures`
cannot be used for that: in an eventlet-monkey-patched process (Cinder, Nova, Glance)
its Condition is green, and a result set by the native loop thread never wakes a
waiter parked in the eventlet hub.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def _real_threading() -> Any:
    """`threading` as it was before any eventlet monkey-patching."""
    if "eventlet" in sys.modules:
        from eventlet import patcher  # type: ignore[import-not-found]

        return patcher.original("threading")
    import threading

    return threading


class LoopThread:
    _shared: LoopThread | None = None
    _shared_lock = _real_threading().Lock()

    def __init__(self) -> None:
        threading = _real_threading()
        try:
            import uvloop

            self.loop = uvloop.new_event_loop()
        except ImportError:
            self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="shoal-client", daemon=True)
        self.thread.start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    @classmethod
    def shared(cls) -> LoopThread:
        with cls._shared_lock:
            if cls._shared is None or not cls._shared.thread.is_alive():
                cls._shared = cls()
            return cls._shared

    def submit(self, coro: Coroutine[Any, Any, T]) -> Call:
        return Call(self, coro)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coro` on the loop thread and block this (native or green) thread until it ends."""
        if _real_threading().current_thread() is self.thread:
            coro.close()
            raise RuntimeError("blocking client call made from the client's own loop thread")
        return Call(self, coro).result(timeout)  # type: ignore[no-any-return]


_threading = _real_threading()


class Call:
    """A coroutine running on the client loop thread, awaited with native threading primitives."""

    def __init__(self, loop_thread: LoopThread, coro: Coroutine[Any, Any, Any]) -> None:
        self._done = _threading.Event()
        self._lock = _threading.Lock()
        self._callbacks: list[Callable[[Call], None]] | None = []
        self._result: Any = None
        self._exc: BaseException | None = None
        loop = loop_thread.loop

        def start() -> None:
            try:
                task = loop.create_task(coro)
            except BaseException as exc:  # noqa: BLE001 - the loop is closing: report it to the waiter
                coro.close()
                self._set(None, exc)
                return
            task.add_done_callback(self._task_done)

        try:
            loop.call_soon_threadsafe(start)
        except RuntimeError as exc:  # the loop is closed (interpreter exit)
            coro.close()
            self._set(None, exc)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            self._set(None, asyncio.CancelledError())
        else:
            exc = task.exception()
            self._set(task.result() if exc is None else None, exc)

    def _set(self, result: Any, exc: BaseException | None) -> None:
        with self._lock:
            self._result, self._exc = result, exc
            callbacks, self._callbacks = self._callbacks or [], None
            self._done.set()
        for cb in callbacks:
            cb(self)

    def add_done_callback(self, fn: Callable[[Call], None]) -> None:
        """`fn(call)` once finished: on the loop thread, or at once if it already is."""
        with self._lock:
            if self._callbacks is not None:
                self._callbacks.append(fn)
                return
        fn(self)

    def done(self) -> bool:
        return self._done.is_set()

    def result(self, timeout: float | None = None) -> Any:
        if not self._done.wait(timeout):
            raise TimeoutError("the client operation did not finish in time")
        if self._exc is not None:
            raise self._exc
        return self._result


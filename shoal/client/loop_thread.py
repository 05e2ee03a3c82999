"""A private asyncio loop on a real OS thread, shared by every client in the process.

Callers (python-rados style synchronous calls, possibly from eventlet's native tpool
threads) submit coroutines and block on the result; the loop thread never runs
caller code, so a caller blocking cannot stall another caller's I/O.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
from collections.abc import Coroutine
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

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        if _real_threading().current_thread() is self.thread:
            raise RuntimeError("blocking client call made from the client's own loop thread")
        return self.submit(coro).result(timeout)

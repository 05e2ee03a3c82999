"""A native thread running user callbacks in order: librados' finisher.

Callbacks (aio completions, watch notifications) never run on the client loop thread,
so a callback may block or make blocking rados calls without deadlocking the loop that
serves them. The thread is a native one even under eventlet: a callback must not run on
a green thread.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable

from shoal.client.loop_thread import _real_threading

log = logging.getLogger("shoal.client.callbacks")
_threading = _real_threading()


class CallbackRunner:
    """One thread running queued callables in order; with `limit`, a bounded queue."""

    def __init__(self, name: str, limit: int | None = None) -> None:
        self.name = name
        self._cond = _threading.Condition(_threading.Lock())
        self._queue: collections.deque[Callable[[], None]] = collections.deque()
        self._limit = limit
        self._running = 0  # callables taken off the queue, not finished
        self._stopping = False
        self._thread = _threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[], None]) -> bool:
        """Queue `fn`; False (not queued) once stopping or when the queue is full."""
        with self._cond:
            if self._stopping or (self._limit is not None and len(self._queue) >= self._limit):
                return False
            self._queue.append(fn)
            self._cond.notify_all()
            return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue:
                    return
                fn = self._queue.popleft()
                self._running += 1
            try:
                fn()
            except Exception:  # noqa: BLE001 - a user callback must not end the thread
                log.exception("event=callback_failed runner=%s", self.name)
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued so far ran (librados' watch_flush); True if it did."""
        if _threading.current_thread() is self._thread:
            return False  # from a callback: waiting for ourselves would never end
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def stop(self, join_timeout: float | None = None) -> None:
        """Run what is queued, then end the thread; with `join_timeout`, wait for that (never
        from a callback itself)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if join_timeout is not None and _threading.current_thread() is not self._thread:
            self._thread.join(join_timeout)

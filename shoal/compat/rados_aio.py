"""Running client coroutines from caller threads; aio completions and their finisher thread.

Blocking calls go through `LoopThread.run` (native threading primitives, safe under
eventlet). An aio call returns a `Completion` at once. When its coroutine ends (on the loop thread)
the completion is marked complete and its callbacks are queued to the handle's finisher:
a native thread, like librados' finisher. Callbacks never run on the loop thread, so a
callback may itself make blocking rados calls without deadlocking the loop serving them.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from typing import Any

from shoal.client.loop_thread import Call, _real_threading

log = logging.getLogger("shoal.compat.rados")

_threading = _real_threading()  # unpatched under eventlet: the finisher must be a native thread


class Finisher:
    """One native thread running queued callables in order (librados' Finisher)."""

    def __init__(self, name: str = "rados-finisher") -> None:
        self._cond = _threading.Condition(_threading.Lock())
        self._queue: collections.deque[Callable[[], None]] = collections.deque()
        self._stopping = False
        self._thread = _threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def queue(self, fn: Callable[[], None]) -> None:
        with self._cond:
            if self._stopping:
                # Late completions after shutdown still get their callbacks: run them inline.
                pass
            else:
                self._queue.append(fn)
                self._cond.notify()
                return
        fn()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue:
                    return
                fn = self._queue.popleft()
            fn()

    def stop(self, timeout: float = 30.0) -> None:
        """Run what is queued, then end the thread (not waited for from the finisher itself)."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if _threading.current_thread() is not self._thread:
            self._thread.join(timeout)


class Completion:
    """The state of one asynchronous operation (python-rados' `Completion`)."""

    def __init__(self, ioctx: Any, oncomplete: Callable[..., Any] | None,
                 onsafe: Callable[..., Any] | None) -> None:
        self.ioctx = ioctx
        self.oncomplete = oncomplete
        self.onsafe = onsafe
        self.buf: bytes | None = None
        self._rval = 0
        self._complete = _threading.Event()
        self._callbacks_done = _threading.Event()
        # Extra positional arguments the callbacks get after the completion (data, stat...).
        self._cb_args: tuple[Any, ...] = ()

    # -- python-rados API -----------------------------------------------------------------
    def is_complete(self) -> bool:
        return self._complete.is_set()

    def is_safe(self) -> bool:
        return self.is_complete()  # safe == complete since Luminous

    def wait_for_complete(self) -> None:
        self._complete.wait()

    def wait_for_safe(self) -> None:
        self.wait_for_complete()

    def wait_for_complete_and_cb(self) -> int:
        self._callbacks_done.wait()
        return 0

    def wait_for_safe_and_cb(self) -> int:
        return self.wait_for_complete_and_cb()

    def get_return_value(self) -> int:
        return self._rval

    # -- driven by the Ioctx -----------------------------------------------------------------
    def _attach(self, call: Call, finisher: Finisher) -> None:
        def done(c: Call) -> None:
            try:
                rval, cb_args = c.result(0)
            except asyncio.CancelledError:
                rval, cb_args = -125, ()  # ECANCELED: the loop shut down under the op
            except Exception as exc:  # noqa: BLE001 - must always complete the completion
                log.warning("event=aio_failed error=%r", exc)
                rval, cb_args = -5, ()
            self._finish(rval, cb_args, finisher)

        call.add_done_callback(done)

    def _finish(self, rval: int, cb_args: tuple[Any, ...], finisher: Finisher) -> None:
        self._rval = rval
        self._cb_args = cb_args
        self._complete.set()
        if self.oncomplete is None and self.onsafe is None:
            self._done_callbacks()
            return
        finisher.queue(self._run_callbacks)

    def _run_callbacks(self) -> None:
        try:
            for cb in (self.oncomplete, self.onsafe):
                if cb is None:
                    continue
                try:
                    cb(self, *self._cb_args)
                except Exception:  # noqa: BLE001 - a user callback must not kill the finisher
                    log.exception("event=aio_callback_failed")
        finally:
            self._done_callbacks()

    def _done_callbacks(self) -> None:
        self._callbacks_done.set()
        untrack = getattr(self.ioctx, "_untrack", None)
        if untrack is not None:
            untrack(self)


__all__ = ["Completion", "Finisher"]

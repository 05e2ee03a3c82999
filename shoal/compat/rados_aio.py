"""Running client coroutines from caller threads; aio completions and their finisher thread.

Blocking calls go through `LoopThread.run` (native threading primitives, safe under
eventlet). An aio call returns a `Completion` at once. When its coroutine ends (on the loop thread)
the completion is marked complete and its callbacks are queued to the handle's finisher:
a native thread, like librados' finisher. Callbacks never run on the loop thread, so a
callback may itself make blocking rados calls without deadlocking the loop serving them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from shoal.client.callbacks import CallbackRunner
from shoal.client.loop_thread import Call, _real_threading

log = logging.getLogger("shoal.compat.rados")

_threading = _real_threading()  # unpatched under eventlet: the finisher must be a native thread


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
    def _attach(self, call: Call, finisher: CallbackRunner) -> None:
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

    def _finish(self, rval: int, cb_args: tuple[Any, ...], finisher: CallbackRunner) -> None:
        self._rval = rval
        self._cb_args = cb_args
        self._complete.set()
        if self.oncomplete is None and self.onsafe is None:
            self._done_callbacks()
            return
        if not finisher.submit(self._run_callbacks):
            self._run_callbacks()  # late completions after shutdown still get their callbacks

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


__all__ = ["Completion"]

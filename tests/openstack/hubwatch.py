"""Proof that an eventlet-mode flow went through tpool and never stalled the hub.

A green thread ticks every 10 ms and records the longest gap between ticks while the
OpenStack code runs (`with watch.active():`): a call made on the hub's thread that blocks
(a rados/rbd call not wrapped in `tpool.Proxy`, a native lock waited on from a green
thread) shows up as a gap as long as the call. A native thread ticks alongside: when the whole process stalls (a loaded
machine, the GIL held in C code) both see the gap, and only the part of a hub gap the
native ticker did not share counts as the hub being blocked. The flow's own checks run outside those
windows: they call Shoal directly on the hub's thread, which no service does. Shoal's
client methods are wrapped to record which native thread ran them inside the windows,
so a flow can assert that the real OpenStack code sent them to tpool's worker threads.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import rados
import rbd

TICK = 0.01
MAX_GAP = 1.0
LONG = 0.1  # gaps worth remembering


class HubWatch:
    def __init__(self) -> None:
        import eventlet
        from eventlet import patcher

        self._native = patcher.original("threading")
        self._main = self._native.main_thread()
        self.max_gap = 0.0
        self.ticks = 0
        self.on_hub: Counter[str] = Counter()  # client calls made on the hub's own thread
        self.in_tpool: Counter[str] = Counter()  # client calls made from tpool's worker threads
        self._running = True
        self._active = False
        self._epoch = 0  # bumped at each window start: a gap spanning two windows is not counted
        self._wrapped: list[tuple[type, str, Any]] = []
        self._wrap()
        # a native thread ticking the same way: how late any thread of this process gets
        # scheduled on a loaded machine (the hub's gap is only the hub's fault beyond that)
        self.native_max_gap = 0.0
        self.hub_gaps: list[tuple[float, float]] = []
        self.native_gaps: list[tuple[float, float]] = []
        self._native_thread = self._native.Thread(target=self._native_tick, daemon=True)
        self._native_thread.start()
        self._thread = eventlet.spawn(self._tick)
        eventlet.sleep(0)

    def _tick(self) -> None:
        import eventlet

        last, epoch = time.monotonic(), -1
        while self._running:
            eventlet.sleep(TICK)
            now = time.monotonic()
            if self._active and epoch == self._epoch:
                self.max_gap = max(self.max_gap, now - last - TICK)
                self.ticks += 1
                if now - last > LONG:
                    self.hub_gaps.append((last, now))
            last, epoch = now, self._epoch

    def _native_tick(self) -> None:
        from eventlet import patcher

        sleep = patcher.original("time").sleep
        last, epoch = time.monotonic(), -1
        while self._running:
            sleep(TICK)
            now = time.monotonic()
            if now - last > LONG:
                self.native_gaps.append((last, now))
            if self._active and epoch == self._epoch:
                self.native_max_gap = max(self.native_max_gap, now - last - TICK)
            last, epoch = now, self._epoch

    def hub_only_gap(self) -> float:
        """The longest hub gap minus the time the native ticker was stalled within it: the
        whole process stalling (CPU starvation on a loaded machine, the GIL held in C code)
        delays both, a blocked hub only the green one."""
        worst = 0.0
        for h0, h1 in self.hub_gaps:
            stalled = sum(max(0.0, min(h1, n1) - max(h0, n0)) for n0, n1 in self.native_gaps)
            worst = max(worst, h1 - h0 - stalled)
        return worst

    def _wrap(self) -> None:
        for cls, names in ((rbd.Image, ("read", "write", "create_snap", "remove_snap", "list_snaps", "diff_iterate",
                                        "size", "resize", "flatten", "parent_info", "protect_snap", "close")),
                           (rbd.RBD, ("create", "clone", "remove", "list")),
                           (rados.Rados, ("connect", "open_ioctx", "shutdown", "get_fsid"))):
            for name in names:
                fn = vars(cls)[name]
                self._wrapped.append((cls, name, fn))
                setattr(cls, name, self._recording(fn, f"{cls.__name__}.{name}"))

    def _recording(self, fn: Any, key: str) -> Any:
        @functools.wraps(fn)
        def recorded(*a: Any, **kw: Any) -> Any:
            if self._active:
                (self.on_hub if self._native.current_thread() is self._main else self.in_tpool)[key] += 1
            return fn(*a, **kw)
        return recorded

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Measure while the OpenStack code runs."""
        import eventlet

        self._epoch += 1
        self._active = True
        eventlet.sleep(0)  # let the ticker start this window from now
        try:
            yield
        finally:
            self._active = False

    def stop(self) -> None:
        self._running = False
        self._thread.wait()
        self._native_thread.join()
        for cls, name, fn in self._wrapped:
            setattr(cls, name, fn)

    def check(self, must_be_in_tpool: tuple[str, ...], allowed_on_hub: tuple[str, ...] = ()) -> None:
        """Stop, then assert the hub kept ticking, no client call of the OpenStack code ran on
        the hub's thread but ALLOWED_ON_HUB, and each of MUST_BE_IN_TPOOL ran in tpool's threads."""
        self.stop()
        assert self.ticks > 0, "the ticking green thread never ran"
        assert self.hub_only_gap() < MAX_GAP, (f"the eventlet hub was blocked for {self.hub_only_gap():.3f} s "
                                               f"(longest gap {self.max_gap:.3f} s)")
        on_hub = {k: v for k, v in self.on_hub.items() if k not in allowed_on_hub}
        assert not on_hub, f"client calls on the hub's thread: {on_hub}"
        missing = [key for key in must_be_in_tpool if not self.in_tpool[key]]
        assert not missing, f"{missing} never ran in a tpool thread: {dict(self.in_tpool)}"
        print(f"hubwatch: {self.ticks} ticks, max gap {self.max_gap * 1000:.0f} ms (native thread: "
              f"{self.native_max_gap * 1000:.0f} ms; hub alone: {self.hub_only_gap() * 1000:.0f} ms), tpool calls "
              f"{sum(self.in_tpool.values())}, hub calls {dict(self.on_hub)}")

"""Runs one OpenStack flow in a fresh interpreter: `flow_runner.py MODULE FLOW [--eventlet]`.

With --eventlet the process is monkey-patched first by the service's own
`monkey_patch.patch()`, as cinder-volume, cinder-backup and nova-compute start; that is
also what makes their code wrap rados/rbd objects in `eventlet.tpool.Proxy`. Without it
they run in their native-threading mode. Every public method of the `rados`/`rbd` classes is counted, and so is every
`rbd`/`ceph` CLI the code runs, for the summary table; the last stdout line is a JSON
report: flow, mode, calls, cli, bytes (verified byte for byte by the flow).
"""

from __future__ import annotations

import sys

EVENTLET = "--eventlet" in sys.argv
_SERVICE = {"flows_cinder": "cinder", "flows_backup": "cinder", "flows_nova": "nova"}.get(sys.argv[1])
if _SERVICE:
    import importlib as _importlib

    _importlib.import_module(f"{_SERVICE}.monkey_patch").patch("eventlet" if EVENTLET else "threading")
elif EVENTLET:
    import eventlet

    eventlet.monkey_patch()

import faulthandler  # noqa: E402
import functools  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
from collections import Counter  # noqa: E402
from typing import Any  # noqa: E402

from flowkit import FlowContext  # noqa: E402

import rados  # noqa: E402
import rbd  # noqa: E402

calls: Counter[str] = Counter()
_lock = threading.Lock()


def _count(cls: type) -> None:
    for name, attr in list(vars(cls).items()):
        if name.startswith("_") and name not in ("__enter__", "__init__"):
            continue
        if not callable(attr) or isinstance(attr, (staticmethod, classmethod, type)):
            continue

        def wrap(fn: Any, key: str) -> Any:
            @functools.wraps(fn)
            def counted(*a: Any, **kw: Any) -> Any:
                with _lock:
                    calls[key] += 1
                return fn(*a, **kw)
            return counted

        setattr(cls, name, wrap(attr, f"{cls.__module__}.{cls.__name__}.{name}"))


for _cls in (rados.Rados, rados.Ioctx, rados.Object, rbd.RBD, rbd.Image):
    _count(_cls)

cli_runs: list[list[str]] = []
_popen_init = subprocess.Popen.__init__


def _counting_popen(self: Any, args: Any, *a: Any, **kw: Any) -> None:
    argv = [str(x) for x in args] if isinstance(args, (list, tuple)) else [str(args)]
    if argv and argv[0].rsplit("/", 1)[-1] in ("rbd", "ceph"):
        cli_runs.append(argv)
    _popen_init(self, args, *a, **kw)


subprocess.Popen.__init__ = _counting_popen  # type: ignore[method-assign]


def main() -> None:
    module_name, flow = sys.argv[1], sys.argv[2]
    # a hung flow prints every thread's stack and exits before the test's timeout
    faulthandler.dump_traceback_later(float(os.environ.get("SHOAL_FLOW_TIMEOUT", "240")), exit=True)
    module = importlib.import_module(module_name)
    ctx = FlowContext(eventlet=EVENTLET)
    try:
        verified = getattr(module, f"flow_{flow}")(ctx)
    finally:
        ctx.close()
    report = {"flow": f"{module_name.removeprefix('flows_')}.{flow}", "mode": "eventlet" if EVENTLET else "native",
              "calls": sum(calls.values()), "cli": len(cli_runs), "bytes": int(verified),
              "cli_argv": cli_runs, "per_call": dict(calls)}
    print(json.dumps(report), flush=True)
    sys.stderr.flush()
    # the services' periodic tasks (cinder's trash purge…) are non-daemon threads that
    # never end, as in the real services: leave without waiting for them
    os._exit(0)


if __name__ == "__main__":
    main()

"""Logging for daemons and clients: one event per line, key=value, to `log_file`.

Daemons own their process and configure the root logger. A client (a `Rados` handle
inside someone else's program: QEMU's helper, Cinder, Nova) must not touch the host
application's root logger: its `log_file` gets a handler on the `shoal` logger only,
removed when the handle shuts down. `log reopen` (admin socket, logrotate) reopens every
file handler made here.
"""

from __future__ import annotations

import logging
import os
import sys
import weakref

FORMAT = "%(asctime)s.%(msecs)03d %(levelname)s %(name)s %(message)s"
DATEFMT = "%Y-%m-%dT%H:%M:%S"

_file_handlers: weakref.WeakSet[logging.FileHandler] = weakref.WeakSet()


def _file_handler(log_file: str) -> logging.FileHandler:
    os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter(FORMAT, DATEFMT))
    _file_handlers.add(handler)
    return handler


def setup_logging(log_file: str | None, level: int = logging.INFO, to_stderr: bool = False) -> None:
    root = logging.getLogger()
    root.setLevel(level)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler: logging.Handler
    if log_file:
        handler = _file_handler(log_file)
    else:
        handler = logging.StreamHandler(sys.stderr if to_stderr else sys.stdout)
        handler.setFormatter(logging.Formatter(FORMAT, DATEFMT))
    root.addHandler(handler)


def attach_client_log(log_file: str, level: int = logging.INFO) -> logging.Handler:
    """Send the `shoal` loggers' records at `level` and above to `log_file` (a client's
    `log file`), leaving the root logger and its handlers alone."""
    handler = _file_handler(log_file)
    handler.setLevel(level)
    logger = logging.getLogger("shoal")
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)
    logger.addHandler(handler)
    return handler


def detach_client_log(handler: logging.Handler) -> None:
    logging.getLogger("shoal").removeHandler(handler)
    handler.close()


def reopen_logs() -> None:
    """Reopen every log file (after logrotate moved it away)."""
    for handler in list(_file_handlers):
        handler.acquire()
        try:
            if handler.stream is not None:
                handler.stream.close()
            handler.stream = handler._open()
        finally:
            handler.release()


# `debug_<subsys>` options and the loggers they govern (Ceph's subsystems, our packages).
DEBUG_LOGGERS = {
    "debug_rbd": "shoal.rbd", "debug_osd": "shoal.osd", "debug_mon": "shoal.mon", "debug_ms": "shoal.net",
    "debug_auth": "shoal.auth", "debug_client": "shoal.client", "debug_objecter": "shoal.client",
    "debug_rados": "shoal.client", "debug_monc": "shoal.client", "debug_asok": "shoal.asok",
}


def apply_debug_level(option: str, value: str) -> None:
    """`config set debug_rbd 10` at runtime: Ceph's levels 0-30 (the log level before a
    `/`) map onto DEBUG (>= 10), INFO (>= 1) and WARNING (0) for that subsystem's logger."""
    name = DEBUG_LOGGERS.get(option)
    if name is None:
        return
    try:
        level = int(str(value).split("/", 1)[0].strip())
    except ValueError:
        return
    logging.getLogger(name).setLevel(logging.DEBUG if level >= 10 else logging.INFO if level >= 1 else logging.WARNING)

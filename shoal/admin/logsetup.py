"""Logging for daemons and clients: one event per line, key=value, to `log_file`."""

from __future__ import annotations

import logging
import os
import sys

FORMAT = "%(asctime)s.%(msecs)03d %(levelname)s %(name)s %(message)s"


def setup_logging(log_file: str | None, level: int = logging.INFO, to_stderr: bool = False) -> None:
    root = logging.getLogger()
    root.setLevel(level)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler: logging.Handler
    if log_file:
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        handler = logging.FileHandler(log_file)
    else:
        handler = logging.StreamHandler(sys.stderr if to_stderr else sys.stdout)
    handler.setFormatter(logging.Formatter(FORMAT, "%Y-%m-%dT%H:%M:%S"))
    root.addHandler(handler)

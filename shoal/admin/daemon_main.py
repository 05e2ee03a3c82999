"""What `python -m shoal.mon` and `python -m shoal.osd` share: config, logging, signals."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from shoal.admin.asok import start_admin_socket
from shoal.admin.logsetup import setup_logging
from shoal.admin.perf import PerfRegistry
from shoal.config.cli_args import build_config


def parse_daemon_args(kind: str, argv: list[str]) -> tuple[Any, argparse.Namespace]:
    conf, rest = build_config(kind, argv, os.environ, short_id=True)
    parser = argparse.ArgumentParser(prog=f"shoal-{kind}")
    parser.add_argument("-f", "--foreground", action="store_true")
    args = parser.parse_args(rest)
    if conf.entity_id == "admin":
        parser.error("the daemon id is required (-i ID)")
    args.daemon_id = conf.entity_id
    return conf, args


def run_daemon(kind: str, conf: Any, start: Callable[[], Awaitable[Any]],
               stop: Callable[[], Awaitable[None]]) -> None:
    setup_logging(conf.get("log_file") or None)
    log = logging.getLogger(f"shoal.{kind}")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, done.set)
        await start()
        # Every daemon serves an admin socket ($run_dir/$cluster-$name.asok by default).
        path = str(conf.get("admin_socket") or "")
        asok = await start_admin_socket(path, conf, PerfRegistry()) if path else None
        await done.wait()
        log.info("event=stopping")
        if asok is not None:
            await asok.close()
        with contextlib.suppress(Exception):
            await stop()

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
    sys.exit(0)

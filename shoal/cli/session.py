"""What every CLI shares: global options, config, one connected client session."""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Iterator
from typing import Any

from shoal.client.loop_thread import LoopThread
from shoal.client.rados_client import RadosClient
from shoal.config.cli_args import build_config
from shoal.errors import ShoalError

# Set by a CLI's main() before opening the session: the argv left after its own parsing.
_state: dict[str, Any] = {}


class CliError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def split_format(argv: list[str]) -> tuple[list[str], str | None]:
    """Pull `--format X`, `--format=X`, `-f X` out of argv; also sets up the global options."""
    conf, rest = build_config("client", argv, os.environ)
    _state["conf"] = conf
    words: list[str] = []
    fmt: str | None = None
    it = iter(rest)
    for arg in it:
        if arg in ("--format", "-f"):
            fmt = next(it, None)
        elif arg.startswith("--format="):
            fmt = arg.split("=", 1)[1]
        else:
            words.append(arg)
    if fmt == "plain":
        fmt = None
    return words, fmt


def parsed_config() -> Any:
    """The config `split_format` built from the global options (-c, --cluster, --id…), if any."""
    return _state.get("conf")


class ClientSession:
    def __init__(self, client: RadosClient, loop: LoopThread) -> None:
        self.client = client
        self.loop = loop

    @classmethod
    @contextlib.contextmanager
    def open(cls) -> Iterator[ClientSession]:
        conf = parsed_config()
        if conf is None:
            conf, _ = build_config("client", [], os.environ)
        loop = LoopThread.shared()
        client = RadosClient(conf, conf.entity_name)
        try:
            loop.run(client.connect(float(conf.get("client_mount_timeout") or 300)))
        except ShoalError as exc:
            raise CliError(f"[errno {exc.errno}] RADOS {os.strerror(exc.errno).lower()} "
                           f"(error connecting to the cluster: {exc})", exc.errno) from exc
        try:
            yield cls(client, loop)
        finally:
            loop.run(client.shutdown())

    def run(self, coro: Any) -> Any:
        return self.loop.run(coro)

    def mon_command(self, cmd: dict[str, Any], inbuf: bytes = b"") -> tuple[int, bytes, str]:
        return self.loop.run(self.client.mon_command(cmd, inbuf))


def fail(message: str, err: int) -> CliError:
    return CliError(message, err if err > 0 else errno.EIO)


def stderr(message: str) -> None:
    print(message, file=sys.stderr)

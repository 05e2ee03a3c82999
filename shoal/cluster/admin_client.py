"""A synchronous admin session for tools in this package (cluster start-up checks)."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import Any

from shoal.client.loop_thread import LoopThread
from shoal.client.rados_client import RadosClient
from shoal.config.cli_args import build_config
from shoal.errors import from_errno


class AdminClient:
    def __init__(self, client: RadosClient, loop: LoopThread) -> None:
        self.client = client
        self.loop = loop

    def command(self, cmd: dict[str, Any]) -> tuple[int, bytes, str]:
        return self.loop.run(self.client.mon_command(cmd))

    def command_json(self, cmd: dict[str, Any]) -> Any:
        ret, out, outs = self.command({**cmd, "format": "json"})
        if ret < 0:
            raise from_errno(ret, outs)
        return json.loads(out)


@contextlib.contextmanager
def admin_client(conf_path: str, timeout: float = 30.0) -> Iterator[AdminClient]:
    conf, _ = build_config("client", ["-c", conf_path], {k: v for k, v in os.environ.items() if k != "CEPH_ARGS"})
    loop = LoopThread.shared()
    client = RadosClient(conf, conf.entity_name)
    loop.run(client.connect(timeout))
    try:
        yield AdminClient(client, loop)
    finally:
        loop.run(client.shutdown())

"""A running gateway: a cluster client, the export registry and the listeners, with an
orderly stop (listeners closed, connections drained, images flushed and closed).

Used by `shoal nbd serve` and, privately on a temporary socket, by `shoal image import`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

from shoal.client.rados_client import RadosClient
from shoal.nbd.exports import RbdRegistry
from shoal.nbd.server import DEFAULT_PORT, start_tcp, start_unix
from shoal.nbd.tls import PskServerContext


def default_run_dir() -> str:
    """Where sockets and mapping records live: $SHOAL_RUN_DIR, else $XDG_RUNTIME_DIR/shoal,
    else /run/shoal for root, else a per-user directory under the temp dir."""
    explicit = os.environ.get("SHOAL_RUN_DIR")
    if explicit:
        return explicit
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return os.path.join(xdg, "shoal")
    if os.geteuid() == 0:
        return "/run/shoal"
    return os.path.join(tempfile.gettempdir(), f"shoal-{os.geteuid()}")


def default_socket() -> str:
    return os.path.join(default_run_dir(), "nbd.sock")


def parse_bind(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `[V6]:PORT`, `HOST` or `:PORT`; the host defaults to 127.0.0.1."""
    host, port = text, ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        number = int(port) if port else DEFAULT_PORT
    except ValueError:
        raise ValueError(f"bad port in --bind {text!r}") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"port {number} out of range in --bind {text!r}")
    return host or "127.0.0.1", number


def export_uri(name: str, socket_path: str | None = None, host: str | None = None, port: int | None = None,
               tls: bool = False) -> str:
    """The NBD URI of export `name` (libnbd/qemu syntax; `nbds` when TLS is required)."""
    path = urllib.parse.quote(name, safe="/@")
    scheme = "nbds" if tls else "nbd"
    if socket_path is not None:
        return f"{scheme}+unix:///{path}?socket={socket_path}"
    netloc = f"[{host}]" if host and ":" in host else host
    return f"{scheme}://{netloc}:{port}/{path}"


class Gateway:
    def __init__(self, client: RadosClient, registry: RbdRegistry, tls: PskServerContext | None = None) -> None:
        self.client = client
        self.registry = registry
        self.tls = tls
        self.servers: list[asyncio.AbstractServer] = []
        self.socket_path: str | None = None
        self.host: str | None = None
        self.port: int | None = None

    async def listen_unix(self, path: str) -> None:
        self.servers.append(await start_unix(self.registry, path, self.tls))
        self.socket_path = path

    async def listen_tcp(self, host: str, port: int) -> None:
        server = await start_tcp(self.registry, host, port, self.tls)
        self.servers.append(server)
        self.host = host
        self.port = int(server.sockets[0].getsockname()[1])

    def uri(self, name: str = "") -> str:
        return export_uri(name, self.socket_path, self.host, self.port,
                          self.tls is not None and self.tls.config.required)

    async def stop(self) -> None:
        for server in self.servers:
            server.close()
        for server in self.servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 10)
        await self.registry.close()
        if self.socket_path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.socket_path)


@contextlib.asynccontextmanager
async def connected_client(conf: Any) -> AsyncIterator[RadosClient]:
    client = RadosClient(conf, conf.entity_name)
    await client.connect(float(conf.get("client_mount_timeout") or 300))
    try:
        yield client
    finally:
        await client.shutdown()

"""The admin socket server: what `ceph daemon <socket> <command>` talks to.

Every daemon, and every client whose `admin_socket` option is set, serves one Unix socket
on its own event loop (the client loop thread for clients), with the framing of
asok_protocol.py. The commands: `help`, `get_command_descriptions`, `version`,
`git_version`, `config show|get|set|unset|diff`, `perf dump|schema|reset`, `log reopen`,
and whatever the owner registers (`register`).

The socket file is created on start and removed on close, but only if it is still ours
(same inode): a second process configured with the same path does not take over a live
socket (as Ceph, it logs and goes on without one), and does not delete it on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import inspect
import logging
import os
import socket
from collections.abc import Callable
from typing import Any

from shoal.admin import logsetup
from shoal.admin.asok_protocol import (
    MAX_REQUEST,
    SOCK_VERSION,
    Param,
    RequestError,
    Signature,
    describe,
    frame_reply,
    help_table,
    parse_request,
    render,
)
from shoal.admin.perf import PerfRegistry

log = logging.getLogger("shoal.asok")

CEPH_VERSION = "16.2.15"  # the Ceph release whose interfaces Shoal follows (as the monitor's `version`)
READ_TIMEOUT = 10.0  # a client that connects and sends nothing is dropped
MAX_PATH = 107  # sun_path is 108 bytes with the NUL

Handler = Callable[[dict[str, Any]], Any]


class CommandError(Exception):
    """A command failed: the reply is the message (Ceph replies with its error text)."""

    def __init__(self, message: str, err: int = errno.EINVAL) -> None:
        super().__init__(message)
        self.errno = err


class AdminSocket:
    def __init__(self, path: str, conf: Any, perf: PerfRegistry) -> None:
        self.path = path
        self.conf = conf
        self.perf = perf
        self._commands: dict[str, tuple[Signature, Handler]] = {}
        self._server: asyncio.AbstractServer | None = None
        self._inode: int | None = None
        self._register_standard()

    # -- commands --------------------------------------------------------------------------------
    def register(self, sig: Signature, handler: Handler) -> None:
        """Add a command; `handler(cmd)` returns a JSON-able value or bytes (sync or async)."""
        self._commands[sig.prefix] = (sig, handler)

    def unregister(self, prefix: str) -> None:
        self._commands.pop(prefix, None)

    def signatures(self) -> list[Signature]:
        return [sig for sig, _ in self._commands.values()]

    async def execute(self, cmd: dict[str, Any]) -> bytes:
        """Run one command dict and return the reply payload."""
        prefix = str(cmd.get("prefix", ""))
        if prefix == "0":
            return SOCK_VERSION.encode()
        entry = self._commands.get(prefix)
        if entry is None:
            return f"unknown command {prefix!r}; see 'help'\n".encode()
        try:
            value = entry[1](cmd)
            if inspect.isawaitable(value):
                value = await value
        except CommandError as exc:
            return f"ERROR: {exc}\n".encode()
        except Exception as exc:  # noqa: BLE001 - a failing hook must not take the socket down
            log.warning("event=asok_command_failed prefix=%r error=%r", prefix, exc)
            return f"ERROR: {prefix}: {exc}\n".encode()
        if isinstance(value, bytes):
            return value
        return render(value, cmd.get("format"))

    def _register_standard(self) -> None:
        reg = self.register
        reg(Signature("get_command_descriptions", help="list available commands"),
            lambda cmd: describe(self.signatures()))
        reg(Signature("help", help="list available commands"), lambda cmd: help_table(self.signatures()))
        reg(Signature("version", help="get ceph version"),
            lambda cmd: {"version": CEPH_VERSION, "release": "pacific", "release_type": "stable"})
        reg(Signature("git_version", help="get git sha1"), lambda cmd: {"git_version": "shoal"})
        reg(Signature("config show", help="dump current config settings"), lambda cmd: self.conf.show())
        reg(Signature("config diff", help="dump diff of current config and default config"),
            lambda cmd: {"diff": self.conf.diff()})
        reg(Signature("config get", (Param("var"),), "config get <field>: get the config value"), self._config_get)
        reg(Signature("config set", (Param("var"), Param("val", many=True)),
                      "config set <field> <val> [<val> ...]: set a config variable"), self._config_set)
        reg(Signature("config unset", (Param("var"),), "config unset <field>: unset a config variable"),
            self._config_unset)
        reg(Signature("perf dump", (Param("logger", req=False), Param("counter", req=False)),
                      "dump perfcounters value"),
            lambda cmd: self.perf.dump(cmd.get("logger"), cmd.get("counter")))
        reg(Signature("perf schema", help="dump perfcounters schema"), lambda cmd: self.perf.schema())
        reg(Signature("perf reset", (Param("var"),), "perf reset <name>: perf reset all or one perfcounter name"),
            self._perf_reset)
        reg(Signature("log reopen", help="reopen log file"), self._log_reopen)

    def _config_get(self, cmd: dict[str, Any]) -> Any:
        var = str(cmd.get("var", ""))
        try:
            return {var: self.conf.get_str(var)}
        except KeyError as exc:
            raise CommandError(f"unrecognized config option '{var}'", errno.ENOENT) from exc

    def _config_set(self, cmd: dict[str, Any]) -> Any:
        var = str(cmd.get("var", ""))
        val = cmd.get("val", "")
        text = " ".join(str(v) for v in val) if isinstance(val, list) else str(val)
        try:
            self.conf.set(var, text)
        except (KeyError, ValueError) as exc:
            raise CommandError(f"error setting '{var}' to '{text}': {exc}") from exc
        logsetup.apply_debug_level(var.replace(" ", "_").replace("-", "_"), text)  # levels change at runtime
        return {"success": ""}

    def _config_unset(self, cmd: dict[str, Any]) -> Any:
        var = str(cmd.get("var", ""))
        try:
            self.conf.unset(var)
        except KeyError as exc:
            raise CommandError(f"unrecognized config option '{var}'", errno.ENOENT) from exc
        return {"success": ""}

    def _perf_reset(self, cmd: dict[str, Any]) -> Any:
        var = str(cmd.get("var", "all"))
        if not self.perf.reset(var):
            raise CommandError(f"perf reset: no such logger {var!r}", errno.ENOENT)
        return {"success": f"perf reset {var}"}

    def _log_reopen(self, cmd: dict[str, Any]) -> Any:
        logsetup.reopen_logs()
        return {}

    # -- the socket ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Bind and listen. OSError when the path is unusable or another live process owns it."""
        if len(self.path.encode()) > MAX_PATH:
            raise OSError(errno.ENAMETOOLONG, f"admin socket path {self.path!r} is longer than {MAX_PATH} bytes")
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        if os.path.exists(self.path):
            if _alive(self.path):
                raise OSError(errno.EEXIST, f"admin socket {self.path} is in use by another process")
            os.unlink(self.path)  # left behind by a process that died
        self._server = await asyncio.start_unix_server(self._serve, path=self.path)
        self._inode = os.stat(self.path).st_ino
        log.info("event=asok_listening path=%s", self.path)

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2.0)
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self._inode:
                os.unlink(self.path)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                raw = await asyncio.wait_for(_read_request(reader), READ_TIMEOUT)
                payload = await self.execute(parse_request(raw))
            except RequestError as exc:
                payload = f"ERROR: {exc}\n".encode()
            writer.write(frame_reply(payload))
            await writer.drain()
        except (TimeoutError, ConnectionError, OSError):
            pass  # the client went away: nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    """Bytes up to the NUL (or EOF), at most MAX_REQUEST."""
    buf = bytearray()
    while b"\0" not in buf:
        chunk = await reader.read(4096)
        if not chunk:
            break
        buf += chunk
        if len(buf) > MAX_REQUEST:
            raise RequestError(f"request longer than {MAX_REQUEST} bytes")
    return bytes(buf)


def _alive(path: str) -> bool:
    """Whether something answers on the Unix socket at `path` (a stale file does not)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(1.0)
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


async def start_admin_socket(path: str, conf: Any, perf: PerfRegistry,
                             setup: Callable[[AdminSocket], None] | None = None) -> AdminSocket | None:
    """Serve an admin socket at `path`; on failure log why and return None (as Ceph, a
    process runs on without its admin socket rather than refusing to start)."""
    asok = AdminSocket(path, conf, perf)
    if setup is not None:
        setup(asok)
    try:
        await asok.start()
    except OSError as exc:
        log.warning("event=asok_failed path=%s error=%s", path, exc.strerror or exc)
        return None
    return asok


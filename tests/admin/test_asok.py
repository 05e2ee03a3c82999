"""The admin socket server (shoal/admin/asok.py) on its own: framing, commands, socket file life.

The framing is checked with raw socket bytes (ceph-facts §8: request JSON + NUL; reply
u32 big-endian length + payload), not with our own client, so a symmetric bug in both
ends cannot pass.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shoal.admin import logsetup
from shoal.admin.asok import AdminSocket
from shoal.admin.asok_client import AsokError, daemon_command, request
from shoal.admin.asok_protocol import RequestError, match_words
from shoal.admin.perf import PerfRegistry
from shoal.client.loop_thread import LoopThread
from shoal.config.config import Config


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path (sun_path holds 107 bytes; pytest's tmp_path may be long)."""
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="asok-", dir="/tmp"))
    yield d
    for p in d.iterdir():
        p.unlink()
    d.rmdir()


@pytest.fixture
def served(short_dir: Path) -> Iterator[tuple[AdminSocket, LoopThread]]:
    loop = LoopThread.shared()
    conf = Config("client", "test")
    perf = PerfRegistry()
    group = perf.create("objecter", ("op",), ("op_latency",))
    group.inc("op", 3)
    group.tinc("op_latency", 0.5)
    asok = AdminSocket(str(short_dir / "c.asok"), conf, perf)
    loop.run(asok.start())
    yield asok, loop
    loop.run(asok.close())


def raw(path: str, payload: bytes) -> bytes:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    try:
        s.sendall(payload)
        head = b""
        while len(head) < 4:
            head += s.recv(4 - len(head))
        (n,) = struct.unpack(">I", head)
        body = b""
        while len(body) < n:
            body += s.recv(n - len(body))
        assert s.recv(1) == b"", "the server closes after one reply"
        return body
    finally:
        s.close()


def test_framing_and_version(served: tuple[AdminSocket, LoopThread]) -> None:
    asok, _ = served
    body = raw(asok.path, b'{"prefix": "version"}\0')
    assert json.loads(body) == {"version": "16.2.15", "release": "pacific", "release_type": "stable"}
    assert body.endswith(b"\n") and b"\n    " in body  # json-pretty by default, as Ceph
    assert raw(asok.path, b'{"prefix": "version", "format": "json"}\0') == \
        b'{"version":"16.2.15","release":"pacific","release_type":"stable"}'
    assert raw(asok.path, b'{"prefix": "0"}\0') == b"2"  # the legacy version ping
    assert json.loads(raw(asok.path, b"git_version\0")) == {"git_version": "shoal"}  # bare words


def test_help_and_descriptions(served: tuple[AdminSocket, LoopThread]) -> None:
    asok, _ = served
    help_ = json.loads(request(asok.path, {"prefix": "help"}))
    for key in ("help", "version", "config show", "config get <var>", "config set <var> <val>...",
                "perf dump [<logger>] [<counter>]", "log reopen"):
        assert key in help_, key
    desc = json.loads(request(asok.path, {"prefix": "get_command_descriptions"}))
    assert all(k.startswith("cmd") and "sig" in v and "help" in v for k, v in desc.items())
    sigs = [v["sig"] for v in desc.values()]
    assert ["config", "get", {"name": "var", "type": "CephString"}] in sigs


def test_config_get_set_show(served: tuple[AdminSocket, LoopThread]) -> None:
    asok, _ = served
    assert json.loads(daemon_command(asok.path, ["config", "get", "rbd_cache"])) == {"rbd_cache": "true"}
    assert json.loads(daemon_command(asok.path, ["config", "set", "rbd_cache_max_dirty", "1M"])) == {"success": ""}
    assert asok.conf.get("rbd_cache_max_dirty") == 1 << 20
    show = json.loads(daemon_command(asok.path, ["config", "show"]))
    assert show["rbd_cache_max_dirty"] == "1048576" and show["rbd_concurrent_management_ops"] == "10"
    diff = json.loads(daemon_command(asok.path, ["config", "diff"]))["diff"]
    assert diff["rbd_cache_max_dirty"]["final"] == "1048576"
    err = daemon_command(asok.path, ["config", "get", "no_such_option"])
    assert b"unrecognized config option" in err


def test_perf_dump_and_reset(served: tuple[AdminSocket, LoopThread]) -> None:
    asok, _ = served
    dump = json.loads(daemon_command(asok.path, ["perf", "dump"]))
    assert dump["objecter"]["op"] == 3
    assert dump["objecter"]["op_latency"] == {"avgcount": 1, "sum": 0.5, "avgtime": 0.5}
    assert json.loads(daemon_command(asok.path, ["perf", "dump", "objecter", "op"])) == {"objecter": {"op": 3}}
    daemon_command(asok.path, ["perf", "reset", "all"])
    assert json.loads(daemon_command(asok.path, ["perf", "dump"]))["objecter"]["op"] == 0


def test_bad_requests_get_an_error_and_change_nothing(served: tuple[AdminSocket, LoopThread]) -> None:
    asok, _ = served
    assert raw(asok.path, b"{not json\0").startswith(b"ERROR: malformed JSON")
    assert b"unknown command" in raw(asok.path, b'{"prefix": "rm -rf"}\0')
    with pytest.raises(AsokError):
        daemon_command(asok.path, ["config", "get"])  # missing argument: refused before sending
    with pytest.raises(RequestError):
        match_words({"cmd000": {"sig": ["help"], "help": ""}}, ["help", "me"])
    # The server is still there.
    assert json.loads(request(asok.path, {"prefix": "version"}))["version"] == "16.2.15"


def test_log_reopen(served: tuple[AdminSocket, LoopThread], short_dir: Path) -> None:
    asok, _ = served
    path = short_dir / "x.log"
    handler = logsetup.attach_client_log(str(path))
    try:
        logging.getLogger("shoal.test").warning("before")
        os.rename(path, short_dir / "x.log.1")  # logrotate
        assert json.loads(daemon_command(asok.path, ["log", "reopen"])) == {}
        logging.getLogger("shoal.test").warning("after")
        handler.flush()
        assert "after" in path.read_text() and "before" not in path.read_text()
    finally:
        logsetup.detach_client_log(handler)


def test_socket_file_life(short_dir: Path) -> None:
    loop = LoopThread.shared()
    path = str(short_dir / "life.asok")
    # A stale file (a process that died) is replaced.
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()
    first = AdminSocket(path, Config(), PerfRegistry())
    loop.run(first.start())
    # A live socket is not taken over, and the loser does not delete it on close.
    second = AdminSocket(path, Config(), PerfRegistry())
    with pytest.raises(OSError):
        loop.run(second.start())
    loop.run(second.close())
    assert os.path.exists(path)
    loop.run(first.close())
    assert not os.path.exists(path)
    too_long = AdminSocket("/tmp/" + "x" * 120 + ".asok", Config(), PerfRegistry())
    with pytest.raises(OSError):
        loop.run(too_long.start())


def test_registered_command(served: tuple[AdminSocket, LoopThread]) -> None:
    from shoal.admin.asok_protocol import Param, Signature

    asok, _ = served

    async def hook(cmd: dict[str, Any]) -> Any:
        return {"got": cmd.get("image")}

    asok.register(Signature("rbd cache flush", (Param("image"),), "flush an image's cache"), hook)
    assert json.loads(daemon_command(asok.path, ["rbd", "cache", "flush", "img1"])) == {"got": "img1"}


def test_config_set_debug_level_changes_the_logger(served: tuple[AdminSocket, LoopThread]) -> None:
    asok, _ = served
    logger = logging.getLogger("shoal.rbd")
    before = logger.level
    try:
        daemon_command(asok.path, ["config", "set", "debug_rbd", "10"])
        assert logger.level == logging.DEBUG and asok.conf.get_str("debug_rbd") == "10/10"
        daemon_command(asok.path, ["config", "set", "debug_rbd", "0/5"])
        assert logger.level == logging.WARNING
    finally:
        logger.setLevel(before)

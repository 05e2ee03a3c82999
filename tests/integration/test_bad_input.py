"""Bad input on raw sockets to the monitor and to an OSD.

Every case opens a TCP connection of its own and sends something a correct peer never
would: junk, frames with a bad checksum, truncated or oversized frames, meta that is
not a map or lacks fields, requests before HELLO, unknown message types, OSD_OPs with
malformed op vectors, daemon-only messages from a client. Most of it runs against a
cluster with `auth none`, so that raw frames get past the handshake; a cephx cluster
gets the handshake's own bad input (refused methods, bogus proofs, requests before
authentication, OSD sessions without a ticket). Afterwards:

* the daemon closed that connection or answered with an error;
* every daemon process is still alive and a normal client still works;
* the daemon's log mentions the bad input at most once for that connection (exactly
  once where it drops the connection for a protocol violation), with no traceback;
* nothing changed: the canary object reads back identical (and, at the end, is the
  same on every replica), the OSD map epoch is unchanged.

Random inputs come from hypothesis with bounded example counts and a seed printed in
the output (`SHOAL_TEST_SEED=<n>` replays a run).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import random
import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import crc32c
import msgpack
import pytest
from hypothesis import HealthCheck, assume, given, seed, settings
from hypothesis import strategies as st

from shoal.cluster.admin_client import AdminClient
from shoal.net.connection import split_addr
from shoal.osd.store.base import ObjectId
from shoal.osd.store.sqlite_store import SqliteStore
from shoal.testing.cluster import TestCluster
from shoal.wire.frame import (
    HEADER,
    MAGIC,
    MAX_DATA,
    MAX_META,
    TRAILER,
    VERSION,
    Frame,
    FrameDecoder,
    frame_bytes,
)
from shoal.wire.messages import Msg
from shoal.wire.osd_op import OpBuilder

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("SHOAL_TEST_SEED", random.randrange(1 << 30)))
POOL = "bad_pool"
CANARY = "bad_canary"
CANARY_DATA = random.Random(SEED).randbytes(4096)
_REQIDS = itertools.count(int.from_bytes(os.urandom(4), "big") << 16)
CANARY_XATTR = b"canary-xattr"
HELLO_META = {"protocol": 1, "entity": "client.admin", "auth": ["none"]}
HELLO = frame_bytes(Msg.HELLO, HELLO_META)
KNOWN_TYPES = frozenset(int(m) for m in Msg)
INT64 = st.integers(-(2**63), 2**63 - 1)

FAST = settings(max_examples=20, deadline=None, database=None, derandomize=False,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def examples(n: int) -> settings:
    return settings(FAST, max_examples=n)


# -- the cluster and what a case looks at ------------------------------------------------------------

@dataclass
class Target:
    name: str  # "mon.a" / "osd.N"
    addr: tuple[str, int]
    log: Path


@dataclass
class Env:
    cluster: TestCluster
    admin: AdminClient
    pool_id: int

    def target(self, which: str) -> Target:
        if which == "mon":
            conf = Path(self.cluster.conf_path).read_text()
            m = re.search(r"^mon host = (\S+)", conf, re.M)
            assert m
            return Target("mon.a", split_addr(m.group(1)), Path(self.cluster.dir, "log", "mon.a.log"))
        osd = self.canary_up()[0]  # the primary: OSD_OPs for the canary are executed there
        osdmap = self.admin.client.osdmap
        assert osdmap is not None
        return Target(f"osd.{osd}", split_addr(osdmap.osds[osd].addr), Path(self.cluster.dir, "log", f"osd.{osd}.log"))

    def canary_up(self) -> list[int]:
        osdmap = self.admin.client.osdmap
        assert osdmap is not None
        pool = osdmap.pools[self.pool_id]
        return osdmap.pg_to_up(pool, osdmap.object_to_ps(pool, CANARY))

    def epoch(self) -> int:
        return int(self.admin.command_json({"prefix": "osd stat"})["epoch"])

    def op(self, oid: str, build: Callable[[OpBuilder], Any], timeout: float = 20) -> Any:
        b = OpBuilder()
        build(b)
        return self.admin.loop.run(self.admin.client.operate(self.pool_id, oid, b), timeout=timeout)

    def read_canary(self) -> tuple[int, bytes, bytes]:
        reply = self.op(CANARY, lambda b: (b.add("read", off=0, len=0), b.add("getxattr", name="x")))
        return reply.result, reply.out_data(0), reply.out_data(1)

    def write_canary(self) -> None:
        reply = self.op(CANARY, lambda b: (b.add("writefull", CANARY_DATA), b.add("setxattr", CANARY_XATTR, name="x")))
        assert reply.result == 0, reply.result

    def osd_op_meta(self, **overrides: Any) -> dict[str, Any]:
        osdmap = self.admin.client.osdmap
        assert osdmap is not None
        meta = {"tid": 2, "pool": self.pool_id, "oid": CANARY, "ns": "", "ops": [],
                # Not from `random`: hypothesis resets it for every example, and a repeated reqid
                # would be answered as a duplicate of an earlier, applied request.
                "reqid": f"client.bad.{next(_REQIDS)}:1", "epoch": osdmap.epoch}
        meta.update(overrides)
        return meta


@contextlib.contextmanager
def running_env(directory: str, auth: str) -> Iterator[Env]:
    """A cluster with pool `bad_pool` and the canary written; stopped afterwards."""
    cluster = TestCluster(directory, osds=3, auth=auth).start(extra_conf="mon allow pool delete = true")
    try:
        with cluster.admin() as admin:
            ret, _, outs = admin.command({"prefix": "osd pool create", "pool": POOL, "pg_num": 8})
            assert ret == 0, outs
            pool = admin.client.pool_by_name(POOL)
            assert pool is not None
            e = Env(cluster, admin, pool.id)
            cluster.wait_healthy(3, 30)
            e.write_canary()
            yield e
    finally:
        cluster.down()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """A cluster of this module's own, with `auth none` so raw frames get past the handshake;
    and a bug found here must not take down the shared cluster."""
    print(f"seed={SEED}")
    with running_env(str(tmp_path_factory.mktemp("bad")), "none") as e:
        yield e


@pytest.fixture(scope="module")
def cephx_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """The same with cephx: for bad input during the authentication handshake."""
    print(f"seed={SEED}")
    with running_env(str(tmp_path_factory.mktemp("badcephx")), "cephx") as e:
        yield e


# -- raw connections ---------------------------------------------------------------------------------

@dataclass
class Probe:
    port: int  # our side of the connection: the daemon logs it as peer=127.0.0.1:<port>
    closed: bool
    frames: list[Frame]

    def types(self) -> list[int]:
        return [f.type for f in self.frames]


class Raw:
    """One raw TCP connection to a daemon: send bytes, read frames, notice the close."""

    def __init__(self, addr: tuple[str, int], timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(addr, timeout=timeout)
        self.port = int(self.sock.getsockname()[1])
        self.decoder = FrameDecoder()
        self.frames: list[Frame] = []
        self.closed = False

    def send(self, payload: bytes, shut_wr: bool = False) -> None:
        try:
            self.sock.sendall(payload)
            if shut_wr:
                self.sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            self.closed = True

    def read(self, replies: int = 0, timeout: float = 5.0) -> None:
        """Until `replies` frames in all arrived (0: until the daemon closes), or `timeout`."""
        deadline = time.monotonic() + timeout
        while not self.closed and not (replies and len(self.frames) >= replies):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.closed = True
                return
            self.frames += self.decoder.feed(chunk)

    def close(self) -> Probe:
        self.sock.close()
        return Probe(self.port, self.closed, self.frames)


def probe(addr: tuple[str, int], payload: bytes, replies: int = 0, shut_wr: bool = False,
          timeout: float = 5.0) -> Probe:
    """Send `payload` on a new connection; read until the daemon closes, or `replies` frames came."""
    raw = Raw(addr, timeout)
    raw.send(payload, shut_wr)
    raw.read(replies, timeout)
    return raw.close()


def raw_frame(type_: int, meta_raw: bytes, data: bytes = b"", *, magic: bytes = MAGIC, version: int = VERSION,
              meta_len: int | None = None, data_len: int | None = None) -> bytes:
    """A frame with a correct checksum around whatever meta bytes and lengths we choose."""
    header = HEADER.pack(magic, version, 0, type_, 0, len(meta_raw) if meta_len is None else meta_len,
                         len(data) if data_len is None else data_len)
    body = header + meta_raw + data
    return body + TRAILER.pack(crc32c.crc32c(body))


def log_size(target: Target) -> int:
    return target.log.stat().st_size


def new_log(target: Target, offset: int) -> str:
    with open(target.log, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def mentions(text: str, port: int) -> list[str]:
    """Warnings and errors about the connection from our `port` (INFO lines such as
    `event=session` are the normal life of a connection, not a complaint about it)."""
    return [line for line in text.splitlines()
            if re.search(rf" (WARNING|ERROR) .*peer=[\d.]+:{port}\b", line)]


def check_after(env: Env, target: Target, offset: int, p: Probe, *, closed: bool | None,
                exact_mentions: bool = False, epoch: int | None = None, what: str = "") -> None:
    """The common aftermath of one bad-input case (see the module docstring)."""
    where = f"{target.name} after {what} (seed={SEED})"
    if closed is True:
        assert p.closed, f"{where}: connection left open; got {p.types()}"
    # Whatever arrived before the close is a HELLO_REPLY or an error answer.
    for f in p.frames:
        assert f.type in (Msg.HELLO_REPLY, Msg.ERROR, Msg.MON_COMMAND_REPLY, Msg.OSD_OP_REPLY), f"{where}: {f}"
        if f.type == Msg.MON_COMMAND_REPLY:
            assert f.meta["ret"] <= 0, f"{where}: {f.meta}"
    deadline = time.monotonic() + (2.0 if exact_mentions else 0.05)
    while True:
        text = new_log(target, offset)
        said = mentions(text, p.port)
        if said or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    time.sleep(0.02)
    text = new_log(target, offset)
    said = mentions(text, p.port)
    assert "Traceback" not in text, f"{where}: traceback in {target.log}:\n{text}"
    if exact_mentions:
        assert len(said) == 1, f"{where}: log lines about this connection: {said}"
    else:
        assert len(said) <= 1, f"{where}: log lines about this connection: {said}"
    for name in ["mon.a"] + [f"osd.{i}" for i in range(env.cluster.osds)]:
        assert env.cluster.running_pid(name) is not None, f"{where}: {name} died"
    ret, _, outs = env.admin.command({"prefix": "status"})
    assert ret == 0, f"{where}: status -> {ret} {outs}"
    assert env.read_canary() == (0, CANARY_DATA, CANARY_XATTR), f"{where}: the canary changed"
    if epoch is not None:
        assert env.epoch() == epoch, f"{where}: the OSD map changed"


def both(test: Callable[..., None]) -> Callable[..., None]:
    return pytest.mark.parametrize("which", ["mon", "osd"])(test)


# -- framing -------------------------------------------------------------------------------------------

@both
@examples(20)
@seed(SEED)
@given(junk=st.binary(min_size=HEADER.size, max_size=600).filter(lambda b: b[:2] != MAGIC))
def test_junk_bytes(env: Env, which: str, junk: bytes) -> None:
    t = env.target(which)
    offset, epoch = log_size(t), env.epoch()
    p = probe(t.addr, junk)
    check_after(env, t, offset, p, closed=True, exact_mentions=True, epoch=epoch, what=f"junk {junk[:32]!r}")


@both
@examples(20)
@seed(SEED)
@given(data=st.data())
def test_bad_checksum(env: Env, which: str, data: st.DataObject) -> None:
    t = env.target(which)
    meta = data.draw(st.dictionaries(st.text(max_size=8), st.integers(-(2**63), 2**63 - 1) | st.text(max_size=16),
                                     max_size=5))
    frame = bytearray(frame_bytes(data.draw(st.sampled_from(sorted(KNOWN_TYPES))), meta,
                                  data.draw(st.binary(max_size=64))))
    pos = data.draw(st.integers(HEADER.size, len(frame) - 1))  # the lengths stay right: the frame is whole
    frame[pos] ^= data.draw(st.integers(1, 255))
    offset, epoch = log_size(t), env.epoch()
    p = probe(t.addr, HELLO + bytes(frame), replies=0)
    check_after(env, t, offset, p, closed=True, exact_mentions=True, epoch=epoch, what=f"bad crc at byte {pos}")
    assert p.types() in ([], [Msg.HELLO_REPLY])


@both
@examples(20)
@seed(SEED)
@given(data=st.data())
def test_truncated_frame_then_eof(env: Env, which: str, data: st.DataObject) -> None:
    """A request cut anywhere, then EOF: not executed, the connection is dropped quietly."""
    t = env.target(which)
    if which == "mon":
        request = frame_bytes(Msg.MON_COMMAND, {"tid": 2, "cmd": {"prefix": "osd pool create", "pool": "bad_trunc",
                                                                 "pg_num": 1}})
    else:
        request = frame_bytes(Msg.OSD_OP, env.osd_op_meta(ops=[{"op": "writefull", "d": [0, 4]}]), b"EVIL")
    stream = HELLO + request
    cut = data.draw(st.integers(1, len(stream) - 1))
    offset, epoch = log_size(t), env.epoch()
    p = probe(t.addr, stream[:cut], shut_wr=True)
    check_after(env, t, offset, p, closed=True, epoch=epoch, what=f"a stream cut at {cut}/{len(stream)}")
    assert Msg.MON_COMMAND_REPLY not in p.types() and Msg.OSD_OP_REPLY not in p.types()


@both
@examples(10)
@seed(SEED)
@given(which_len=st.sampled_from(["meta", "data", "both"]), meta_len=st.integers(MAX_META + 1, 2**32 - 1),
       data_len=st.integers(MAX_DATA + 1, 2**32 - 1))
def test_oversized_length(env: Env, which: str, which_len: str, meta_len: int, data_len: int) -> None:
    """Refused from the header alone: the daemon does not wait for (or allocate) the body."""
    if which_len == "meta":
        data_len = 0
    elif which_len == "data":
        meta_len = 16
    t = env.target(which)
    header = HEADER.pack(MAGIC, VERSION, 0, Msg.HELLO, 0, meta_len, data_len)
    offset, epoch = log_size(t), env.epoch()
    started = time.monotonic()
    p = probe(t.addr, header, timeout=5)
    check_after(env, t, offset, p, closed=True, exact_mentions=True, epoch=epoch,
                what=f"meta_len={meta_len} data_len={data_len}")
    assert time.monotonic() - started < 2


@both
@examples(10)
@seed(SEED)
@given(magic=st.binary(min_size=2, max_size=2), version=st.integers(0, 255))
def test_bad_magic_or_version(env: Env, which: str, magic: bytes, version: int) -> None:
    if magic == MAGIC and version == VERSION:
        version = VERSION + 1
    t = env.target(which)
    offset, epoch = log_size(t), env.epoch()
    p = probe(t.addr, raw_frame(Msg.HELLO, msgpack.packb(HELLO_META), magic=magic, version=version))
    check_after(env, t, offset, p, closed=True, exact_mentions=True, epoch=epoch, what=f"{magic!r} v{version}")


NOT_A_MAP = st.one_of(
    st.lists(INT64, max_size=4).map(msgpack.packb),
    st.integers(-(2**63), 2**64 - 1).map(msgpack.packb),
    st.text(max_size=20).map(msgpack.packb),
    st.binary(max_size=20).map(lambda b: msgpack.packb(b, use_bin_type=True)),
    st.sampled_from([msgpack.packb(None), msgpack.packb(True), msgpack.packb(1.5)]),
    st.sampled_from([b"\xc1", b"\x82\xa1a", b"\xdf\xff\xff\xff\xff", b"\x92\x01"]),
)


@both
@examples(20)
@seed(SEED)
@given(meta_raw=NOT_A_MAP, after_hello=st.booleans(), type_=st.sampled_from(sorted(KNOWN_TYPES)))
def test_meta_not_a_map(env: Env, which: str, meta_raw: bytes, after_hello: bool, type_: int) -> None:
    t = env.target(which)
    offset, epoch = log_size(t), env.epoch()
    p = probe(t.addr, (HELLO if after_hello else b"") + raw_frame(type_, meta_raw))
    check_after(env, t, offset, p, closed=True, exact_mentions=True, epoch=epoch, what=f"meta {meta_raw!r}")


# -- handshake -------------------------------------------------------------------------------------------

@both
@examples(15)
@seed(SEED)
@given(type_=st.sampled_from(sorted(KNOWN_TYPES - {Msg.HELLO})),
       meta=st.fixed_dictionaries({"tid": st.integers(1, 100)}, optional={"cmd": st.just({"prefix": "status"})}))
def test_request_before_hello_is_refused(env: Env, which: str, type_: int, meta: dict[str, Any]) -> None:
    t = env.target(which)
    offset, epoch = log_size(t), env.epoch()
    p = probe(t.addr, frame_bytes(type_, meta))
    check_after(env, t, offset, p, closed=True, epoch=epoch, what=f"type {type_} before HELLO")
    assert Msg.MON_COMMAND_REPLY not in p.types() and Msg.OSD_OP_REPLY not in p.types()


MALFORMED_HELLOS: list[dict[str, Any]] = [
    {},
    {"protocol": 1},
    {"protocol": 1, "auth": ["none"]},
    {"protocol": "1", "entity": "client.admin", "auth": ["none"]},
    {"protocol": 2, "entity": "client.admin", "auth": ["none"]},
    {"protocol": None, "entity": "client.admin", "auth": ["none"]},
    {"protocol": 1, "entity": "client.admin", "auth": 5},
    {"protocol": 1, "entity": "client.admin", "auth": ["cephx"]},
]


@both
@pytest.mark.parametrize("meta", MALFORMED_HELLOS, ids=[repr(m) for m in MALFORMED_HELLOS])
def test_malformed_hello(env: Env, which: str, meta: dict[str, Any]) -> None:
    """Refused (close), or, where a daemon is lenient, accepted and then usable."""
    t = env.target(which)
    offset, epoch = log_size(t), env.epoch()
    raw = Raw(t.addr)
    raw.send(frame_bytes(Msg.HELLO, meta))
    raw.read(1, timeout=3)
    accepted = [f.type for f in raw.frames] == [Msg.HELLO_REPLY]
    if not accepted:
        raw.read(0, timeout=3)  # a refusal (maybe an ERROR first), then the close
    p = raw.close()
    check_after(env, t, offset, p, closed=None if accepted else True, epoch=epoch, what=f"HELLO {meta}")
    assert meta.get("protocol") == 1 or not accepted, f"{t.name} accepted protocol {meta.get('protocol')!r}"


# -- well-framed messages the daemons do not expect ---------------------------------------------------------

@both
@examples(15)
@seed(SEED)
@given(type_=st.integers(0, 65535).filter(lambda t: t not in KNOWN_TYPES), tid=st.integers(1, 2**31))
def test_unknown_message_type_is_answered(env: Env, which: str, type_: int, tid: int) -> None:
    """An ERROR answer naming the request; the connection stays usable."""
    t = env.target(which)
    offset, epoch = log_size(t), env.epoch()
    if which == "mon":
        follow = frame_bytes(Msg.MON_COMMAND, {"tid": tid + 1, "cmd": {"prefix": "fsid", "format": "json"}})
    else:
        follow = frame_bytes(Msg.OSD_OP, env.osd_op_meta(tid=tid + 1, ops=[{"op": "stat"}]))
    p = probe(t.addr, HELLO + frame_bytes(type_, {"tid": tid}) + follow, replies=3)
    assert p.types()[:2] == [Msg.HELLO_REPLY, Msg.ERROR], p.frames
    assert p.frames[1].meta.get("rtid") == tid and p.frames[1].meta.get("err") == -22
    assert p.frames[2].meta.get("rtid") == tid + 1  # the next request on the same connection is served
    assert p.frames[2].meta.get("r", p.frames[2].meta.get("ret")) == 0, p.frames[2].meta
    check_after(env, t, offset, p, closed=None, epoch=epoch, what=f"unknown type {type_}")


CMD_ARG = st.one_of(st.none(), st.booleans(), INT64, st.floats(allow_nan=True),
                    st.text(max_size=12), st.binary(max_size=8), st.lists(INT64, max_size=3),
                    st.dictionaries(st.text(max_size=4), INT64, max_size=2))
READ_ONLY = ["status", "health", "df", "fsid", "mon dump", "osd dump", "osd tree", "osd stat", "osd ls", "osd df",
             "osd map", "osd pool ls", "osd pool get", "osd pool get-quota", "osd pool application get", "pg stat",
             "mon stat", "version", "osd lspools"]


@examples(40)
@seed(SEED)
@given(prefix=st.sampled_from(READ_ONLY), args=st.dictionaries(
    st.sampled_from(["pool", "var", "object", "epoch", "detail", "format", "app", "key", "nspace", "dumpcontents"]),
    CMD_ARG, max_size=4))
def test_mon_commands_with_wrong_argument_types(env: Env, prefix: str, args: dict[str, Any]) -> None:
    """Read-only commands with arguments of any type: an answer (maybe an error), never a hang or a crash."""
    t = env.target("mon")
    offset, epoch = log_size(t), env.epoch()
    cmd = {"prefix": prefix, **args}
    p = probe(t.addr, HELLO + frame_bytes(Msg.MON_COMMAND, {"tid": 9, "cmd": cmd}), replies=2, timeout=5)
    assert p.closed or len(p.frames) == 2, f"no answer to {cmd} (seed={SEED})"
    check_after(env, t, offset, p, closed=None, epoch=epoch, what=f"command {cmd}")


MON_BAD_META: list[tuple[int, dict[str, Any]]] = [
    (Msg.MON_COMMAND, {"tid": 3}),
    (Msg.MON_COMMAND, {"tid": 3, "cmd": None}),
    (Msg.MON_COMMAND, {"tid": 3, "cmd": "status"}),
    (Msg.MON_COMMAND, {"tid": 3, "cmd": ["status"]}),
    (Msg.MON_COMMAND, {"tid": 3, "cmd": {"prefix": 7}}),
    (Msg.MON_COMMAND, {"tid": 3, "cmd": {"noprefix": "status"}}),
    (Msg.MON_SUBSCRIBE, {"what": "osdmap", "start": "zero"}),
    (Msg.MON_SUBSCRIBE, {"what": "osdmap", "start": [1]}),
    (Msg.OSD_BEACON, {"osd": "x"}),
    (Msg.OSD_BEACON, {}),
    (Msg.OSD_BOOT, {"tid": 3}),
    (Msg.OSD_BOOT, {"tid": 3, "osd": "zero", "addr": "127.0.0.1:1"}),
    (Msg.OSD_FAILURE, {"reporter": 0}),
    (Msg.OSD_FAILURE, {"reporter": 0, "target": "one"}),
]


@pytest.mark.parametrize(("type_", "meta"), MON_BAD_META, ids=[f"{t.name}-{m}" for t, m in MON_BAD_META])
def test_mon_malformed_meta_after_hello(env: Env, type_: Msg, meta: dict[str, Any]) -> None:
    t = env.target("mon")
    offset, epoch = log_size(t), env.epoch()
    p = probe(t.addr, HELLO + frame_bytes(type_, meta), replies=2, timeout=2)
    answered = len(p.frames) == 2 and p.frames[1].type in (Msg.ERROR, Msg.MON_COMMAND_REPLY)
    assert p.closed or answered, f"{type_.name} {meta}: neither closed nor answered: {p.frames}"
    check_after(env, t, offset, p, closed=None, epoch=epoch, what=f"{type_.name} {meta}")


# -- OSD_OP op vectors -----------------------------------------------------------------------------------------

NEG = st.integers(-(2**63), -1)


def invalid_op(data_len: int) -> st.SearchStrategy[dict[str, Any]]:
    """An op that must fail (and so fail its whole vector)."""
    outside = st.one_of(
        st.tuples(st.integers(0, 2**32), st.integers(data_len + 1, 2**32)),
        st.tuples(st.integers(data_len + 1, 2**32), st.integers(0, 2**32)),
        st.tuples(NEG, st.integers(0, 2**32)),
        st.tuples(st.integers(0, data_len), NEG),
    ).map(list)
    known = {"read", "write", "writefull", "append", "truncate", "zero", "create", "delete", "stat", "setxattr",
             "getxattr", "getxattrs", "rmxattr", "omap_get_vals", "omap_get_keys", "omap_setkeys", "omap_rmkeys",
             "omap_clear", "omap_setheader", "omap_get_header", "omap_get_vals_by_keys", "assert_exists",
             "checksum", "call", "pgls"}
    return st.one_of(
        st.text(min_size=1, max_size=16).filter(lambda s: s not in known).map(lambda s: {"op": s}),
        st.builds(lambda o, off, n: {"op": o, "off": off, "len": n}, st.sampled_from(["read", "zero"]), NEG,
                  st.integers(0, 100)),
        st.builds(lambda o, off, n: {"op": o, "off": off, "len": n}, st.sampled_from(["read", "zero"]),
                  st.integers(0, 100), NEG),
        st.builds(lambda off: {"op": "write", "off": off, "d": [0, min(1, data_len)]}, NEG),
        st.builds(lambda size: {"op": "truncate", "size": size}, NEG),
        st.builds(lambda o, d: {"op": o, "d": d, "name": "x"},
                  st.sampled_from(["write", "writefull", "append", "setxattr", "omap_setheader"]), outside),
        st.just({"op": "call", "cls": "nosuchclass", "method": "nosuchmethod"}),
        st.just({"op": "omap_setkeys", "kv": {"k": "not bytes"}}),
        st.just({"op": "create", "excl": True}),  # the canary exists: EEXIST
    )


def damaging_op(data_len: int) -> st.SearchStrategy[dict[str, Any]]:
    """A valid op that would change the canary if the vector were not all-or-nothing."""
    return st.one_of(
        st.just({"op": "writefull", "d": [0, data_len]}),
        st.builds(lambda off: {"op": "write", "off": off, "d": [0, data_len]}, st.integers(0, 8192)),
        st.builds(lambda size: {"op": "truncate", "size": size}, st.integers(0, 8192)),
        st.just({"op": "delete"}),
        st.just({"op": "setxattr", "name": "x", "d": [0, data_len]}),
        st.just({"op": "omap_setkeys", "kv": {"k": b"v"}}),
        st.builds(lambda off, n: {"op": "zero", "off": off, "len": n}, st.integers(0, 4096), st.integers(1, 4096)),
    )


@examples(40)
@seed(SEED)
@given(data=st.data())
def test_osd_op_vector_with_an_invalid_op_changes_nothing(env: Env, data: st.DataObject) -> None:
    payload = data.draw(st.binary(min_size=1, max_size=64))
    ops = data.draw(st.lists(damaging_op(len(payload)), max_size=3))
    at, bad = data.draw(st.integers(0, len(ops))), data.draw(invalid_op(len(payload)))
    # An exclusive create after a delete in the same vector is valid (as in Ceph).
    assume(not (bad.get("op") == "create" and any(op["op"] == "delete" for op in ops[:at])))
    ops.insert(at, bad)
    t = env.target("osd")
    offset, epoch = log_size(t), env.epoch()
    p = probe(t.addr, HELLO + frame_bytes(Msg.OSD_OP, env.osd_op_meta(ops=ops), payload), replies=2)
    assert p.types() == [Msg.HELLO_REPLY, Msg.OSD_OP_REPLY], f"{ops}: {p.frames} (seed={SEED})"
    reply = p.frames[1].meta
    assert reply["r"] < 0, f"{ops} succeeded: {reply} (seed={SEED})"
    check_after(env, t, offset, p, closed=None, epoch=epoch, what=f"ops {ops}")


BAD_OSD_META = st.one_of(
    st.fixed_dictionaries({"ops": CMD_ARG.filter(lambda v: not isinstance(v, list))}),
    st.fixed_dictionaries({"ops": st.lists(CMD_ARG, min_size=1, max_size=2)}),
    st.fixed_dictionaries({"ops": st.just([{"noop": "read"}])}),
    st.fixed_dictionaries({"ops": st.just([{"op": "read", "off": "zero", "len": 1}])}),
    st.fixed_dictionaries({"ops": st.just([{"op": "writefull", "d": 5}])}),
    st.fixed_dictionaries({"ops": st.just([{"op": "writefull", "d": ["a", "b"]}])}),
    st.fixed_dictionaries({"pool": CMD_ARG.filter(lambda v: not isinstance(v, int) or isinstance(v, bool))}),
    st.fixed_dictionaries({"epoch": st.text(min_size=1, max_size=5) | st.lists(INT64, max_size=2)}),
    st.fixed_dictionaries({"ops": st.just([{"op": "pgls"}])}),  # a PG op without its PG
)


@examples(30)
@seed(SEED)
@given(overrides=BAD_OSD_META, drop=st.sampled_from([None, "pool", "ops"]))
def test_osd_op_malformed_meta(env: Env, overrides: dict[str, Any], drop: str | None) -> None:
    t = env.target("osd")
    meta = env.osd_op_meta(**overrides)
    if drop and drop not in overrides:
        del meta[drop]
    offset, epoch = log_size(t), env.epoch()
    p = probe(t.addr, HELLO + frame_bytes(Msg.OSD_OP, meta, b"EVIL"), replies=2, timeout=3)
    replied = p.types()[1:] == [Msg.OSD_OP_REPLY] and p.frames[1].meta["r"] <= 0
    if replied and p.frames[1].meta["r"] == 0:
        # A vector the OSD could make sense of must not have written anything.
        assert not any(isinstance(o, dict) and o.get("op") in ("writefull", "write") for o in meta.get("ops", []))
    assert p.closed or replied or p.types()[1:] == [Msg.ERROR], f"{meta}: {p.frames}"
    check_after(env, t, offset, p, closed=None, epoch=epoch, what=f"OSD_OP {meta}")


# -- refusals, flooding, pipelining --------------------------------------------------------------

@both
def test_refused_connections_are_logged_once(env: Env, which: str) -> None:
    t = env.target(which)
    cases = [frame_bytes(Msg.MON_COMMAND if which == "mon" else Msg.OSD_OP, {"tid": 1}),
             frame_bytes(Msg.HELLO, {"protocol": 2, "entity": "client.admin", "auth": ["none"]})]
    for payload in cases:
        offset = log_size(t)
        p = probe(t.addr, payload)
        check_after(env, t, offset, p, closed=True, exact_mentions=True, what=f"refused {payload!r}")


@both
def test_refusal_error_reaches_the_peer_before_close(env: Env, which: str) -> None:
    t = env.target(which)
    p = probe(t.addr, frame_bytes(Msg.HELLO, {"protocol": 2, "entity": "client.admin", "auth": ["none"]}))
    assert p.closed
    assert [(f.type, f.meta.get("err")) for f in p.frames] == [(Msg.ERROR, -95)]
    p = probe(t.addr, frame_bytes(Msg.MON_COMMAND, {"tid": 4, "cmd": {"prefix": "status"}}))
    assert p.closed and [(f.type, f.meta.get("err"), f.meta.get("rtid")) for f in p.frames] == [(Msg.ERROR, -13, 4)]


@both
def test_repeated_unknown_messages_do_not_flood_the_log(env: Env, which: str) -> None:
    t = env.target(which)
    offset = log_size(t)
    n = 50
    p = probe(t.addr, HELLO + b"".join(frame_bytes(999, {"tid": i}) for i in range(1, n + 1)), replies=n + 1)
    assert p.types() == [Msg.HELLO_REPLY] + [Msg.ERROR] * n
    check_after(env, t, offset, p, closed=None, exact_mentions=True, what=f"{n} unknown messages")


@both
def test_requests_behind_a_malformed_one_are_not_executed(env: Env, which: str) -> None:
    t = env.target(which)
    if which == "mon":
        bad = frame_bytes(Msg.MON_COMMAND, {"tid": 2})  # no cmd: the monitor closes the connection
        after = frame_bytes(Msg.MON_COMMAND, {"tid": 3, "cmd": {"prefix": "osd pool create", "pool": "bad_after",
                                                                "pg_num": 1}})
    else:
        bad = frame_bytes(Msg.OSD_OP, env.osd_op_meta(tid=2, ops=5))  # ops not a list: the OSD closes
        after = frame_bytes(Msg.OSD_OP, env.osd_op_meta(tid=3, ops=[{"op": "writefull", "d": [0, 4]}]), b"EVIL")
    offset, epoch = log_size(t), env.epoch()
    try:
        p = probe(t.addr, HELLO + bad + after)
        time.sleep(0.3)
        check_after(env, t, offset, p, closed=True, exact_mentions=True, epoch=epoch, what="a pipelined request")
    finally:
        # Undo what the bug did, so later tests start from the same state.
        env.admin.command({"prefix": "osd pool delete", "pool": "bad_after", "pool2": "bad_after",
                           "yes_i_really_really_mean_it": True})
        env.write_canary()


def test_osd_refuses_replica_messages_from_clients(tmp_path: Path) -> None:
    """PG_QUERY (recovery's get/put of whole objects) and REP_OP are for OSDs only: a client
    using them would bypass the PG log, replication and its caps."""
    with running_env(str(tmp_path / "rep"), "none") as env:
        osdmap = env.admin.client.osdmap
        assert osdmap is not None
        pgid = f"{env.pool_id}.{osdmap.object_to_ps(osdmap.pools[env.pool_id], CANARY):x}"
        t = env.target("osd")
        for type_, meta, data in (
                (Msg.PG_QUERY, {"tid": 2, "pgid": pgid, "epoch": osdmap.epoch, "what": "put", "nspace": "",
                                "name": CANARY, "state": {"exists": True}}, b"EVIL"),
                (Msg.PG_QUERY, {"tid": 2, "pgid": pgid, "epoch": osdmap.epoch, "what": "get", "nspace": "",
                                "name": CANARY}, b""),
                (Msg.PG_QUERY, {"tid": 2, "pgid": pgid, "epoch": osdmap.epoch, "what": "list"}, b""),
                (Msg.REP_OP, {"tid": 2, "pgid": pgid, "epoch": osdmap.epoch}, b"")):
            offset, epoch = log_size(t), env.epoch()
            p = probe(t.addr, HELLO + frame_bytes(type_, meta, data), replies=2, timeout=3)
            assert Msg.PG_REPLY not in p.types() and Msg.REP_OP_REPLY not in p.types(), (meta, p.frames)
            check_after(env, t, offset, p, closed=None, epoch=epoch, what=f"{type_.name} {meta.get('what')}")


def test_mon_refuses_osd_messages_from_a_client(tmp_path: Path) -> None:
    """OSD_BOOT from a client would re-point an OSD's address and flap it."""
    with running_env(str(tmp_path / "boot"), "none") as env:
        t = env.target("mon")
        before = env.admin.command_json({"prefix": "osd dump"})
        for type_, meta in ((Msg.OSD_BOOT, {"tid": 2, "osd": 0, "addr": "10.255.255.1:9", "host": "evil",
                                             "uuid": "x", "weight": 1.0}),
                            (Msg.OSD_FAILURE, {"reporter": 1, "target": 0, "epoch": before["epoch"]}),
                            (Msg.OSD_BEACON, {"osd": 0, "epoch": before["epoch"], "pgs": []})):
            offset = log_size(t)
            p = probe(t.addr, HELLO + frame_bytes(type_, meta), replies=2, timeout=2)
            assert Msg.OSD_BOOT_REPLY not in p.types(), p.frames
            check_after(env, t, offset, p, closed=None, epoch=before["epoch"], what=type_.name)
        after = env.admin.command_json({"prefix": "osd dump"})
        assert after["osds"] == before["osds"]


# -- cephx: bad input during the authentication handshake ---------------------------------------------------

CEPHX_HELLO = {"protocol": 1, "entity": "client.admin", "auth": ["cephx"], "modes": ["crc"]}


@both
@pytest.mark.parametrize("meta", [
    {"protocol": 1, "entity": "client.admin", "auth": ["none"]},
    {"protocol": 1, "entity": "client.admin", "auth": []},
    {"protocol": 1, "entity": "client.admin", "auth": ["kerberos"]},
    {"protocol": 1, "entity": "", "auth": ["cephx"]},
    {"protocol": 1, "entity": "no-dot", "auth": ["cephx"]},
    {"protocol": 1, "entity": "client." + "x" * 5000, "auth": ["cephx"]},
    {"protocol": 1, "entity": ["client.admin"], "auth": ["cephx"]},
    {"protocol": 1, "entity": "client.admin", "auth": "cephx"},
], ids=lambda m: repr(m)[:60])
def test_cephx_hello_refused(cephx_env: Env, which: str, meta: dict[str, Any]) -> None:
    t = cephx_env.target(which)
    offset, epoch = log_size(t), cephx_env.epoch()
    p = probe(t.addr, frame_bytes(Msg.HELLO, meta), timeout=3)
    assert Msg.HELLO_REPLY not in p.types(), p.frames
    check_after(cephx_env, t, offset, p, closed=True, exact_mentions=True, epoch=epoch, what=f"HELLO {meta}")


@examples(15)
@seed(SEED)
@given(request=st.dictionaries(st.sampled_from(["challenge", "proof", "services", "extra"]),
                               CMD_ARG | st.binary(min_size=0, max_size=64), max_size=4),
       entity=st.sampled_from(["client.admin", "client.nosuchuser", "osd.0"]))
def test_cephx_bogus_auth_request(cephx_env: Env, request: dict[str, Any], entity: str) -> None:
    """Whatever the proof, a monitor that challenged us refuses it (the same way for unknown users)."""
    t = cephx_env.target("mon")
    offset, epoch = log_size(t), cephx_env.epoch()
    raw = Raw(t.addr)
    raw.send(frame_bytes(Msg.HELLO, {**CEPHX_HELLO, "entity": entity, "tid": 1}))
    raw.read(1)
    assert [(f.type, f.meta.get("auth")) for f in raw.frames] == [(Msg.HELLO_REPLY, "cephx")], raw.frames
    raw.send(frame_bytes(Msg.AUTH_REQUEST, {"tid": 2, **request}))
    raw.read(0, timeout=3)
    p = raw.close()
    assert Msg.AUTH_REPLY not in p.types(), p.frames
    check_after(cephx_env, t, offset, p, closed=True, exact_mentions=True, epoch=epoch,
                what=f"AUTH_REQUEST {request} as {entity}")


@pytest.mark.parametrize("type_", [Msg.AUTH_REQUEST, Msg.TICKET_REQUEST, Msg.ROTATING_REQUEST, Msg.MON_COMMAND])
def test_cephx_requests_before_authentication(cephx_env: Env, type_: Msg) -> None:
    t = cephx_env.target("mon")
    offset, epoch = log_size(t), cephx_env.epoch()
    meta = {"tid": 2, "cmd": {"prefix": "osd pool create", "pool": "bad_unauth", "pg_num": 1}}
    for payload in (frame_bytes(type_, meta), frame_bytes(Msg.HELLO, CEPHX_HELLO) + frame_bytes(type_, meta)):
        p = probe(t.addr, payload, replies=3, timeout=3)
        assert Msg.AUTH_REPLY not in p.types() and Msg.MON_COMMAND_REPLY not in p.types(), p.frames
        assert Msg.TICKET_REPLY not in p.types() and Msg.ROTATING_REPLY not in p.types(), p.frames
        check_after(cephx_env, t, offset, p, closed=True, epoch=epoch, what=f"{type_.name} unauthenticated")


@examples(10)
@seed(SEED)
@given(hello=st.fixed_dictionaries({"protocol": st.just(1), "entity": st.just("client.admin"),
                                    "auth": st.just(["cephx"])},
                                   optional={"ticket": CMD_ARG | st.binary(max_size=200),
                                             "authorizer": CMD_ARG | st.binary(max_size=200),
                                             "challenge": st.binary(max_size=40)}))
def test_cephx_osd_refuses_sessions_without_a_valid_ticket(cephx_env: Env, hello: dict[str, Any]) -> None:
    t = cephx_env.target("osd")
    offset, epoch = log_size(t), cephx_env.epoch()
    op = frame_bytes(Msg.OSD_OP, cephx_env.osd_op_meta(ops=[{"op": "writefull", "d": [0, 4]}]), b"EVIL")
    p = probe(t.addr, frame_bytes(Msg.HELLO, hello) + op, replies=2, timeout=3)
    assert Msg.OSD_OP_REPLY not in p.types(), p.frames
    check_after(cephx_env, t, offset, p, closed=None, epoch=epoch, what=f"HELLO {hello}")


@pytest.mark.slow
def test_osd_op_from_the_future_is_answered(env: Env) -> None:
    t = env.target("osd")
    offset = log_size(t)
    p = probe(t.addr, HELLO + frame_bytes(Msg.OSD_OP, env.osd_op_meta(epoch=10**9, ops=[{"op": "stat"}])),
              replies=2, timeout=40)
    assert p.closed or len(p.frames) == 2
    check_after(env, t, offset, p, closed=None, what="epoch 10**9")


# -- at the end: every replica of the canary is intact ----------------------------------------------------------

def test_zz_replicas_of_the_canary_are_intact(env: Env) -> None:
    """Runs last in this module: stops its cluster and reads every OSD's store directly."""
    assert env.read_canary() == (0, CANARY_DATA, CANARY_XATTR)
    res = env.cluster.cli("ceph", "-s", timeout=60)
    assert res.returncode == 0 and b"health: HEALTH_" in res.stdout, res.stderr
    holders = env.canary_up()
    osdmap = env.admin.client.osdmap
    assert osdmap is not None
    pgid = f"{env.pool_id}.{osdmap.object_to_ps(osdmap.pools[env.pool_id], CANARY):x}"
    env.cluster.down()
    want = hashlib.sha256(CANARY_DATA).hexdigest()
    for osd in holders:
        store = SqliteStore(os.path.join(env.cluster.dir, f"osd.{osd}", "store.db"))
        store.mount()
        try:
            oid = ObjectId(CANARY)
            assert hashlib.sha256(store.read(pgid, oid, 0, 0)).hexdigest() == want, f"osd.{osd} (seed={SEED})"
            assert store.getattr(pgid, oid, "x") == CANARY_XATTR, f"osd.{osd}"
        finally:
            store.umount()

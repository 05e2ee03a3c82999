"""cephx on a live cluster, from the attacker's and the unlucky operator's side.

* bad credentials: wrong key, unknown entity (indistinguishable from a wrong key),
  missing keyring;
* revocation and lifetime, on a cluster with `auth service ticket ttl = 6`: a deleted
  entity cannot connect and its running client loses OSD I/O within a bound; a live
  client renews its tickets and keeps working for several ttls;
* the wire, through a TCP proxy written here (`Proxy`): a recorded monitor handshake and a
  recorded OSD HELLO replayed on new connections are refused; a flipped bit in the first
  sealed frame (with the crc fixed up, so only the AEAD tag can notice) makes the peer
  drop the connection, the client reconnects and the data is exactly what it wrote; a
  sealed frame from another connection, or an old one of the same connection, is
  rejected; with `ms mode = secure` a recognisable payload never appears on the wire
  (while in crc mode it does: the capture works);
* no key material in daemon logs or in `ceph -s` / `rados lspools` output.

The proxy is threads and blocking sockets: every connection it relays is parsed into
frames in both directions so a hook can change or record whole frames; its buffers and
records are bounded and `close()` ends every thread.
"""

from __future__ import annotations

import base64
import dataclasses
import errno
import json
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import crc32c
import pytest

import rados
from shoal.auth.cephx import MonAuthClient
from shoal.auth.keyring import read_keyring
from shoal.auth.keys import CryptoKey
from shoal.testing.cluster import TestCluster
from shoal.wire.frame import FLAG_SEALED, HEADER, MAGIC, TAG_LEN, TRAILER, Frame, FrameDecoder, frame_bytes
from shoal.wire.messages import PROTOCOL_VERSION, Msg

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("SHOAL_TEST_SEED", random.randrange(1 << 30)))
TTL = 6.0  # auth service ticket ttl of the `ttl_cluster`
POOL = "authz_neg"
MARKER = b"PLAINTEXT-MARKER"


# ------------------------------------------------------------------------------ the proxy

class FrameSplitter:
    """Cuts a byte stream into whole Shoal frames (the 16-byte header gives the lengths)."""

    MAX_FRAME = (128 << 20) + (16 << 20) + 64

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self.buf += data
        frames = []
        while len(self.buf) >= HEADER.size:
            magic, _, flags, _, _, mlen, dlen = HEADER.unpack_from(self.buf)
            if magic != MAGIC:
                raise ValueError("not a Shoal frame stream")
            total = HEADER.size + mlen + dlen + TRAILER.size + (TAG_LEN if flags & FLAG_SEALED else 0)
            if total > self.MAX_FRAME:
                raise ValueError("frame too large")
            if len(self.buf) < total:
                break
            frames.append(bytes(self.buf[:total]))
            del self.buf[:total]
        return frames


def frame_type(frame: bytes) -> int:
    return int(HEADER.unpack_from(frame)[3])


def is_sealed(frame: bytes) -> bool:
    return bool(HEADER.unpack_from(frame)[2] & FLAG_SEALED)


def flip_bit(frame: bytes, rng: random.Random, fix_crc: bool) -> bytes:
    """One bit flipped in the frame's payload (data if any, else meta); with `fix_crc` the
    crc32c is recomputed, so only the frame's AEAD tag can tell."""
    _, _, flags, _, _, mlen, dlen = HEADER.unpack_from(frame)
    body_start = HEADER.size
    lo, hi = (body_start + mlen, body_start + mlen + dlen) if dlen else (body_start, body_start + mlen)
    out = bytearray(frame)
    pos = rng.randrange(lo, hi)
    out[pos] ^= 1 << rng.randrange(8)
    if fix_crc:
        end = body_start + mlen + dlen
        out[end:end + TRAILER.size] = TRAILER.pack(crc32c.crc32c(bytes(out[:end])))
    return bytes(out)


@dataclasses.dataclass(eq=False)
class Pipe:
    """One relayed connection."""

    index: int
    client: socket.socket
    server: socket.socket
    frames: dict[str, list[bytes]] = dataclasses.field(default_factory=lambda: {"c2s": [], "s2c": []})
    counts: dict[str, int] = dataclasses.field(default_factory=lambda: {"c2s": 0, "s2c": 0})
    closed_by: str | None = None  # "client" or "server": who ended the connection first
    closed_at: float | None = None
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    done: threading.Event = dataclasses.field(default_factory=threading.Event)

    def inject_c2s(self, data: bytes) -> None:
        """Send bytes to the server between two of the client's frames."""
        with self.lock:
            self.server.sendall(data)


Hook = Callable[[Pipe, str, int, bytes], bytes]  # (pipe, "c2s"/"s2c", frame index, frame) -> bytes to relay


class Proxy:
    """A TCP relay on 127.0.0.1 in front of one daemon address; bounded and always closed."""

    KEEP_FRAMES = 16  # recorded frames per direction and connection
    MAX_PIPES = 64
    MAX_CAPTURE = 64 << 20

    def __init__(self, upstream: str, hook: Hook | None = None, capture: bool = False) -> None:
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.hook = hook
        self.capture: bytearray | None = bytearray() if capture else None
        self.pipes: list[Pipe] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.addr = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._spawn(self._accept_loop)

    def __enter__(self) -> Proxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _spawn(self, fn: Callable[..., None], *args: Any) -> None:
        t = threading.Thread(target=fn, args=args, daemon=True)
        self._threads.append(t)
        t.start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            if len(self.pipes) >= self.MAX_PIPES:
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            for s in (client, server):
                s.settimeout(0.2)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pipe = Pipe(len(self.pipes), client, server)
            self.pipes.append(pipe)
            self._spawn(self._pump, pipe, "c2s", client, server)
            self._spawn(self._pump, pipe, "s2c", server, client)

    def _pump(self, pipe: Pipe, direction: str, src: socket.socket, dst: socket.socket) -> None:
        splitter = FrameSplitter()
        reason = "client" if direction == "c2s" else "server"
        try:
            while not self._stop.is_set() and not pipe.done.is_set():
                try:
                    data = src.recv(1 << 20)
                except TimeoutError:
                    continue
                if not data:
                    break
                for frame in splitter.feed(data):
                    index = pipe.counts[direction]
                    pipe.counts[direction] += 1
                    if index < self.KEEP_FRAMES:
                        pipe.frames[direction].append(frame)
                    out = self.hook(pipe, direction, index, frame) if self.hook else frame
                    if self.capture is not None:
                        with self._lock:
                            if len(self.capture) + len(out) <= self.MAX_CAPTURE:
                                self.capture += out
                    if direction == "c2s":
                        with pipe.lock:
                            dst.sendall(out)
                    else:
                        dst.sendall(out)
        except (OSError, ValueError):
            pass  # a reset or a closed socket ends the relay like an orderly close
        with self._lock:
            if pipe.closed_by is None and not self._stop.is_set():
                pipe.closed_by, pipe.closed_at = reason, time.monotonic()
        pipe.done.set()
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        for pipe in self.pipes:
            pipe.done.set()
        for t in self._threads:
            t.join(timeout=5)
        for pipe in self.pipes:
            pipe.client.close()
            pipe.server.close()


def route_osds(handle: rados.Rados, mapping: dict[str, str]) -> None:
    """Make this client reach OSDs at proxy addresses: the OSD map's address of each OSD is
    swapped where the Objecter picks an op's target (test-only; the map itself is untouched)."""
    objecter = handle._client.objecter
    original = objecter._target

    def target(*args: Any) -> Any:
        t = original(*args)
        if t is not None and t.addr in mapping:
            t = dataclasses.replace(t, addr=mapping[t.addr])
        return t

    objecter._target = target


def osd_addrs(handle: rados.Rados) -> dict[int, str]:
    return {i: o.addr for i, o in handle._client.osdmap.osds.items()}


def primary_addr(handle: rados.Rados, pool: str, oid: str) -> str:
    client = handle._client
    target = client.objecter._target(client.pool_by_name(pool).id, None, oid, "")
    return str(target.addr)


def wait_for(cond: Callable[[], bool], timeout: float, what: str) -> float:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.02)
    return time.monotonic() - t0


# ------------------------------------------------------------------------------ raw frames

def read_frame(sock: socket.socket, timeout: float = 5.0) -> Frame | None:
    """The next (unsealed) frame from a raw socket, or None when the peer closed it."""
    decoder = FrameDecoder()
    sock.settimeout(timeout)
    while True:
        data = sock.recv(65536)
        if not data:
            return None
        frames = decoder.feed(data)
        if frames:
            return frames[0]


def closed_by_peer(sock: socket.socket, timeout: float = 5.0) -> bool:
    sock.settimeout(timeout)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


# ------------------------------------------------------------------------------ fixtures and helpers

def connect(conf_path: str, name: str, keyring: str, timeout: int = 15, **conf: str) -> rados.Rados:
    r = rados.Rados(conffile=conf_path, name=name, conf={"keyring": keyring, **conf})
    r.connect(timeout=timeout)
    return r


def write_keyring(path: Path, entity: str, key: CryptoKey) -> str:
    path.write_text(f"[{entity}]\n\tkey = {key.encode()}\n")
    return str(path)


def make_user(c: TestCluster, entity: str, path: Path, osd: str = f"allow rw pool={POOL}") -> str:
    res = c.cli("ceph", "auth", "get-or-create", entity, "mon", "allow r", "osd", osd, "-o", str(path))
    assert res.returncode == 0, res.stderr
    return str(path)


def _make_pool(c: TestCluster) -> None:
    admin = connect(c.conf_path, "client.admin", c.keyring_path("client.admin"))
    try:
        ret, _, outs = admin.mon_command(json.dumps({"prefix": "osd pool create", "pool": POOL, "pg_num": 8}), b"")
        assert ret == 0, outs
    finally:
        admin.shutdown()
    c.wait_healthy(c.osds, 60)


@pytest.fixture(scope="module")
def neg_cluster(cluster: TestCluster) -> Iterator[TestCluster]:
    """The shared cephx cluster (crc mode) with this module's pool."""
    print(f"seed={SEED}")
    _make_pool(cluster)
    yield cluster
    admin = connect(cluster.conf_path, "client.admin", cluster.keyring_path("client.admin"))
    try:
        admin.delete_pool(POOL)
    finally:
        admin.shutdown()


@pytest.fixture(scope="module")
def ttl_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    """A cluster of its own whose service tickets live 6 s (revocation and renewal within seconds)."""
    c = TestCluster(str(tmp_path_factory.mktemp("ttl")), osds=3)
    c.start(extra_conf=f"mon allow pool delete = true\nauth service ticket ttl = {TTL:g}")
    try:
        _make_pool(c)
        yield c
    finally:
        c.down()


@pytest.fixture(scope="module")
def secure_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    c = TestCluster(str(tmp_path_factory.mktemp("secure")), osds=3)
    c.start(extra_conf="mon allow pool delete = true\nms mode = secure")
    try:
        _make_pool(c)
        yield c
    finally:
        c.down()


def admin_of(c: TestCluster) -> rados.Rados:
    return connect(c.conf_path, "client.admin", c.keyring_path("client.admin"))


# ------------------------------------------------------------------------------ bad credentials

def _connect_error(conf_path: str, name: str, keyring: str) -> tuple[rados.Error, float]:
    t0 = time.monotonic()
    with pytest.raises(rados.Error) as info:
        connect(conf_path, name, keyring, timeout=10)
    return info.value, time.monotonic() - t0


def test_wrong_key_and_unknown_entity_are_refused_alike(neg_cluster: TestCluster, tmp_path: Path) -> None:
    conf = neg_cluster.conf_path
    wrong = write_keyring(tmp_path / "wrong.keyring", "client.admin", CryptoKey.generate())
    exc, took = _connect_error(conf, "client.admin", wrong)
    assert isinstance(exc, rados.PermissionDeniedError) and exc.errno == errno.EACCES, repr(exc)
    assert took < 10, f"refused only after {took:.1f}s"
    unknown = write_keyring(tmp_path / "unknown.keyring", "client.authz-nobody", CryptoKey.generate())
    exc2, took2 = _connect_error(conf, "client.authz-nobody", unknown)
    assert took2 < 10
    # No oracle: an unknown name fails exactly like a wrong key.
    assert (type(exc2), exc2.errno) == (type(exc), exc.errno)
    assert str(exc2).replace("client.authz-nobody", "X") == str(exc).replace("client.admin", "X")
    print(f"wrong key: {exc!s} ({took * 1000:.0f} ms); unknown entity: {exc2!s} ({took2 * 1000:.0f} ms)")


def test_missing_keyring_is_enoent(neg_cluster: TestCluster, tmp_path: Path) -> None:
    exc, took = _connect_error(neg_cluster.conf_path, "client.admin", str(tmp_path / "no-such.keyring"))
    assert isinstance(exc, rados.ObjectNotFound) and exc.errno == errno.ENOENT, repr(exc)
    assert took < 10


# ------------------------------------------------------------------------------ revocation and renewal

def test_deleted_entity_loses_access(ttl_cluster: TestCluster, tmp_path: Path) -> None:
    c = ttl_cluster
    entity = "client.authz-doomed"
    keyring = make_user(c, entity, tmp_path / "doomed.keyring")
    op_timeout = 2.0
    victim = connect(c.conf_path, entity, keyring, rados_osd_op_timeout=f"{op_timeout:g}")
    io = victim.open_ioctx(POOL)
    try:
        for i in range(5):
            io.write_full(f"doomed-{i}", b"before")
        res = c.cli("ceph", "auth", "del", entity)
        assert res.returncode == 0, res.stderr
        deleted = time.monotonic()
        exc, _ = _connect_error(c.conf_path, entity, keyring)
        assert isinstance(exc, rados.PermissionDeniedError) and exc.errno == errno.EACCES, repr(exc)
        # The running client: its tickets cannot be renewed, its OSD sessions end with them.
        bound = TTL + op_timeout + 3.0
        first_failure: float | None = None
        failure: rados.Error | None = None
        n = 0
        while time.monotonic() - deleted < bound + 2:
            try:
                io.write_full(f"doomed-{n % 5}", b"after %d" % n)
            except rados.Error as e:
                first_failure, failure = time.monotonic() - deleted, e
                break
            n += 1
            time.sleep(0.1)
        assert first_failure is not None, f"still writing {bound + 2:g}s after `auth del` ({n} writes)"
        print(f"first refused op {first_failure:.2f}s after `auth del` ({n} writes went through before): "
              f"{failure!r}")
        assert first_failure <= bound
        # ...and it stays locked out.
        for _ in range(3):
            with pytest.raises(rados.Error):
                io.write_full("doomed-0", b"later")
    finally:
        io.close()
        victim.shutdown()


def test_live_client_renews_tickets_across_several_ttls(ttl_cluster: TestCluster, tmp_path: Path) -> None:
    c = ttl_cluster
    keyring = make_user(c, "client.authz-renewer", tmp_path / "renewer.keyring")
    h = connect(c.conf_path, "client.authz-renewer", keyring, rados_osd_op_timeout="10")
    io = h.open_ioctx(POOL)
    try:
        start = time.monotonic()
        worst, n = 0.0, 0
        while time.monotonic() - start < 2 * TTL:  # busy
            t0 = time.monotonic()
            io.write_full(f"renew-{n % 7}", b"%d" % n)
            worst = max(worst, time.monotonic() - t0)
            n += 1
            time.sleep(0.05)
        time.sleep(1.5 * TTL)  # idle past a whole ticket lifetime
        t0 = time.monotonic()
        io.write_full("renew-idle", b"still here")
        assert io.read("renew-idle") == b"still here"
        worst = max(worst, time.monotonic() - t0)
        lived = time.monotonic() - start
        print(f"{n + 1} writes over {lived:.1f}s = {lived / TTL:.1f} ticket lifetimes; slowest {worst * 1000:.0f} ms")
        assert lived > 3 * TTL
        assert worst < 5.0, f"an op took {worst:.1f}s around a ticket renewal"
    finally:
        io.close()
        h.shutdown()


# ------------------------------------------------------------------------------ replay

def test_replayed_monitor_handshake_is_refused(neg_cluster: TestCluster) -> None:
    c = neg_cluster
    mon = str(admin_mon_addr(c))
    with Proxy(mon) as proxy:
        h = connect(c.conf_path, "client.admin", c.keyring_path("client.admin"), mon_host=proxy.addr)
        ret, _, _ = h.mon_command(json.dumps({"prefix": "osd pool ls"}), b"")
        assert ret == 0
        h.shutdown()
        recorded = list(proxy.pipes[0].frames["c2s"])
    assert [frame_type(f) for f in recorded[:2]] == [Msg.HELLO, Msg.AUTH_REQUEST]
    assert not is_sealed(recorded[0]) and not is_sealed(recorded[1]) and is_sealed(recorded[2])
    host, port = mon.rsplit(":", 1)

    # Control: this raw driver can authenticate when it computes a genuine proof.
    key = next(iter(read_keyring(c.keyring_path("client.admin")).values())).key
    with socket.create_connection((host, int(port)), timeout=5) as s:
        auth = MonAuthClient("client.admin", key.secret, ["cephx"])
        s.sendall(frame_bytes(Msg.HELLO, {**auth.hello(), "protocol": PROTOCOL_VERSION, "modes": ["crc"], "tid": 1}))
        reply = read_frame(s)
        assert reply is not None and reply.type == Msg.HELLO_REPLY
        request = auth.handle_hello_reply(reply.meta)
        assert request is not None
        s.sendall(frame_bytes(Msg.AUTH_REQUEST, {**request, "tid": 2}))
        answer = read_frame(s)
        assert answer is not None and answer.type == Msg.AUTH_REPLY, answer
        auth.handle_auth_reply(answer.meta)

    # The recorded HELLO + AUTH_REQUEST on a new connection: a new challenge, a stale proof.
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(recorded[0])
        reply = read_frame(s)
        assert reply is not None and reply.type == Msg.HELLO_REPLY
        s.sendall(recorded[1])
        answer = read_frame(s)
        assert answer is not None and answer.type == Msg.ERROR, answer
        assert answer.meta["err"] == -errno.EACCES, answer.meta
        assert closed_by_peer(s), "the monitor kept the connection open"

    # The whole recorded stream at once (handshake and sealed requests): nothing is served.
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"".join(recorded))
        types = []
        decoder = FrameDecoder()
        s.settimeout(5)
        try:
            while data := s.recv(65536):
                types += [f.type for f in decoder.feed(data)]
        except (ConnectionResetError, TimeoutError):
            pass
        assert Msg.AUTH_REPLY not in types and Msg.MON_COMMAND_REPLY not in types and Msg.OSDMAP not in types, types


def admin_mon_addr(c: TestCluster) -> str:
    for line in Path(c.conf_path).read_text().splitlines():
        if line.strip().startswith("mon host"):
            return line.split("=", 1)[1].strip()
    raise AssertionError("no mon host in the conf")


def test_replayed_osd_hello_is_refused(neg_cluster: TestCluster) -> None:
    c = neg_cluster
    h = admin_of(c)
    try:
        upstream = primary_addr(h, POOL, "replay-me")
        with Proxy(upstream) as proxy:
            route_osds(h, {upstream: proxy.addr})
            io = h.open_ioctx(POOL)
            io.write_full("replay-me", b"x")
            io.close()
            hello = proxy.pipes[0].frames["c2s"][0]
        assert frame_type(hello) == Msg.HELLO
        host, port = upstream.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(hello)
            reply = read_frame(s)
            assert reply is not None and reply.type == Msg.ERROR, reply
            assert reply.meta["err"] == -errno.EACCES, reply.meta
            assert closed_by_peer(s)
    finally:
        h.shutdown()


# ------------------------------------------------------------------------------ tampering

FLIPS = [("c2s", 4096, True), ("c2s", 1 << 20, True), ("c2s", 4096, False), ("s2c", 4096, True)]


@pytest.mark.parametrize(("direction", "size", "fix_crc"), FLIPS,
                         ids=[f"{d}-{s}-{'crcfixed' if f else 'raw'}" for d, s, f in FLIPS])
def test_flipped_bit_drops_the_connection_and_the_client_recovers(
        neg_cluster: TestCluster, direction: str, size: int, fix_crc: bool) -> None:
    c = neg_cluster
    rng = random.Random(f"{SEED}-{direction}-{size}-{fix_crc}")
    oid = f"flip-{direction}-{size}-{fix_crc}"
    admin = admin_of(c)
    h = admin_of(c)
    aio = admin.open_ioctx(POOL)
    aio.write_full(oid, b"B" * size)
    tampered: list[int] = []

    def hook(pipe: Pipe, d: str, index: int, frame: bytes) -> bytes:
        if d == direction and index == 1 and not tampered:  # the first frame after HELLO/HELLO_REPLY
            assert is_sealed(frame)
            tampered.append(pipe.index)
            return flip_bit(frame, rng, fix_crc)
        return frame

    try:
        upstream = primary_addr(h, POOL, oid)
        with Proxy(upstream, hook) as proxy:
            route_osds(h, {upstream: proxy.addr})
            io = h.open_ioctx(POOL)
            payload = rng.randbytes(size)
            t0 = time.monotonic()
            io.write_full(oid, payload)  # retried by the client on a new connection
            took = time.monotonic() - t0
            io.close()
            first = proxy.pipes[0]
            assert tampered == [0]
            wait_for(first.done.is_set, 5, "the tampered connection to end")
            # c2s: the OSD refuses the frame and drops the connection; s2c: the client does.
            assert first.closed_by == ("server" if direction == "c2s" else "client"), first.closed_by
            assert len(proxy.pipes) >= 2, "the client did not reconnect"
        assert aio.read(oid, size + 1) == payload  # exactly what was written, no flipped bit
        print(f"{direction} flip ({'crc fixed' if fix_crc else 'crc left'}), {size} B: write done in "
              f"{took * 1000:.0f} ms over {len(proxy.pipes)} connections")
        if direction == "c2s":
            logs = "".join(p.read_text(errors="replace") for p in Path(c.dir, "log").glob("osd.*.log"))
            assert "event=bad_frame" in logs
    finally:
        aio.close()
        h.shutdown()
        admin.shutdown()


@pytest.mark.parametrize("source", ["other-connection", "same-connection"])
def test_replayed_sealed_frame_is_rejected(neg_cluster: TestCluster, source: str) -> None:
    """A sealed frame recorded on one connection, injected into another (or again into its
    own): other keys / an old sequence number, so the OSD drops the connection."""
    c = neg_cluster
    oid = f"inject-{source}"
    admin, a, b = admin_of(c), admin_of(c), admin_of(c)
    aio = admin.open_ioctx(POOL)
    try:
        upstream = primary_addr(admin, POOL, oid)
        with Proxy(upstream) as proxy:
            route_osds(a, {upstream: proxy.addr})
            route_osds(b, {upstream: proxy.addr})
            bio = b.open_ioctx(POOL)
            bio.write_full(oid, b"from b")  # pipe 0
            bio.close()
            wait_for(lambda: len(proxy.pipes) == 1 and proxy.pipes[0].counts["c2s"] >= 2, 5, "b's op")
            aio.write_full(oid, b"admin v2")
            ioa = a.open_ioctx(POOL)
            assert ioa.read(oid) == b"admin v2"  # pipe 1
            victim = proxy.pipes[1]
            wait_for(lambda: victim.counts["s2c"] >= 2, 5, "a's reply")
            frame = (proxy.pipes[0] if source == "other-connection" else victim).frames["c2s"][1]
            assert is_sealed(frame) and frame_type(frame) == Msg.OSD_OP
            victim.inject_c2s(frame)
            wait_for(victim.done.is_set, 5, "the OSD to drop the connection")
            assert victim.closed_by == "server"
            assert aio.read(oid) == b"admin v2"  # the replayed write was not applied
            assert ioa.read(oid) == b"admin v2"  # a reconnects
            assert len(proxy.pipes) == 3
            ioa.close()
    finally:
        aio.close()
        for h in (a, b, admin):
            h.shutdown()


# ------------------------------------------------------------------------------ secure mode

@pytest.mark.parametrize("mode", ["crc", "secure"])
def test_secure_mode_hides_payloads_on_the_wire(request: pytest.FixtureRequest, mode: str) -> None:
    c: TestCluster = request.getfixturevalue("neg_cluster" if mode == "crc" else "secure_cluster")
    small, large = MARKER * 1000, MARKER * (65536 * 4)  # one-shot and streaming (>= 64 KiB) paths
    boot = admin_of(c)
    addrs = osd_addrs(boot)
    boot.shutdown()
    mon = admin_mon_addr(c)
    proxies = {addr: Proxy(addr, capture=True) for addr in [*addrs.values(), mon]}
    try:
        h = connect(c.conf_path, "client.admin", c.keyring_path("client.admin"), mon_host=proxies[mon].addr)
        try:
            route_osds(h, {addr: p.addr for addr, p in proxies.items() if addr != mon})
            io = h.open_ioctx(POOL)
            io.write_full("marker-small", small)
            io.write_full("marker-large", large)
            assert io.read("marker-small", len(small)) == small
            assert io.read("marker-large", len(large)) == large
            io.close()
            # a monitor command carrying the marker too
            h.mon_command(json.dumps({"prefix": "osd pool get-quota", "pool": MARKER.decode() * 4}), b"")
        finally:
            h.shutdown()
    finally:
        for p in proxies.values():
            p.close()
    captured = {addr: bytes(p.capture or b"") for addr, p in proxies.items()}
    total = sum(len(v) for v in captured.values())
    hits = {addr: data.count(MARKER) for addr, data in captured.items()}
    print(f"{mode}: captured {total} bytes; marker occurrences per upstream {hits}")
    assert total > 2 * len(large), "the proxies did not see the traffic"
    assert captured[mon], "the monitor connection did not go through the proxy"
    if mode == "crc":
        assert sum(hits.values()) >= 2 * (len(small) + len(large)) // len(MARKER)
        assert hits[mon] > 0
    else:
        assert sum(hits.values()) == 0
        assert b"PLAINTEXT" not in b"".join(captured.values())


# ------------------------------------------------------------------------------ no secrets in logs

def _key_forms(key: CryptoKey) -> list[bytes]:
    secret = key.secret
    return [key.encode().encode(), secret.hex().encode(), secret.hex().upper().encode(),
            base64.b64encode(secret).rstrip(b"=")[:20], secret]


def test_no_key_material_in_logs_or_outputs(ttl_cluster: TestCluster, tmp_path: Path) -> None:
    c = ttl_cluster
    conf = c.conf_path
    # Flows that touch keys: a wrong key, an unknown entity, creating and fetching a user,
    # using it, caps changes, deleting it.
    _connect_error(conf, "client.admin", write_keyring(tmp_path / "w.keyring", "client.admin", CryptoKey.generate()))
    _connect_error(conf, "client.authz-ghost",
                   write_keyring(tmp_path / "g.keyring", "client.authz-ghost", CryptoKey.generate()))
    keyring = make_user(c, "client.authz-logged", tmp_path / "logged.keyring")
    assert c.cli("ceph", "auth", "get-key", "client.authz-logged").returncode == 0
    h = connect(conf, "client.authz-logged", keyring)
    io = h.open_ioctx(POOL)
    io.write_full("logged", b"x")
    io.close()
    h.shutdown()
    assert c.cli("ceph", "auth", "caps", "client.authz-logged", "mon", "allow r", "osd", "allow r").returncode == 0
    assert c.cli("ceph", "auth", "del", "client.authz-logged").returncode == 0
    outputs = {
        "ceph -s": c.cli("ceph", "-s"),
        "ceph status --format json": c.cli("ceph", "status", "--format", "json"),
        "rados lspools": c.cli("rados", "lspools"),
    }
    for what, res in outputs.items():
        assert res.returncode == 0, (what, res.stderr)

    keys: dict[str, CryptoKey] = {}
    for path in [*Path(c.dir).glob("*.keyring"), *tmp_path.glob("*.keyring")]:
        for name, entry in read_keyring(path).items():
            keys[f"{path.name}:{name}"] = entry.key
    assert len(keys) >= 3 + 1 + 1 + 1 + 2  # osds, mon, admin, the user, the two bogus keys
    logs = [p for p in Path(c.dir, "log").iterdir() if p.suffix in (".log", ".out")]
    assert logs
    found = []
    for path in logs:
        text = path.read_bytes()
        for label, key in keys.items():
            if any(form in text for form in _key_forms(key)):
                found.append(f"{path.name} contains the key of {label}")
    for what, res in outputs.items():
        blob = res.stdout + res.stderr
        for label, key in keys.items():
            if any(form in blob for form in _key_forms(key)):
                found.append(f"`{what}` prints the key of {label}")
    print(f"checked {len(keys)} keys in {len(logs)} log files ({sum(p.stat().st_size for p in logs)} bytes) "
          f"and {len(outputs)} command outputs")
    assert found == []


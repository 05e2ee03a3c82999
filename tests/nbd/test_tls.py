"""TLS-PSK on the NBD gateway: the sans-IO STARTTLS states, the PSK file, and real GnuTLS
clients (nbdinfo/nbdcopy from libnbd-bin, qemu-io from qemu-utils) against a real
`shoal nbd serve --tls-psk` process on a real cluster. pyOpenSSL comes with the `test`
extra (through `nbd-tls`); a missing client tool fails the test (it does not skip)."""

from __future__ import annotations

import errno
import os
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.nbd import constants as C
from shoal.nbd.handshake import Closed, ExportQuery, ServerHandshake, StartTls
from shoal.nbd.tls import PskFileError, load_psk_file
from shoal.testing.cluster import TestCluster
from tests.nbd.nbd_helpers import Gateway, nbd_pool, run, tool

POOL = "nbdtls"
MiB = 1 << 20
ALICE_KEY = "8e5d2f1a9c0b7e6d5c4b3a2918070615243342516f7e8d9cabbacdcfeedf0f1e"
WRONG_KEY = "00" * 32


def psk_file(path: Path, **keys: str) -> Path:
    """A key file as `psktool -u USER -p FILE` writes it (psktool itself is in gnutls-bin,
    which the project does not install)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{user}:{key}\n" for user, key in keys.items()))
    path.chmod(0o600)
    return path


# -- sans-IO ------------------------------------------------------------------------------------------
def opt(option: int, data: bytes = b"") -> bytes:
    return struct.pack(">QII", C.IHAVEOPT, option, len(data)) + data


def replies(data: bytes) -> list[int]:
    out, pos = [], 0
    while pos < len(data):
        _, _, kind, n = struct.unpack_from(">QIII", data, pos)
        out.append(kind)
        pos += 20 + n
    return out


def started(**tls: bool) -> ServerHandshake:
    hs = ServerHandshake(**tls)
    hs.data_to_send()
    hs.feed(struct.pack(">I", C.FLAG_C_FIXED_NEWSTYLE | C.FLAG_C_NO_ZEROES))
    return hs


def go(name: str) -> bytes:
    return struct.pack(">I", len(name)) + name.encode() + struct.pack(">H", 0)


def test_starttls_refused_when_not_offered() -> None:
    hs = started()
    hs.feed(opt(C.OPT_STARTTLS))
    assert replies(hs.data_to_send()) == [C.REP_ERR_UNSUP] and hs.next_event() is None


def test_tls_required_refuses_everything_but_starttls_and_abort() -> None:
    hs = started(tls_offered=True, tls_required=True)
    hs.feed(opt(C.OPT_GO, go("disk")) + opt(C.OPT_LIST) + opt(C.OPT_STRUCTURED_REPLY) + opt(99))
    assert replies(hs.data_to_send()) == [C.REP_ERR_TLS_REQD] * 4 and hs.next_event() is None
    hs.feed(opt(C.OPT_STARTTLS))
    assert replies(hs.data_to_send()) == [C.REP_ACK]
    assert hs.next_event() == StartTls() and hs.needed() == 0
    hs.tls_started()
    hs.feed(opt(C.OPT_STARTTLS))
    assert replies(hs.data_to_send()) == [C.REP_ERR_INVALID]  # TLS is already up
    hs.feed(opt(C.OPT_GO, go("disk")))
    assert hs.next_event() == ExportQuery(C.OPT_GO, "disk", ())

    hs = started(tls_offered=True, tls_required=True)
    hs.feed(opt(C.OPT_EXPORT_NAME, b"disk"))  # no error reply exists for it: it closes
    ev = hs.next_event()
    assert isinstance(ev, Closed) and "TLS" in ev.reason


def test_starttls_forgets_what_was_negotiated_in_clear() -> None:
    hs = started(tls_offered=True, tls_required=False)
    hs.feed(opt(C.OPT_STRUCTURED_REPLY) + opt(C.OPT_STARTTLS))
    assert replies(hs.data_to_send()) == [C.REP_ACK, C.REP_ACK]
    assert hs.next_event() == StartTls() and not hs.structured


def test_bytes_pipelined_after_starttls_close_the_connection() -> None:
    # Plaintext after STARTTLS, before our ACK, could be injected by a man in the middle.
    hs = started(tls_offered=True, tls_required=True)
    hs.feed(opt(C.OPT_STARTTLS) + opt(C.OPT_LIST))
    assert isinstance(hs.next_event(), Closed)


def test_psk_file_parsing(tmp_path: Path) -> None:
    good = psk_file(tmp_path / "keys.psk", alice=ALICE_KEY, bob="0a0b")
    assert load_psk_file(str(good)) == {"alice": bytes.fromhex(ALICE_KEY), "bob": b"\x0a\x0b"}
    for text, reason in [("", "no keys"), ("alice\n", "username:hexkey"), (":00\n", "username:hexkey"),
                         ("alice:xyz\n", "not hexadecimal"), ("alice:\n", "empty"),
                         ("alice:00\nalice:01\n", "twice"), (f"alice:{'00' * 513}\n", "longer than")]:
        bad = tmp_path / "bad.psk"
        bad.write_text(text)
        with pytest.raises(PskFileError, match=reason) as info:
            load_psk_file(str(bad))
        assert str(bad) in str(info.value) and "xyz" not in str(info.value)
    with pytest.raises(PskFileError, match="No such file"):
        load_psk_file(str(tmp_path / "missing.psk"))


# -- real clients ---------------------------------------------------------------------------------------
class TlsGateway(Gateway):
    def uri(self, name: str, user: str | None = None, keys: Path | None = None) -> str:
        if user is None:
            return super().uri(name)
        # libnbd 1.14 (Debian 12) takes the PSK username from the URI's user part only.
        return f"nbds+unix://{user}@/{name}?socket={self.sock}&tls-psk-file={keys}"


@pytest.fixture(scope="module")
def pool(cluster: TestCluster) -> TestCluster:
    return nbd_pool(cluster, POOL)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return psk_file(tmp_path_factory.mktemp("psk") / "server" / "keys.psk", alice=ALICE_KEY)


@pytest.fixture(scope="module")
def gw(pool: TestCluster, keys: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsGateway]:
    g = TlsGateway(pool, tmp_path_factory.mktemp("nbdtls") / "nbd.sock", "--tls-psk", str(keys))
    yield g
    g.stop()


def rbd_create(cluster: TestCluster, name: str, size: str) -> str:
    done = cluster.cli("rbd", "create", "--size", size, f"{POOL}/{name}")
    assert done.returncode == 0, done.stderr.decode()
    return f"{POOL}/{name}"


def test_uri_says_tls(gw: TlsGateway) -> None:
    assert gw.line == f"nbds+unix:///?socket={gw.sock}"


def test_nbdinfo_and_nbdcopy_over_tls_byte_exact(pool: TestCluster, gw: TlsGateway, keys: Path,
                                                 tmp_path: Path) -> None:
    name = rbd_create(pool, "tlscopy", "16M")
    out = run("nbdinfo", gw.uri(name, "alice", keys)).stdout
    assert "export-size: 16777216" in out, out
    src, back = tmp_path / "src.raw", tmp_path / "back.raw"
    with open(src, "wb") as f:
        f.truncate(16 * MiB)
        for off, n in ((0, 5 * MiB), (9 * MiB + 321, 3 * MiB), (16 * MiB - 4096, 4096)):
            f.seek(off)
            f.write(os.urandom(n))
    run("nbdcopy", str(src), gw.uri(name, "alice", keys))
    run("nbdcopy", gw.uri(name, "alice", keys), str(back))
    assert src.read_bytes() == back.read_bytes()
    assert "event=nbd_tls " in gw.log.read_text()


def test_wrong_key_or_user_fails_and_the_server_goes_on(pool: TestCluster, gw: TlsGateway, keys: Path,
                                                        tmp_path: Path) -> None:
    name = rbd_create(pool, "tlsauth", "4M")
    wrong_key = psk_file(tmp_path / "wrongkey.psk", alice=WRONG_KEY)
    wrong_user = psk_file(tmp_path / "wronguser.psk", mallory=ALICE_KEY)
    for uri in (gw.uri(name, "alice", wrong_key), gw.uri(name, "mallory", wrong_user)):
        done = run("nbdinfo", uri, check=False, timeout=60)
        assert done.returncode != 0 and "export-size" not in done.stdout, done.stdout + done.stderr
    assert gw.proc.poll() is None
    log = gw.log.read_text()
    assert "event=nbd_tls_failed" in log and "user='mallory' reason='unknown PSK username" in log
    assert ALICE_KEY not in log and WRONG_KEY not in log  # no key material in logs
    assert "export-size: 4194304" in run("nbdinfo", gw.uri(name, "alice", keys)).stdout


def test_plaintext_client_is_refused(pool: TestCluster, gw: TlsGateway) -> None:
    name = rbd_create(pool, "tlsplain", "4M")
    done = run("nbdinfo", gw.uri(name), check=False, timeout=60)
    assert done.returncode != 0 and "export-size" not in done.stdout, done.stdout + done.stderr
    # libnbd reports NBD_REP_ERR_TLS_REQD as "Operation not supported": check the reply itself
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(gw.sock))
        f = s.makefile("rwb")
        f.read(18)
        f.write(struct.pack(">I", C.FLAG_C_FIXED_NEWSTYLE | C.FLAG_C_NO_ZEROES) + opt(C.OPT_GO, go(name)))
        f.flush()
        _, option, kind, n = struct.unpack(">QIII", f.read(20))
        assert (option, kind) == (C.OPT_GO, C.REP_ERR_TLS_REQD) and b"TLS" in f.read(n)
    # qemu uses NBD_OPT_GO, then falls back to EXPORT_NAME on some errors: both are refused
    done = run("qemu-io", "-f", "raw", "-c", "read 0 4k", gw.uri(name), check=False, timeout=60)
    assert done.returncode != 0 or "read 4096/4096" not in done.stdout, done.stdout + done.stderr


def test_qemu_io_with_tls_creds_psk(pool: TestCluster, gw: TlsGateway, keys: Path) -> None:
    name = rbd_create(pool, "tlsqemu", "8M")
    creds = f"tls-creds-psk,id=tls0,endpoint=client,dir={keys.parent},username=alice"
    image = f"driver=raw,file.driver=nbd,file.server.type=unix,file.server.path={gw.sock}," \
            f"file.export={name},file.tls-creds=tls0"
    out = run("qemu-io", "--object", creds, "--image-opts", image,
              "-c", "write -P 0xa5 1M 2M", "-c", "read -P 0xa5 1M 2M", "-c", "read -P 0 0 1M").stdout
    assert "wrote 2097152/2097152" in out and "read 2097152/2097152" in out, out
    assert "Pattern verification failed" not in out, out
    # and the bytes are there for the next client, over nbdcopy
    raw = subprocess.run([tool("nbdcopy"), gw.uri(name, "alice", keys), "-"], capture_output=True, timeout=60)
    assert raw.returncode == 0, raw.stderr
    assert raw.stdout == bytes(1 * MiB) + b"\xa5" * (2 * MiB) + bytes(5 * MiB)


def test_tls_optional_serves_both(pool: TestCluster, keys: Path, tmp_path: Path) -> None:
    g = TlsGateway(pool, tmp_path / "opt.sock", "--tls-psk", str(keys), "--no-tls-required")
    try:
        assert g.line == f"nbd+unix:///?socket={g.sock}"
        name = rbd_create(pool, "tlsoptional", "4M")
        assert "export-size: 4194304" in run("nbdinfo", g.uri(name)).stdout
        assert "export-size: 4194304" in run("nbdinfo", g.uri(name, "alice", keys)).stdout
    finally:
        g.stop()


def test_bad_psk_file_exits_einval(pool: TestCluster, tmp_path: Path) -> None:
    bad = tmp_path / "bad.psk"
    bad.write_text("alice:not-hex\n")
    for extra in (["--tls-psk", str(bad)], ["--tls-psk", str(tmp_path / "missing.psk")], ["--tls-required"]):
        done = subprocess.run([sys.executable, "-m", "shoal.cli.shoal_cmd", "nbd", "serve",
                               "--socket", str(tmp_path / "never.sock"), *extra],
                              env=pool.env(), capture_output=True, text=True, timeout=60)
        assert done.returncode == errno.EINVAL, done.stderr
        assert "shoal nbd serve:" in done.stderr and (extra[-1] in done.stderr or "--tls-psk" in done.stderr)
        assert "not-hex" not in done.stderr

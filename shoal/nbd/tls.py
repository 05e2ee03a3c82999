"""TLS-PSK for the NBD gateway: the key file, the server context and a TLS stream over asyncio.

Python 3.11's `ssl` has no PSK (it came in 3.13), and `loop.start_tls` takes only an
`ssl.SSLContext`, so the gateway uses pyOpenSSL (the optional extra `nbd-tls`) with memory
BIOs: ciphertext moves between the socket's StreamReader/StreamWriter and OpenSSL's BIOs
here, and the connection reads and writes plaintext through `TlsStream`, which has the
few StreamReader/StreamWriter methods the server uses. The PSK callback is OpenSSL's
`SSL_CTX_set_psk_server_callback` from the bindings of `cryptography` (which pyOpenSSL is
built on): it serves TLS 1.3 external PSKs (psk_dhe_ke, as GnuTLS clients — libnbd, qemu —
offer them) and TLS 1.2's ECDHE-PSK.

The key file is the one qemu, nbdkit and libnbd read: lines `username:hexkey`, as
`psktool -u USER -p FILE` writes them. Key material never reaches a log or an error message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("shoal.nbd")

# OpenSSL's PSK_MAX_PSK_LEN: a longer key can't be handed to the callback.
MAX_KEY_BYTES = 512
MAX_IDENTITY = 128  # PSK_MAX_IDENTITY_LEN
_CHUNK = 256 << 10  # ciphertext moved per read from the socket or from the output BIO
# TLS 1.2 suites: ECDHE-PSK only, for forward secrecy (GnuTLS clients offer it); TLS 1.3
# keeps OpenSSL's default suites, with (EC)DHE on top of the PSK.
_TLS12_CIPHERS = b"kECDHEPSK:!eNULL"


class PskFileError(ValueError):
    """A PSK file that can't be used; the message names the file and the reason."""


class TlsUnavailable(RuntimeError):
    """pyOpenSSL (or its PSK binding) is missing."""


class TlsError(ConnectionError):
    """The TLS handshake failed, or the TLS stream broke (a bad record, an alert)."""


def load_psk_file(path: str) -> dict[str, bytes]:
    """username -> key from a `username:hexkey` file (qemu/nbdkit/libnbd/psktool format)."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise PskFileError(f"PSK file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise PskFileError(f"PSK file {path}: not a text file") from None
    keys: dict[str, bytes] = {}
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        user, sep, hexkey = line.partition(":")
        where = f"PSK file {path}, line {number}"
        if not sep or not user:
            raise PskFileError(f"{where}: expected username:hexkey")
        if len(user.encode()) > MAX_IDENTITY:
            raise PskFileError(f"{where}: username longer than {MAX_IDENTITY} bytes")
        try:
            key = bytes.fromhex(hexkey)
        except ValueError:
            # Say what is wrong, never what the key is.
            raise PskFileError(f"{where}: the key of {user!r} is not hexadecimal") from None
        if not key:
            raise PskFileError(f"{where}: the key of {user!r} is empty")
        if len(key) > MAX_KEY_BYTES:
            raise PskFileError(f"{where}: the key of {user!r} is longer than {MAX_KEY_BYTES} bytes")
        if user in keys:
            raise PskFileError(f"{where}: username {user!r} appears twice")
        keys[user] = key
    if not keys:
        raise PskFileError(f"PSK file {path}: no keys in it")
    return keys


@dataclass(frozen=True)
class TlsConfig:
    """What `shoal nbd serve` was told: the keys, and whether TLS is required."""

    keys: dict[str, bytes]
    required: bool = True
    source: str = ""  # the file the keys came from (for logs)


class PskServerContext:
    """One pyOpenSSL server context for all connections, with the PSK callback."""

    def __init__(self, config: TlsConfig) -> None:
        try:
            from cryptography.hazmat.bindings.openssl.binding import Binding
            from OpenSSL import SSL
        except ImportError as exc:
            raise TlsUnavailable(f"TLS-PSK needs pyOpenSSL ({exc}): pip install 'shoal[nbd-tls]'") from None
        binding = Binding()
        lib, ffi = binding.lib, binding.ffi
        if not getattr(lib, "Cryptography_HAS_PSK", False) or not hasattr(lib, "SSL_CTX_set_psk_server_callback"):
            raise TlsUnavailable("this build of cryptography/OpenSSL has no TLS-PSK")
        self.config = config
        self._ffi = ffi
        self._keys = {user.encode(): key for user, key in config.keys.items()}
        # The identity each handshake in progress asked for, by SSL* address: OpenSSL 3 has
        # SSL_get_psk_identity but cryptography's bindings don't export it.
        self._identities: dict[int, str] = {}
        ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
        ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
        ctx.set_cipher_list(_TLS12_CIPHERS)
        # Renegotiation (TLS 1.2) is an attack surface we have no use for; tickets would let a
        # client resume without the PSK lookup we log, so every connection does a full handshake.
        ctx.set_options(SSL.OP_NO_RENEGOTIATION | SSL.OP_NO_TICKET)
        ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
        # cffi keeps the callback alive only as long as this object refers to it.
        self._callback = ffi.callback("unsigned int (*)(SSL *, const char *, unsigned char *, unsigned int)",
                                      self._psk_lookup)
        lib.SSL_CTX_set_psk_server_callback(ctx._context, self._callback)
        self._ctx = ctx
        self._ssl = SSL

    def _psk_lookup(self, _ssl: Any, identity: Any, out: Any, max_len: int) -> int:
        # Runs inside OpenSSL during the handshake; 0 means "unknown identity" (the handshake
        # then fails, since we have no certificate to fall back to).
        try:
            name = self._ffi.string(identity) if identity != self._ffi.NULL else b""
            self._identities[self._address(_ssl)] = name.decode(errors="replace")
            key = self._keys.get(name)
            if key is None or len(key) > max_len:
                return 0
            self._ffi.memmove(out, key, len(key))
            return len(key)
        except Exception:  # an exception must not escape into OpenSSL
            log.exception("event=nbd_tls_psk_callback_error")
            return 0

    def _address(self, ssl: Any) -> int:
        return int(self._ffi.cast("uintptr_t", ssl))

    def take_identity(self, conn: Any) -> str:
        """The PSK identity the client of `conn` named (once; "" if it named none)."""
        return self._identities.pop(self._address(conn._ssl), "")

    def server_connection(self) -> Any:
        conn = self._ssl.Connection(self._ctx, None)  # None: memory BIOs
        conn.set_accept_state()
        return conn


class TlsStream:
    """Plaintext over a TLS session whose ciphertext goes through an asyncio stream pair.

    It offers what `shoal.nbd.server.Connection` uses of StreamReader (`readexactly`) and
    StreamWriter (`writelines`, `drain`, `close`, `wait_closed`, `get_extra_info`).
    Writes are encrypted and handed to the socket at once (synchronously), so records leave
    in the order the connection wrote them, and a TLS 1.3 message that reading produced
    (a KeyUpdate reply) is queued between whole writes, never inside one.
    """

    def __init__(self, context: PskServerContext, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self._context = context
        self._ssl = context._ssl
        self._conn = context.server_connection()
        self._reader = reader
        self._writer = writer
        self._plain = bytearray()  # decrypted bytes not yet asked for
        self.identity = ""

    async def handshake(self) -> None:
        """The TLS handshake; TlsError if it fails (after the alert has been sent)."""
        try:
            await self._handshake()
        finally:
            self.identity = self._context.take_identity(self._conn)

    async def _handshake(self) -> None:
        while True:
            try:
                self._conn.do_handshake()
                break
            except self._ssl.WantReadError:
                pass
            except self._ssl.Error as exc:
                self._flush()  # the alert tells the client why
                with contextlib.suppress(ConnectionError):
                    await self._writer.drain()
                raise TlsError(_describe(exc)) from None
            self._flush()
            await self._writer.drain()
            await self._fill()
        self._flush()
        await self._writer.drain()

    @property
    def version(self) -> str:
        return str(self._conn.get_protocol_version_name())

    @property
    def cipher(self) -> str:
        return str(self._conn.get_cipher_name())

    async def _fill(self) -> None:
        data = await self._reader.read(_CHUNK)
        if not data:
            raise asyncio.IncompleteReadError(bytes(self._plain), None)
        self._conn.bio_write(data)

    def _flush(self) -> None:
        """Move whatever OpenSSL wrote to its output BIO onto the socket (no await)."""
        while True:
            try:
                out = self._conn.bio_read(_CHUNK)
            except self._ssl.WantReadError:
                return
            if not out:
                return
            self._writer.write(out)

    async def readexactly(self, n: int) -> bytes:
        while len(self._plain) < n:
            try:
                # One record (16 KiB at most) per call; pyOpenSSL allocates the whole buffer
                # each time, so a 32 MiB WRITE payload must not ask for 32 MiB per record.
                self._plain += self._conn.recv(1 << 16)
            except self._ssl.WantReadError:
                self._flush()
                await self._fill()
            except self._ssl.ZeroReturnError:  # close_notify: the client is done
                raise asyncio.IncompleteReadError(bytes(self._plain), n) from None
            except self._ssl.Error as exc:
                raise TlsError(_describe(exc)) from None
        out = bytes(self._plain[:n])
        del self._plain[:n]
        return out

    def write(self, data: bytes | memoryview) -> None:
        if len(data):
            try:
                self._conn.sendall(data)
            except self._ssl.Error as exc:
                raise TlsError(_describe(exc)) from None
            self._flush()

    def writelines(self, buffers: list[bytes | memoryview]) -> None:
        for data in buffers:
            self.write(data)

    async def drain(self) -> None:
        await self._writer.drain()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._writer.get_extra_info(name, default)

    def close(self) -> None:
        # close_notify, so the client can tell an orderly end from a cut connection.
        with contextlib.suppress(Exception):
            self._conn.shutdown()
            self._flush()
        self._writer.close()

    async def wait_closed(self) -> None:
        await self._writer.wait_closed()


def _describe(exc: Exception) -> str:
    # pyOpenSSL's Error carries [(library, function, reason)] tuples; the reason is what helps.
    args = exc.args[0] if exc.args else None
    if isinstance(args, list) and args:
        return "; ".join(str(item[-1]) for item in args if isinstance(item, tuple)) or str(exc)
    return str(exc) or type(exc).__name__

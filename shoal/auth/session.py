"""Per-connection frame sealing with AES-GCM (sans-IO).

After a cephx handshake both ends derive two connection keys from the session key and
both sides' nonces (`connection_keys`), one per direction. Each direction has a
`FrameSealer` on the sending side and a `FrameOpener` on the receiving side that count
frames; the GCM nonce is ``direction (4 bytes) || sequence number (8 bytes)``, so:

* a replayed, dropped or reordered frame is opened with the wrong nonce and fails;
* a frame from another connection is opened with another key and fails (keys depend
  on both connections' fresh nonces);
* nonces never repeat under one key (the counter never wraps; we refuse frame 2**64).

Modes (``ms_mode``):

* sign (``secure=False``): the tag is GMAC over header || meta || data; the frame is
  sent as is, plus the 16-byte tag. Readable on the wire, but not forgeable.
* secure (``secure=True``): meta and data are encrypted (AES-GCM, same lengths),
  the header is associated data. The tag covers all three.

The header must be the frame header exactly as sent (lengths included), so the frame's
boundaries are authenticated too. Small frames go through the one-shot `AESGCM` API
(~1 µs); large payloads through the streaming API, which needs no concatenation of
meta and data (a 4 MiB copy would cost more than the GMAC itself).

Large secure payloads that arrive in a writable buffer (the decoder's own payload
bytearray) are decrypted in place; the returned data is then that same buffer. If the
tag check fails, the buffer holds garbage and the opener raises: drop it with the
connection.

After a failure an opener refuses everything: the connection must be closed.
"""

from __future__ import annotations

import errno as _errno
import threading

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shoal.auth.cephx_core import (
    AEAD_TAG_LEN,
    CHALLENGE_LEN,
    AuthError,
    FrameAuthError,
    check_secret,
    derive,
)

Buffer = bytes | bytearray | memoryview

CLIENT_TO_SERVER = 1
SERVER_TO_CLIENT = 2
STREAM_MIN = 64 * 1024  # payloads at least this large use the streaming cipher API
_MAX_SEQ = (1 << 64) - 1
_BLOCK = 16


def connection_keys(session_key: bytes, client_nonce: bytes, server_nonce: bytes,
                    context: bytes = b"") -> tuple[bytes, bytes]:
    """(client->server key, server->client key) for one connection.

    HKDF-SHA256 with salt = client_nonce || server_nonce: both are fresh per connection,
    so two connections with the same session key never share a key. `context` binds
    whatever else both sides agreed on in the clear (the negotiated `ms_mode`, a hash
    of the HELLO exchange): if an attacker changed it, the first frame fails.
    """
    check_secret(session_key, "session key")
    if len(client_nonce) != CHALLENGE_LEN or len(server_nonce) != CHALLENGE_LEN:
        raise AuthError("connection nonces must be 16 bytes", _errno.EINVAL)
    salt = bytes(client_nonce) + bytes(server_nonce)
    both = derive(session_key, "connection " + bytes(context).hex(), length=32, salt=salt)
    return both[:16], both[16:]


def session_pair(session_key: bytes, client_nonce: bytes, server_nonce: bytes, *, client: bool,
                 secure: bool, context: bytes = b"") -> tuple[FrameSealer, FrameOpener]:
    """(sealer for what this side sends, opener for what it receives)."""
    c2s, s2c = connection_keys(session_key, client_nonce, server_nonce, context)
    if client:
        return FrameSealer(c2s, secure, CLIENT_TO_SERVER), FrameOpener(s2c, secure, SERVER_TO_CLIENT)
    return FrameSealer(s2c, secure, SERVER_TO_CLIENT), FrameOpener(c2s, secure, CLIENT_TO_SERVER)


class _Direction:
    __slots__ = ("secure", "_aead", "_aes", "_prefix", "_seq")

    def __init__(self, key: bytes, secure: bool, direction: int) -> None:
        key = check_secret(key, "connection key")
        self.secure = bool(secure)
        self._aead = AESGCM(key)
        self._aes = algorithms.AES(key)
        self._prefix = direction.to_bytes(4, "big")
        self._seq = 0

    @property
    def seq(self) -> int:
        """Frames processed so far (the next frame's sequence number)."""
        return self._seq

    def _nonce(self) -> bytes:
        if self._seq >= _MAX_SEQ:
            raise FrameAuthError("frame sequence exhausted: reconnect to rekey")
        return self._prefix + self._seq.to_bytes(8, "big")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(secure={self.secure}, seq={self._seq})"


class FrameSealer(_Direction):
    """Sending side of one direction of one connection."""

    __slots__ = ()

    def __init__(self, key: bytes, secure: bool, direction: int = 0) -> None:
        super().__init__(key, secure, direction)

    def seal(self, header: Buffer, meta: Buffer, data: Buffer = b"") -> tuple[bytes, Buffer, bytes]:
        """(meta', data', tag) to send in place of (meta, data). In sign mode meta and data
        come back as given; in secure mode they are ciphertext of the same lengths."""
        nonce = self._nonce()
        if not self.secure:
            if len(data) < STREAM_MIN:
                tag = self._aead.encrypt(nonce, b"", b"".join((header, meta, data)))
            else:
                enc = Cipher(self._aes, modes.GCM(nonce)).encryptor()
                enc.authenticate_additional_data(header)
                enc.authenticate_additional_data(meta)
                enc.authenticate_additional_data(data)
                enc.finalize()
                tag = enc.tag
            self._seq += 1
            return meta, data, tag
        n_meta = len(meta)
        if len(data) < STREAM_MIN:
            out = self._aead.encrypt(nonce, b"".join((meta, data)), bytes(header))
            self._seq += 1
            return out[:n_meta], out[n_meta:-AEAD_TAG_LEN], out[-AEAD_TAG_LEN:]
        enc = Cipher(self._aes, modes.GCM(nonce)).encryptor()
        enc.authenticate_additional_data(header)
        meta_ct = enc.update(meta)
        buf = bytearray(len(data) + _BLOCK - 1)  # update_into wants room for a block's slack
        n = enc.update_into(data, buf)
        enc.finalize()
        self._seq += 1
        return meta_ct, memoryview(buf)[:n], enc.tag


class FrameOpener(_Direction):
    """Receiving side of one direction of one connection."""

    __slots__ = ("_failed",)

    def __init__(self, key: bytes, secure: bool, direction: int = 0) -> None:
        super().__init__(key, secure, direction)
        self._failed = False

    def open(self, header: Buffer, meta: Buffer, data: Buffer, tag: Buffer) -> tuple[bytes, Buffer]:
        """(meta, data) in clear, or FrameAuthError (tampered, replayed, reordered, foreign)."""
        if self._failed:
            raise FrameAuthError("connection already failed frame authentication")
        if not isinstance(tag, bytes | bytearray | memoryview) or len(tag) != AEAD_TAG_LEN:
            self._failed = True
            raise FrameAuthError("frame tag missing or of the wrong length")
        nonce = self._nonce()
        try:
            result = self._open(nonce, header, meta, data, bytes(tag))
        except InvalidTag:
            self._failed = True
            raise FrameAuthError(f"frame {self._seq} failed authentication "
                                 "(tampered, replayed, reordered or from another connection)") from None
        self._seq += 1
        return result

    def _open(self, nonce: bytes, header: Buffer, meta: Buffer, data: Buffer,
              tag: bytes) -> tuple[bytes, Buffer]:
        if not self.secure:
            if len(data) < STREAM_MIN:
                self._aead.decrypt(nonce, tag, b"".join((header, meta, data)))
            else:
                dec = Cipher(self._aes, modes.GCM(nonce, tag)).decryptor()
                dec.authenticate_additional_data(header)
                dec.authenticate_additional_data(meta)
                dec.authenticate_additional_data(data)
                dec.finalize()
            return bytes(meta), data
        n_meta = len(meta)
        if len(data) < STREAM_MIN:
            plain = self._aead.decrypt(nonce, b"".join((meta, data, tag)), bytes(header))
            return plain[:n_meta], plain[n_meta:]
        # Plaintext from the streaming API is only handed out after finalize() checked the tag.
        dec = Cipher(self._aes, modes.GCM(nonce, tag)).decryptor()
        dec.authenticate_additional_data(header)
        meta_pt = dec.update(meta)
        if _writable(data):
            # The receive buffer is ours (the decoder's payload buffer): decrypt it in place,
            # through a small cache-resident scratch, instead of allocating another 4 MiB.
            view = memoryview(data).cast("B")
            scratch = _scratch()
            sview = memoryview(scratch)
            for off in range(0, len(view), _CHUNK):
                chunk = view[off:off + _CHUNK]
                n = dec.update_into(chunk, scratch)
                chunk[:n] = sview[:n]
            dec.finalize()
            return meta_pt, data
        buf = bytearray(len(data) + _BLOCK - 1)
        n = dec.update_into(data, buf)
        dec.finalize()
        return meta_pt, memoryview(buf)[:n]


_CHUNK = 256 * 1024
_local = threading.local()


def _scratch() -> bytearray:
    buf = getattr(_local, "scratch", None)
    if buf is None:
        buf = _local.scratch = bytearray(_CHUNK + _BLOCK - 1)
    return buf


def _writable(data: Buffer) -> bool:
    if isinstance(data, bytearray):
        return True
    return isinstance(data, memoryview) and not data.readonly and data.contiguous


__all__ = ["CLIENT_TO_SERVER", "SERVER_TO_CLIENT", "STREAM_MIN", "FrameOpener", "FrameSealer",
           "connection_keys", "session_pair"]

"""Building blocks shared by the cephx-style handshake, tickets and frame sealing (sans-IO).

* `AuthError` / `FrameAuthError`: the only exceptions the auth state machines raise on
  bad input. Their messages never contain key material (tests check that).
* Strict field readers (`get_bytes`, `get_str`, ...): every peer-supplied field is
  type- and length-checked before use, so a malformed message is an `AuthError`,
  never a `KeyError`/`TypeError` deep inside a handler.
* Crypto helpers: HKDF-SHA256 sub-keys (one per purpose, so no key is ever used in two
  roles), HMAC-SHA256 over an unambiguous length-prefixed encoding, and AES-GCM blobs
  ``nonce(12) || ciphertext || tag(16)`` with associated data binding the context.
"""

from __future__ import annotations

import errno as _errno
import hashlib
import hmac
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import msgpack
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shoal.errors import ProtocolError, ShoalError

AUTH_CEPHX = "cephx"
AUTH_NONE = "none"
METHODS = (AUTH_CEPHX, AUTH_NONE)

PROTO_LABEL = b"shoal-cephx-v1"  # domain separation for every MAC, AAD and HKDF info
CHALLENGE_LEN = 16  # server/client challenges and connection nonces
SECRET_LEN = 16  # entity secrets, session keys and service secrets (AES-128)
PROOF_LEN = 32  # HMAC-SHA256, untruncated
AEAD_NONCE_LEN = 12
AEAD_TAG_LEN = 16
AEAD_OVERHEAD = AEAD_NONCE_LEN + AEAD_TAG_LEN
MAX_ENTITY_LEN = 256
MAX_BLOB = 64 * 1024  # any sealed blob we accept from a peer (tickets are ~200 bytes)

RandomBytes = Callable[[int], bytes]


class AuthError(ShoalError):
    """Authentication failed or an auth message is malformed.

    `errno` is EACCES for a refused identity (wrong key, unknown entity, bad ticket),
    EKEYEXPIRED for an expired ticket (renew and retry), EAGAIN when the service's
    rotating secrets are behind the monitor's, EINVAL/EPROTO for malformed or out-of-order
    messages, EOPNOTSUPP when no authentication method is acceptable to both sides.
    """

    errno = _errno.EACCES


class FrameAuthError(AuthError, ProtocolError):
    """A sealed frame failed its tag (tampered, replayed, reordered, wrong connection).

    Also a `ProtocolError`, so the connection driver's existing handler closes the
    connection without special-casing auth.
    """

    errno = _errno.EBADMSG


def malformed(what: str) -> AuthError:
    return AuthError(f"malformed auth message: {what}", _errno.EINVAL)


# -- strict field readers ---------------------------------------------------------------------

def require_map(meta: object) -> Mapping[str, Any]:
    if not isinstance(meta, Mapping):
        raise malformed("not a map")
    return meta


def get_bytes(meta: Mapping[str, Any], key: str, *, size: int | None = None,
              max_len: int = MAX_BLOB) -> bytes:
    value = meta.get(key)
    if not isinstance(value, bytes | bytearray):
        raise malformed(f"field {key!r} must be bytes")
    if size is not None and len(value) != size:
        raise malformed(f"field {key!r} must be {size} bytes")
    if len(value) > max_len:
        raise malformed(f"field {key!r} too long")
    return bytes(value)


def get_str(meta: Mapping[str, Any], key: str, *, max_len: int = MAX_ENTITY_LEN) -> str:
    value = meta.get(key)
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise malformed(f"field {key!r} must be a non-empty string of at most {max_len} characters")
    if not value.isprintable():
        raise malformed(f"field {key!r} has unprintable characters")
    return value


def get_int(meta: Mapping[str, Any], key: str, *, lo: int = 0, hi: int = (1 << 63) - 1) -> int:
    value = meta.get(key)
    # bool is an int subclass: refuse it, it is never what a peer meant
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise malformed(f"field {key!r} must be an integer in [{lo}, {hi}]")
    return value


def get_time(meta: Mapping[str, Any], key: str) -> float:
    value = meta.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise malformed(f"field {key!r} must be a finite number")
    if not 0 <= value < 1e12:  # seconds since the epoch, sanity bound
        raise malformed(f"field {key!r} out of range")
    return float(value)


def get_str_list(meta: Mapping[str, Any], key: str, *, max_items: int = 16,
                 max_len: int = 64) -> list[str]:
    value = meta.get(key)
    if not isinstance(value, list | tuple) or len(value) > max_items:
        raise malformed(f"field {key!r} must be a list of at most {max_items} strings")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item or len(item) > max_len or not item.isprintable():
            raise malformed(f"field {key!r} must be a list of short strings")
        out.append(item)
    return out


def check_entity(name: str) -> str:
    """`type.id` as Ceph writes entity names (`client.admin`, `osd.3`, `mon.`)."""
    kind, dot, _ = name.partition(".")
    if not dot or not kind or not kind.isalnum():
        raise malformed("entity name must look like type.id")
    return name


def entity_type(name: str) -> str:
    return name.partition(".")[0]


def check_secret(secret: object, what: str = "secret") -> bytes:
    """Local configuration check (not peer input): a usable symmetric secret."""
    if not isinstance(secret, bytes | bytearray) or not SECRET_LEN <= len(secret) <= 64:
        raise AuthError(f"{what} must be {SECRET_LEN} to 64 bytes", _errno.EINVAL)
    return bytes(secret)


def parse_methods(value: str | Iterable[str]) -> list[str]:
    """`auth_*_required` / `auth_supported` values: "cephx", "none", "cephx, none"."""
    items = value.replace(";", ",").replace(" ", ",").split(",") if isinstance(value, str) else list(value)
    out = [m.strip().lower() for m in items if m and m.strip()]
    bad = [m for m in out if m not in METHODS]
    if bad or not out:
        raise ValueError(f"unknown authentication method(s) {bad or out!r}; expected cephx or none")
    return list(dict.fromkeys(out))


def required_for(entity: str, cluster_required: str, service_required: str) -> str:
    """Which `auth_*_required` applies to a peer: daemons use the cluster setting, clients the service one."""
    return cluster_required if entity_type(entity) in ("mon", "osd", "mgr", "mds") else service_required


# -- encodings ---------------------------------------------------------------------------------

def lp(*parts: bytes | str | int | float) -> bytes:
    """Unambiguous concatenation: every part length-prefixed, so (ab, c) != (a, bc)."""
    out = bytearray()
    for part in parts:
        if isinstance(part, str):
            raw = part.encode()
        elif isinstance(part, bool):
            raise TypeError("bool is not an lp() part")
        elif isinstance(part, int):
            raw = part.to_bytes(8, "big", signed=True)
        elif isinstance(part, float):
            raw = repr(part).encode()
        else:
            raw = bytes(part)
        out += len(raw).to_bytes(4, "big")
        out += raw
    return bytes(out)


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def unpack_map(raw: bytes) -> Mapping[str, Any]:
    """Decode a decrypted payload. Errors never carry msgpack's message: it can quote the bytes."""
    try:
        value = msgpack.unpackb(raw, raw=False, strict_map_key=True)
    except Exception:  # any decoding failure is one malformed-message error
        raise malformed("undecodable sealed payload") from None
    return require_map(value)


# -- crypto ------------------------------------------------------------------------------------

def derive(key: bytes, purpose: str, *, length: int = SECRET_LEN, salt: bytes | None = None) -> bytes:
    """A sub-key of `key` for one purpose (HKDF-SHA256, info = protocol label + purpose)."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt,
                info=PROTO_LABEL + b" " + purpose.encode()).derive(key)


def mac(key: bytes, *parts: bytes | str | int | float) -> bytes:
    return hmac.new(key, lp(PROTO_LABEL, *parts), hashlib.sha256).digest()


def digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def same(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def seal(key: bytes, plaintext: bytes, aad: bytes, rng: RandomBytes = os.urandom) -> bytes:
    """AES-GCM with a random nonce; the nonce travels in front of the ciphertext."""
    nonce = rng(AEAD_NONCE_LEN)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def unseal(key: bytes, blob: bytes, aad: bytes, what: str) -> bytes:
    if len(blob) < AEAD_OVERHEAD:
        raise AuthError(f"{what} is truncated")
    try:
        return AESGCM(key).decrypt(blob[:AEAD_NONCE_LEN], blob[AEAD_NONCE_LEN:], aad)
    except InvalidTag:
        raise AuthError(f"{what} failed authentication") from None


def choose_method(offered: Sequence[str], allowed: Sequence[str]) -> str | None:
    """The server's most preferred method that the peer offered."""
    for method in allowed:
        if method in offered:
            return method
    return None

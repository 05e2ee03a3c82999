"""cephx-style authentication, client <-> monitor (sans-IO state machines).

Nothing here touches a socket: each step takes the peer's message meta (a dict as
msgpack decodes it) and returns the meta to send, or raises `AuthError`. The driver
(monitor, OSD, client) moves the dicts in frames, closes the connection on any
`AuthError`, and installs the `FrameSealer`/`FrameOpener` pair from `session()`
once both sides are done. Unknown keys in a meta (`tid`, `protocol`, ...) are ignored,
so these fields merge into the driver's own HELLO/HELLO_REPLY.

Client <-> monitor, step by step (b16 = 16 random bytes)::

    C->M HELLO          {"entity": "client.admin", "auth": ["cephx", "none"]}     MonAuthClient.hello()
    M->C HELLO_REPLY    {"auth": "cephx", "challenge": sc:b16}                     MonAuthServer.handle_hello()
                        {"auth": "none", "global_id": int}  (method none: done)
    C->M AUTH_REQUEST   {"challenge": cc:b16, "proof": b32, "services"?: ["osd"]} .handle_hello_reply()
                        proof = HMAC(K_proof, "client-proof", entity, sc, cc, msgpack(services))
    M->C AUTH_REPLY     {"sealed": bytes, "proof": b32, "tickets"?: [ticket...]}   .handle_auth_request()
                        sealed = AES-GCM(K_seal, msgpack{key, gid, caps}, aad=("auth-reply", entity, sc, cc))
                        proof  = HMAC(K_proof, "server-proof", entity, sc, cc, sealed)
                        client: .handle_auth_reply() -> {service: Ticket}
    -- both: session(secure) -> frames sealed with keys from (session key, cc, sc) --
    C->M TICKET_REQUEST {"services": ["osd"], "nonce": b16}                        .ticket_request()
    M->C TICKET_REPLY   {"nonce": b16, "tickets": [ticket...]}                     .handle_ticket_request()
                        client: .handle_ticket_reply() -> {service: Ticket}
    D->M ROTATING_REQ   {"nonce": b16}           (daemons: osd.N gets the "osd" ring) .rotating_request()
    M->D ROTATING_REPLY {"nonce": b16, "sealed": bytes}                            .handle_rotating_request()
                        daemon: .handle_rotating_reply() -> ServiceSecrets

    ticket = {"service": str, "secret_id": int, "ticket": bytes, "key": bytes}  (see tickets.py)

K_proof and K_seal are HKDF sub-keys of the entity's secret; the secret never travels.
The proofs bind both challenges and the entity name, so an AUTH_REQUEST captured on one
connection is useless against another challenge, and the monitor's proof (plus the
AEAD seal bound to the same transcript) shows the client it talks to a holder of its
key (mutual authentication). Unknown entity and wrong key give the same error, after
the same amount of work (a dummy key is used for unknown entities).

The client <-> service (OSD) side is in `cephx_service.py`; see
docs/decisions/0004-authentication.md for the whole design.
"""

from __future__ import annotations

import errno as _errno
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from shoal.auth.cephx_core import (
    AUTH_CEPHX,
    AUTH_NONE,
    CHALLENGE_LEN,
    PROOF_LEN,
    AuthError,
    FrameAuthError,
    RandomBytes,
    check_entity,
    check_secret,
    choose_method,
    derive,
    entity_type,
    get_bytes,
    get_int,
    get_str,
    get_str_list,
    lp,
    mac,
    malformed,
    pack,
    parse_methods,
    require_map,
    required_for,
    same,
    seal,
    unpack_map,
    unseal,
)
from shoal.auth.cephx_service import (
    AuthedPeer,
    ServiceAuthClient,
    ServiceAuthServer,
    build_authorizer,
    verify_authorizer_reply,
)
from shoal.auth.session import FrameOpener, FrameSealer, connection_keys, session_pair
from shoal.auth.tickets import ServiceSecrets, Ticket, issue_ticket, receive_ticket

Lookup = Callable[[str], tuple[bytes, Mapping[str, str]] | None]
Required = str | Sequence[str] | Callable[[str], str | Sequence[str]]

ALLOW_ALL_CAPS: dict[str, str] = {"mon": "allow *", "osd": "allow *", "mgr": "allow *"}
MAX_TICKETS = 8  # services per request: mon, osd, mgr... bounded against junk
_MAX_PENDING = 16  # outstanding ticket/rotating requests a client remembers

# States of both state machines
NEW, HELLO_SENT, CHALLENGED, AUTH_SENT, DONE, FAILED = (
    "new", "hello_sent", "challenged", "auth_sent", "done", "failed")


def _proof_key(secret: bytes) -> bytes:
    return derive(secret, "entity proof", length=32)


def _seal_key(secret: bytes) -> bytes:
    return derive(secret, "entity seal")


class _Machine:
    state: str = NEW
    entity: str = ""
    method: str | None = None

    @contextmanager
    def _step(self, *expected: str) -> Iterator[None]:
        """Run one step: refuse it out of order, and fail the machine on any error."""
        if self.state not in expected:
            raise AuthError(f"auth step out of order (state {self.state})", _errno.EPROTO)
        try:
            yield
        except Exception:
            self.state = FAILED
            raise

    @property
    def authenticated(self) -> bool:
        return self.state == DONE

    def __repr__(self) -> str:
        return f"{type(self).__name__}(entity={self.entity!r}, state={self.state}, method={self.method})"


class MonAuthClient(_Machine):
    """Client (or daemon) side of the handshake with a monitor, one per connection.

    `want` is `auth_client_required` ("cephx", "none", or both in order of preference);
    with no secret, only "none" can be offered. `services` asks for tickets in the
    AUTH_REQUEST already (saves a round trip).
    """

    def __init__(self, entity: str, secret: bytes | None, want: str | Sequence[str] = (AUTH_CEPHX,), *,
                 services: Iterable[str] = (), now: Callable[[], float] = time.time,
                 rng: RandomBytes = os.urandom) -> None:
        self.entity = check_entity(entity)
        methods = parse_methods(want)
        if secret is None:
            methods = [m for m in methods if m != AUTH_CEPHX]
            if not methods:
                raise AuthError(f"no key for {entity}: cannot authenticate with cephx", _errno.ENOENT)
        self.want = methods
        self.services = list(dict.fromkeys(services))[:MAX_TICKETS]
        self._now = now
        self._rng = rng
        secret = check_secret(secret) if secret is not None else None
        self._k_proof = _proof_key(secret) if secret is not None else b""
        self._k_seal = _seal_key(secret) if secret is not None else b""
        self._sc = self._cc = b""
        self.global_id = 0
        self.session_key: bytes | None = None
        self.mon_caps = ""
        self.tickets: dict[str, Ticket] = {}
        self._k_tickets = self._k_rotating = b""
        self._pending: OrderedDict[bytes, tuple[str, list[str]]] = OrderedDict()

    def hello(self) -> dict[str, Any]:
        """Fields to merge into HELLO."""
        with self._step(NEW):
            self.state = HELLO_SENT
            return {"entity": self.entity, "auth": list(self.want)}

    def handle_hello_reply(self, meta: Mapping[str, Any]) -> dict[str, Any] | None:
        """AUTH_REQUEST meta, or None when the monitor chose "none" (then we are done)."""
        with self._step(HELLO_SENT):
            meta = require_map(meta)
            method = get_str(meta, "auth", max_len=16)
            if method not in self.want:
                raise AuthError(f"monitor chose authentication {method!r}, auth_client_required "
                                f"allows {self.want}", _errno.EACCES)
            self.method = method
            if method == AUTH_NONE:
                self.global_id = get_int(meta, "global_id") if "global_id" in meta else 0
                self.state = DONE
                return None
            self._sc = get_bytes(meta, "challenge", size=CHALLENGE_LEN)
            self._cc = self._rng(CHALLENGE_LEN)
            request: dict[str, Any] = {
                "challenge": self._cc,
                "proof": mac(self._k_proof, b"client-proof", self.entity, self._sc, self._cc,
                             pack(self.services)),
            }
            if self.services:
                request["services"] = list(self.services)
            self.state = AUTH_SENT
            return request

    def handle_auth_reply(self, meta: Mapping[str, Any]) -> dict[str, Ticket]:
        """Check the monitor's proof, take the session key; returns tickets asked for in
        `services` (empty dict if none)."""
        with self._step(AUTH_SENT):
            meta = require_map(meta)
            sealed = get_bytes(meta, "sealed", max_len=4096)
            proof = get_bytes(meta, "proof", size=PROOF_LEN)
            expect = mac(self._k_proof, b"server-proof", self.entity, self._sc, self._cc, sealed)
            if not same(expect, proof):
                raise AuthError("monitor failed to prove it knows our key (wrong key or not our cluster)",
                                _errno.EACCES)
            inner = unpack_map(unseal(self._k_seal, sealed, lp(b"auth-reply", self.entity, self._sc, self._cc),
                                      "session key"))
            session_key = get_bytes(inner, "key", size=16)
            self.global_id = get_int(inner, "gid", lo=1)
            caps = inner.get("caps")
            if not isinstance(caps, str):
                raise malformed("mon caps must be a string")
            self.mon_caps = caps
            self.session_key = session_key
            self._k_tickets = derive(session_key, "ticket keys")
            self._k_rotating = derive(session_key, "rotating secrets")
            tickets = self._receive(meta["tickets"], self._cc, self.services) if "tickets" in meta else {}
            self.state = DONE
            return tickets

    # -- after authentication -------------------------------------------------------------------
    def _remember(self, kind: str, services: list[str]) -> bytes:
        if self.state != DONE or self.method != AUTH_CEPHX:
            raise AuthError("not authenticated with cephx", _errno.EPROTO)
        nonce = self._rng(CHALLENGE_LEN)
        self._pending[nonce] = (kind, services)
        while len(self._pending) > _MAX_PENDING:
            self._pending.popitem(last=False)
        return nonce

    def _take(self, meta: Mapping[str, Any], kind: str) -> list[str]:
        nonce = get_bytes(meta, "nonce", size=CHALLENGE_LEN)
        pending = self._pending.get(nonce)
        if pending is None or pending[0] != kind:
            raise AuthError(f"{kind} reply matches no outstanding request", _errno.EPROTO)
        del self._pending[nonce]
        return pending[1]

    def ticket_request(self, services: Iterable[str]) -> dict[str, Any]:
        """TICKET_REQUEST meta (new tickets, e.g. to renew before expiry)."""
        wanted = list(dict.fromkeys(services))[:MAX_TICKETS]
        return {"services": wanted, "nonce": self._remember("ticket", wanted)}

    def handle_ticket_reply(self, meta: Mapping[str, Any]) -> dict[str, Ticket]:
        meta = require_map(meta)
        wanted = self._take(meta, "ticket")
        return self._receive(meta.get("tickets"), get_bytes(meta, "nonce"), wanted)

    def _receive(self, entries: object, request_nonce: bytes, wanted: list[str]) -> dict[str, Ticket]:
        if not isinstance(entries, list) or len(entries) > MAX_TICKETS:
            raise malformed("tickets must be a short list")
        now = self._now()
        out: dict[str, Ticket] = {}
        for entry in entries:
            ticket = receive_ticket(entry, entity=self.entity, global_id=self.global_id,
                                    ticket_key=self._k_tickets, request_nonce=request_nonce, now_local=now)
            if ticket.service not in wanted:
                raise AuthError(f"monitor sent a {ticket.service} ticket that was not asked for", _errno.EPROTO)
            out[ticket.service] = ticket
        self.tickets.update(out)
        return out

    def rotating_request(self) -> dict[str, Any]:
        """ROTATING_REQUEST meta: a daemon asks for its service's rotating secrets."""
        return {"nonce": self._remember("rotating", [])}

    def handle_rotating_reply(self, meta: Mapping[str, Any]) -> ServiceSecrets:
        meta = require_map(meta)
        self._take(meta, "rotating")
        nonce = get_bytes(meta, "nonce")
        sealed = get_bytes(meta, "sealed")
        inner = unpack_map(unseal(self._k_rotating, sealed, lp(b"rotating", self.entity, nonce),
                                  "rotating secrets"))
        return ServiceSecrets.from_wire(inner)

    def session(self, secure: bool, context: bytes = b"") -> tuple[FrameSealer, FrameOpener]:
        """(sealer for frames we send, opener for frames we receive) on this connection."""
        if self.state != DONE or self.session_key is None:
            raise AuthError("no cephx session on this connection", _errno.EPROTO)
        return session_pair(self.session_key, self._cc, self._sc, client=True, secure=secure, context=context)


class MonAuthServer(_Machine):
    """Monitor side, one per connection.

    `lookup(entity)` returns (secret, caps by service) from the auth database, or None.
    `required` is the accepted methods in order of preference ("cephx", "cephx, none",
    a list, or a callable of the peer's entity name, e.g. one built on `required_for` to
    apply auth_cluster_required to daemons and auth_service_required to clients).
    Ticket lifetime `ttl` defaults to the service secrets' ttl and may not exceed it
    (the secrets are kept exactly long enough for tickets of that lifetime).
    """

    def __init__(self, lookup: Lookup, service_secrets: ServiceSecrets, required: Required,
                 now: Callable[[], float], ttl: float | None = None, *,
                 next_global_id: Callable[[], int] | None = None, rng: RandomBytes = os.urandom) -> None:
        self._lookup = lookup
        self.secrets = service_secrets
        self._required = required
        self._now = now
        self.ttl = service_secrets.ttl if ttl is None else float(ttl)
        if not 0 < self.ttl <= service_secrets.ttl:
            raise ValueError("ticket ttl must be positive and at most the service secrets' ttl")
        self._next_gid = next_global_id or (lambda: int.from_bytes(rng(6), "big") | 1)
        self._rng = rng
        self._dummy = rng(16)  # stands in for an unknown entity's secret: same work, same error
        self._sc = self._cc = b""
        self.caps: dict[str, str] = {}
        self.global_id = 0
        self.session_key: bytes | None = None
        self._k_tickets = self._k_rotating = b""

    def _allowed(self, entity: str) -> list[str]:
        required = self._required(entity) if callable(self._required) else self._required
        return parse_methods(required)

    def _record(self) -> tuple[bytes, dict[str, str]] | None:
        """The entity's (secret, caps), or None if unknown or unusable (fail closed)."""
        found = self._lookup(self.entity)
        if not isinstance(found, tuple) or len(found) != 2:
            return None
        secret, caps = found
        if not isinstance(secret, bytes | bytearray) or not 16 <= len(secret) <= 64:
            return None
        if not isinstance(caps, Mapping) or not all(isinstance(k, str) and isinstance(v, str)
                                                    for k, v in caps.items()):
            return None
        return bytes(secret), dict(caps)

    def handle_hello(self, meta: Mapping[str, Any]) -> dict[str, Any]:
        """HELLO_REPLY fields: the chosen method and, for cephx, the server challenge."""
        with self._step(NEW):
            meta = require_map(meta)
            entity = check_entity(get_str(meta, "entity"))
            offered = get_str_list(meta, "auth")
            allowed = self._allowed(entity)
            method = choose_method(offered, allowed)
            if method is None:
                raise AuthError(f"no common authentication method: {entity} offers {offered}, "
                                f"this monitor accepts {allowed}", _errno.EOPNOTSUPP)
            self.entity, self.method = entity, method
            if method == AUTH_NONE:
                self.caps = dict(ALLOW_ALL_CAPS)  # as Ceph: auth none means no access control
                self.global_id = self._next_gid()
                self.state = DONE
                return {"auth": AUTH_NONE, "global_id": self.global_id}
            self._sc = self._rng(CHALLENGE_LEN)
            self.state = CHALLENGED
            return {"auth": AUTH_CEPHX, "challenge": self._sc}

    def handle_auth_request(self, meta: Mapping[str, Any]) -> dict[str, Any]:
        """AUTH_REPLY meta, or AuthError (the same one for a wrong key and an unknown entity)."""
        with self._step(CHALLENGED):
            meta = require_map(meta)
            cc = get_bytes(meta, "challenge", size=CHALLENGE_LEN)
            proof = get_bytes(meta, "proof", size=PROOF_LEN)
            services = get_str_list(meta, "services", max_items=MAX_TICKETS) if "services" in meta else []
            record = self._record()
            k_proof = _proof_key(record[0] if record is not None else self._dummy)
            good = same(mac(k_proof, b"client-proof", self.entity, self._sc, cc, pack(services)), proof)
            if not good or record is None:
                raise AuthError(f"authentication failed for {self.entity}", _errno.EACCES)
            secret, self.caps = record
            self._cc = cc
            session_key = self._rng(16)
            self.global_id = self._next_gid()
            inner = pack({"key": session_key, "gid": self.global_id, "caps": self.caps.get("mon", "")})
            sealed = seal(_seal_key(secret), inner, lp(b"auth-reply", self.entity, self._sc, cc), self._rng)
            reply: dict[str, Any] = {
                "sealed": sealed,
                "proof": mac(k_proof, b"server-proof", self.entity, self._sc, cc, sealed),
            }
            self.session_key = session_key
            self._k_tickets = derive(session_key, "ticket keys")
            self._k_rotating = derive(session_key, "rotating secrets")
            if services:
                reply["tickets"] = self._issue(services, cc)
            self.state = DONE
            return reply

    def _require_session(self) -> None:
        if self.state != DONE or self.method != AUTH_CEPHX:
            raise AuthError("tickets need an authenticated cephx session", _errno.EPROTO)

    def _refresh(self) -> None:
        """Re-read the auth database: a deleted entity gets nothing more, new caps apply."""
        record = self._record()
        if record is None:
            raise AuthError(f"{self.entity} is no longer in the auth database", _errno.EACCES)
        self.caps = record[1]

    def _issue(self, services: list[str], request_nonce: bytes) -> list[dict[str, Any]]:
        now = self._now()
        known = set(self.secrets.services)
        return [issue_ticket(self.secrets, service, entity=self.entity, global_id=self.global_id,
                             caps=self.caps.get(service, ""), now=now, ttl=self.ttl,
                             ticket_key=self._k_tickets, request_nonce=request_nonce, rng=self._rng)
                for service in dict.fromkeys(services) if service in known]

    def handle_ticket_request(self, meta: Mapping[str, Any]) -> dict[str, Any]:
        """TICKET_REPLY meta: fresh tickets for the services asked for that exist.
        Unknown services are left out (the client sees which are missing)."""
        self._require_session()
        meta = require_map(meta)
        nonce = get_bytes(meta, "nonce", size=CHALLENGE_LEN)
        services = get_str_list(meta, "services", max_items=MAX_TICKETS)
        self._refresh()
        return {"nonce": nonce, "tickets": self._issue(services, nonce)}

    def handle_rotating_request(self, meta: Mapping[str, Any]) -> dict[str, Any]:
        """ROTATING_REPLY meta: the rotating secrets of the peer's own service (osd.N gets
        the "osd" ring and nothing else), sealed under this session."""
        self._require_session()
        meta = require_map(meta)
        nonce = get_bytes(meta, "nonce", size=CHALLENGE_LEN)
        service = entity_type(self.entity)
        if service not in self.secrets.services:
            raise AuthError(f"{self.entity} may not fetch rotating service secrets", _errno.EACCES)
        self._refresh()
        inner = pack(self.secrets.to_wire([service]))
        return {"nonce": nonce,
                "sealed": seal(self._k_rotating, inner, lp(b"rotating", self.entity, nonce), self._rng)}

    def session(self, secure: bool, context: bytes = b"") -> tuple[FrameSealer, FrameOpener]:
        """(sealer for frames we send, opener for frames we receive) on this connection."""
        if self.state != DONE or self.session_key is None:
            raise AuthError("no cephx session on this connection", _errno.EPROTO)
        return session_pair(self.session_key, self._cc, self._sc, client=False, secure=secure, context=context)


__all__ = [
    "ALLOW_ALL_CAPS", "AUTH_CEPHX", "AUTH_NONE", "AuthError", "AuthedPeer", "FrameAuthError", "FrameOpener",
    "FrameSealer", "MonAuthClient", "MonAuthServer", "ServiceAuthClient", "ServiceAuthServer",
    "ServiceSecrets", "Ticket", "build_authorizer", "connection_keys", "parse_methods", "required_for",
    "verify_authorizer_reply",
]

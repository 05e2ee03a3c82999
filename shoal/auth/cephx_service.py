"""cephx-style authentication, client <-> service (OSD), without the monitor (sans-IO).

The client presents a ticket from the monitor plus an *authorizer* in its HELLO; the
service opens the ticket with its rotating service secret, which proves the monitor
issued it, and checks the authorizer, which proves the client holds the ticket's
session key *now* (timestamp within the clock-skew window, never seen before)::

    C->S HELLO        {"entity": str, "auth": ["cephx"], "service": "osd", "secret_id": int,
                       "ticket": bytes, "authorizer": bytes}            ServiceAuthClient.hello()
                      authorizer = AES-GCM(K_a, msgpack{cn: b16, ts: monitor-clock time, to: target},
                                           aad=("authorizer", service, secret_id, ticket))
    S->C HELLO_REPLY  {"auth": "cephx", "server_nonce": sn:b16, "proof": b32}
                      proof = HMAC(K_r, "authorizer-reply", service, secret_id, cn, sn)
                                                    ServiceAuthServer.handle_hello() -> (reply, AuthedPeer)
                      client: ServiceAuthClient.handle_hello_reply(reply)  (mutual authentication)
    -- both: session(secure) -> frames sealed with keys from (ticket session key, cn, sn) --

K_a and K_r are HKDF sub-keys of the ticket's session key. With method "none" the
HELLO is {"entity", "auth": ["none"]} and the reply {"auth": "none"}; the peer then has
caps "allow *", as with Ceph's auth none.
"""

from __future__ import annotations

import errno as _errno
import heapq
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shoal.auth.cephx_core import (
    AUTH_CEPHX,
    AUTH_NONE,
    CHALLENGE_LEN,
    PROOF_LEN,
    AuthError,
    RandomBytes,
    check_entity,
    choose_method,
    derive,
    digest,
    get_bytes,
    get_int,
    get_str,
    get_str_list,
    get_time,
    lp,
    mac,
    pack,
    parse_methods,
    require_map,
    same,
    seal,
    unpack_map,
    unseal,
)
from shoal.auth.session import FrameOpener, FrameSealer, session_pair
from shoal.auth.tickets import ServiceSecrets, Ticket, open_ticket

DEFAULT_SKEW = 60.0  # seconds an authorizer's timestamp may differ from the service's clock
DEFAULT_REPLAY_ENTRIES = 65536


def _authorizer_key(session_key: bytes) -> bytes:
    return derive(session_key, "authorizer")


def _reply_key(session_key: bytes) -> bytes:
    return derive(session_key, "authorizer reply", length=32)


def _authorizer_aad(service: str, secret_id: int, blob: bytes) -> bytes:
    return lp(b"authorizer", service, secret_id, blob)


def build_authorizer(ticket: Ticket, client_nonce: bytes, now: float, target: str = "") -> dict[str, Any]:
    """HELLO fields proving we hold `ticket` at local time `now` (converted to the
    monitor's clock with the offset measured when the ticket arrived). `target` (e.g.
    "osd.3") binds the authorizer to the daemon we mean to reach, so it cannot be
    replayed to another one within the window."""
    if len(client_nonce) != CHALLENGE_LEN:
        raise AuthError("client nonce must be 16 bytes", _errno.EINVAL)
    inner = pack({"cn": bytes(client_nonce), "ts": now + ticket.clock_offset, "to": target})
    sealed = seal(_authorizer_key(ticket.session_key), inner,
                  _authorizer_aad(ticket.service, ticket.secret_id, ticket.blob))
    return {"service": ticket.service, "secret_id": ticket.secret_id, "ticket": ticket.blob,
            "authorizer": sealed}


def verify_authorizer_reply(ticket: Ticket, client_nonce: bytes, reply_meta: Mapping[str, Any]) -> bytes:
    """Check the service's proof that it opened our ticket; returns its nonce (for the
    connection keys)."""
    reply_meta = require_map(reply_meta)
    server_nonce = get_bytes(reply_meta, "server_nonce", size=CHALLENGE_LEN)
    proof = get_bytes(reply_meta, "proof", size=PROOF_LEN)
    expect = mac(_reply_key(ticket.session_key), b"authorizer-reply", ticket.service, ticket.secret_id,
                 client_nonce, server_nonce)
    if not same(expect, proof):
        raise AuthError(f"{ticket.service} failed to prove it could read our ticket", _errno.EACCES)
    return server_nonce


@dataclass(frozen=True, slots=True)
class AuthedPeer:
    """Who is on the other end of an accepted service connection."""

    entity: str
    global_id: int
    caps: str  # the peer's caps for this service (from the ticket)
    method: str
    expires: float | None  # ticket expiry, monitor clock; None with auth none
    session_key: bytes | None = field(default=None, repr=False)
    client_nonce: bytes = field(default=b"", repr=False)
    server_nonce: bytes = field(default=b"", repr=False)

    def session(self, secure: bool, context: bytes = b"") -> tuple[FrameSealer, FrameOpener]:
        """(sealer for frames the service sends, opener for frames it receives)."""
        if self.session_key is None:
            raise AuthError("no cephx session on this connection", _errno.EPROTO)
        return session_pair(self.session_key, self.client_nonce, self.server_nonce, client=False,
                            secure=secure, context=context)


class ReplayCache:
    """Authorizers seen within the skew window, bounded.

    Entries older than the window need no memory: their timestamp is refused anyway.
    When full, the oldest entry is evicted and its timestamp becomes a floor: anything
    at or below it is refused too, since we could no longer tell a replay (fail closed;
    a client retrying builds a fresh authorizer above the floor).
    """

    def __init__(self, window: float, max_entries: int = DEFAULT_REPLAY_ENTRIES) -> None:
        self.window = window
        self.max_entries = max_entries
        self._seen: dict[bytes, float] = {}
        self._heap: list[tuple[float, bytes]] = []
        self.floor = float("-inf")

    def __len__(self) -> int:
        return len(self._seen)

    def check_and_add(self, key: bytes, ts: float, now: float) -> None:
        while self._heap and self._heap[0][0] < now - self.window:
            _, old = heapq.heappop(self._heap)
            self._seen.pop(old, None)
        if key in self._seen:
            raise AuthError("replayed authorizer", _errno.EACCES)
        if ts <= self.floor:
            raise AuthError("authorizer older than the replay cache covers; retry", _errno.EAGAIN)
        self._seen[key] = ts
        heapq.heappush(self._heap, (ts, key))
        while len(self._seen) > self.max_entries:
            old_ts, old = heapq.heappop(self._heap)
            self._seen.pop(old, None)
            self.floor = max(self.floor, old_ts)


class ServiceAuthServer:
    """Service (OSD) side; one per daemon, shared by its connections (the replay cache
    must see every connection). `secrets` is the daemon's copy of its rotating secrets,
    refreshed in place from the monitor (`ServiceSecrets.update_from`). `name` ("osd.3")
    refuses authorizers addressed to another daemon."""

    def __init__(self, service: str, secrets: ServiceSecrets, now: Callable[[], float],
                 required: str | Sequence[str] | Callable[[str], str | Sequence[str]] = AUTH_CEPHX, *,
                 name: str = "", skew: float = DEFAULT_SKEW, replay_entries: int = DEFAULT_REPLAY_ENTRIES,
                 rng: RandomBytes = os.urandom) -> None:
        self.service = service
        self.name = name
        self.secrets = secrets
        self._now = now
        self._required = required
        self.skew = skew
        self.replay = ReplayCache(skew, replay_entries)
        self._rng = rng

    def __repr__(self) -> str:
        return f"ServiceAuthServer(service={self.service!r}, skew={self.skew:g}, cached={len(self.replay)})"

    def handle_hello(self, meta: Mapping[str, Any]) -> tuple[dict[str, Any], AuthedPeer]:
        """Negotiate the method, then authenticate: (HELLO_REPLY fields, peer) or AuthError."""
        meta = require_map(meta)
        entity = check_entity(get_str(meta, "entity"))
        offered = get_str_list(meta, "auth")
        required = self._required(entity) if callable(self._required) else self._required
        allowed = parse_methods(required)
        method = choose_method(offered, allowed)
        if method is None:
            raise AuthError(f"no common authentication method: {entity} offers {offered}, "
                            f"{self.service} accepts {allowed}", _errno.EOPNOTSUPP)
        if method == AUTH_NONE:
            return {"auth": AUTH_NONE}, AuthedPeer(entity, 0, "allow *", AUTH_NONE, None)
        return self.handle_authorizer(meta, entity)

    def handle_authorizer(self, meta: Mapping[str, Any],
                          entity: str | None = None) -> tuple[dict[str, Any], AuthedPeer]:
        """Verify ticket (secret id, integrity, expiry, held by `entity` if given) and
        authorizer (session key, freshness, not replayed); reply with a proof of the
        session key. Only a fully accepted authorizer enters the replay cache."""
        meta = require_map(meta)
        service = get_str(meta, "service", max_len=64)
        if service != self.service:
            raise AuthError(f"ticket is for {service}, this is {self.service}", _errno.EACCES)
        secret_id = get_int(meta, "secret_id", lo=1)
        blob = get_bytes(meta, "ticket")
        sealed = get_bytes(meta, "authorizer", max_len=1024)
        now = self._now()
        ticket = open_ticket(self.secrets, service, secret_id, blob, now)
        if now >= ticket.expires:
            raise AuthError(f"{service} ticket of {ticket.entity} expired", _errno.EKEYEXPIRED)
        if entity is not None and ticket.entity != entity:
            raise AuthError(f"ticket of {ticket.entity} presented by {entity}")
        if ticket.created > now + self.skew:
            raise AuthError(f"{service} ticket of {ticket.entity} issued in the future: check clocks")
        inner = unpack_map(unseal(_authorizer_key(ticket.session_key), sealed,
                                  _authorizer_aad(service, secret_id, blob), "authorizer"))
        client_nonce = get_bytes(inner, "cn", size=CHALLENGE_LEN)
        ts = get_time(inner, "ts")
        target = inner.get("to", "")
        if not isinstance(target, str) or len(target) > 256 or not target.isprintable():
            raise AuthError("malformed authorizer target", _errno.EINVAL)
        if target and self.name and target != self.name:
            raise AuthError(f"authorizer of {ticket.entity} is addressed to {target}, this is {self.name}")
        if abs(now - ts) > self.skew:
            raise AuthError(f"authorizer of {ticket.entity} is {ts - now:+.0f}s off this {service}'s clock "
                            f"(allowed ±{self.skew:g}s)")
        self.replay.check_and_add(digest(blob)[:16] + client_nonce, ts, now)
        server_nonce = self._rng(CHALLENGE_LEN)
        proof = mac(_reply_key(ticket.session_key), b"authorizer-reply", service, secret_id,
                    client_nonce, server_nonce)
        peer = AuthedPeer(ticket.entity, ticket.global_id, ticket.caps, AUTH_CEPHX, ticket.expires,
                          ticket.session_key, client_nonce, server_nonce)
        return {"auth": AUTH_CEPHX, "server_nonce": server_nonce, "proof": proof}, peer


class ServiceAuthClient:
    """Client side of one connection to a service (OSD). With a ticket, cephx is offered
    (unless `want` excludes it); without, only "none"."""

    def __init__(self, entity: str, ticket: Ticket | None, want: str | Sequence[str] = (AUTH_CEPHX,), *,
                 now: Callable[[], float], target: str = "", rng: RandomBytes = os.urandom) -> None:
        self.entity = check_entity(entity)
        self.target = target
        methods = parse_methods(want)
        if ticket is None:
            methods = [m for m in methods if m != AUTH_CEPHX]
        elif ticket.entity != entity:
            raise ValueError("ticket belongs to another entity")
        if not methods:
            raise AuthError(f"no ticket for {entity}: cannot authenticate with cephx", _errno.ENOENT)
        self.want = methods
        self.ticket = ticket
        self._now = now
        self._rng = rng
        self._cn = b""
        self._sn = b""
        self.method: str | None = None
        self.state = "new"

    def __repr__(self) -> str:
        return f"ServiceAuthClient(entity={self.entity!r}, state={self.state}, method={self.method})"

    @property
    def authenticated(self) -> bool:
        return self.state == "done"

    def hello(self) -> dict[str, Any]:
        if self.state != "new":
            raise AuthError("auth step out of order", _errno.EPROTO)
        hello: dict[str, Any] = {"entity": self.entity, "auth": list(self.want)}
        if self.ticket is not None and AUTH_CEPHX in self.want:
            now = self._now()
            if self.ticket.expired(now):
                raise AuthError(f"{self.ticket.service} ticket expired: renew it from the monitor",
                                _errno.EKEYEXPIRED)
            self._cn = self._rng(CHALLENGE_LEN)
            hello.update(build_authorizer(self.ticket, self._cn, now, self.target))
        self.state = "hello_sent"
        return hello

    def handle_hello_reply(self, meta: Mapping[str, Any]) -> None:
        if self.state != "hello_sent":
            raise AuthError("auth step out of order", _errno.EPROTO)
        self.state = "failed"
        meta = require_map(meta)
        method = get_str(meta, "auth", max_len=16)
        if method not in self.want:
            raise AuthError(f"service chose authentication {method!r}, allowed: {self.want}", _errno.EACCES)
        if method == AUTH_CEPHX:
            if self.ticket is None or not self._cn:
                raise AuthError("service chose cephx without our authorizer", _errno.EPROTO)
            self._sn = verify_authorizer_reply(self.ticket, self._cn, meta)
        self.method = method
        self.state = "done"

    def session(self, secure: bool, context: bytes = b"") -> tuple[FrameSealer, FrameOpener]:
        if self.state != "done" or self.method != AUTH_CEPHX or self.ticket is None:
            raise AuthError("no cephx session on this connection", _errno.EPROTO)
        return session_pair(self.ticket.session_key, self._cn, self._sn, client=True, secure=secure,
                            context=context)

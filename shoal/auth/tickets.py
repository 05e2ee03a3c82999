"""Service tickets and the rotating service secrets that seal them (sans-IO).

A *ticket* lets an entity prove itself to a service (an OSD) without the service asking
the monitor. The monitor seals it with the service's current *service secret*::

    wire   {"service": str, "secret_id": int, "ticket": blob, "key": sealed_key}
    blob   = AES-GCM(service secret, random nonce,
                     msgpack {v, entity, gid, service, caps, key, created, expires},
                     aad = lp(label, "ticket", service, secret_id))
    sealed_key = AES-GCM(client's ticket-key, random nonce,
                         msgpack {key, created, expires},
                         aad = lp(label, "ticket-key", entity, service, request nonce, secret_id, blob))

The client cannot read the blob; it learns the ticket's session key from `sealed_key`,
which only it (holder of the monitor session key) can open, and which is bound to the
request nonce (a replayed old reply does not fit a new request).

`ServiceSecrets` keeps, per service, a ring of secrets: the *current* one (seals new
tickets), the *next* one (generated in advance, so services learn it before it is used)
and *retired* ones, kept while a ticket sealed with them can still be valid. The monitor
rotates every ttl/2; a secret retired at time R sealed tickets created before R, which
expire before R + ttl, so it is dropped after R + ttl. Services get their ring from the
monitor over their own authenticated session (`MonAuthServer.handle_rotating_request`),
and must refresh at least once per ttl/2 (every ttl/4 leaves margin).
"""

from __future__ import annotations

import errno as _errno
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shoal.auth.cephx_core import (
    AuthError,
    RandomBytes,
    check_secret,
    get_bytes,
    get_int,
    get_str,
    get_time,
    lp,
    malformed,
    pack,
    require_map,
    seal,
    unpack_map,
    unseal,
)

WIRE_VERSION = 1
MAX_TTL = 30 * 86400.0


@dataclass(frozen=True, slots=True)
class Ticket:
    """The client's copy of a service ticket. `blob` is opaque to it; `session_key` is
    what it shares with the service. Times are the monitor's clock; `clock_offset` is
    monitor clock minus local clock when the ticket arrived, so renewal and authorizer
    timestamps work even when the client's clock is off."""

    service: str
    secret_id: int
    entity: str
    global_id: int
    created: float
    expires: float
    clock_offset: float
    blob: bytes = field(repr=False)
    session_key: bytes = field(repr=False)

    def remaining(self, now_local: float) -> float:
        return self.expires - (now_local + self.clock_offset)

    def expired(self, now_local: float) -> bool:
        return self.remaining(now_local) <= 0

    def needs_renewal(self, now_local: float, fraction: float = 0.25) -> bool:
        """True once less than `fraction` of the ticket's lifetime is left."""
        return self.remaining(now_local) <= (self.expires - self.created) * fraction


@dataclass(frozen=True, slots=True)
class TicketContents:
    """What a service learns from a valid ticket."""

    entity: str
    global_id: int
    service: str
    caps: str
    created: float
    expires: float
    session_key: bytes = field(repr=False)


# -- rotating service secrets -------------------------------------------------------------------

@dataclass(slots=True)
class _Key:
    secret: bytes = field(repr=False)
    retired: float = 0.0  # 0: current or next; else when it stopped sealing tickets


@dataclass(slots=True)
class _Ring:
    current: int
    rotated_at: float
    keys: dict[int, _Key]


class ServiceSecrets:
    """Per-service rotating secrets. The monitor owns the authoritative copy
    (`ServiceSecrets(ttl, services)`, then `rotate_if_due(now)` from its tick); services
    hold read-only copies built with `from_wire` and refreshed with `update_from`."""

    def __init__(self, ttl: float, services: Iterable[str] = (), *, rng: RandomBytes = os.urandom) -> None:
        if not 0 < ttl <= MAX_TTL:
            raise ValueError(f"service ticket ttl must be in (0, {MAX_TTL:g}] seconds")
        self.ttl = float(ttl)
        self._services = list(dict.fromkeys(services))
        self._rings: dict[str, _Ring] = {}
        self._rng = rng
        self.authoritative = True  # False for a service's copy: it must not rotate on its own
        self.generation = 0  # bumps on every change: persist it, push it to the services

    def __repr__(self) -> str:
        rings = {s: {"current": r.current, "ids": sorted(r.keys)} for s, r in self._rings.items()}
        return f"ServiceSecrets(ttl={self.ttl:g}, generation={self.generation}, rings={rings})"

    @property
    def services(self) -> list[str]:
        return list(self._rings)

    def _new(self) -> _Key:
        return _Key(check_secret(self._rng(16), "generated service secret"))

    def rotate_if_due(self, now: float) -> bool:
        """Create missing rings, rotate rings older than ttl/2, drop secrets no valid ticket
        can use any more. True if anything changed (the caller persists and distributes)."""
        if not self.authoritative:
            raise AuthError("a service's copy of the rotating secrets cannot rotate", _errno.EPERM)
        changed = False
        for service in self._services:
            ring = self._rings.get(service)
            if ring is None:
                self._rings[service] = _Ring(1, now, {1: self._new(), 2: self._new()})
                changed = True
                continue
            if now >= ring.rotated_at + self.ttl / 2:
                ring.keys[ring.current].retired = now
                ring.current += 1
                ring.keys.setdefault(ring.current, self._new())
                ring.keys[ring.current + 1] = self._new()  # next: distributed before it is used
                ring.rotated_at = now
                changed = True
            for sid in [i for i, k in ring.keys.items() if k.retired and now > k.retired + self.ttl]:
                del ring.keys[sid]
                changed = True
        if changed:
            self.generation += 1
        return changed

    def current(self, service: str) -> tuple[int, bytes]:
        """(secret id, secret) that seals new tickets. KeyError if the ring doesn't exist."""
        ring = self._rings[service]
        return ring.current, ring.keys[ring.current].secret

    def get(self, service: str, secret_id: int, now: float | None = None) -> bytes | None:
        """The secret with that id, unless unknown or (given `now`) retired for longer than ttl."""
        ring = self._rings.get(service)
        key = ring.keys.get(secret_id) if ring is not None else None
        if key is None or (now is not None and key.retired and now > key.retired + self.ttl):
            return None
        return key.secret

    def lookup(self, service: str, secret_id: int, now: float) -> bytes:
        """`get` for a service verifying a ticket: the errno says whose move it is."""
        secret = self.get(service, secret_id, now)
        if secret is not None:
            return secret
        ring = self._rings.get(service)
        newest = max(ring.keys, default=0) if ring is not None else 0
        if newest < secret_id <= newest + 2:
            # The monitor rotated past what we know: the service must refresh its ring. Only for
            # ids a rotation could have produced, so junk ids cannot make it hammer the monitor.
            raise AuthError(f"unknown {service} secret id {secret_id}: rotating secrets not current",
                            _errno.EAGAIN)
        if secret_id > newest:
            raise AuthError(f"unknown {service} secret id {secret_id}")
        raise AuthError(f"{service} ticket sealed with retired secret id {secret_id}", _errno.EKEYEXPIRED)

    # -- persistence and distribution --------------------------------------------------------
    def to_wire(self, services: Iterable[str] | None = None) -> dict[str, Any]:
        """Plain structure with the secrets in clear: store it in the monitor's store or
        send it sealed (see `MonAuthServer.handle_rotating_request`), never in clear."""
        names = self._rings if services is None else [s for s in services if s in self._rings]
        return {
            "v": WIRE_VERSION,
            "ttl": self.ttl,
            "services": {
                s: {"current": self._rings[s].current, "rotated_at": self._rings[s].rotated_at,
                    "keys": [[i, k.secret, k.retired] for i, k in sorted(self._rings[s].keys.items())]}
                for s in names
            },
        }

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any], *, authoritative: bool = False,
                  rng: RandomBytes = os.urandom) -> ServiceSecrets:
        """Parse `to_wire` output. A service's copy is not authoritative (it cannot rotate);
        a monitor reloading its store passes authoritative=True."""
        wire = require_map(wire)
        if get_int(wire, "v") != WIRE_VERSION:
            raise malformed("unsupported rotating secrets version")
        ttl = get_time(wire, "ttl")
        if not 0 < ttl <= MAX_TTL:
            raise malformed("rotating secrets ttl out of range")
        services = wire.get("services")
        if not isinstance(services, Mapping) or len(services) > 32:
            raise malformed("rotating secrets: services must be a map")
        out = cls(ttl, services if authoritative else (), rng=rng)
        for name, ring_wire in services.items():
            if not isinstance(name, str) or not name.isalnum():
                raise malformed("rotating secrets: bad service name")
            ring_wire = require_map(ring_wire)
            keys_wire = ring_wire.get("keys")
            if not isinstance(keys_wire, list) or not 1 <= len(keys_wire) <= 64:
                raise malformed("rotating secrets: keys must be a non-empty list")
            keys: dict[int, _Key] = {}
            for entry in keys_wire:
                if not isinstance(entry, list | tuple) or len(entry) != 3:
                    raise malformed("rotating secrets: bad key entry")
                as_map = {"id": entry[0], "secret": entry[1], "retired": entry[2]}
                sid = get_int(as_map, "id", lo=1)
                keys[sid] = _Key(get_bytes(as_map, "secret", size=16), get_time(as_map, "retired"))
            current = get_int(ring_wire, "current", lo=1)
            if current not in keys:
                raise malformed("rotating secrets: current secret missing")
            out._rings[name] = _Ring(current, get_time(ring_wire, "rotated_at"), keys)
        out.authoritative = authoritative
        return out

    def update_from(self, other: ServiceSecrets) -> None:
        """Replace this copy's rings in place (services keep one object that verifiers share)."""
        self.ttl = other.ttl
        self._rings = {s: _Ring(r.current, r.rotated_at, {i: _Key(k.secret, k.retired) for i, k in r.keys.items()})
                       for s, r in other._rings.items()}
        self.generation += 1


# -- sealing and opening tickets -------------------------------------------------------------

def _ticket_aad(service: str, secret_id: int) -> bytes:
    return lp(b"ticket", service, secret_id)


def _key_aad(entity: str, service: str, request_nonce: bytes, secret_id: int, blob: bytes) -> bytes:
    return lp(b"ticket-key", entity, service, request_nonce, secret_id, blob)


def issue_ticket(secrets: ServiceSecrets, service: str, *, entity: str, global_id: int, caps: str,
                 now: float, ttl: float, ticket_key: bytes, request_nonce: bytes,
                 rng: RandomBytes = os.urandom) -> dict[str, Any]:
    """Monitor side: a fresh ticket for `entity`, as the wire entry of a ticket reply.
    `ticket_key` is the per-session key that seals the ticket's session key for the client."""
    secret_id, secret = secrets.current(service)
    session_key = rng(16)
    created, expires = now, now + ttl
    inner = pack({"v": WIRE_VERSION, "entity": entity, "gid": global_id, "service": service,
                  "caps": caps, "key": session_key, "created": created, "expires": expires})
    blob = seal(secret, inner, _ticket_aad(service, secret_id), rng)
    key_part = pack({"key": session_key, "created": created, "expires": expires})
    sealed_key = seal(ticket_key, key_part, _key_aad(entity, service, request_nonce, secret_id, blob), rng)
    return {"service": service, "secret_id": secret_id, "ticket": blob, "key": sealed_key}


def receive_ticket(entry: object, *, entity: str, global_id: int, ticket_key: bytes,
                   request_nonce: bytes, now_local: float) -> Ticket:
    """Client side: open one ticket entry of a reply to the request with `request_nonce`."""
    entry = require_map(entry)
    service = get_str(entry, "service", max_len=64)
    secret_id = get_int(entry, "secret_id", lo=1)
    blob = get_bytes(entry, "ticket")
    sealed_key = get_bytes(entry, "key", max_len=1024)
    inner = unpack_map(unseal(ticket_key, sealed_key, _key_aad(entity, service, request_nonce, secret_id, blob),
                              f"{service} ticket key"))
    session_key = get_bytes(inner, "key", size=16)
    created, expires = get_time(inner, "created"), get_time(inner, "expires")
    if expires <= created:
        raise malformed("ticket expires before it is created")
    return Ticket(service=service, secret_id=secret_id, entity=entity, global_id=global_id,
                  created=created, expires=expires, clock_offset=created - now_local,
                  blob=blob, session_key=session_key)


def open_ticket(secrets: ServiceSecrets, service: str, secret_id: int, blob: bytes, now: float) -> TicketContents:
    """Service side: decrypt and check a ticket (integrity, service). Expiry is the caller's
    check (it knows its clock-skew policy); `ServiceAuthServer` does it."""
    secret = secrets.lookup(service, secret_id, now)
    inner = unpack_map(unseal(secret, blob, _ticket_aad(service, secret_id), "ticket"))
    if get_int(inner, "v") != WIRE_VERSION or get_str(inner, "service", max_len=64) != service:
        raise AuthError("ticket is not for this service")
    return TicketContents(
        entity=get_str(inner, "entity"), global_id=get_int(inner, "gid"), service=service,
        caps=_get_caps(inner), created=get_time(inner, "created"), expires=get_time(inner, "expires"),
        session_key=get_bytes(inner, "key", size=16))


def _get_caps(inner: Mapping[str, Any]) -> str:
    caps = inner.get("caps")
    if not isinstance(caps, str) or len(caps) > 16384:
        raise malformed("ticket caps must be a string")
    return caps

"""Hypothesis fuzzing of every auth handler.

Property for each: random or mutated input gives `AuthError` or a valid result — never
another exception — and never an authentication that the genuine exchange would not
have produced (a mutated security field must fail; a success must carry the genuine
identity, keys and tickets).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from shoal.auth.cephx import (
    AuthError,
    MonAuthClient,
    MonAuthServer,
    ServiceAuthClient,
    ServiceAuthServer,
    ServiceSecrets,
    Ticket,
)

T0 = 1_700_000_000.0
TTL = 3600.0
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FIELDS = ["entity", "auth", "challenge", "proof", "services", "sealed", "tickets", "nonce", "global_id",
          "service", "secret_id", "ticket", "authorizer", "server_nonce", "key", "v", "ttl", "current",
          "keys", "rotated_at"]

scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats()
           | st.text(max_size=20) | st.binary(max_size=64))
values = st.recursive(scalars, lambda c: st.lists(c, max_size=4)
                      | st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=12)
junk_maps = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), values, max_size=8)
junk = junk_maps | values

_MISSING = object()


def typed_eq(a: Any, b: Any) -> bool:
    """Equality that tells 1 from 1.0 from True and b'' from ''."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(typed_eq(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(typed_eq(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and a != a:
        return b != b
    return bool(a == b)


@st.composite
def mutations(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """`base` with one to three edits: a field dropped, replaced, bit-flipped, cut, grown, or added."""
    out = dict(base)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["drop", "replace", "flip", "cut", "grow", "add", "deep"]))
        if op == "add" or not out:
            out[draw(st.sampled_from(FIELDS) | st.text(max_size=8))] = draw(values)
            continue
        key = draw(st.sampled_from(sorted(out)))
        value = out[key]
        if op == "drop":
            del out[key]
        elif op == "replace":
            out[key] = draw(values)
        elif op in ("flip", "cut", "grow") and isinstance(value, bytes) and value:
            b = bytearray(value)
            if op == "flip":
                i = draw(st.integers(0, len(b) * 8 - 1))
                b[i // 8] ^= 1 << (i % 8)
            elif op == "cut":
                del b[draw(st.integers(0, len(b) - 1)):]
            else:
                b += draw(st.binary(min_size=1, max_size=8))
            out[key] = bytes(b)
        elif op == "deep" and isinstance(value, list) and value:
            i = draw(st.integers(0, len(value) - 1))
            item = value[i]
            new = draw(mutations(item)) if isinstance(item, dict) else draw(values)
            out[key] = value[:i] + [new] + value[i + 1:]
        elif isinstance(value, int) and not isinstance(value, bool):
            out[key] = value + draw(st.sampled_from([-1, 1, 1 << 32]))
        else:
            out[key] = draw(values)
    return out


def changed(base: dict[str, Any], mutated: dict[str, Any]) -> set[str]:
    return {k for k in set(base) | set(mutated)
            if not typed_eq(base.get(k, _MISSING), mutated.get(k, _MISSING))}


def auth_error_or(fn: Callable[..., Any], *args: Any) -> tuple[bool, Any]:
    """(True, result) or (False, None) when fn raised AuthError; anything else fails the test."""
    try:
        result = fn(*args)
    except AuthError:
        event("rejected")
        return False, None
    event("accepted")
    return True, result


class Env:
    """One cluster's auth state, shared by examples (state machines are made per example)."""

    def __init__(self) -> None:
        self.now = T0
        self.secrets = ServiceSecrets(TTL, ["mon", "osd"])
        self.secrets.rotate_if_due(self.now)
        self.db = {"client.admin": (os.urandom(16), {"mon": "allow *", "osd": "allow rw"}),
                   "osd.0": (os.urandom(16), {"mon": "allow profile osd", "osd": "allow *"})}

    def clock(self) -> float:
        return self.now

    def client(self, entity: str = "client.admin", services: tuple[str, ...] = ("osd",)) -> MonAuthClient:
        return MonAuthClient(entity, self.db[entity][0], "cephx", services=services, now=self.clock)

    def mon(self) -> MonAuthServer:
        return MonAuthServer(self.db.get, self.secrets, "cephx", self.clock)

    def at_auth_request(self, entity: str = "client.admin") -> tuple[MonAuthClient, MonAuthServer, dict[str, Any]]:
        c, s = self.client(entity), self.mon()
        req = c.handle_hello_reply(s.handle_hello(c.hello()))
        assert req is not None
        return c, s, req

    def logged_in(self, entity: str = "client.admin") -> tuple[MonAuthClient, MonAuthServer, dict[str, Ticket]]:
        c, s, req = self.at_auth_request(entity)
        return c, s, c.handle_auth_reply(s.handle_auth_request(req))


@cache
def env() -> Env:
    return Env()


@cache
def osd_copy() -> ServiceSecrets:
    c, s, _ = env().logged_in("osd.0")
    return c.handle_rotating_reply(s.handle_rotating_request(c.rotating_request()))


@cache
def osd_ticket() -> Ticket:
    return env().logged_in()[2]["osd"]


# -- monitor side ------------------------------------------------------------------------------

@FUZZ
@given(meta=junk)
def test_mon_handle_hello_junk(meta: Any) -> None:
    ok, reply = auth_error_or(env().mon().handle_hello, meta)
    assert not ok or reply["auth"] == "cephx"


@FUZZ
@given(data=st.data())
def test_mon_handle_auth_request_mutated(data: st.DataObject) -> None:
    e = env()
    _, server, req = e.at_auth_request()
    mutated = data.draw(mutations(req))
    ok, _ = auth_error_or(server.handle_auth_request, mutated)
    if changed(req, mutated) & {"challenge", "proof", "services"}:
        assert not ok, "a mutated AUTH_REQUEST authenticated"
    assert ok == server.authenticated


@FUZZ
@given(meta=junk)
def test_mon_handle_auth_request_junk(meta: Any) -> None:
    e = env()
    _, server, _ = e.at_auth_request()
    ok, _ = auth_error_or(server.handle_auth_request, meta)
    assert not ok


@FUZZ
@given(meta=junk, rotating=st.booleans())
def test_mon_post_auth_requests_junk(meta: Any, rotating: bool) -> None:
    _, server, _ = env().logged_in("osd.0")
    handler = server.handle_rotating_request if rotating else server.handle_ticket_request
    ok, reply = auth_error_or(handler, meta)
    assert not ok or isinstance(reply, dict)


# -- client side -----------------------------------------------------------------------------

@FUZZ
@given(data=st.data())
def test_client_handle_hello_reply_mutated(data: st.DataObject) -> None:
    e = env()
    c, s = e.client(), e.mon()
    reply = s.handle_hello(c.hello())
    mutated = data.draw(mutations(reply) | junk_maps)
    ok, req = auth_error_or(c.handle_hello_reply, mutated)
    if ok:  # only ever a cephx answer to a cephx-only client, never "done" without proof
        assert mutated["auth"] == "cephx" and req is not None and not c.authenticated


@FUZZ
@given(data=st.data())
def test_client_handle_auth_reply_mutated(data: st.DataObject) -> None:
    e = env()
    c, s, req = e.at_auth_request()
    reply = s.handle_auth_request(req)
    mutated = data.draw(mutations(reply) | junk_maps)
    ok, tickets = auth_error_or(c.handle_auth_reply, mutated)
    if changed(reply, mutated) & {"sealed", "proof"}:
        assert not ok, "a mutated AUTH_REPLY authenticated"
    if ok:
        assert c.session_key == s.session_key and c.global_id == s.global_id
        genuine = {t["service"]: t["ticket"] for t in reply["tickets"]}
        assert all(genuine.get(svc) == t.blob for svc, t in tickets.items()), "a forged ticket was accepted"


@FUZZ
@given(data=st.data(), rotating=st.booleans())
def test_client_post_auth_replies_mutated(data: st.DataObject, rotating: bool) -> None:
    c, s, _ = env().logged_in("osd.0")
    if rotating:
        reply = s.handle_rotating_request(c.rotating_request())
        mutated = data.draw(mutations(reply) | junk_maps)
        ok, result = auth_error_or(c.handle_rotating_reply, mutated)
        if ok:
            assert result.to_wire() == ServiceSecrets.from_wire(env().secrets.to_wire(["osd"])).to_wire()
    else:
        c.ticket_request(["mon"])  # another outstanding request the reply must not be matched to
        reply = s.handle_ticket_request(c.ticket_request(["osd"]))
        mutated = data.draw(mutations(reply) | junk_maps)
        ok, result = auth_error_or(c.handle_ticket_reply, mutated)
        if ok:
            genuine = {t["service"]: t["ticket"] for t in reply["tickets"]}
            assert all(genuine.get(svc) == t.blob for svc, t in result.items())
    if changed(reply, mutated) & ({"nonce", "sealed"} if rotating else {"nonce"}):
        assert not ok


# -- service (OSD) side ----------------------------------------------------------------------

@FUZZ
@given(data=st.data())
def test_osd_handle_hello_mutated(data: st.DataObject) -> None:
    e = env()
    osd = ServiceAuthServer("osd", osd_copy(), e.clock)
    hello = ServiceAuthClient("client.admin", osd_ticket(), now=e.clock).hello()
    mutated = data.draw(mutations(hello) | junk_maps)
    ok, result = auth_error_or(osd.handle_hello, mutated)
    if changed(hello, mutated) & {"entity", "service", "secret_id", "ticket", "authorizer"}:
        assert not ok, "a mutated authorizer was accepted"
    if ok:
        _, peer = result
        assert (peer.entity, peer.caps, peer.session_key) == ("client.admin", "allow rw", osd_ticket().session_key)


@FUZZ
@given(data=st.data())
def test_client_handle_osd_reply_mutated(data: st.DataObject) -> None:
    e = env()
    osd = ServiceAuthServer("osd", osd_copy(), e.clock)
    c = ServiceAuthClient("client.admin", osd_ticket(), now=e.clock)
    reply, _ = osd.handle_hello(c.hello())
    mutated = data.draw(mutations(reply) | junk_maps)
    ok, _ = auth_error_or(c.handle_hello_reply, mutated)
    if changed(reply, mutated) & {"auth", "server_nonce", "proof"}:
        assert not ok, "a forged OSD reply was accepted"


@FUZZ
@given(data=st.data())
def test_service_secrets_from_wire(data: st.DataObject) -> None:
    base = env().secrets.to_wire()
    meta = data.draw(mutations(base) | junk)
    ok, result = auth_error_or(ServiceSecrets.from_wire, meta)
    if ok:
        assert isinstance(result, ServiceSecrets)
        for service in result.services:
            sid, secret = result.current(service)
            assert result.get(service, sid) == secret


@pytest.mark.parametrize("step", ["hello_reply", "auth_reply", "ticket_reply", "rotating_reply"])
def test_client_steps_reject_non_maps(step: str) -> None:
    for meta in (None, 1, b"x", "x", [], [1, 2], 1.5):
        c, _, _ = env().logged_in("osd.0")
        fresh = env().client()
        fresh.hello()
        handler = {"hello_reply": fresh.handle_hello_reply, "auth_reply": env().at_auth_request()[0].handle_auth_reply,
                   "ticket_reply": c.handle_ticket_reply, "rotating_reply": c.handle_rotating_reply}[step]
        with pytest.raises(AuthError):
            handler(meta)

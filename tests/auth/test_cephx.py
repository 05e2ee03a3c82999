"""cephx-style handshakes, tickets and rotating secrets: pure, with a fake clock."""

from __future__ import annotations

import base64
import errno
import os
from dataclasses import dataclass, field
from typing import Any

import msgpack
import pytest

from shoal.auth.cephx import (
    AuthError,
    MonAuthClient,
    MonAuthServer,
    ServiceAuthClient,
    ServiceAuthServer,
    ServiceSecrets,
    Ticket,
    build_authorizer,
    connection_keys,
    required_for,
    verify_authorizer_reply,
)
from shoal.auth.cephx_service import ReplayCache

TTL = 3600.0
T0 = 1_700_000_000.0


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def wire(meta: dict[str, Any]) -> dict[str, Any]:
    """What the peer sees: the meta after a msgpack round trip, as in a frame."""
    return msgpack.unpackb(msgpack.packb(meta, use_bin_type=True), raw=False)


@dataclass
class World:
    clock: Clock = field(default_factory=Clock)
    db: dict[str, tuple[bytes, dict[str, str]]] = field(default_factory=dict)
    secrets: ServiceSecrets = field(default_factory=lambda: ServiceSecrets(TTL, ["mon", "osd"]))
    errors: list[BaseException] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.secrets.rotate_if_due(self.clock())
        self.add("client.admin", {"mon": "allow *", "osd": "allow *"})
        self.add("client.cinder", {"mon": "profile rbd", "osd": "profile rbd pool=volumes"})
        self.add("osd.0", {"mon": "allow profile osd", "osd": "allow *"})

    def add(self, entity: str, caps: dict[str, str]) -> bytes:
        secret = os.urandom(16)
        self.db[entity] = (secret, caps)
        return secret

    def lookup(self, entity: str) -> tuple[bytes, dict[str, str]] | None:
        return self.db.get(entity)

    def mon(self, required: Any = "cephx", **kw: Any) -> MonAuthServer:
        return MonAuthServer(self.lookup, self.secrets, required, self.clock, **kw)

    def client(self, entity: str = "client.admin", secret: bytes | None = None, want: Any = "cephx",
               **kw: Any) -> MonAuthClient:
        if secret is None and entity in self.db:
            secret = self.db[entity][0]
        return MonAuthClient(entity, secret, want, now=self.clock, **kw)

    def login(self, entity: str = "client.admin", services: tuple[str, ...] = ("osd",),
              secure: bool = True) -> tuple[MonAuthClient, MonAuthServer, dict[str, Ticket]]:
        c, s = self.client(entity, services=services), self.mon()
        req = c.handle_hello_reply(wire(s.handle_hello(wire(c.hello()))))
        assert req is not None
        tickets = c.handle_auth_reply(wire(s.handle_auth_request(wire(req))))
        return c, s, tickets

    def osd_secrets(self) -> ServiceSecrets:
        """An OSD's copy, fetched over its own authenticated mon session."""
        c, s, _ = self.login("osd.0", services=())
        return c.handle_rotating_reply(wire(s.handle_rotating_request(wire(c.rotating_request()))))

    def expect_fail(self, fn: Any, *args: Any, err: int | None = errno.EACCES) -> AuthError:
        with pytest.raises(AuthError) as info:
            fn(*args)
        self.errors.append(info.value)
        if err is not None:
            assert info.value.errno == err, info.value
        return info.value


def connect_osd(w: World, ticket: Ticket, server: ServiceAuthServer,
                entity: str = "client.admin") -> tuple[ServiceAuthClient, Any]:
    c = ServiceAuthClient(entity, ticket, "cephx", now=w.clock)
    reply, peer = server.handle_hello(wire(c.hello()))
    c.handle_hello_reply(wire(reply))
    return c, peer


def check_session(a: tuple[Any, Any], b: tuple[Any, Any]) -> None:
    """Frames flow both ways between two (sealer, opener) pairs."""
    header = b"SH\x01\x04" + bytes(12)
    for tx, rx in ((a[0], b[1]), (b[0], a[1])):
        for i in range(3):
            m, d, tag = tx.seal(header, b"meta%d" % i, b"payload")
            assert rx.open(header, m, d, tag) == (b"meta%d" % i, b"payload")


# -- client <-> monitor ---------------------------------------------------------------------------

def test_happy_path_client_mon_osd() -> None:
    w = World()
    client, mon, tickets = w.login("client.cinder")
    assert client.authenticated and mon.authenticated
    assert client.global_id == mon.global_id > 0
    assert client.session_key == mon.session_key and len(client.session_key or b"") == 16
    assert client.mon_caps == "profile rbd"
    assert mon.caps == {"mon": "profile rbd", "osd": "profile rbd pool=volumes"}
    check_session(client.session(secure=True), mon.session(secure=True))

    ticket = tickets["osd"]
    assert ticket.entity == "client.cinder" and ticket.expires == T0 + TTL
    osd = ServiceAuthServer("osd", w.osd_secrets(), w.clock)
    w.clock.t += 10
    conn, peer = connect_osd(w, ticket, osd, "client.cinder")
    assert (peer.entity, peer.global_id, peer.caps, peer.method) == (
        "client.cinder", client.global_id, "profile rbd pool=volumes", "cephx")
    assert peer.expires == ticket.expires
    check_session(conn.session(secure=False), peer.session(secure=False))
    check_session(conn.session(secure=True), peer.session(secure=True))


def test_wrong_key_and_unknown_entity_fail_alike() -> None:
    w = World()
    mon = w.mon()
    bad = w.client("client.admin", secret=os.urandom(16))
    req = bad.handle_hello_reply(mon.handle_hello(bad.hello()))
    wrong = w.expect_fail(mon.handle_auth_request, req)
    assert mon.state == "failed"

    mon2 = w.mon()
    ghost = w.client("client.ghost", secret=os.urandom(16))
    req = ghost.handle_hello_reply(mon2.handle_hello(ghost.hello()))
    unknown = w.expect_fail(mon2.handle_auth_request, req)
    assert str(wrong).replace("admin", "X") == str(unknown).replace("ghost", "X")
    assert type(wrong) is type(unknown) and wrong.errno == unknown.errno == errno.EACCES
    # The monitor's HELLO_REPLY does not tell known from unknown either.
    known = w.mon().handle_hello({"entity": "client.admin", "auth": ["cephx"]})
    unknown_reply = w.mon().handle_hello({"entity": "client.ghost", "auth": ["cephx"]})
    assert set(known) == set(unknown_reply) and len(known["challenge"]) == len(unknown_reply["challenge"])


def test_replayed_auth_request_fails_against_new_challenge() -> None:
    w = World()
    c = w.client()
    first = w.mon()
    req = c.handle_hello_reply(first.handle_hello(c.hello()))
    first.handle_auth_request(req)  # the genuine exchange succeeds
    replay = w.mon()
    replay.handle_hello({"entity": "client.admin", "auth": ["cephx"]})
    w.expect_fail(replay.handle_auth_request, req)
    # ...and a monitor never runs the same step twice
    w.expect_fail(first.handle_auth_request, req, err=errno.EPROTO)


def test_monitor_must_prove_the_key_too() -> None:
    """A fake monitor (not holding the client's key) cannot complete the handshake."""
    w = World()
    c = w.client()
    fake = World()  # another cluster: its own random key for client.admin
    fake_mon = fake.mon()
    req = c.handle_hello_reply(fake_mon.handle_hello(c.hello()))
    with pytest.raises(AuthError):
        fake_mon.handle_auth_request(req)  # the fake rejects us, and could not have forged a reply:
    c2 = w.client()
    real = w.mon()
    req = c2.handle_hello_reply(real.handle_hello(c2.hello()))
    reply = real.handle_auth_request(req)
    for key in ("sealed", "proof"):
        for i in range(len(reply[key])):
            forged = dict(reply)
            forged[key] = reply[key][:i] + bytes([reply[key][i] ^ 1]) + reply[key][i + 1:]
            c3 = w.client()
            c3.hello()
            c3._sc, c3._cc, c3.state = c2._sc, c2._cc, "auth_sent"  # same transcript as c2
            w.expect_fail(c3.handle_auth_reply, forged)
    # a reply computed by someone who knows the transcript but not the key
    forged = dict(reply, proof=os.urandom(32))
    c4 = w.client()
    c4.hello()
    c4._sc, c4._cc, c4.state = c2._sc, c2._cc, "auth_sent"
    w.expect_fail(c4.handle_auth_reply, forged)
    assert c2.handle_auth_reply(reply) == {}


def test_auth_reply_for_another_handshake_is_refused() -> None:
    w = World()
    c1, c2 = w.client(), w.client()
    m1, m2 = w.mon(), w.mon()
    r1 = m1.handle_auth_request(c1.handle_hello_reply(m1.handle_hello(c1.hello())))
    c2.handle_hello_reply(m2.handle_hello(c2.hello()))
    w.expect_fail(c2.handle_auth_reply, r1)


def test_method_negotiation() -> None:
    w = World()
    # monitor requires cephx, client only offers none
    c = w.client("client.admin", want="none")
    w.expect_fail(w.mon().handle_hello, c.hello(), err=errno.EOPNOTSUPP)
    # a man in the middle answering "none" to a client that requires cephx
    c = w.client()
    c.hello()
    w.expect_fail(c.handle_hello_reply, {"auth": "none", "global_id": 5})
    # both allow none: no proof, Ceph's auth-none semantics (no access control)
    c = w.client("client.whoever", secret=None, want="cephx, none")
    assert c.want == ["none"]
    mon = w.mon(required="none")
    assert c.handle_hello_reply(mon.handle_hello(c.hello())) is None
    assert c.authenticated and mon.authenticated and mon.method == "none"
    assert mon.caps["osd"] == "allow *" and c.global_id == mon.global_id
    w.expect_fail(mon.handle_ticket_request, {"nonce": bytes(16), "services": ["osd"]}, err=errno.EPROTO)
    # server preference wins when both are allowed
    c = w.client(want=["none", "cephx"])
    assert w.mon(required="cephx, none").handle_hello(c.hello())["auth"] == "cephx"
    # no key and cephx required locally
    with pytest.raises(AuthError) as info:
        MonAuthClient("client.admin", None, "cephx")
    assert info.value.errno == errno.ENOENT


def test_required_depends_on_peer_type() -> None:
    w = World()
    def required(entity: str) -> str:
        return required_for(entity, cluster_required="cephx", service_required="none")
    assert w.mon(required=required).handle_hello({"entity": "osd.0", "auth": ["cephx", "none"]})["auth"] == "cephx"
    assert w.mon(required=required).handle_hello({"entity": "client.x", "auth": ["cephx", "none"]})["auth"] == "none"


def test_out_of_order_steps_are_refused() -> None:
    w = World()
    c = w.client()
    w.expect_fail(c.handle_hello_reply, {"auth": "cephx", "challenge": bytes(16)}, err=errno.EPROTO)
    w.expect_fail(c.ticket_request, ["osd"], err=errno.EPROTO)
    mon = w.mon()
    w.expect_fail(mon.handle_auth_request, {"challenge": bytes(16), "proof": bytes(32)}, err=errno.EPROTO)
    w.expect_fail(mon.handle_ticket_request, {"nonce": bytes(16), "services": ["osd"]}, err=errno.EPROTO)
    with pytest.raises(AuthError):
        mon.session(secure=True)


# -- tickets: issue, renew, expire -------------------------------------------------------------

def test_expired_ticket_is_rejected_and_renewal_works() -> None:
    w = World()
    client, mon, tickets = w.login()
    osd = ServiceAuthServer("osd", w.osd_secrets(), w.clock)
    ticket = tickets["osd"]
    assert not ticket.needs_renewal(w.clock())
    w.clock.t = T0 + TTL * 0.8
    assert ticket.needs_renewal(w.clock()) and not ticket.expired(w.clock())
    # renew over the authenticated mon session
    renewed = client.handle_ticket_reply(wire(mon.handle_ticket_request(wire(client.ticket_request(["osd"])))))
    new = renewed["osd"]
    assert new.expires == w.clock.t + TTL and new.session_key != ticket.session_key
    w.clock.t = T0 + TTL + 1
    assert ticket.expired(w.clock())
    hello = build_authorizer(ticket, os.urandom(16), w.clock()) | {"entity": "client.admin", "auth": ["cephx"]}
    w.expect_fail(osd.handle_hello, hello, err=errno.EKEYEXPIRED)
    with pytest.raises(AuthError) as info:
        ServiceAuthClient("client.admin", ticket, now=w.clock).hello()
    assert info.value.errno == errno.EKEYEXPIRED
    connect_osd(w, new, osd)  # the renewed one works


def test_deleted_entity_cannot_renew_and_caps_changes_apply() -> None:
    w = World()
    client, mon, _ = w.login("client.cinder")
    w.db["client.cinder"] = (w.db["client.cinder"][0], {"mon": "profile rbd", "osd": "profile rbd pool=vms"})
    t = client.handle_ticket_reply(mon.handle_ticket_request(client.ticket_request(["osd"])))["osd"]
    osd = ServiceAuthServer("osd", w.osd_secrets(), w.clock)
    assert connect_osd(w, t, osd, "client.cinder")[1].caps == "profile rbd pool=vms"
    del w.db["client.cinder"]
    w.expect_fail(mon.handle_ticket_request, client.ticket_request(["osd"]))
    w.expect_fail(mon.handle_rotating_request, client.rotating_request())


def test_ticket_reply_must_answer_our_request() -> None:
    w = World()
    client, mon, _ = w.login()
    old_reply = mon.handle_ticket_request(client.ticket_request(["osd"]))
    client.handle_ticket_reply(old_reply)
    w.expect_fail(client.handle_ticket_reply, old_reply, err=errno.EPROTO)  # replayed reply
    req = client.ticket_request(["osd"])
    reply = mon.handle_ticket_request(req)
    spliced = dict(reply, nonce=client.ticket_request(["osd"])["nonce"])  # an old answer to a new question
    w.expect_fail(client.handle_ticket_reply, spliced)
    # a ticket nobody asked for
    req = client.ticket_request(["mon"])
    reply = mon.handle_ticket_request(dict(req, services=["osd"]))
    w.expect_fail(client.handle_ticket_reply, reply, err=errno.EPROTO)
    # unknown services are left out, not invented
    req = client.ticket_request(["osd", "nonexistent"])
    assert set(client.handle_ticket_reply(mon.handle_ticket_request(req))) == {"osd"}


def test_ticket_ttl_cannot_outlive_the_secrets() -> None:
    w = World()
    with pytest.raises(ValueError):
        w.mon(ttl=TTL * 2)
    mon = w.mon(ttl=60)
    c = w.client(services=["osd"])
    tickets = c.handle_auth_reply(mon.handle_auth_request(c.handle_hello_reply(mon.handle_hello(c.hello()))))
    assert tickets["osd"].expires == T0 + 60


# -- rotating service secrets ------------------------------------------------------------------

def test_rotation_keeps_secrets_while_tickets_live() -> None:
    w = World()
    _, _, tickets = w.login()
    old = tickets["osd"]  # sealed with secret 1 at T0, valid until T0 + TTL
    osd_secrets = w.osd_secrets()  # knows 1 (current) and 2 (next)
    osd = ServiceAuthServer("osd", osd_secrets, w.clock)
    assert old.secret_id == 1 and osd_secrets.get("osd", 2) is not None

    w.clock.t = T0 + TTL / 2
    assert w.secrets.rotate_if_due(w.clock()) and not w.secrets.rotate_if_due(w.clock())
    assert w.secrets.current("osd")[0] == 2
    # tickets sealed with the new current secret work on an OSD that has not refreshed yet
    _, _, fresh = w.login()
    assert fresh["osd"].secret_id == 2
    connect_osd(w, fresh["osd"], osd)
    connect_osd(w, old, osd)  # the retired secret still opens live tickets

    w.clock.t = T0 + TTL  # rotate again: 2 retires, 3 current, 4 next
    w.secrets.rotate_if_due(w.clock())
    _, _, newest = w.login()
    assert newest["osd"].secret_id == 3
    w.expect_fail(connect_osd, w, newest["osd"], osd, err=errno.EAGAIN)  # stale ring: refresh it
    osd_secrets.update_from(w.osd_secrets())
    connect_osd(w, newest["osd"], osd)
    assert old.expired(w.clock())

    # secret 1 retired at T0 + TTL/2; after that + TTL nothing sealed with it is valid
    w.clock.t = T0 + TTL / 2 + TTL + 1
    w.secrets.rotate_if_due(w.clock())
    assert w.secrets.get("osd", 1) is None
    osd_secrets.update_from(w.osd_secrets())
    hello = build_authorizer(old, os.urandom(16), w.clock()) | {"entity": "client.admin", "auth": ["cephx"]}
    w.expect_fail(osd.handle_hello, hello, err=errno.EKEYEXPIRED)
    # an OSD holding an old copy also refuses it once the grace is over (its own clock)
    assert ServiceSecrets.from_wire(osd_secrets.to_wire()).get("osd", 2, now=w.clock.t) is not None


def test_service_secrets_wire_and_roles() -> None:
    w = World()
    copy = ServiceSecrets.from_wire(wire(w.secrets.to_wire()))
    assert copy.current("osd") == w.secrets.current("osd")
    assert not copy.authoritative
    with pytest.raises(AuthError):
        copy.rotate_if_due(T0 + TTL)
    reloaded = ServiceSecrets.from_wire(w.secrets.to_wire(), authoritative=True)
    assert reloaded.rotate_if_due(T0 + TTL) and reloaded.current("osd")[0] == 2
    assert repr(w.secrets).count("current") == 2
    # an OSD gets its own ring only; a client gets none
    assert w.osd_secrets().services == ["osd"]
    client, mon, _ = w.login()
    w.expect_fail(mon.handle_rotating_request, client.rotating_request())


def test_rotating_reply_is_sealed_for_the_daemon() -> None:
    w = World()
    c, s, _ = w.login("osd.0", services=())
    reply = s.handle_rotating_request(c.rotating_request())
    secret = w.secrets.current("osd")[1]
    assert secret not in msgpack.packb(reply, use_bin_type=True)
    sealed = bytearray(reply["sealed"])
    sealed[-1] ^= 1
    w.expect_fail(c.handle_rotating_reply, dict(reply, sealed=bytes(sealed)))


# -- client <-> OSD ------------------------------------------------------------------------------

def test_authorizer_replay_and_clock_window() -> None:
    w = World()
    _, _, tickets = w.login()
    osd = ServiceAuthServer("osd", w.osd_secrets(), w.clock, skew=30)
    c = ServiceAuthClient("client.admin", tickets["osd"], now=w.clock)
    hello = c.hello()
    reply, _ = osd.handle_hello(hello)
    w.expect_fail(osd.handle_hello, hello)  # the same authorizer again
    assert "replayed" in str(w.errors[-1])
    # stale authorizers are refused by time (and need no cache memory)
    stale = build_authorizer(tickets["osd"], os.urandom(16), w.clock() - 31) | {
        "entity": "client.admin", "auth": ["cephx"]}
    w.expect_fail(osd.handle_hello, stale)
    future = build_authorizer(tickets["osd"], os.urandom(16), w.clock() + 31) | {
        "entity": "client.admin", "auth": ["cephx"]}
    w.expect_fail(osd.handle_hello, future)
    w.clock.t += 100
    w.expect_fail(osd.handle_hello, hello)  # now too old as well
    connect_osd(w, tickets["osd"], osd)  # a fresh one is fine, and entries past the window are pruned
    assert len(osd.replay) == 1


def test_client_with_a_wrong_clock_uses_the_monitors_time() -> None:
    w = World()
    _, _, tickets = w.login()
    osd = ServiceAuthServer("osd", w.osd_secrets(), w.clock)
    wrong = Clock(T0 - 7200)  # the client's clock is two hours behind
    c = MonAuthClient("client.admin", w.db["client.admin"][0], "cephx", services=["osd"], now=wrong)
    m = w.mon()
    t = c.handle_auth_reply(m.handle_auth_request(c.handle_hello_reply(m.handle_hello(c.hello()))))["osd"]
    assert t.clock_offset == 7200 and not t.needs_renewal(wrong())
    sc = ServiceAuthClient("client.admin", t, now=wrong)
    reply, _ = osd.handle_hello(sc.hello())
    sc.handle_hello_reply(reply)


def test_replay_cache_is_bounded_and_fails_closed() -> None:
    cache = ReplayCache(window=60, max_entries=3)
    for i in range(3):
        cache.check_and_add(b"k%d" % i, T0 + i, T0)
    cache.check_and_add(b"k3", T0 + 3, T0)  # evicts k0 (ts T0): the floor rises to T0
    assert len(cache) == 3 and cache.floor == T0
    with pytest.raises(AuthError) as info:
        cache.check_and_add(b"k0", T0, T0)  # could be a replay of the evicted entry
    assert info.value.errno == errno.EAGAIN
    with pytest.raises(AuthError):
        cache.check_and_add(b"k2", T0 + 2, T0)
    cache.check_and_add(b"k9", T0 + 9, T0 + 100)  # old entries pruned by time
    assert len(cache) == 1


def test_tampered_ticket_or_authorizer_is_rejected() -> None:
    w = World()
    _, _, tickets = w.login()
    osd = ServiceAuthServer("osd", w.osd_secrets(), w.clock)
    ticket = tickets["osd"]
    base = build_authorizer(ticket, os.urandom(16), w.clock()) | {"entity": "client.admin", "auth": ["cephx"]}
    for key in ("ticket", "authorizer"):
        blob = base[key]
        for bit in range(len(blob) * 8):
            mutated = bytearray(blob)
            mutated[bit // 8] ^= 1 << (bit % 8)
            w.expect_fail(osd.handle_hello, dict(base, **{key: bytes(mutated)}), err=None)
    w.expect_fail(osd.handle_hello, dict(base, secret_id=2), err=None)
    w.expect_fail(osd.handle_hello, dict(base, service="mon"))
    w.expect_fail(osd.handle_hello, dict(base, entity="client.cinder"))  # someone else's ticket
    osd.handle_hello(base)  # the original was never consumed by the failures above


def test_ticket_for_another_service_or_cluster() -> None:
    w = World()
    _, _, tickets = w.login(services=("mon", "osd"))
    mon_service = ServiceAuthServer("mon", w.secrets, w.clock)
    connect_osd(w, tickets["mon"], mon_service)
    w.expect_fail(connect_osd, w, tickets["mon"], ServiceAuthServer("osd", w.osd_secrets(), w.clock))
    other = World()
    w.expect_fail(connect_osd, w, tickets["osd"], ServiceAuthServer("osd", other.osd_secrets(), w.clock))


def test_osd_must_prove_it_read_the_ticket() -> None:
    w = World()
    _, _, tickets = w.login()
    osd = ServiceAuthServer("osd", w.osd_secrets(), w.clock)
    c = ServiceAuthClient("client.admin", tickets["osd"], now=w.clock)
    reply, _ = osd.handle_hello(c.hello())
    for key in ("proof", "server_nonce"):
        forged = dict(reply, **{key: bytes(len(reply[key]))})
        with pytest.raises(AuthError):
            verify_authorizer_reply(tickets["osd"], c._cn, forged)
    w.expect_fail(c.handle_hello_reply, {"auth": "cephx", "server_nonce": os.urandom(16),
                                         "proof": os.urandom(32)})
    w.expect_fail(ServiceAuthClient("client.admin", tickets["osd"], now=w.clock).handle_hello_reply,
                  reply, err=errno.EPROTO)


def test_service_auth_none() -> None:
    w = World()
    osd = ServiceAuthServer("osd", w.osd_secrets(), w.clock, required="none")
    c = ServiceAuthClient("client.x", None, "cephx, none", now=w.clock)
    reply, peer = osd.handle_hello(c.hello())
    c.handle_hello_reply(reply)
    assert c.authenticated and peer.caps == "allow *" and peer.method == "none"
    with pytest.raises(AuthError):
        peer.session(secure=True)
    strict = ServiceAuthServer("osd", w.osd_secrets(), w.clock)
    w.expect_fail(strict.handle_hello, ServiceAuthClient("client.x", None, "none", now=w.clock).hello(),
                  err=errno.EOPNOTSUPP)
    # a client that requires cephx refuses a service answering "none"
    _, _, tickets = w.login()
    c = ServiceAuthClient("client.admin", tickets["osd"], "cephx", now=w.clock)
    c.hello()
    w.expect_fail(c.handle_hello_reply, {"auth": "none"})


# -- no key material in messages or reprs ------------------------------------------------------

def _forms(secret: bytes) -> list[str]:
    return [secret.hex(), base64.b64encode(secret).decode(), repr(secret)[2:-1], str(list(secret))[1:-1]]


def test_no_secret_in_errors_or_reprs() -> None:
    w = World()
    client, mon, tickets = w.login()
    osd_secrets = w.osd_secrets()
    osd = ServiceAuthServer("osd", osd_secrets, w.clock)
    sc, peer = connect_osd(w, tickets["osd"], osd)
    pairs = [client.session(True), mon.session(True), sc.session(False), peer.session(False)]
    secrets = [v[0] for v in w.db.values()] + [client.session_key or b"", tickets["osd"].session_key]
    secrets += [osd_secrets.get("osd", i) or b"" for i in (1, 2)]
    secrets += [w.secrets.get("mon", i) or b"" for i in (1, 2)]
    secrets += [*connection_keys(client.session_key or b"", client._cc, client._sc),
                *connection_keys(tickets["osd"].session_key, sc._cn, sc._sn),
                client._k_proof, client._k_seal, client._k_tickets, client._k_rotating]

    # provoke one of every failure
    for entity in ("client.admin", "client.ghost"):
        bad = w.client(entity, secret=os.urandom(16))
        m = w.mon()
        w.expect_fail(m.handle_auth_request, bad.handle_hello_reply(m.handle_hello(bad.hello())))
        texts_of_failed = repr(m) + repr(bad)
        assert "failed" in texts_of_failed
    w.expect_fail(osd.handle_hello, dict(build_authorizer(tickets["osd"], os.urandom(16), w.clock()),
                                         entity="client.admin", auth=["cephx"], ticket=b"x" * 40))
    w.expect_fail(client.handle_ticket_reply, {"nonce": os.urandom(16), "tickets": []}, err=None)
    opener = pairs[1][1]
    with pytest.raises(AuthError) as info:
        opener.open(b"h" * 16, b"m", b"d", b"t" * 16)
    w.errors.append(info.value)

    texts = [repr(o) for o in (client, mon, sc, peer, osd, osd_secrets, w.secrets, *tickets.values(),
                               *(p for pair in pairs for p in pair))]
    texts += [str(e) + repr(e) + repr(e.args) for e in w.errors]
    assert all(e.__cause__ is None and (e.__context__ is None or e.__suppress_context__) for e in w.errors
               if isinstance(e, AuthError) and "failed authentication" in str(e))
    for text in texts:
        for secret in secrets:
            for form in _forms(secret):
                assert form not in text, (text, "leaks key material")


def test_authorizer_is_bound_to_its_target_daemon() -> None:
    w = World()
    _, _, tickets = w.login()
    secrets = w.osd_secrets()
    osd1 = ServiceAuthServer("osd", secrets, w.clock, name="osd.1")
    osd2 = ServiceAuthServer("osd", secrets, w.clock, name="osd.2")
    c = ServiceAuthClient("client.admin", tickets["osd"], now=w.clock, target="osd.1")
    hello = c.hello()
    w.expect_fail(osd2.handle_hello, hello)  # captured on the way to osd.1, replayed to osd.2
    c.handle_hello_reply(osd1.handle_hello(hello)[0])


def test_junk_secret_ids_do_not_look_like_stale_rings() -> None:
    w = World()
    _, _, tickets = w.login()
    osd = ServiceAuthServer("osd", w.osd_secrets(), w.clock)
    hello = build_authorizer(tickets["osd"], os.urandom(16), w.clock()) | {"entity": "client.admin",
                                                                           "auth": ["cephx"]}
    w.expect_fail(osd.handle_hello, dict(hello, secret_id=3), err=errno.EAGAIN)  # plausible: refresh
    w.expect_fail(osd.handle_hello, dict(hello, secret_id=10**9))  # junk: no refresh storm

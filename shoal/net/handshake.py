"""Client ends of the connection handshakes (drivers for the sans-IO `shoal.auth` machines).

Used by the client library, by OSDs towards the monitor and by OSDs towards each
other, so every peer authenticates the same way: HELLO (method and connection mode
negotiated), then for cephx the proof exchange, then sealed frames both ways.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shoal.auth import negotiate
from shoal.auth.cephx import MonAuthClient
from shoal.auth.cephx_core import AuthError
from shoal.auth.cephx_service import ServiceAuthClient
from shoal.auth.tickets import Ticket
from shoal.errors import AccessDenied
from shoal.net.connection import Connection
from shoal.wire.frame import Frame
from shoal.wire.messages import AUTH_NONE, PROTOCOL_VERSION, Msg


@dataclass
class Identity:
    """Who we are and how we may authenticate (from config and keyring)."""

    entity: str
    secret: bytes | None
    methods: list[str]  # acceptable auth methods, e.g. ["cephx"] or ["cephx", "none"]
    modes: list[str]  # acceptable connection modes, preferred first, e.g. ["crc", "secure"]

    @classmethod
    def from_config(cls, conf: Any, entity: str, secret: bytes | None) -> Identity:
        # Daemons talk to each other under the cluster setting, clients under the client one.
        daemon = entity.split(".", 1)[0] in ("mon", "osd", "mgr", "mds")
        option = "auth_cluster_required" if daemon else "auth_client_required"
        methods = [m for m in str(conf.get(option) or "cephx").replace(",", " ").split() if m]
        modes = str(conf.get("ms_mode") or "crc secure").split()
        return cls(entity, secret, methods, modes)


def _refused(reply: Frame, what: str) -> AccessDenied:
    err = abs(int(reply.meta.get("err", -errno.EACCES)))
    return AccessDenied(f"{what}: {reply.meta.get('msg', 'refused')}", err)


async def mon_handshake(conn: Connection, me: Identity, services: Sequence[str] = (),
                        timeout: float = 10.0) -> tuple[MonAuthClient, dict[str, Any]]:
    """Authenticate to a monitor; returns the auth machine (tickets, global id) and the
    monitor's HELLO_REPLY fields (fsid…). Raises AccessDenied / AuthError."""
    auth = MonAuthClient(me.entity, me.secret, me.methods, services=list(services))
    hello = auth.hello()
    hello.update(protocol=PROTOCOL_VERSION, modes=me.modes)
    reply = await conn.request(Msg.HELLO, hello, timeout=timeout)
    if reply.type != Msg.HELLO_REPLY:
        raise _refused(reply, "monitor refused the connection")
    mode = negotiate.check_chosen(reply.meta.get("mode", "crc"), me.modes)
    request = auth.handle_hello_reply(reply.meta)
    if request is not None:
        answer = await conn.request(Msg.AUTH_REQUEST, request, timeout=timeout)
        if answer.type != Msg.AUTH_REPLY:
            raise _refused(answer, "authentication failed")
        auth.handle_auth_reply(answer.meta)
        conn.install_session(*auth.session(negotiate.is_secure(mode), negotiate.context(mode)))
    return auth, dict(reply.meta)


async def renew_tickets(conn: Connection, auth: MonAuthClient, services: Sequence[str],
                        timeout: float = 10.0) -> dict[str, Ticket]:
    reply = await conn.request(Msg.TICKET_REQUEST, auth.ticket_request(list(services)), timeout=timeout)
    if reply.type != Msg.TICKET_REPLY:
        raise _refused(reply, "ticket renewal refused")
    return auth.handle_ticket_reply(reply.meta)


async def service_handshake(conn: Connection, me: Identity, ticket: Ticket | None, target: str,
                            timeout: float = 10.0) -> dict[str, Any]:
    """Authenticate to an OSD with a ticket (mutual); returns its HELLO_REPLY fields."""
    if ticket is None and AUTH_NONE not in me.methods:
        raise AuthError(f"no ticket for {target}", errno.EACCES)
    auth = ServiceAuthClient(me.entity, ticket, me.methods, now=time.time, target=target)
    hello = auth.hello()
    hello.update(protocol=PROTOCOL_VERSION, modes=me.modes)
    reply = await conn.request(Msg.HELLO, hello, timeout=timeout)
    if reply.type != Msg.HELLO_REPLY:
        raise _refused(reply, f"{target} refused the connection")
    mode = negotiate.check_chosen(reply.meta.get("mode", "crc"), me.modes)
    auth.handle_hello_reply(reply.meta)
    if auth.method != AUTH_NONE:
        conn.install_session(*auth.session(negotiate.is_secure(mode), negotiate.context(mode)))
    return dict(reply.meta)

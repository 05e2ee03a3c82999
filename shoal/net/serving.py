"""What every daemon does with an incoming frame around its own handling.

Handlers are looked up by message type: a few are allowed before the connection has
authenticated (the handshake), the rest only after. Unknown types, requests before
the handshake, refused authentication and malformed messages get the same answers and
log lines from the monitor and the OSDs alike.
"""

from __future__ import annotations

import errno
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping

from shoal.auth.cephx_core import AuthError
from shoal.net.connection import Connection
from shoal.wire.frame import Frame
from shoal.wire.messages import PROTOCOL_VERSION, Msg

Handler = Callable[[Connection, Frame], Awaitable[None] | None]

# A well-framed message whose fields are missing or of the wrong type raises one of these.
MALFORMED = (KeyError, TypeError, ValueError, AttributeError, IndexError)


def protocol_ok(conn: Connection, frame: Frame, log: logging.Logger) -> bool:
    """Check a HELLO's protocol version; refuses the connection when it is not ours."""
    version = frame.meta.get("protocol")
    if version == PROTOCOL_VERSION:
        return True
    log.warning("event=refused peer=%s reason=protocol_version version=%r", conn.peer, version)
    conn.refuse(frame, -errno.EOPNOTSUPP, "unsupported protocol version")
    return False


async def serve_frame(conn: Connection, frame: Frame, log: logging.Logger, *,
                      handshake: Mapping[int, Handler], handlers: Mapping[int, Handler],
                      daemons_only: frozenset[int] = frozenset(),
                      is_daemon: Callable[[Connection, Frame], bool] = lambda c, f: False) -> AuthError | None:
    """Dispatch one frame; returns the AuthError that refused it, if any."""
    t = frame.type
    try:
        handler = handshake.get(t)
        if handler is None:
            if not conn.info.get("authenticated"):
                log.warning("event=refused peer=%s reason=request_before_handshake type=%d", conn.peer, t)
                conn.refuse(frame, -errno.EACCES, "handshake required")
                return None
            if t in daemons_only and not is_daemon(conn, frame):
                conn.refuse(frame, -errno.EACCES, "only daemons may send this")
                return None
            handler = handlers.get(t)
        if handler is None:
            if not conn.info.get("warned_unknown"):  # once per connection, not per frame
                conn.info["warned_unknown"] = True
                log.warning("event=unknown_message peer=%s type=%d", conn.peer, t)
            conn.reply(frame, Msg.ERROR, {"err": -errno.EINVAL, "msg": f"unknown message type {t}"})
            return None
        result = handler(conn, frame)
        if inspect.isawaitable(result):
            await result
    except AuthError as exc:
        log.warning("event=auth_refused peer=%s entity=%s reason=%s", conn.peer, conn.info.get("entity"), exc)
        conn.refuse(frame, -exc.errno, str(exc))
        return exc
    except MALFORMED as exc:
        # A well-framed but malformed message: refuse it, keep serving others.
        log.warning("event=bad_message peer=%s type=%d error=%r", conn.peer, t, exc)
        conn.refuse(frame, -errno.EINVAL, f"malformed message: {exc}")
    return None

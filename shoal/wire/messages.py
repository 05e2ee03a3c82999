"""Message type numbers of Shoal's protocol and the handshake step.

Every connection starts with HELLO / HELLO_REPLY, where the authentication method is
agreed (only "none" for now; cephx slots in as extra AUTH_* exchanges between the
two). After that, requests carry a per-connection `tid` and their reply echoes it.
"""

from __future__ import annotations

import enum


class Msg(enum.IntEnum):
    HELLO = 1
    HELLO_REPLY = 2
    ERROR = 3  # {tid?, err, msg}: the peer refuses a request or the connection
    # cephx (shoal/auth/cephx.py describes every field)
    AUTH_REQUEST = 4  # client proof -> AUTH_REPLY (session key sealed for the client, tickets)
    AUTH_REPLY = 5
    TICKET_REQUEST = 6  # service tickets (renewal) -> TICKET_REPLY
    TICKET_REPLY = 7
    ROTATING_REQUEST = 8  # daemons: the rotating service secrets -> ROTATING_REPLY
    ROTATING_REPLY = 9

    # client/OSD <-> monitor
    MON_COMMAND = 10  # {tid, cmd} data=inbuf -> MON_COMMAND_REPLY {tid, ret, outs} data=outbuf
    MON_COMMAND_REPLY = 11
    MON_SUBSCRIBE = 12  # {what: "osdmap", start: epoch}: push OSDMAP now and on every change
    OSDMAP = 13  # {epoch, map}
    OSD_BOOT = 14  # {tid, osd, addr, host, uuid, weight} -> OSD_BOOT_REPLY {tid, epoch}
    OSD_BOOT_REPLY = 15
    OSD_BEACON = 16  # {osd, epoch, stat, pgs: [...changed PG stats]}
    OSD_FAILURE = 17  # {reporter, target, epoch}: the reporter could not reach target

    # client -> OSD
    OSD_OP = 30  # see shoal/wire/osd_op.py
    OSD_OP_REPLY = 31

    # primary <-> replica
    REP_OP = 32  # {tid, pgid, epoch, txn, entry} -> REP_OP_REPLY {tid, result}
    REP_OP_REPLY = 33
    PG_QUERY = 34  # {tid, pgid, epoch, what, ...} -> PG_REPLY {tid, result, ...}
    PG_REPLY = 35

    # watch/notify (shoal/osd/watch.py, shoal/client/watch.py)
    WATCH_NOTIFY = 38  # OSD -> watcher {event: "notify"|"disconnect", cookie, notify_id, notifier} data=payload
    NOTIFY_ACK = 39  # watcher -> OSD {notify_id, cookie} data=reply (no answer)


PROTOCOL_VERSION = 1
AUTH_NONE = "none"
AUTH_CEPHX = "cephx"

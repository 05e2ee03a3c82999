"""`python -m shoal.osd -i 0 -c ceph.conf`: run one OSD."""

from __future__ import annotations

import os
import socket
import sys

from shoal.admin.daemon_main import parse_daemon_args, run_daemon
from shoal.auth.keyring import find_key
from shoal.net.connection import parse_mon_hosts
from shoal.net.handshake import Identity
from shoal.osd.daemon import OSD
from shoal.osd.store.base import ObjectStore


def make_store(kind: str, data: str) -> ObjectStore:
    if kind == "memory":
        from shoal.osd.store.memory import MemoryStore

        return MemoryStore()
    from shoal.osd.store.sqlite_store import SqliteStore

    return SqliteStore(os.path.join(data, "store.db"))


def main(argv: list[str] | None = None) -> None:
    conf, args = parse_daemon_args("osd", list(sys.argv[1:] if argv is None else argv))
    data = conf.get("osd_data")
    os.makedirs(data, exist_ok=True)
    store = make_store(str(conf.get("osd_objectstore") or "sqlite"), data)
    bind = str(conf.get("public_addr") or "127.0.0.1").split(":")[0] or "127.0.0.1"
    entity = f"osd.{args.daemon_id}"
    key = find_key(conf, entity)
    identity = Identity.from_config(conf, entity, key.secret if key else None)
    osd = OSD(int(args.daemon_id), store, conf.get, parse_mon_hosts(str(conf.get("mon_host") or "")),
              bind_host=bind, host=os.environ.get("SHOAL_HOST") or socket.gethostname(), identity=identity)
    run_daemon("osd", conf, osd.start, osd.stop)


if __name__ == "__main__":
    main()

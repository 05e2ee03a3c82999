"""`python -m shoal.mon -i a -c ceph.conf`: run one monitor."""

from __future__ import annotations

import os
import sys

from shoal.admin.daemon_main import parse_daemon_args, run_daemon
from shoal.mon.daemon import Monitor
from shoal.mon.store.sqlite import SqliteMonStore


def main(argv: list[str] | None = None) -> None:
    conf, args = parse_daemon_args("mon", list(sys.argv[1:] if argv is None else argv))
    data = conf.get("mon_data")
    addr = conf.get("public_addr") or ""
    if not addr:
        from shoal.net.connection import parse_mon_hosts

        hosts = parse_mon_hosts(str(conf.get("mon_host") or ""))
        addr = hosts[0] if hosts else "127.0.0.1:6789"
    store = SqliteMonStore(os.path.join(data, "store.db"))
    mon = Monitor(args.daemon_id, addr, store, lambda name: conf.get(name) if conf.has_option(name) else None)
    run_daemon("mon", conf, mon.start, mon.stop)


if __name__ == "__main__":
    main()

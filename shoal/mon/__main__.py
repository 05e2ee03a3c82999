"""`python -m shoal.mon -i a -c ceph.conf`: run one monitor."""

from __future__ import annotations

import os
import sys

from shoal.admin.daemon_main import parse_daemon_args, run_daemon
from shoal.auth.keyring import read_keyring
from shoal.config.config import keyring_search_paths
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
    # The first start imports every entity of the monitor's keyring (mkfs); later starts
    # use the auth database in the store.
    initial = {}
    for path in keyring_search_paths(conf):
        if os.path.exists(path):
            initial = read_keyring(path)
            break
    mon = Monitor(args.daemon_id, addr, store, lambda name: conf.get(name) if conf.has_option(name) else None,
                  initial_keyring=initial)
    run_daemon("mon", conf, mon.start, mon.stop)


if __name__ == "__main__":
    main()

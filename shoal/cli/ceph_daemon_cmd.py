"""`ceph daemon <socket path | name> <command…>` and `ceph --admin-daemon <path> <command…>`.

As Ceph's CLI (`maybe_daemon_command`): a first word with a `/` is a socket path,
otherwise an entity name (`osd.0`, `client.cinder`) whose `admin_socket` option, read
from ceph.conf for that entity, gives the path. The reply is written as the daemon sent
it (json-pretty unless `--format` asks otherwise); failures print `admin_socket: …` and
exit with EINVAL, as Ceph does. Nothing here connects to the cluster.
"""

from __future__ import annotations

import errno
import sys
from typing import Any

from shoal.admin.asok_client import AsokError, daemon_command
from shoal.config.config import Config


def socket_path(target: str, conf: Any) -> str:
    if "/" in target:
        return target
    kind, _, ident = target.partition(".")
    if not ident:
        raise AsokError(f"Can't get admin socket path: bad daemon name {target!r}")
    entity = Config(kind, ident, conf.cluster if conf is not None else "ceph")
    path = conf.conf_path if conf is not None else None
    if path:
        entity.read_conf(path)
    return str(entity.get("admin_socket"))


def maybe_daemon(words: list[str], fmt: str | None, conf: Any) -> int | None:
    """Handle a daemon command; None when `words` are not one."""
    if "--admin-daemon" in words:
        i = words.index("--admin-daemon")
        if i + 1 >= len(words):
            print("--admin-daemon requires a socket path", file=sys.stderr)
            return errno.EINVAL
        path, rest = words[i + 1], words[:i] + words[i + 2:]
    elif words and words[0] == "daemon":
        if len(words) < 3:
            print("daemon requires at least 3 arguments", file=sys.stderr)
            return errno.EINVAL
        try:
            path = socket_path(words[1], conf)
        except (AsokError, ValueError) as exc:
            print(f"Can't get admin socket path: {exc}", file=sys.stderr)
            return errno.EINVAL
        rest = words[2:]
    else:
        return None
    try:
        out = daemon_command(path, rest, fmt)
    except AsokError as exc:
        print(f"admin_socket: {exc}", file=sys.stderr)
        return errno.EINVAL
    sys.stdout.buffer.write(out)
    sys.stdout.flush()
    return 0

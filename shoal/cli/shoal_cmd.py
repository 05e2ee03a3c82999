"""`shoal`: run a local cluster (`up`, `down`, `status`), the NBD gateway (`nbd serve`) and
disk-image import (`image import --from qcow2`)."""

from __future__ import annotations

import argparse
import os
import sys

from shoal.cluster.local import LocalCluster

DEFAULT_DIR = "./shoal-cluster"


def cmd_up(args: argparse.Namespace) -> int:
    cluster = LocalCluster(args.dir)
    try:
        took = cluster.up(args.osds, timeout=args.timeout, objectstore=args.objectstore)
    except TimeoutError as exc:
        print(f"shoal up: {exc}", file=sys.stderr)
        return 110
    print(f"cluster up in {took:.2f}s: 1 mon, {args.osds or cluster.existing_osds()} osds in {cluster.dir}",
          file=sys.stderr)
    print(f"export CEPH_CONF={cluster.conf_path}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    stopped = LocalCluster(args.dir).down()
    print(f"stopped: {' '.join(stopped) if stopped else 'nothing was running'}", file=sys.stderr)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    cluster = LocalCluster(args.dir)
    daemons = cluster.status()
    if not daemons:
        print(f"no cluster in {cluster.dir}")
        return 1
    for name, pid in daemons:
        print(f"{name:8} {'running pid ' + str(pid) if pid else 'stopped'}")
    if any(pid for _, pid in daemons):
        os.environ["CEPH_CONF"] = cluster.conf_path
        from shoal.cli.ceph_cmd import run

        print()
        return run(["-c", cluster.conf_path, "status"])
    return 0


def main(argv: list[str] | None = None) -> None:
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] in (["nbd"], ["image"]):
        # These take the global client options (--id, -c, -k…) anywhere: their own parsing.
        from shoal.cli import nbd_cmd

        sys.exit((nbd_cmd.main_nbd if words[0] == "nbd" else nbd_cmd.main_image)(words[1:]))
    parser = argparse.ArgumentParser(prog="shoal", description="Shoal distributed block storage")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start (or restart) a local cluster")
    up.add_argument("--dir", default=DEFAULT_DIR)
    up.add_argument("--osds", type=int, default=None, help="number of OSDs (default 3)")
    up.add_argument("--timeout", type=float, default=60.0)
    up.add_argument("--objectstore", choices=("sqlite", "memory"), default="sqlite")
    up.set_defaults(func=cmd_up)
    down = sub.add_parser("down", help="stop the processes `shoal up` started")
    down.add_argument("--dir", default=DEFAULT_DIR)
    down.set_defaults(func=cmd_down)
    status = sub.add_parser("status", help="show daemons and cluster status")
    status.add_argument("--dir", default=DEFAULT_DIR)
    status.set_defaults(func=cmd_status)
    sub.add_parser("nbd", help="NBD gateway: `shoal nbd serve [--socket PATH | --bind HOST:PORT] [EXPORT...]`")
    sub.add_parser("image", help="`shoal image import --from qcow2 SRC POOL/IMAGE`")
    args = parser.parse_args(words)
    sys.exit(args.func(args))


if __name__ == "__main__":
    main()

"""`ceph`: send a command to the monitor and print what it answers, as Ceph's CLI does.

Data goes to stdout, the status line (`pool 'x' created`) to stderr; a failure prints
`Error ENAME: reason` and exits with the errno.
"""

from __future__ import annotations

import errno
import json
import sys

from shoal.cli.ceph_commands import UsageError, build_command, closest, usage_line
from shoal.cli.session import ClientSession, CliError, split_format

SHORTCUTS = {"-s": ["status"], "--status": ["status"]}


def run(argv: list[str]) -> int:
    words, fmt = split_format(argv)
    words = [w for a in words for w in SHORTCUTS.get(a, [a])]
    if not words or words[0] in ("-h", "--help", "help"):
        print("usage: ceph [global options] <command> [args] [--format plain|json|json-pretty]")
        return 0 if words else 22
    try:
        cmd = build_command(words)
    except UsageError as exc:
        print(f"{'no valid command found' if 'no valid' in str(exc) else 'Invalid command: ' + str(exc)}; "
              f"10 closest matches:", file=sys.stderr)
        for sig in closest(words):
            print(usage_line(sig), file=sys.stderr)
        print("Error EINVAL: invalid command", file=sys.stderr)
        return errno.EINVAL
    if fmt:
        cmd["format"] = fmt
    with ClientSession.open() as session:
        ret, outbuf, outs = session.mon_command(cmd)
    if ret < 0:
        from shoal.errors import errno_name

        if outbuf:
            sys.stdout.buffer.write(outbuf)
        print(f"Error {errno_name(ret)}: {outs}", file=sys.stderr)
        return -ret
    if outbuf:
        sys.stdout.buffer.write(outbuf if outbuf.endswith(b"\n") else outbuf + b"\n")
        sys.stdout.flush()
    if outs:
        print(outs, file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> None:
    try:
        code = run(list(sys.argv[1:] if argv is None else argv))
    except CliError as exc:
        print(str(exc), file=sys.stderr)
        code = exc.code
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()


__all__ = ["json", "main", "run"]

"""`ceph`: send a command to the monitor and print what it answers, as Ceph's CLI does.

Data goes to stdout, the status line (`pool 'x' created`) to stderr; a failure prints
`Error ENAME: reason` and exits with the errno.
"""

from __future__ import annotations

import errno
import sys

from shoal.cli import session as cli_session
from shoal.cli.ceph_commands import UsageError, build_command, closest, usage_line
from shoal.cli.ceph_daemon_cmd import maybe_daemon
from shoal.cli.session import ClientSession, CliError, split_format
from shoal.errors import errno_name

SHORTCUTS = {"-s": ["status"], "--status": ["status"]}


def _take_option(words: list[str], *names: str) -> tuple[list[str], str | None]:
    """Remove `-o FILE` style options from the words; returns (rest, value)."""
    rest: list[str] = []
    value: str | None = None
    it = iter(words)
    for word in it:
        if word in names:
            value = next(it, None)
            if value is None:
                raise CliError(f"{word} needs an argument", errno.EINVAL)
        else:
            rest.append(word)
    return rest, value


def run(argv: list[str]) -> int:
    words, fmt = split_format(argv)
    # Admin socket commands need no cluster; the conf split_format built (-c, --cluster) names sockets.
    handled = maybe_daemon(words, fmt, cli_session.parsed_config())
    if handled is not None:
        return handled
    words = [w for a in words for w in SHORTCUTS.get(a, [a])]
    words, out_file = _take_option(words, "-o", "--out-file")
    words, in_file = _take_option(words, "-i", "--in-file")
    inbuf = b""
    if in_file is not None:
        try:
            inbuf = sys.stdin.buffer.read() if in_file == "-" else open(in_file, "rb").read()  # noqa: SIM115
        except OSError as exc:
            raise CliError(f"can't open {in_file}: {exc.strerror}", exc.errno or errno.EIO) from exc
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
        ret, outbuf, outs = session.mon_command(cmd, inbuf)
    if ret < 0:
        if outbuf:
            sys.stdout.buffer.write(outbuf)
        print(f"Error {errno_name(ret)}: {outs}", file=sys.stderr)
        return -ret
    if out_file is not None:
        try:
            with open(out_file, "wb") as f:
                f.write(outbuf)
        except OSError as exc:
            raise CliError(f"can't open {out_file}: {exc.strerror}", exc.errno or errno.EIO) from exc
    elif outbuf or fmt:
        # As Ceph's CLI: JSON output starts on a fresh line; plain output is written as is
        # (`auth get-key` has no trailing newline).
        sys.stdout.buffer.write((b"\n" if fmt else b"") + outbuf)
        sys.stdout.flush()
    if outs:
        sys.stderr.write(outs if outs.endswith("\n") else outs + "\n")
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


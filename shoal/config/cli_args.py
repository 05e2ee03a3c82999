"""Global command-line options that every Shoal/Ceph tool accepts.

`rbd`, `rados`, `ceph` and the daemons take the same connection options before
their own command parsing: `-c/--conf`, `--id/--user`, `-n/--name`, `--cluster`,
`-k/--keyring`, `-m`, `--key`, `--keyfile`, and any schema option as
`--option value`, `--option=value` (`--rbd_cache=false`, `--debug-ms 1`). They may
appear anywhere: Cinder puts `--id U --conf C` after the positional arguments.
`CEPH_ARGS` in the environment is parsed the same way and applied beneath the
command line.

Parsing is pure (argv in, `GlobalArgs` + leftover argv out); `build_config` then
reads the conf file and produces a ready `Config`.
"""

from __future__ import annotations

import errno as _errno
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shoal.config.options import OPTIONS, Option, normalize_name
from shoal.errors import InvalidArgument

if TYPE_CHECKING:
    from shoal.config.config import Config

ENTITY_TYPES: frozenset[str] = frozenset({"client", "mon", "osd", "mgr", "mds"})

# Words that follow a boolean option as its value (`--rbd_cache false`); anything else
# after a boolean option is a positional argument and the option means "true".
_BOOL_WORDS = frozenset({"true", "false", "yes", "no", "on", "off"})

# Short flags that set a schema option, as in Ceph.
_SHORT_OPTIONS = {"-m": "mon_host", "-k": "keyring", "-K": "keyfile"}


class ArgvError(InvalidArgument, ValueError):
    """A global option used wrongly (missing value, malformed entity name, bad CEPH_ARGS)."""

    errno = _errno.EINVAL


def parse_entity_name(text: str) -> tuple[str, str]:
    """`"client.cinder"` -> `("client", "cinder")`; ids may contain dots (`client.rgw.a`)."""
    etype, dot, eid = text.partition(".")
    if not dot or not eid:
        raise ArgvError(f"invalid entity name {text!r}: expected TYPE.ID, e.g. client.admin")
    if etype not in ENTITY_TYPES:
        raise ArgvError(
            f"invalid entity name {text!r}: type must be one of {', '.join(sorted(ENTITY_TYPES))}"
        )
    return etype, eid


@dataclass
class GlobalArgs:
    """What the global options said; None / absent means "not given"."""

    conf: str | None = None
    cluster: str | None = None
    entity_type: str | None = None
    entity_id: str | None = None
    # Schema options as given (normalised name -> raw text), later occurrences win.
    options: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str | None:
        if self.entity_type and self.entity_id:
            return f"{self.entity_type}.{self.entity_id}"
        return None

    @property
    def keyring(self) -> str | None:
        return self.options.get("keyring")

    @property
    def key(self) -> str | None:
        return self.options.get("key")

    @property
    def keyfile(self) -> str | None:
        return self.options.get("keyfile")

    @property
    def mon_host(self) -> str | None:
        return self.options.get("mon_host")


def parse_global_args(
    argv: Sequence[str],
    *,
    early: bool = True,
    short_id: bool = False,
    schema: Mapping[str, Option] = OPTIONS,
) -> tuple[GlobalArgs, list[str]]:
    """Take the global options out of `argv`; return them and the rest, in order.

    `early=False` leaves the entity, cluster and conf-file options in the rest (what
    python-rados' `conf_parse_argv` does: those only matter before a handle exists).
    `short_id=True` makes `-i ID` mean `--id ID`, as for daemons (`shoal-osd -i 0`);
    for the CLIs `-i` stays theirs. Parsing stops at `--`, which is kept.
    """
    out = GlobalArgs()
    rest: list[str] = []
    i = 0

    def take_value(flag: str, inline: str | None) -> str:
        nonlocal i
        if inline is not None:
            return inline
        if i + 1 >= len(argv):
            raise ArgvError(f"option {flag} requires a value")
        i += 1
        return argv[i]

    while i < len(argv):
        token = argv[i]
        if token == "--":
            rest.extend(argv[i:])
            break
        if token.startswith("--") and len(token) > 2:
            body, eq, inline_text = token[2:].partition("=")
            inline = inline_text if eq else None
            key = normalize_name(body)
            if early and key in ("id", "user"):
                out.entity_id = _nonempty(token, take_value(token, inline))
            elif early and key == "name":
                out.entity_type, out.entity_id = parse_entity_name(take_value(token, inline))
            elif early and key == "cluster":
                out.cluster = _nonempty(token, take_value(token, inline))
            elif early and key == "conf":
                out.conf = _nonempty(token, take_value(token, inline))
            elif key in schema:
                opt = schema[key]
                if opt.type == "bool" and inline is None:
                    following = argv[i + 1] if i + 1 < len(argv) else None
                    if following is not None and following.lower() in _BOOL_WORDS:
                        i += 1
                        out.options[key] = following
                    else:
                        out.options[key] = "true"
                else:
                    out.options[key] = take_value(token, inline)
            elif inline is None and _is_negated_bool(key, schema):
                out.options[key[3:]] = "false"
            else:
                rest.append(token)
        elif early and (token in ("-c", "-n") or (short_id and token == "-i")):
            value = take_value(token, None)
            if token == "-c":
                out.conf = _nonempty(token, value)
            elif token == "-n":
                out.entity_type, out.entity_id = parse_entity_name(value)
            else:
                out.entity_id = _nonempty(token, value)
        elif token in _SHORT_OPTIONS:
            out.options[_SHORT_OPTIONS[token]] = take_value(token, None)
        else:
            rest.append(token)
        i += 1
    return out, rest


def _is_negated_bool(key: str, schema: Mapping[str, Option]) -> bool:
    """`--no-rbd-cache` turns a boolean option off."""
    opt = schema.get(key[3:]) if key.startswith("no_") else None
    return opt is not None and opt.type == "bool"


def _nonempty(flag: str, value: str) -> str:
    if not value:
        raise ArgvError(f"option {flag} requires a non-empty value")
    return value


def split_ceph_args(env: Mapping[str, str]) -> list[str]:
    """`CEPH_ARGS` split like a shell would (quotes allowed), or [] when unset."""
    text = env.get("CEPH_ARGS", "")
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise ArgvError(f"cannot parse CEPH_ARGS {text!r}: {exc}") from None


def build_config(
    entity_type: str,
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    *,
    short_id: bool = False,
) -> tuple[Config, list[str]]:
    """Everything a tool does before its own parsing; returns the Config and leftover argv.

    Order: schema defaults < conf file (explicit `--conf`, else the default search)
    < CEPH_ARGS < argv. Unrecognised CEPH_ARGS words are put in front of the leftover
    argv, as Ceph does. A `--conf` naming no existing file is an error; finding no file
    in the default search is not (the Config records a warning, like Ceph's
    "did not load config file, using default settings."). `short_id=True` lets `-i ID`
    name the entity, for daemons that leave their id to this function.
    """
    from shoal.config.config import Config  # here: config.py imports this module

    env = os.environ if env is None else env
    env_args, env_rest = parse_global_args(split_ceph_args(env), short_id=short_id)
    cli_args, rest = parse_global_args(argv, short_id=short_id)

    def pick(attr: str, default: str) -> str:
        for args in (cli_args, env_args):
            value = getattr(args, attr)
            if value is not None:
                return value
        return default

    config = Config(
        pick("entity_type", entity_type), pick("entity_id", "admin"), pick("cluster", "ceph"), env=env
    )
    conffile = cli_args.conf if cli_args.conf is not None else env_args.conf
    config.read_conf("" if conffile is None else conffile, env=env)
    config.apply_options(env_args.options, layer="env")
    config.apply_options(cli_args.options, layer="cmdline")
    return config, env_rest + rest

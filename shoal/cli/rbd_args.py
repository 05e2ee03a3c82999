"""The `rbd` CLI's command line: option table, command matching, values and image specs.

Pure (argv in, `Args` out) and modelled on Ceph's `src/tools/rbd` (Shell.cc, ArgumentTypes.cc,
Utils.cc): options may come before or after positionals, as `--opt value`, `--opt=value`,
`-p value` or `-pvalue`; each command accepts only its own options and at most its declared
number of positionals. Failures carry Ceph's texts and exit codes: boost-style option errors
("rbd: unrecognised option '--bogus'") exit 1, spec errors ("rbd: image name was not
specified") exit EINVAL (22). Global connection options never reach this module:
`build_config` takes them out first.
"""

from __future__ import annotations

import errno
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shoal.rbd import features as feat
from shoal.rbd.naming import SpecError, parse_image_spec

EXIT_USAGE = 1  # what boost::program_options errors make rbd return


class ArgError(Exception):
    """A command-line mistake: `message` goes to stderr as is, `code` is the exit status."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def invalid(message: str) -> ArgError:
    """A semantic argument error, which rbd reports with -EINVAL."""
    return ArgError(message, errno.EINVAL)


# -- values ------------------------------------------------------------------------------------------

_IEC_SHIFT = {"B": 0, "K": 10, "M": 20, "G": 30, "T": 40, "P": 50, "E": 60}


def strict_iecstrtoll(text: str) -> int:
    """Ceph's strict_iecstrtoll: digits, then an optional unit of at most two characters
    (B, K, M, G, T, P, E, optionally followed by `i`): "4096", "4096B", "4K", "1Mi", "1MB".
    "1GiB", "4k", "1.5G" and " 5" are refused (ValueError), exactly as rbd refuses them."""
    m = re.fullmatch(r"([+-]?\d+)(.*)", text)
    if m is None:
        raise ValueError(f"strict_iecstrtoll: expected integer, got: '{text}'")
    number, unit = int(m.group(1)), m.group(2)
    if not unit:
        return number
    if len(unit) > 2 or unit == "Bi" or unit[0] not in _IEC_SHIFT or (len(unit) == 2 and unit[1] not in "iB"):
        raise ValueError(f"strict_iecstrtoll: illegal prefix '{unit}'")
    return number << _IEC_SHIFT[unit[0]]


def parse_image_size(text: str) -> int:
    """`--size`: IEC units, and a bare number means MiB (rbd's legacy default)."""
    size = strict_iecstrtoll(text)
    if size < 0:
        raise ValueError("negative size")
    return size << 20 if text[-1].isdigit() else size


def _unsigned(text: str) -> int:
    if not re.fullmatch(r"\d+", text):
        raise ValueError(text)
    return int(text)


def _object_size(text: str) -> int:
    value = strict_iecstrtoll(text)
    if value < 0:
        raise ValueError(text)
    return value


def _order(text: str) -> int:
    value = _unsigned(text)
    if not 12 <= value <= 25:
        raise ValueError(text)
    return value


def _choice(*allowed: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if text not in allowed:
            raise ValueError(text)
        return text
    return check


def _image_format(text: str) -> int:
    value = _unsigned(text)
    if value not in (1, 2):
        raise ValueError(text)
    return value


def parse_feature_names(values: Sequence[str]) -> int:
    """`--image-feature` and `rbd feature enable` words: names, comma-separated lists, and
    (a Shoal extension; Ceph 16 takes names only) decimal masks."""
    mask = 0
    for value in values:
        for token in (t for t in value.split(",") if t):
            if token.isdigit():
                mask |= int(token)
            elif token in feat.FEATURES_BY_NAME:
                mask |= feat.FEATURES_BY_NAME[token]
            else:
                raise ValueError(token)
    return mask


# -- the option table --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Opt:
    """One option: `parse` is None for a switch; `many` options may be repeated and accumulate."""

    name: str
    short: str | None = None
    parse: Callable[[str], Any] | None = str
    many: bool = False

    @property
    def takes_value(self) -> bool:
        return self.parse is not None

    @property
    def display(self) -> str:
        return f"-{self.short} [ --{self.name} ]" if self.short else f"--{self.name}"


_SWITCH = None
OPTIONS: dict[str, Opt] = {o.name: o for o in (
    Opt("pool", "p"), Opt("namespace"), Opt("image"), Opt("snap"), Opt("image-id"), Opt("dest-pool"), Opt("dest-namespace"), Opt("dest"), Opt("dest-snap"),
    Opt("path"), Opt("format", parse=_choice("plain", "json", "xml")), Opt("pretty-format", parse=_SWITCH),
    Opt("no-progress", parse=_SWITCH), Opt("size", "s", parse=parse_image_size), Opt("order", parse=_order),
    Opt("object-size", parse=_object_size), Opt("image-feature", parse=str, many=True),
    Opt("image-shared", parse=_SWITCH), Opt("stripe-unit", parse=_object_size), Opt("stripe-count", parse=_unsigned),
    Opt("data-pool"), Opt("image-format", parse=_image_format), Opt("new-format", parse=_SWITCH),
    Opt("allow-shrink", parse=_SWITCH), Opt("long", "l", parse=_SWITCH), Opt("all", "a", parse=_SWITCH),
    Opt("from-snap"), Opt("whole-object", parse=_SWITCH), Opt("exact", parse=_SWITCH),
    Opt("merge-snapshots", parse=_SWITCH), Opt("export-format", parse=_choice("1", "2")),
    Opt("sparse-size", parse=_object_size), Opt("force", parse=_SWITCH), Opt("expires-at"),
    Opt("expired-before"), Opt("threshold", parse=float), Opt("limit", parse=_unsigned), Opt("shared"),
    Opt("io-type", parse=_choice("read", "write", "readwrite", "rw")), Opt("io-size", parse=_object_size),
    Opt("io-threads", parse=_unsigned), Opt("io-total", parse=_object_size),
    Opt("io-pattern", parse=_choice("seq", "rand")), Opt("rw-mix-read", parse=_unsigned),
    Opt("device-type", "t"), Opt("options", "o"), Opt("read-only", parse=_SWITCH),
    Opt("exclusive", parse=_SWITCH),
)}
_BY_SHORT = {o.short: o for o in OPTIONS.values() if o.short}

# Option groups, as Ceph's add_*_options helpers hand them to commands.
FORMAT = ("format", "pretty-format")
SPEC = ("pool", "namespace", "image")
SNAP_SPEC = (*SPEC, "snap")
DEST_SPEC = ("dest-pool", "dest-namespace", "dest")
CREATE = ("order", "object-size", "image-feature", "image-shared", "stripe-unit", "stripe-count", "data-pool")
FORMATTED_CREATE = (*CREATE, "image-format", "new-format")

# Options Ceph marks "deprecated[:replacement]", in the order rbd declares them (and warns).
DEPRECATED: tuple[tuple[str, str], ...] = (("new-format", "image-format 2"), ("order", "object-size"))


@dataclass(frozen=True)
class Command:
    spec: tuple[str, ...]
    alias: tuple[str, ...] | None
    handler: Callable[..., int]
    options: tuple[str, ...]
    positionals: int  # the most positional arguments it takes; -1: any number
    description: str
    deprecated: tuple[tuple[str, str], ...] = ()  # command-specific (option, replacement)


@dataclass
class Args:
    """A parsed command line; `pos` is the cursor of the spec helpers over `positional`."""

    command: Command
    opts: dict[str, Any] = field(default_factory=dict)
    positional: list[str] = field(default_factory=list)
    pos: int = 0

    def has(self, name: str) -> bool:
        return name in self.opts

    def get(self, name: str, default: Any = None) -> Any:
        return self.opts.get(name, default)

    def flag(self, name: str) -> bool:
        return bool(self.opts.get(name))

    def next_positional(self) -> str:
        """Ceph's get_positional_argument(spec_arg_index++): "" when there are no more."""
        value = self.positional[self.pos] if self.pos < len(self.positional) else ""
        self.pos += 1
        return value

    def deprecation_warnings(self) -> list[str]:
        pairs = DEPRECATED + self.command.deprecated
        return [f"rbd: {OPTIONS[name].display} is deprecated, use --{repl}"
                for name, repl in pairs if name in self.opts]


# -- command matching and option parsing ---------------------------------------------------------------

def _split_option(token: str) -> tuple[Opt | None, str | None]:
    """(option, inline value) of one dashed token: `--name=value`, `--name`, `-x`, `-xvalue`."""
    if token.startswith("--"):
        name, eq, value = token[2:].partition("=")
        return OPTIONS.get(name), (value if eq else None)
    return _BY_SHORT.get(token[1:2]), token[2:] or None


def command_words(tokens: Sequence[str]) -> list[str]:
    """The non-option words, as Shell::get_command_spec collects them (an option that takes a
    value hides the word after it)."""
    words: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "--":
            words.extend(tokens[i + 1:])
            break
        if token.startswith("-") and len(token) > 1:
            opt, inline = _split_option(token)
            if inline is None and (opt is None or opt.takes_value):
                i += 1
        else:
            words.append(token)
        i += 1
    return words


def find_command(words: Sequence[str], commands: Sequence[Command]) -> tuple[Command, int] | None:
    """The command whose spec (or alias) is the longest prefix of `words`, and its length."""
    best: tuple[Command, int] | None = None
    for cmd in commands:
        for spec in (cmd.spec, cmd.alias):
            if spec and tuple(words[:len(spec)]) == spec and (best is None or len(spec) > best[1]):
                best = (cmd, len(spec))
    return best


def parse(tokens: Sequence[str], command: Command, spec_len: int) -> Args:
    """All options and positionals of `command` from the tokens (command words included)."""
    allowed = set(command.options)
    out = Args(command)
    words_seen = 0
    only_words = False  # after "--" every token is a word
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "--" and not only_words:
            only_words = True
            i += 1
            continue
        if only_words or not token.startswith("-") or len(token) == 1:
            if words_seen < spec_len:
                words_seen += 1
            else:
                out.positional.append(token)
            i += 1
            continue
        opt, inline = _split_option(token)
        if opt is None or opt.name not in allowed:
            raise ArgError(f"rbd: unrecognised option '{token}'")
        if not opt.takes_value:
            if inline is not None:
                raise ArgError(f"rbd: unrecognised option '{token}'" if token.startswith("--") else
                               f"rbd: option '{opt.display}' does not take any arguments")
            out.opts[opt.name] = True
            i += 1
            continue
        if inline is None:
            if i + 1 >= len(tokens):
                raise ArgError(f"rbd: the required argument for option '--{opt.name}' is missing")
            i += 1
            inline = tokens[i]
        _store(out, opt, inline)
        i += 1
    if command.positionals >= 0 and len(out.positional) > command.positionals:
        raise ArgError("rbd: too many arguments")
    return out


def _store(out: Args, opt: Opt, text: str) -> None:
    assert opt.parse is not None
    if opt.name in out.opts and not opt.many:
        raise ArgError(f"rbd: option '--{opt.name}' cannot be specified more than once")
    try:
        value = opt.parse(text)
    except ValueError:
        raise ArgError(f"rbd: the argument for option '--{opt.name}' is invalid") from None
    if opt.many:
        out.opts.setdefault(opt.name, []).append(value)
    else:
        out.opts[opt.name] = value


# -- image specs (Utils.cc get_pool_image_snapshot_names and friends) ----------------------------------

SNAP_NONE, SNAP_PERMITTED, SNAP_REQUIRED = "none", "permitted", "required"
VALIDATE_NONE, VALIDATE_SNAP, VALIDATE_FULL = "none", "snap", "full"
_NO_SLASH_AT = re.compile(r"[^@/]*")


@dataclass
class ImageSpec:
    pool: str = ""  # "" means rbd_default_pool, filled in when the pool is opened
    namespace: str = ""
    image: str = ""
    snap: str = ""


def extract_spec(spec: str, validation: str, into: ImageSpec, namespace_allowed: bool = True) -> None:
    """Split `[pool/[namespace/]]image[@snap]` into `into` (only the parts present)."""
    try:
        pool, namespace, image, snap = parse_image_spec(spec, validate=validation == VALIDATE_FULL)
    except SpecError:
        raise invalid(f"rbd: invalid spec '{spec}'") from None
    if validation == VALIDATE_SNAP and snap is not None and not _NO_SLASH_AT.fullmatch(snap):
        raise invalid(f"rbd: invalid spec '{spec}'")
    if pool is not None:
        into.pool = pool
    if namespace:
        if not namespace_allowed:
            raise invalid("rbd: namespace name specified for a command that doesn't use it")
        into.namespace = namespace
    into.image = image
    if snap is not None:
        into.snap = snap


def image_spec(a: Args, dest: bool = False, *, image_required: bool = True, snap: str = SNAP_PERMITTED,
               validation: str = VALIDATE_NONE, preset: ImageSpec | None = None) -> ImageSpec:
    """The image (or destination image) named by the options and/or the next positional."""
    keys = ("dest-pool", "dest-namespace", "dest", "dest-snap") if dest else ("pool", "namespace", "image", "snap")
    out = preset or ImageSpec()
    out.pool = a.get(keys[0], out.pool)
    out.namespace = a.get(keys[1], out.namespace)
    out.snap = a.get(keys[3], out.snap)
    by_option = a.get(keys[2], "")
    if by_option:
        extract_spec(by_option, validation, out)
    else:
        spec = a.next_positional()
        if spec:
            extract_spec(spec, validation, out)
    prefix = "destination " if dest else ""
    if image_required and not out.image:
        raise invalid(f"rbd: {prefix}image name was not specified")
    if validation == VALIDATE_FULL and not _NO_SLASH_AT.fullmatch(out.pool):
        raise invalid(f"rbd: invalid pool name '{out.pool}'")
    if out.namespace and not _NO_SLASH_AT.fullmatch(out.namespace):
        raise invalid(f"rbd: invalid namespace name '{out.namespace}'")
    if snap == SNAP_NONE and out.snap:
        raise invalid(f"rbd: {prefix}snapshot name specified for a command that doesn't use it")
    if snap == SNAP_REQUIRED and not out.snap:
        raise invalid(f"rbd: {prefix}snapshot name was not specified")
    if validation == VALIDATE_SNAP and not _NO_SLASH_AT.fullmatch(out.snap):
        raise invalid(f"rbd: invalid snap name '{out.snap}'")
    return out


def pool_spec(a: Args) -> tuple[str, str]:
    """(pool, namespace) from `--pool`/`--namespace` or a `pool[/namespace]` positional."""
    namespace = a.get("namespace", "")
    if a.has("pool"):
        pool = a.get("pool")
    else:
        pool = a.next_positional()
        if "/" in pool:
            pool, namespace = pool.rsplit("/", 1)
    if "/" in pool or "@" in pool:
        raise invalid(f"rbd: invalid pool '{pool}'")
    if "/" in namespace or "@" in namespace:
        raise invalid(f"rbd: invalid namespace '{namespace}'")
    return pool, namespace


def required(a: Args, what: str) -> str:
    """The next positional, which the command cannot do without."""
    value = a.next_positional()
    if not value:
        raise invalid(f"rbd: {what} was not specified")
    return value


def path_arg(a: Args) -> str:
    path = a.get("path") or a.next_positional()
    if not path:
        raise invalid("rbd: path was not specified")
    return path


def formatter(a: Args) -> tuple[str | None, bool]:
    """(format, pretty): format is None for plain output."""
    fmt = a.get("format")
    pretty = a.flag("pretty-format")
    if fmt in (None, "plain"):
        if pretty:
            raise invalid("rbd: --pretty-format only works when --format is json or xml")
        return None, False
    return fmt, pretty


@dataclass(frozen=True)
class CreateOptions:
    """What `get_image_options` derives from the create options (None: librbd's default)."""

    order: int | None = None
    features: int | None = None
    features_clear: int = 0
    stripe_unit: int | None = None
    stripe_count: int | None = None
    data_pool: str | None = None
    image_format: int | None = None


def create_options(a: Args, with_format: bool) -> tuple[CreateOptions, list[str]]:
    """The create options and the warnings rbd prints about them before acting."""
    warnings: list[str] = []
    order = a.get("order")
    if order is None and a.has("object-size"):
        order = round(math.log2(a.get("object-size"))) if a.get("object-size") > 0 else 0
    features: int | None = None
    if a.has("image-feature"):
        try:
            features = parse_feature_names(a.get("image-feature"))
        except ValueError:
            raise ArgError("rbd: the argument for option '--image-feature' is invalid") from None
    clear = 0
    if a.flag("image-shared"):
        if features is not None:
            features &= ~feat.SINGLE_CLIENT
        else:
            clear = feat.SINGLE_CLIENT
    image_format = None
    if with_format:
        if a.flag("new-format"):
            image_format = 2
        elif a.has("image-format"):
            image_format = a.get("image-format")
        if image_format == 1:
            warnings.append("rbd: image format 1 is deprecated")
            if features:
                raise invalid("rbd: features not allowed with format 1; use --image-format 2")
            if a.has("data-pool"):
                raise invalid("rbd: data pool not allowed with format 1; use --image-format 2")
    striped = a.has("stripe-unit") or a.has("stripe-count")
    return CreateOptions(order=order, features=features, features_clear=clear,
                         stripe_unit=a.get("stripe-unit", 0) if striped else None,
                         stripe_count=a.get("stripe-count", 0) if striped else None,
                         data_pool=a.get("data-pool"), image_format=image_format), warnings

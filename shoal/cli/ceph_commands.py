"""Signatures of the `ceph` commands: words -> the monitor's JSON command.

Each entry is the command's prefix words and its arguments in order, with the
argument names Ceph's monitor uses (so `ceph osd pool create volumes 128` sends
`{"prefix": "osd pool create", "pool": "volumes", "pg_num": 128}`).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Arg:
    name: str
    kind: str = "str"  # str | int | float | choice | bool | list
    required: bool = True
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Signature:
    prefix: str
    args: tuple[Arg, ...] = field(default_factory=tuple)
    help: str = ""


def _s(prefix: str, *args: Arg, help: str = "") -> Signature:
    return Signature(prefix, args, help)


POOL = Arg("pool")
OPT = False
SIGNATURES: tuple[Signature, ...] = (
    _s("status", help="show cluster status"),
    _s("health", Arg("detail", "choice", OPT, ("detail",)), help="show cluster health"),
    _s("df", Arg("detail", "choice", OPT, ("detail",)), help="show cluster free space stats"),
    _s("fsid", help="show cluster FSID/UUID"),
    _s("version", help="show mon daemon version"),
    _s("mon dump", Arg("epoch", "int", OPT), help="dump formatted monmap"),
    _s("mon stat", help="summarize monitor status"),
    _s("osd tree", help="print OSD tree"),
    _s("osd stat", help="print summary of OSD map"),
    _s("osd dump", Arg("epoch", "int", OPT), help="print summary of OSD map"),
    _s("osd ls", help="show all OSD ids"),
    _s("osd df", help="show OSD utilization"),
    _s("osd down", Arg("ids", "list"), help="set osd(s) <id> [<id>...] down"),
    _s("osd out", Arg("ids", "list"), help="set osd(s) <id> [<id>...] out"),
    _s("osd in", Arg("ids", "list"), help="set osd(s) <id> [<id>...] in"),
    _s("osd map", POOL, Arg("object"), Arg("nspace", required=OPT), help="find pg for <object> in <pool>"),
    _s("osd pool create", POOL, Arg("pg_num", "int", OPT), Arg("pgp_num", "int", OPT),
       Arg("pool_type", "choice", OPT, ("replicated", "erasure")), help="create pool"),
    _s("osd pool delete", POOL, Arg("pool2", required=OPT), Arg("yes_i_really_really_mean_it", "bool", OPT),
       help="delete pool"),
    _s("osd pool rm", POOL, Arg("pool2", required=OPT), Arg("yes_i_really_really_mean_it", "bool", OPT),
       help="remove pool"),
    _s("osd pool ls", Arg("detail", "choice", OPT, ("detail",)), help="list pools"),
    _s("osd lspools", help="list pools"),
    _s("osd pool get", POOL, Arg("var"), help="get pool parameter <var>"),
    _s("osd pool set", POOL, Arg("var"), Arg("val"), Arg("yes_i_really_mean_it", "bool", OPT),
       help="set pool parameter <var> to <val>"),
    _s("osd pool get-quota", POOL, help="obtain object or byte limits for pool"),
    _s("osd pool set-quota", POOL, Arg("field", "choice", True, ("max_objects", "max_bytes")), Arg("val"),
       help="set object or byte limit on pool"),
    _s("osd pool application enable", POOL, Arg("app"), Arg("yes_i_really_mean_it", "bool", OPT),
       help="enable use of an application <app> [cephfs,rbd,rgw] on pool <poolname>"),
    _s("osd pool application disable", POOL, Arg("app"), Arg("yes_i_really_mean_it", "bool", OPT),
       help="disables use of an application <app> on pool <poolname>"),
    _s("osd pool application get", Arg("pool", required=OPT), Arg("app", required=OPT), Arg("key", required=OPT),
       help="get value of key <key> of application <app> on pool <poolname>"),
    _s("osd blocklist", Arg("blocklistop", "choice", True, ("add", "rm")), Arg("addr"), Arg("expire", "float", OPT),
       help="add (optionally until <expire> seconds from now) or remove <addr> from blocklist"),
    _s("osd blocklist ls", help="show blocklisted clients"),
    _s("osd blocklist clear", help="clear all blocklisted clients"),
    _s("osd blacklist", Arg("blacklistop", "choice", True, ("add", "rm")), Arg("addr"), Arg("expire", "float", OPT),
       help="add (optionally until <expire> seconds from now) or remove <addr> from blacklist"),
    _s("osd blacklist ls", help="show blacklisted clients"),
    _s("osd blacklist clear", help="clear all blacklisted clients"),
    _s("pg stat", help="show placement group status"),
    _s("pg dump", Arg("dumpcontents", "list", OPT), help="show human-readable versions of pg map"),
    _s("auth export", Arg("entity", required=OPT),
       help="write keyring for requested entity, or master keyring if none given"),
    _s("auth get", Arg("entity"), help="write keyring file with requested key"),
    _s("auth get-key", Arg("entity"), help="display requested key"),
    _s("auth print-key", Arg("entity"), help="display requested key"),
    _s("auth ls", help="list authentication state"),
    _s("auth list", help="list authentication state"),
    _s("auth import", help="auth import: read keyring file from -i <file>"),
    _s("auth add", Arg("entity"), Arg("caps", "list", OPT),
       help="add auth info for <entity> from input file, or random key if no input is given, "
            "and/or any caps specified in the command"),
    _s("auth get-or-create-key", Arg("entity"), Arg("caps", "list", OPT),
       help="get, or add, key for <name> from system/caps pairs specified in the command.  "
            "If key already exists, any given caps must match the existing caps for that key."),
    _s("auth get-or-create", Arg("entity"), Arg("caps", "list", OPT),
       help="add auth info for <entity> from input file, or random key if no input given, "
            "and/or any caps specified in the command"),
    _s("auth caps", Arg("entity"), Arg("caps", "list"), help="update caps for <name> from caps specified in the command"),
    _s("auth del", Arg("entity"), help="delete all caps for <name>"),
    _s("auth rm", Arg("entity"), help="remove all caps for <name>"),
)

# Flags spelled as options on the command line, sent as boolean arguments.
BOOL_FLAGS = {
    "--yes-i-really-really-mean-it": "yes_i_really_really_mean_it",
    "--yes-i-really-mean-it": "yes_i_really_mean_it",
}


class UsageError(ValueError):
    pass


def match(words: list[str]) -> tuple[Signature, list[str]] | None:
    """The longest signature whose prefix starts `words`, and the words left over."""
    best: tuple[Signature, list[str]] | None = None
    for sig in SIGNATURES:
        pw = sig.prefix.split()
        if words[: len(pw)] == pw and (best is None or len(pw) > len(best[0].prefix.split())):
            best = (sig, words[len(pw):])
    return best


def build_command(words: list[str]) -> dict[str, object]:
    """`["osd", "pool", "create", "volumes", "128"]` -> the monitor's JSON command."""
    flags = {BOOL_FLAGS[w]: True for w in words if w in BOOL_FLAGS}
    words = [w for w in words if w not in BOOL_FLAGS]
    found = match(words)
    if found is None:
        raise UsageError("no valid command found")
    sig, rest = found
    cmd: dict[str, object] = {"prefix": sig.prefix}
    args = [a for a in sig.args if a.kind != "bool"]
    for i, arg in enumerate(args):
        if arg.kind == "list":
            if not rest and arg.required:
                raise UsageError(f"missing required parameter {arg.name}")
            if rest:
                cmd[arg.name] = list(rest)
            rest = []
            break
        if not rest:
            if arg.required:
                raise UsageError(f"missing required parameter {arg.name}(<{arg.kind}>)")
            break
        value = rest.pop(0)
        if arg.kind == "int":
            try:
                cmd[arg.name] = int(value)
            except ValueError:
                raise UsageError(f"{arg.name}: invalid integer '{value}'") from None
        elif arg.kind == "float":
            try:
                cmd[arg.name] = float(value)
            except ValueError:
                raise UsageError(f"{arg.name}: invalid float '{value}'") from None
        elif arg.kind == "choice" and value not in arg.choices:
            if not arg.required and i == len(args) - 1:
                raise UsageError(f"invalid choice '{value}' for {arg.name}, expected one of {'|'.join(arg.choices)}")
            raise UsageError(f"invalid choice '{value}' for {arg.name}")
        else:
            cmd[arg.name] = value
    if rest:
        raise UsageError(f"too many arguments: {' '.join(rest)}")
    for arg in sig.args:
        if arg.kind == "bool" and arg.name in flags:
            cmd[arg.name] = True
    return cmd


def closest(words: list[str], n: int = 10) -> list[Signature]:
    """Signatures sharing the most leading words with `words` (for the error listing)."""
    def score(sig: Signature) -> int:
        k = 0
        for a, b in zip(sig.prefix.split(), words, strict=False):
            if a != b:
                break
            k += 1
        return k

    return sorted(SIGNATURES, key=lambda s: -score(s))[:n]


def usage_line(sig: Signature) -> str:
    parts = [sig.prefix]
    for arg in sig.args:
        if arg.kind == "bool":
            text = f"--{arg.name.replace('_', '-')}"
        elif arg.kind == "choice":
            text = "|".join(arg.choices)
        elif arg.kind == "list":
            text = f"<{arg.name}>..."
        else:
            text = f"<{arg.name}>"
        parts.append(text if arg.required else f"[{text}]")
    return " ".join(parts)

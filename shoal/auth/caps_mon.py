"""Monitor capabilities: Ceph's `MonCap` grammar, profiles and evaluation (sans-IO).

Grammar (`ceph:src/mon/MonCap.cc`); grants are separated by `,` or `;`:

    allow <rwx>                                   rwx := * | all | [r][w][x]
    [allow] profile[= ]<name>
    allow service[= ]<service> <rwx>
    allow command[= ]<command> [with <k>=<v> | <k> prefix <v> | <k> regex <v> ...]
    ... each optionally followed by `network <cidr>`

A command is checked as Ceph's monitor checks it: the command's module and required
perms come from `caps_mon_commands` (e.g. `osd pool create` needs `rw` on `osd`);
grants are walked in order, their permissions on that module accumulate, and the
command is allowed once they cover what it needs. `allow *` allows everything; plain
`allow r/w/x` grants on every module except `config-key`; `allow service S p` only on
S; `allow command C [with ...]` allows exactly C (with matching arguments, compared
as strings; `caps` arrive as `caps_<service>` arguments).

Profiles (`MonCapGrant::expand_profile_mon`): `read-only`, `read-write`, `mon`, `osd`,
`mds`, `mgr`, `bootstrap-osd/-mds/-mgr/-rgw/-rbd/-rbd-mirror`, `fs-client`,
`simple-rados-client`, `rbd`, `rbd-mirror`, `crash`, `role-definer`; an unknown name
parses and grants nothing. `profile rbd` = `mon r`, `osd r`, `pg r` and the command
`osd blocklist` (and its older spelling `osd blacklist`) restricted to adding an
`addr` of the form `ip:port/nonce`, which is what librbd needs to fence a dead
exclusive-lock holder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shoal.auth.caps_common import (
    MON_SPACE,
    CapsError,
    NoMatch,
    Scanner,
    network_allows,
    parse_grant_list,
    regex_full_match,
)
from shoal.auth.caps_mon_commands import command_perms

MON_R, MON_W, MON_X = 1, 2, 4
MON_ALL = MON_R | MON_W | MON_X
MON_ANY = 0xFF


@dataclass(frozen=True)
class StringConstraint:
    kind: str  # "equal" | "prefix" | "regex"
    value: str

    def matches(self, actual: str) -> bool:
        if self.kind == "equal":
            return actual == self.value
        if self.kind == "prefix":
            return actual.startswith(self.value)
        return regex_full_match(self.value, actual)


@dataclass(frozen=True)
class MonGrant:
    service: str = ""
    profile: str = ""
    command: str = ""
    command_args: tuple[tuple[str, StringConstraint], ...] = ()
    allow: int = 0
    network: str = ""

    def is_allow_all(self) -> bool:
        return self.allow == MON_ANY and not self.service and not self.profile and not self.command

    def get_allowed(self, entity: str, service: str, command: str, args: Mapping[str, str]) -> int:
        if self.profile:
            allow = 0
            for grant in expand_profile(self.profile, entity):
                allow |= grant.get_allowed(entity, service, command, args)
            return allow
        if self.service:
            return self.allow if self.service == service else 0
        if self.command:
            if self.command != command:
                return 0
            for key, constraint in self.command_args:
                if key not in args or not constraint.matches(args[key]):
                    return 0  # a constrained argument must be present and match
            return MON_ALL
        # Blanket `allow r/w/x` never reaches config-key: only `allow *` does.
        return 0 if service == "config-key" else self.allow


def _cmd(command: str, **constraints: StringConstraint) -> MonGrant:
    return MonGrant(command=command, command_args=tuple(sorted(constraints.items())))


def _svc(service: str, allow: int) -> MonGrant:
    return MonGrant(service=service, allow=allow)


_EQ, _PREFIX, _REGEX = "equal", "prefix", "regex"
_FENCE_ADDR = StringConstraint(_REGEX, "^[^/]+/[0-9]+$")
_RBD_CAPS_OSD = StringConstraint(
    _REGEX, "^([ ,]*profile(=|[ ]+)['\"]?rbd[^ ,'\"]*['\"]?([ ]+pool(=|[ ]+)['\"]?[^,'\"]+['\"]?)?)+$"
)


def expand_profile(profile: str, entity: str = "") -> tuple[MonGrant, ...]:
    """The grants a mon `profile` stands for, for `entity` (daemon profiles name its key prefix)."""
    if profile == "read-only":
        return (MonGrant(allow=MON_R),)
    if profile == "read-write":
        return (MonGrant(allow=MON_R | MON_W),)
    grants: list[MonGrant] = []
    if profile == "mon":
        grants += [_svc("mon", MON_ALL), _svc("log", MON_ALL)]
    if profile == "osd":
        grants += [_svc("osd", MON_ALL), _svc("mon", MON_R), _svc("pg", MON_R | MON_W), _svc("log", MON_W)]
    if profile == "mds":
        grants += [
            _svc("mds", MON_ALL), _svc("mon", MON_R), _svc("osd", MON_R), _cmd("osd pool rmsnap"),
            _cmd("osd blocklist"), _cmd("osd blacklist"), _svc("log", MON_W),
        ]
    if profile == "mgr":
        grants += [
            _svc("mgr", MON_ALL), _svc("log", MON_R | MON_W), _svc("mon", MON_R | MON_W),
            _svc("mds", MON_R | MON_W), _svc("fs", MON_R | MON_W), _svc("osd", MON_R | MON_W),
            _svc("auth", MON_R | MON_X), _svc("config-key", MON_R | MON_W), _svc("config", MON_R | MON_W),
        ]
    if profile in ("osd", "mds", "mon", "mgr"):
        # Each daemon may keep private config-keys under daemon-private/<its name>/.
        own = StringConstraint(_PREFIX, f"daemon-private/{entity}/")
        grants += [_cmd(f"config-key {op}", key=own) for op in ("get", "put", "set", "exists", "delete")]
    if profile in ("bootstrap-osd", "bootstrap-mds", "bootstrap-mgr", "bootstrap-rgw"):
        grants += [_svc("mon", MON_R), _svc("osd", MON_R), _cmd("mon getmap")]
    if profile == "bootstrap-osd":
        grants += [_cmd("osd new"), _cmd("osd purge-new")]
    if profile == "bootstrap-mds":
        grants.append(_cmd(
            "auth get-or-create", entity=StringConstraint(_PREFIX, "mds."),
            caps_mon=StringConstraint(_EQ, "allow profile mds"), caps_osd=StringConstraint(_EQ, "allow rwx"),
            caps_mds=StringConstraint(_EQ, "allow"),
        ))
    if profile == "bootstrap-mgr":
        grants.append(_cmd(
            "auth get-or-create", entity=StringConstraint(_PREFIX, "mgr."),
            caps_mon=StringConstraint(_EQ, "allow profile mgr"),
        ))
    if profile == "bootstrap-rgw":
        grants.append(_cmd(
            "auth get-or-create", entity=StringConstraint(_PREFIX, "client.rgw."),
            caps_mon=StringConstraint(_EQ, "allow rw"), caps_osd=StringConstraint(_EQ, "allow rwx"),
        ))
    if profile in ("bootstrap-rbd", "bootstrap-rbd-mirror"):
        mon_profile = "profile rbd-mirror" if profile == "bootstrap-rbd-mirror" else "profile rbd"
        grants += [_svc("mon", MON_R), _cmd(
            "auth get-or-create", entity=StringConstraint(_PREFIX, "client."),
            caps_mon=StringConstraint(_EQ, mon_profile), caps_osd=_RBD_CAPS_OSD,
        )]
    if profile in ("fs-client",):
        grants += [_svc("mon", MON_R), _svc("mds", MON_R), _svc("osd", MON_R), _svc("pg", MON_R)]
    if profile in ("simple-rados-client", "rbd", "rbd-mirror"):
        grants += [_svc("mon", MON_R), _svc("osd", MON_R), _svc("pg", MON_R)]
    if profile in ("rbd", "rbd-mirror"):
        # Exclusive-lock fencing of a dead client: add (never remove) one ip:port/nonce.
        grants += [
            _cmd("osd blocklist", blocklistop=StringConstraint(_EQ, "add"), addr=_FENCE_ADDR),
            _cmd("osd blacklist", blacklistop=StringConstraint(_EQ, "add"), addr=_FENCE_ADDR),
        ]
    if profile == "rbd-mirror":
        grants.append(_cmd("config-key get", key=StringConstraint(_PREFIX, "rbd/mirror/")))
    if profile == "crash":
        grants.append(_svc("mon", MON_R))
    if profile == "role-definer":
        grants += [_svc("mon", MON_R), _svc("auth", MON_ANY)]
    return tuple(grants)


# ------------------------------------------------------------------- grammar

class _MonParser:
    def __init__(self, text: str) -> None:
        self.sc = Scanner(text)

    def spaces(self) -> str:
        return self.sc.run(MON_SPACE)

    def opt_spaces(self) -> None:
        self.sc.run(MON_SPACE, minimum=0)

    def eq_or_spaces(self) -> None:
        self.sc.first(lambda: self.sc.lit("="), self.spaces)

    def rwxa(self) -> int:
        sc = self.sc

        def letters() -> int:
            bits = 0
            for letter, bit in (("r", MON_R), ("w", MON_W), ("x", MON_X)):
                if sc.attempt(lambda letter=letter: sc.lit(letter))[0]:
                    bits |= bit
            if not bits:
                raise NoMatch
            return bits

        return sc.first(lambda: (sc.lit("*"), MON_ANY)[1], lambda: (sc.lit("all"), MON_ANY)[1], letters)

    def network(self) -> str:
        return self.sc.optional(lambda: self.sc.network(MON_SPACE), "")

    def kv_pair(self) -> tuple[str, StringConstraint]:
        sc = self.sc
        key = sc.string()

        def equal() -> StringConstraint:
            sc.lit("=")
            return StringConstraint(_EQ, sc.string())

        def keyword(word: str, kind: str) -> StringConstraint:
            self.spaces()
            sc.lit(word)
            self.spaces()
            return StringConstraint(kind, sc.string())

        return key, sc.first(equal, lambda: keyword("prefix", _PREFIX), lambda: keyword("regex", _REGEX))

    def kv_map(self) -> tuple[tuple[str, StringConstraint], ...]:
        pairs = dict([self.kv_pair()])
        while True:
            ok, pair = self.sc.attempt(lambda: (self.spaces(), self.kv_pair())[1])
            if not ok or pair is None:
                return tuple(sorted(pairs.items()))
            pairs.setdefault(pair[0], pair[1])  # Spirit fills a std::map: the first one stays

    def allow_kw(self) -> None:
        self.opt_spaces()
        self.sc.lit("allow")
        self.spaces()

    def rwxa_match(self) -> MonGrant:
        self.allow_kw()
        allow = self.rwxa()
        return MonGrant(allow=allow, network=self.network())

    def profile_match(self) -> MonGrant:
        sc = self.sc
        self.opt_spaces()
        sc.optional(lambda: (sc.lit("allow"), self.spaces()), None)
        sc.lit("profile")
        self.eq_or_spaces()
        name = sc.string()
        return MonGrant(profile=name, network=self.network())

    def service_match(self) -> MonGrant:
        self.allow_kw()
        self.sc.lit("service")
        self.eq_or_spaces()
        service = self.sc.string()
        self.spaces()
        allow = self.rwxa()
        return MonGrant(service=service, allow=allow, network=self.network())

    def command_match(self) -> MonGrant:
        sc = self.sc
        self.allow_kw()
        sc.lit("command")
        self.eq_or_spaces()
        command = sc.string()

        def with_args() -> tuple[tuple[str, StringConstraint], ...]:
            self.spaces()
            sc.lit("with")
            self.spaces()
            return self.kv_map()

        args = sc.optional(with_args, ())
        return MonGrant(command=command, command_args=args, network=self.network())

    def grant(self) -> MonGrant:
        self.opt_spaces()
        grant = self.sc.first(self.rwxa_match, self.profile_match, self.service_match, self.command_match)
        self.opt_spaces()
        return grant

    def separator(self) -> None:
        sc = self.sc
        sc.run(" ", minimum=0)
        sc.first(lambda: sc.lit(";"), lambda: sc.lit(","))
        sc.run(" ", minimum=0)

    def parse(self, kind: str = "mon") -> tuple[MonGrant, ...]:
        sc = self.sc
        try:
            grants = parse_grant_list(sc, self.grant, self.separator)
        except NoMatch:
            grants = []
        if grants and sc.at_end():
            return tuple(grants)
        if not sc.at_end():
            raise CapsError(f"{kind} capability parse failed, stopped at '{sc.rest}' of '{sc.text}'")
        raise CapsError(f"{kind} capability parse failed, stopped at end of '{sc.text}'")


def stringify_args(args: Mapping[str, Any]) -> dict[str, str]:
    """A command's arguments as Ceph's monitor compares them with `with k=v` constraints.

    `prefix` is left out; `caps` pairs become `caps_<service>` (so a bootstrap profile
    can restrict what caps may be created); lists join with commas; booleans are
    `true`/`false`.
    """
    out: dict[str, str] = {}
    for key, value in args.items():
        if key == "prefix":
            continue
        if key == "caps" and isinstance(value, list | tuple) and len(value) % 2 == 0:
            for i in range(0, len(value), 2):
                out[f"caps_{value[i]}"] = str(value[i + 1])
            continue
        out[key] = _stringify(value)
    return out


def _stringify(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(_stringify(v) for v in value)
    return str(value)


@dataclass(frozen=True)
class MonCap:
    """Parsed mon caps of one entity. No grants = nothing allowed."""

    grants: tuple[MonGrant, ...] = ()
    text: str = ""
    entity: str = ""  # whose caps: daemon profiles grant on keys named after it

    @classmethod
    def parse(cls, text: str, entity: str = "") -> MonCap:
        """Parse caps text; CapsError when Ceph would not. "" (or white space) = no grant."""
        if not isinstance(text, str):
            raise CapsError(f"mon caps must be a string, not {type(text).__name__}")
        if not text.strip():
            return cls((), text, entity)
        return cls(_MonParser(text).parse("mon"), text, entity)

    @classmethod
    def for_session(cls, text: str | None, entity: str = "") -> MonCap:
        """What the monitor enforces for a session: caps that do not parse grant nothing."""
        try:
            return cls.parse(text or "", entity)
        except CapsError:
            return cls((), text or "", entity)

    def is_allow_all(self) -> bool:
        return any(g.is_allow_all() for g in self.grants)

    def is_capable(
        self,
        service: str,
        command: str,
        args: Mapping[str, str],
        read: bool,
        write: bool,
        execute: bool,
        addr: str | None = None,
    ) -> bool:
        """Ceph's `MonCap::is_capable`: walk the grants, accumulating what they allow."""
        allow = 0
        for grant in self.grants:
            if grant.network and not network_allows(grant.network, addr):
                continue
            if grant.is_allow_all():
                return True
            allow |= grant.get_allowed(self.entity, service, command, args)
            if (
                (not read or allow & MON_R)
                and (not write or allow & MON_W)
                and (not execute or allow & MON_X)
            ):
                return True
        return False

    def allows_command(self, prefix: str, args: Mapping[str, Any], *, addr: str | None = None) -> bool:
        """May this entity run the mon command `prefix` with `args` (the command dict)?

        Unknown prefixes need `allow *` (Ceph answers "command not known" before it
        checks caps; see `caps_mon_commands.command_perms` to tell the two apart).
        """
        perms = command_perms(prefix)
        if perms is None:
            return self.is_allow_all()
        module, need = perms
        return self.is_capable(
            module, prefix, stringify_args(args), "r" in need, "w" in need, "x" in need, addr
        )

    def allows_service(self, service: str, perm: str, *, addr: str | None = None) -> bool:
        """May this entity use `service` ("mon", "osd", "pg", "auth"...) with `perm` ("r", "rw"...)?

        Used for map subscriptions (`("osd", "r")` for the OSD map) and other
        non-command access; command grants never apply here.
        """
        return self.is_capable(service, "", {}, "r" in perm, "w" in perm, "x" in perm, addr)

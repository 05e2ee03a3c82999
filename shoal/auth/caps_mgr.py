"""Manager and MDS capability grammars, for validating caps (`ceph auth` refuses bad ones).

Shoal runs no ceph-mgr and no MDS, so these caps are only stored and shown; but
`ceph auth get-or-create ... mgr 'profile rbd pool=images'` (the OpenStack guide) and
an admin's `mds 'allow *'` must be accepted, and malformed ones refused with Ceph's
message, so both grammars are implemented for parsing only:

* mgr (`ceph:src/mgr/MgrCap.cc`): the mon grammar plus `allow module <m> [with ...]
  <rwx>`, `key = value` constraints that may have spaces around `=`, arguments after
  `profile <name>`, and a check of the profile: `read-only`, `read-write`, `crash`,
  `osd`, `mds`, `rgw`, `rbd`, `rbd-read-only` (the last two taking only `pool` and
  `namespace`).
* mds (`ceph:src/mds/MDSAuthCaps.cc`): `allow` alone, or `allow <*|all|r|rw|rwp|rws|rwps>
  [fsname=<fs>] [path=<path>] [uid=<n> [gids=<n>,...]] [root_squash] [network <cidr>]`
  in the combinations Ceph 16 accepts.
"""

from __future__ import annotations

from shoal.auth.caps_common import (
    ASCII_SPACE,
    MON_SPACE,
    CapsError,
    NoMatch,
    Scanner,
    parse_grant_list,
)
from shoal.auth.caps_mon import MonGrant, StringConstraint, _MonParser

_MGR_PROFILES = frozenset({"read-only", "read-write", "crash", "osd", "mds", "rgw", "rbd", "rbd-read-only"})


class _MgrParser(_MonParser):
    def kv_pair(self) -> tuple[str, StringConstraint]:
        sc = self.sc
        key = sc.string()

        def equal() -> StringConstraint:
            self.opt_spaces()
            sc.lit("=")
            self.opt_spaces()
            return StringConstraint("equal", sc.string())

        def keyword(word: str, kind: str) -> StringConstraint:
            self.spaces()
            sc.lit(word)
            self.spaces()
            return StringConstraint(kind, sc.string())

        return key, sc.first(equal, lambda: keyword("prefix", "prefix"), lambda: keyword("regex", "regex"))

    def profile_match(self) -> MonGrant:
        sc = self.sc
        self.opt_spaces()
        sc.optional(lambda: (sc.lit("allow"), self.spaces()), None)
        sc.lit("profile")
        self.eq_or_spaces()
        name = sc.string()
        args = sc.optional(lambda: (self.spaces(), self.kv_map())[1], ())
        return MonGrant(profile=name, command_args=args or (), network=self.network())

    def module_match(self) -> MonGrant:
        sc = self.sc
        self.allow_kw()
        sc.lit("module")
        self.eq_or_spaces()
        module = sc.string()

        def with_args() -> tuple[tuple[str, StringConstraint], ...]:
            self.spaces()
            sc.lit("with")
            self.spaces()
            return self.kv_map()

        args = sc.optional(with_args, ())
        self.spaces()
        allow = self.rwxa()
        # Only validated, never evaluated (Shoal has no manager modules): keep the
        # module name where a service name would go.
        return MonGrant(service=module, command_args=args, allow=allow, network=self.network())

    def grant(self) -> MonGrant:
        self.opt_spaces()
        grant = self.sc.first(
            self.rwxa_match, self.profile_match, self.service_match, self.module_match, self.command_match
        )
        self.opt_spaces()
        return grant


def parse_mgr_caps(text: str) -> tuple[MonGrant, ...]:
    """Parse mgr caps as Ceph validates them; CapsError with Ceph's message otherwise.

    The grants are returned for inspection only: Shoal evaluates no mgr caps.
    """
    grants = _MgrParser(text).parse("mgr")
    problems: list[str] = []
    for g in grants:
        if not g.profile:
            continue
        if g.profile not in _MGR_PROFILES:
            problems.append(f"unrecognized profile '{g.profile}'")
        elif g.profile in ("rbd", "rbd-read-only"):
            bad = [k for k, _ in g.command_args if k not in ("pool", "namespace")]
            if bad:
                problems.append(f"profile '{g.profile}' does not recognize key '{bad[0]}'")
    if problems:
        raise CapsError("mgr capability parse failed during profile evaluation: " + "".join(problems))
    return grants


# ------------------------------------------------------------------- MDS

_FS_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_DIGITS = frozenset("0123456789")


class _MDSParser:
    def __init__(self, text: str) -> None:
        self.sc = Scanner(text)

    def spaces(self) -> None:
        self.sc.run(MON_SPACE)

    def keyed(self, word: str) -> None:
        self.spaces()
        self.sc.lit(word)
        self.sc.lit("=")

    def path(self) -> str:
        self.keyed("path")
        return self.sc.first(lambda: self.sc.quoted(True), self.sc.word)

    def uint(self) -> int:
        value = int(self.sc.run(_DIGITS))
        if value >= 2**32:
            raise NoMatch
        return value

    def uid(self) -> int:
        self.keyed("uid")
        return self.uint()

    def gidlist(self) -> None:
        def rule() -> None:
            self.keyed("gids")
            parse_grant_list(self.sc, self.uint, lambda: self.sc.lit(","))

        self.sc.optional(rule, None)

    def fs_name(self) -> None:
        self.sc.optional(lambda: (self.keyed("fsname"), self.sc.run(_FS_NAME_CHARS)), None)

    def root_squash(self) -> None:
        self.spaces()
        self.sc.lit("root_squash")

    def match(self) -> None:
        sc = self.sc
        alternatives = (
            lambda: (self.fs_name(), self.path(), self.root_squash()),
            lambda: (self.uid(), self.gidlist()),
            lambda: (self.path(), self.uid(), self.gidlist()),
            lambda: (self.fs_name(), self.path()),
            lambda: (self.fs_name(), self.root_squash()),
            lambda: (self.path(), self.root_squash()),
            self.path,
            self.root_squash,
            self.fs_name,
        )
        sc.optional(lambda: sc.first(*alternatives), None)

    def capspec(self) -> None:
        self.spaces()
        sc = self.sc
        sc.first(*(lambda w=w: sc.lit(w) for w in ("*", "all", "rwps", "rwp", "rws", "rw", "r")))

    def grant(self) -> None:
        self.sc.lit("allow")
        self.capspec()
        self.match()
        self.sc.optional(lambda: self.sc.network(MON_SPACE), "")

    def parse(self) -> None:
        sc = self.sc
        sc.run(ASCII_SPACE, minimum=0)
        ok = True
        try:
            parse_grant_list(sc, self.grant, self._separator)
        except NoMatch:
            ok = False
        else:
            sc.run(ASCII_SPACE, minimum=0)
        if not ok or not sc.at_end():
            raise CapsError(f"mds capability parse failed, stopped at '{sc.rest}' of '{sc.text}'")

    def _separator(self) -> None:
        sc = self.sc
        sc.run(" ", minimum=0)
        sc.first(lambda: sc.lit(";"), lambda: sc.lit(","))
        sc.run(" ", minimum=0)


def parse_mds_caps(text: str) -> None:
    """Validate MDS caps; CapsError with Ceph's message when they do not parse."""
    if text == "allow":  # the legacy form Ceph special-cases (bootstrap-mds creates it)
        return
    _MDSParser(text).parse()

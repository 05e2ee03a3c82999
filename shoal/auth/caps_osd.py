"""OSD capabilities: Ceph's `OSDCap` grammar, profile expansions and evaluation (sans-IO).

Grammar (`ceph:src/osd/OSDCap.cc`); grants are separated by `,` or `;`:

    grant   := allow <spec> <match> [network <cidr>]
             | allow <match> <spec> [network <cidr>]
             | profile[= ]<name> [pool[= ]<pool> [namespace[= ]<ns>]] [network <cidr>]
    spec    := * | all | [r][w][x] [class-read] [class-write] | class <cls> [<method>]
    match   := tag <app> <key>=<value>
             | namespace[= ]<ns>[*] tag <app> <key>=<value>
             | [pool[= ]<pool>] namespace[= ]<ns>[*] [object_prefix <prefix>]
             | [pool[= ]<pool>] [object_prefix <prefix>]

Alternatives are ordered and final, as in Spirit: `allow class rbd pool=x` does not
parse (the method name swallows `pool`) while `allow pool=x class rbd` does.

Profiles expand as Ceph expands them:

* `read-only` / `read-write`: `r` / `rw` on the pool (namespace);
* `rbd [pool=P]`: `r` on `rbd_info*` in any pool, `class-read` on `rbd_children*` and
  `rbd_mirroring*` in any pool, class `rbd metadata_list` on `rbd_info*` in P's default
  namespace, `rwx` on P;
* `rbd-read-only [pool=P]`: class `rbd metadata_list` on `rbd_info*` in P's default
  namespace, `r class-read` on P, class `rbd child_attach` / `child_detach` on
  `rbd_header.*` in P;
* any other name parses and grants nothing (e.g. `profile osd` is a mon profile).

Evaluation (`OSDCap::is_capable`): an op is allowed when one grant matches the pool,
namespace, object (prefix) and pool application tags, grants `r` if the op reads and
`w` if it writes, and every class method the op calls is allowed by this grant or an
earlier matching one: by `class <cls> [<method>]`, or by `class-read` / `class-write`
covering what the method does (`x` = both). `*` allows any call. A class call does
not need `r` or `w` by itself: like Ceph's CALL op it only needs class permission.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from shoal.auth.caps_common import (
    ASCII_SPACE,
    BLANK,
    CapsError,
    NoMatch,
    Scanner,
    network_allows,
    parse_grant_list,
)

CAP_R = 1 << 1
CAP_W = 1 << 2
CAP_CLS_R = 1 << 3
CAP_CLS_W = 1 << 4
CAP_X = CAP_CLS_R | CAP_CLS_W
CAP_ANY = 0xFF

# A class call: (class, method, method reads, method writes[, class allowed by the OSD]).
ClassCall = tuple[str, str, bool, bool] | tuple[str, str, bool, bool, bool]
AppMetadata = Mapping[str, Mapping[str, str]]  # pool application -> {key: value}


@dataclass(frozen=True)
class OSDMatch:
    pool: str = ""  # "" = any pool
    nspace: str | None = None  # None = any namespace; "" = the default one; "ns*" = a prefix
    object_prefix: str = ""
    tag: tuple[str, str, str] | None = None  # (application, key, value); "*" = wildcard

    def is_match(self, pool: str, nspace: str, app_metadata: AppMetadata, oid: str) -> bool:
        if self.pool and self.pool != pool:
            return False
        ns = self.nspace
        if ns is not None:
            wildcard = bool(ns) and ns.endswith("*") and nspace.startswith(ns[:-1])
            if not wildcard and ns != nspace:
                return False
        if self.tag is not None and not _tag_matches(self.tag, app_metadata):
            return False
        return oid.startswith(self.object_prefix)

    def is_match_all(self) -> bool:
        return not self.pool and self.nspace is None and self.tag is None and not self.object_prefix


def _tag_matches(tag: tuple[str, str, str], app_metadata: AppMetadata) -> bool:
    app, key, value = tag
    kv = app_metadata.get(app)
    if kv is None:
        return False
    if key == "*" and value == "*":
        return True
    if key == "*":
        return any(v == value for v in kv.values())
    if key not in kv:
        return False
    return value == "*" or kv[key] == value


@dataclass(frozen=True)
class OSDSpec:
    allow: int = 0  # CAP_* bits
    class_name: str = ""
    method: str = ""  # "" = every method of the class

    def allow_all(self) -> bool:
        return self.allow == CAP_ANY


@dataclass(frozen=True)
class OSDGrant:
    match: OSDMatch = field(default_factory=OSDMatch)
    spec: OSDSpec = field(default_factory=OSDSpec)
    network: str = ""
    profile: str = ""  # set for `profile <name> ...` grants, which act through profile_grants
    profile_grants: tuple[OSDGrant, ...] = ()

    def allow_all(self) -> bool:
        if self.profile:
            return any(g.allow_all() for g in self.profile_grants)
        return self.match.is_match_all() and self.spec.allow_all()

    def is_capable(
        self,
        pool: str,
        nspace: str,
        app_metadata: AppMetadata,
        oid: str,
        read: bool,
        write: bool,
        calls: Sequence[tuple[str, str, bool, bool, bool]],
        class_allowed: list[bool],
        addr: str | None,
    ) -> bool:
        if self.network and not network_allows(self.network, addr):
            return False
        if self.profile:
            return any(
                g.is_capable(pool, nspace, app_metadata, oid, read, write, calls, class_allowed, addr)
                for g in self.profile_grants
            )
        if not self.match.is_match(pool, nspace, app_metadata, oid):
            return False
        allow = self.spec.allow
        if (read and not allow & CAP_R) or (write and not allow & CAP_W):
            return False
        if calls:
            if self.spec.allow_all():
                return True
            # `class_allowed` is shared by all grants: a call allowed by an earlier
            # matching grant stays allowed, exactly as in Ceph.
            for i, (cls, method, m_reads, m_writes, allowed) in enumerate(calls):
                spec = self.spec
                if spec.class_name and spec.class_name == cls and spec.method in ("", method):
                    class_allowed[i] = True
                    continue
                if not allowed:
                    continue
                if (m_reads and not allow & CAP_CLS_R) or (m_writes and not allow & CAP_CLS_W):
                    continue
                class_allowed[i] = True
            if not all(class_allowed):
                return False
        return True


def expand_profile(name: str, pool: str, nspace: str | None) -> tuple[OSDGrant, ...]:
    """The grants an OSD `profile` stands for (see the module docstring)."""
    on_pool = OSDMatch(pool=pool, nspace=nspace)
    if name == "read-only":
        return (OSDGrant(on_pool, OSDSpec(CAP_R)),)
    if name == "read-write":
        return (OSDGrant(on_pool, OSDSpec(CAP_R | CAP_W)),)
    if name == "rbd":
        return (
            OSDGrant(OSDMatch(object_prefix="rbd_info"), OSDSpec(CAP_R)),
            OSDGrant(OSDMatch(object_prefix="rbd_children"), OSDSpec(CAP_CLS_R)),
            OSDGrant(OSDMatch(object_prefix="rbd_mirroring"), OSDSpec(CAP_CLS_R)),
            OSDGrant(OSDMatch(pool=pool, nspace="", object_prefix="rbd_info"), OSDSpec(0, "rbd", "metadata_list")),
            OSDGrant(on_pool, OSDSpec(CAP_R | CAP_W | CAP_X)),
        )
    if name == "rbd-read-only":
        header = OSDMatch(pool=pool, nspace=nspace, object_prefix="rbd_header.")
        return (
            OSDGrant(OSDMatch(pool=pool, nspace="", object_prefix="rbd_info"), OSDSpec(0, "rbd", "metadata_list")),
            OSDGrant(on_pool, OSDSpec(CAP_R | CAP_CLS_R)),
            OSDGrant(header, OSDSpec(0, "rbd", "child_attach")),
            OSDGrant(header, OSDSpec(0, "rbd", "child_detach")),
        )
    return ()


# ------------------------------------------------------------------- grammar

class _OSDParser:
    def __init__(self, text: str) -> None:
        self.sc = Scanner(text)

    def spaces(self) -> str:
        return self.sc.run(ASCII_SPACE)

    def wildcard(self) -> str:
        self.sc.first(lambda: self.sc.lit("*"), lambda: self.sc.lit("all"))
        return "*"

    def estr(self) -> str:
        return self.sc.first(lambda: self.sc.quoted(True), self.sc.word)

    def eq_or_spaces(self) -> None:
        self.sc.first(lambda: self.sc.lit("="), self.spaces)

    def pool_name(self) -> str:  # optional in the grammar: "" when absent
        def rule() -> str:
            self.spaces()
            self.sc.lit("pool")
            self.eq_or_spaces()
            return self.sc.string()

        return self.sc.optional(rule, "")

    def nspace(self) -> str:
        self.spaces()
        self.sc.lit("namespace")
        self.eq_or_spaces()
        value = self.estr()
        return value + self.sc.optional(lambda: self.sc.lit("*"), "")

    def object_prefix(self) -> str:
        def rule() -> str:
            self.spaces()
            self.sc.lit("object_prefix")
            self.spaces()
            return self.sc.string()

        return self.sc.optional(rule, "")

    def pooltag(self) -> tuple[str, str, str]:
        sc = self.sc
        self.spaces()
        sc.lit("tag")
        self.spaces()
        app = sc.string()
        self.spaces()
        key = sc.first(self.wildcard, sc.string)
        sc.optional(self.spaces, "")
        sc.lit("=")
        sc.optional(self.spaces, "")
        value = sc.first(self.wildcard, sc.string)
        return (app, key, value)

    def match(self) -> OSDMatch:
        def tag_only() -> OSDMatch:
            return OSDMatch(tag=self.pooltag())

        def ns_tag() -> OSDMatch:
            ns = self.nspace()
            return OSDMatch(nspace=ns, tag=self.pooltag())

        def pool_ns_prefix() -> OSDMatch:
            pool = self.pool_name()
            ns = self.nspace()
            return OSDMatch(pool=pool, nspace=ns, object_prefix=self.object_prefix())

        def pool_prefix() -> OSDMatch:
            pool = self.pool_name()
            return OSDMatch(pool=pool, object_prefix=self.object_prefix())

        return self.sc.first(tag_only, ns_tag, pool_ns_prefix, pool_prefix)

    def rwx_letters(self) -> int:
        """`r || w || x`: at least one of r, w, x, in that order."""
        bits = 0
        for letter, bit in (("r", CAP_R), ("w", CAP_W), ("x", CAP_X)):
            if self.sc.attempt(lambda letter=letter: self.sc.lit(letter))[0]:
                bits |= bit
        if not bits:
            raise NoMatch
        return bits

    def rwxa(self) -> int:
        sc = self.sc

        def star() -> int:
            self.spaces()
            self.wildcard()
            return CAP_ANY

        def letters() -> int:
            self.spaces()
            return self.rwx_letters()

        def class_rw() -> int:
            def read_first() -> int:
                self.spaces()
                sc.lit("class-read")
                ok, _ = sc.attempt(lambda: (self.spaces(), sc.lit("class-write")))
                return CAP_CLS_R | (CAP_CLS_W if ok else 0)

            def write_only() -> int:
                self.spaces()
                sc.lit("class-write")
                return CAP_CLS_W

            return sc.first(read_first, write_only)

        def combined() -> int:  # `letters || class_rw`
            ok, bits = sc.attempt(letters)
            if ok:
                return (bits or 0) | sc.optional(class_rw, 0)
            return class_rw()

        return sc.first(star, combined)

    def capspec(self) -> OSDSpec:
        def by_class() -> OSDSpec:
            self.spaces()
            self.sc.lit("class")
            self.spaces()
            cls = self.sc.string()

            def method() -> str:
                self.spaces()
                return self.sc.string()

            return OSDSpec(0, cls, self.sc.optional(method, ""))

        return self.sc.first(lambda: OSDSpec(self.rwxa()), by_class)

    def network(self) -> str:
        return self.sc.optional(lambda: self.sc.network(ASCII_SPACE), "")

    def profile(self) -> tuple[str, str, str | None]:
        def name() -> str:
            self.sc.lit("profile")
            self.eq_or_spaces()
            return self.sc.string()

        def with_ns() -> tuple[str, str, str | None]:
            n = name()
            pool = self.pool_name()
            return n, pool, self.nspace()

        def without_ns() -> tuple[str, str, str | None]:
            n = name()
            return n, self.pool_name(), None

        return self.sc.first(with_ns, without_ns)

    def grant(self) -> OSDGrant:
        sc = self.sc
        sc.run(BLANK, minimum=0)

        def spec_first() -> OSDGrant:
            sc.lit("allow")
            spec = self.capspec()
            match = self.match()
            return OSDGrant(match, spec, self.network())

        def match_first() -> OSDGrant:
            sc.lit("allow")
            match = self.match()
            spec = self.capspec()
            return OSDGrant(match, spec, self.network())

        def by_profile() -> OSDGrant:
            name, pool, ns = self.profile()
            return OSDGrant(
                OSDMatch(pool=pool, nspace=ns), network=self.network(), profile=name,
                profile_grants=expand_profile(name, pool, ns),
            )

        grant = sc.first(spec_first, match_first, by_profile)
        sc.run(BLANK, minimum=0)
        return grant

    def parse(self) -> tuple[OSDGrant, ...]:
        sc = self.sc
        sc.run(ASCII_SPACE, minimum=0)  # phrase_parse skips leading white space...
        try:
            grants = parse_grant_list(sc, self.grant, lambda: sc.first(lambda: sc.lit(";"), lambda: sc.lit(",")))
        except NoMatch:
            grants = []
        else:
            sc.run(ASCII_SPACE, minimum=0)  # ...and, after a successful parse, trailing white space
        if not grants or not sc.at_end():
            raise CapsError(f"osd capability parse failed, stopped at '{sc.rest}' of '{sc.text}'")
        return tuple(grants)


@dataclass(frozen=True)
class OSDCap:
    """Parsed OSD caps of one entity. No grants = nothing allowed."""

    grants: tuple[OSDGrant, ...] = ()
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> OSDCap:
        """Parse caps text; CapsError (a ValueError) when Ceph would not parse it.

        An empty (or all-white-space) string is an entity without OSD caps: no grant.
        """
        if not isinstance(text, str):
            raise CapsError(f"osd caps must be a string, not {type(text).__name__}")
        if not text.strip(ASCII_SPACE):
            return cls((), text)
        return cls(_OSDParser(text).parse(), text)

    @classmethod
    def for_session(cls, text: str | None) -> OSDCap:
        """What a daemon enforces for a session: caps that do not parse grant nothing."""
        try:
            return cls.parse(text or "")
        except CapsError:
            return cls((), text or "")

    def allow_all(self) -> bool:
        return any(g.allow_all() for g in self.grants)

    def allows(
        self,
        pool: str,
        nspace: str,
        oid: str,
        *,
        read: bool,
        write: bool,
        cls_calls: Iterable[ClassCall] = (),
        app_metadata: AppMetadata | None = None,
        addr: str | None = None,
    ) -> bool:
        """May an op on `pool`/`nspace`/`oid` that reads/writes/calls these class methods run?

        `cls_calls` holds one (class, method, method reads, method writes) per CALL op,
        optionally with a fifth item: whether the class may be used through `x` /
        `class-read` / `class-write` (Ceph's `osd class default list`; default True).
        `app_metadata` is the pool's application metadata (for `tag` grants) and
        `addr` the client's address (for `network` grants, which never apply without it).
        """
        calls = [_norm_call(c) for c in cls_calls]
        class_allowed = [False] * len(calls)
        meta = app_metadata or {}
        return any(
            g.is_capable(pool, nspace, meta, oid, read, write, calls, class_allowed, addr)
            for g in self.grants
        )

    def allows_unmanaged_snaps(self, pool: str | None) -> bool:
        """May this entity create/remove self-managed snapshots in `pool` (a mon pool op)?

        Ceph's monitor permits it when the OSD caps can write the pool: `allow *`, or
        a grant (or profile grant) with `w` that matches every pool or names this one.
        """
        if self.allow_all():
            return True
        for grant in self.grants:
            for g in grant.profile_grants if grant.profile else (grant,):
                if g.spec.allow & CAP_W and (
                    g.match.is_match_all() or (pool is not None and g.match.pool and g.match.pool == pool)
                ):
                    return True
        return False


def _norm_call(call: ClassCall) -> tuple[str, str, bool, bool, bool]:
    if len(call) == 4:
        cls, method, reads, writes = call  # type: ignore[misc]
        return str(cls), str(method), bool(reads), bool(writes), True
    cls, method, reads, writes, allowed = call  # type: ignore[misc]
    return str(cls), str(method), bool(reads), bool(writes), bool(allowed)

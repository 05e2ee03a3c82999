"""The option schema: every configuration option Shoal knows, in one table.

Each `Option` says what type its value has, its default, who reads it and what it
does. Everything else in `shoal.config` (file parsing, argv, `config show`) looks
options up here, so adding an option is adding one entry to `OPTIONS`.

Values travel as strings (ceph.conf, argv, `conf_set`, the admin socket) and are held
typed; `Option.parse` turns text into the typed value and `Option.to_str` turns it back
into the text Ceph's `config get` would print.
"""

from __future__ import annotations

import errno as _errno
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from shoal.errors import InvalidArgument, NotFound

OptionType = Literal["str", "int", "uint", "float", "bool", "size", "secs"]
Level = Literal["basic", "advanced", "dev"]

TYPES: frozenset[str] = frozenset({"str", "int", "uint", "float", "bool", "size", "secs"})
LEVELS: frozenset[str] = frozenset({"basic", "advanced", "dev"})


class UnknownOption(NotFound, KeyError):
    """An option name that is not in the schema (a KeyError, so `in`-style code works)."""

    errno = _errno.ENOENT


class InvalidValue(InvalidArgument, ValueError):
    """A value that does not parse as its option's type (or is out of range)."""

    errno = _errno.EINVAL


def normalize_name(name: str) -> str:
    """Make `mon host`, `mon-host` and `mon_host` the same key.

    ceph.conf, argv and the admin socket all accept the three spellings; runs of
    separators collapse so `mon  host` (two spaces) still matches.
    """
    return re.sub(r"[\s_-]+", "_", name.strip())


# ---------------------------------------------------------------- value parsers

_TRUE = frozenset({"true", "yes", "on"})
_FALSE = frozenset({"false", "no", "off"})


def parse_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    # Ceph also takes integers, non-zero meaning true.
    if re.fullmatch(r"[+-]?\d+", word):
        return int(word) != 0
    raise ValueError("expected true/false (or yes/no, on/off, 1/0)")


# SI multipliers for integer options, as Ceph's integer options take "1K" = 1000.
_SI = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_INT_RE = re.compile(r"\s*([+-]?\d+)\s*([KMGTPE]?)\s*", re.IGNORECASE)


def parse_int(text: str) -> int:
    m = _INT_RE.fullmatch(text)
    if not m:
        raise ValueError("expected an integer (optionally with a K/M/G/T/P/E suffix)")
    return int(m.group(1)) * _SI[m.group(2).upper()]


def parse_uint(text: str) -> int:
    value = parse_int(text)
    if value < 0:
        raise ValueError("expected a non-negative integer")
    return value


def parse_float(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError("expected a number") from None
    if not math.isfinite(value):
        raise ValueError("expected a finite number")
    return value


# Sizes are binary, as Ceph's: "4M", "4Mi" and "4MiB" are all 4 * 2**20 bytes.
_IEC = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}
_SIZE_RE = re.compile(r"\s*(\d+)\s*(?:([KMGTPE])(i)?)?\s*(B)?\s*", re.IGNORECASE)


def parse_size(text: str) -> int:
    m = _SIZE_RE.fullmatch(text)
    if not m:
        raise ValueError("expected a size in bytes, like 4096, 4K, 4M, 1G or 1GiB")
    value = int(m.group(1)) << (10 * _IEC[(m.group(2) or "").upper()])
    if value >= 1 << 64:
        raise ValueError("size does not fit in 64 bits")
    return value


_SECS_UNITS: dict[str, float] = {}
for _names, _factor in (
    (("", "s", "sec", "secs", "second", "seconds"), 1.0),
    (("ms", "msec", "msecs", "millisecond", "milliseconds"), 0.001),
    (("m", "min", "mins", "minute", "minutes"), 60.0),
    (("h", "hr", "hrs", "hour", "hours"), 3600.0),
    (("d", "day", "days"), 86400.0),
    (("w", "wk", "wks", "week", "weeks"), 7 * 86400.0),
):
    for _n in _names:
        _SECS_UNITS[_n] = _factor
_SECS_TOKEN = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)", re.IGNORECASE)


def parse_secs(text: str) -> float:
    """Seconds as a float: "30", "0.5", "1500ms", "5m", "1h 30m"."""
    error = "expected a duration in seconds, like 30, 0.5, 1500ms, 5m or 1h 30m"
    stripped = text.strip()
    pos, total, tokens = 0, 0.0, []
    while pos < len(stripped):
        m = _SECS_TOKEN.match(stripped, pos)
        if not m or m.group(2).lower() not in _SECS_UNITS:
            raise ValueError(error)
        tokens.append(m.group(2))
        total += float(m.group(1)) * _SECS_UNITS[m.group(2).lower()]
        pos = m.end()
    # A bare number is only allowed alone: "1 2" is more likely a typo than 3 seconds.
    if not tokens or (len(tokens) > 1 and "" in tokens):
        raise ValueError(error)
    return total


_PARSERS: dict[str, Callable[[str], Any]] = {
    "str": lambda text: text,
    "int": parse_int,
    "uint": parse_uint,
    "float": parse_float,
    "bool": parse_bool,
    "size": parse_size,
    "secs": parse_secs,
}


def format_value(type_: str, value: Any) -> str:
    """The text Ceph prints for a typed value (`config get`, `conf_get`, `config show`)."""
    if type_ == "bool":
        return "true" if value else "false"
    if type_ in ("int", "uint", "size"):
        return str(int(value))
    if type_ == "float":
        return f"{float(value):.6f}"  # Ceph prints doubles with six decimals
    if type_ == "secs":
        value = float(value)
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


# ------------------------------------------------------- option-specific parsers

# librbd's feature bits, by the names `rbd feature enable` and ceph.conf use.
RBD_FEATURES: dict[str, int] = {
    "layering": 1,
    "striping": 2,
    "exclusive-lock": 4,
    "object-map": 8,
    "fast-diff": 16,
    "deep-flatten": 32,
    "journaling": 64,
    "data-pool": 128,
    "operations": 256,
    "migrating": 512,
    "non-primary": 1024,
}
RBD_FEATURES_ALL = sum(RBD_FEATURES.values())


def parse_rbd_features(text: str) -> int:
    """A feature mask from a number ("61") or names ("layering,exclusive-lock")."""
    tokens = [t for t in re.split(r"[,\s]+", text.strip()) if t]
    if not tokens:
        raise ValueError("expected a feature mask or comma-separated feature names")
    mask = 0
    for token in tokens:
        if token.isdigit():
            mask |= int(token)
            continue
        bit = RBD_FEATURES.get(token.lower().replace("_", "-"))
        if bit is None:
            raise ValueError(f"unknown RBD feature {token!r} (known: {', '.join(RBD_FEATURES)})")
        mask |= bit
    if mask & ~RBD_FEATURES_ALL:
        raise ValueError(f"feature mask {mask} has bits no RBD feature uses")
    return mask


_LOG_LEVEL_RE = re.compile(r"\s*(\d+)\s*(?:/\s*(\d+)\s*)?")


def parse_log_level(text: str) -> str:
    """`debug_*` values: "LOG/MEMORY" levels; a single number sets both, as in Ceph."""
    m = _LOG_LEVEL_RE.fullmatch(text)
    if not m:
        raise ValueError('expected a debug level like "1/5" or "10"')
    log = int(m.group(1))
    mem = int(m.group(2)) if m.group(2) is not None else log
    return f"{log}/{mem}"


_MS_MODE_ALIASES = {"prefer-crc": ("crc", "secure"), "prefer-secure": ("secure", "crc")}


def parse_ms_mode(text: str) -> str:
    modes: list[str] = []
    for token in (t for t in re.split(r"[,\s]+", text.strip().lower()) if t):
        for mode in _MS_MODE_ALIASES.get(token, (token,)):
            if mode not in ("crc", "secure"):
                raise ValueError(f"unknown connection mode {token!r} (known: crc, secure)")
            if mode not in modes:
                modes.append(mode)
    if not modes:
        raise ValueError("expected one or more of: crc, secure")
    return " ".join(modes)


# ------------------------------------------------------------------ the schema


@dataclass(frozen=True)
class Option:
    """One configuration option.

    `daemon_default` (when not None) replaces `default` for mon/osd/mds/mgr entities,
    because a few options (log file, admin socket) make sense for daemons by default
    but not for every short-lived client. `parser` replaces the type's parser for
    options whose text has its own grammar (feature names, debug levels).
    """

    name: str
    type: OptionType
    default: Any
    desc: str
    level: Level = "basic"
    services: tuple[str, ...] = ("common",)
    daemon_default: Any = None
    enum: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    parser: Callable[[str], Any] | None = None

    def __post_init__(self) -> None:
        # Catch schema typos at import time, not when an operator hits them.
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.name):
            raise ValueError(f"option name {self.name!r} is not lower_snake_case")
        if self.type not in TYPES:
            raise ValueError(f"option {self.name}: unknown type {self.type!r}")
        if self.level not in LEVELS:
            raise ValueError(f"option {self.name}: unknown level {self.level!r}")

    def parse(self, text: str) -> Any:
        """Typed value from text; InvalidValue naming the option and value if it is wrong."""
        if not isinstance(text, str):
            raise InvalidValue(f"option {self.name}: value must be a string, not {type(text).__name__}")
        try:
            value = (self.parser or _PARSERS[self.type])(text)
            self._check(value)
        except ValueError as exc:
            raise InvalidValue(
                f"invalid value {text!r} for option {self.name} ({self.type}): {exc}"
            ) from None
        return value

    def coerce(self, value: Any) -> Any:
        """Like `parse`, but also takes Python values (True, 4096, 0.5)."""
        if isinstance(value, str):
            return self.parse(value)
        if isinstance(value, bool):
            return self.parse("true" if value else "false")
        if isinstance(value, int | float):
            return self.parse(str(value))
        raise InvalidValue(f"option {self.name}: cannot use a {type(value).__name__} as a value")

    def to_str(self, value: Any) -> str:
        return format_value(self.type, value)

    def default_for(self, entity_type: str) -> Any:
        if self.daemon_default is not None and entity_type != "client":
            return self.daemon_default
        return self.default

    def _check(self, value: Any) -> None:
        if self.enum and value not in self.enum:
            raise ValueError(f"must be one of: {', '.join(self.enum)}")
        if self.min is not None and value < self.min:
            raise ValueError(f"must be at least {format_value(self.type, self.min)}")
        if self.max is not None and value > self.max:
            raise ValueError(f"must be at most {format_value(self.type, self.max)}")


def _o(name: str, type_: OptionType, default: Any, desc: str, **kw: Any) -> Option:
    return Option(name, type_, default, desc, **kw)


_MON = ("mon",)
_OSD = ("osd",)
_CLIENT = ("client",)
_RBD = ("rbd",)
_DAEMONS = ("mon", "osd")


def _debug(subsys: str, default: str) -> Option:
    return _o(
        f"debug_{subsys}",
        "str",
        default,
        f'Log levels for the {subsys} subsystem as "LOG/MEMORY": messages at or below LOG '
        "go to the log; MEMORY is kept for crash dumps. A single number sets both.",
        level="advanced",
        parser=parse_log_level,
    )


def _qos(name: str, default: int, what: str) -> Option:
    return _o(f"rbd_qos_{name}", "uint", default, what + " (0 = unlimited).", level="advanced", services=_RBD)


_OPTIONS: tuple[Option, ...] = (
    # --- identity and how to reach the cluster
    _o("fsid", "str", "", "The cluster's unique id (a UUID); daemons refuse to join a cluster with another."),
    _o(
        "mon_host",
        "str",
        "",
        "Monitor addresses a client or daemon contacts first: comma or space separated, each "
        "host, host:port or [v2:ip:port,v1:ip:port].",
    ),
    _o(
        "mon_initial_members",
        "str",
        "",
        "Monitor names that must be present to form the first quorum.",
        services=_MON,
    ),
    _o(
        "public_addr",
        "str",
        "",
        "Address this daemon binds and advertises to clients (empty = choose one).",
        services=_DAEMONS,
    ),
    _o(
        "cluster_addr",
        "str",
        "",
        "Address OSDs use among themselves for replication (empty = public_addr).",
        services=_OSD,
    ),
    _o(
        "public_network",
        "str",
        "",
        "CIDR(s) from which a daemon picks public_addr when it is not set.",
        level="advanced",
        services=_DAEMONS,
    ),
    _o(
        "cluster_network",
        "str",
        "",
        "CIDR(s) from which an OSD picks cluster_addr when it is not set.",
        level="advanced",
        services=_OSD,
    ),
    # --- authentication
    _o(
        "keyring",
        "str",
        "/etc/ceph/$cluster.$name.keyring,/etc/ceph/$cluster.keyring,/etc/ceph/keyring,/etc/ceph/keyring.bin",
        "Keyring files to look for this entity's key in, first match wins (comma, semicolon or space separated).",
    ),
    _o(
        "key",
        "str",
        "",
        "This entity's secret key in base64, instead of a keyring (visible in ps; prefer keyfile).",
    ),
    _o("keyfile", "str", "", "A file holding only this entity's base64 secret key."),
    _o(
        "auth_cluster_required",
        "str",
        "cephx",
        "Authentication daemons require from each other: cephx or none.",
    ),
    _o(
        "auth_service_required", "str", "cephx", "Authentication daemons require from clients: cephx or none."
    ),
    _o(
        "auth_client_required",
        "str",
        "cephx",
        "Authentication a client requires from the cluster: cephx or none.",
    ),
    _o(
        "auth_supported",
        "str",
        "",
        "Deprecated single setting for all three auth_*_required options; when set it overrides them.",
        level="advanced",
    ),
    _o(
        "ms_mode",
        "str",
        "crc secure",
        "Connection modes to offer, most preferred first: crc (integrity checked) and/or "
        "secure (encrypted); prefer-crc and prefer-secure are accepted as shorthands.",
        level="advanced",
        parser=parse_ms_mode,
    ),
    # --- logging, files, sockets
    _o(
        "log_file",
        "str",
        "",
        "Where to write the log (empty = no log file).",
        daemon_default="/var/log/ceph/$cluster-$name.log",
    ),
    _o("log_to_stderr", "bool", True, "Also write log messages to standard error.", daemon_default=False),
    _debug("ms", "0/0"),
    _debug("mon", "1/5"),
    _debug("osd", "1/5"),
    _debug("client", "0/5"),
    _debug("rbd", "0/5"),
    _debug("rados", "0/5"),
    _debug("monc", "0/10"),
    _debug("objecter", "0/1"),
    _debug("auth", "1/5"),
    _debug("asok", "1/5"),
    _o(
        "admin_socket",
        "str",
        "",
        "Unix socket answering `ceph daemon` commands (config, perf dump...). Daemons have one "
        "by default; a client serves one only when this is set, e.g. "
        "$run_dir/$cluster-$name.$pid.$cctid.asok so several clients do not collide.",
        daemon_default="$run_dir/$cluster-$name.asok",
    ),
    _o("run_dir", "str", "/var/run/ceph", "Directory for sockets and pid files."),
    _o("pid_file", "str", "", "File a daemon writes its process id to (empty = none).", services=_DAEMONS),
    # --- data directories and stores
    _o("mon_data", "str", "/var/lib/ceph/mon/$cluster-$id", "The monitor's data directory.", services=_MON),
    _o("osd_data", "str", "/var/lib/ceph/osd/$cluster-$id", "The OSD's data directory.", services=_OSD),
    _o(
        "osd_objectstore",
        "str",
        "sqlite",
        "Object store backend an OSD keeps its objects in: sqlite (durable) or memory (tests; lost on exit).",
        services=_OSD,
        enum=("sqlite", "memory"),
    ),
    _o(
        "osd_op_num_threads",
        "uint",
        2,
        "Worker threads an OSD uses for blocking store work.",
        level="advanced",
        services=_OSD,
        min=1,
    ),
    # --- pools and placement
    _o("auth_service_ticket_ttl", "secs", 3600.0,
       "How long service tickets (and each rotating service secret) stay valid; clients renew "
       "before expiry, so a deleted entity loses access within this time.", min=1.0),
    _o("auth_mon_ticket_ttl", "secs", 43200.0, "Lifetime of a monitor session ticket.", level="advanced"),
    _o("mon_allow_pool_size_one", "bool", False, "Allow pools with a single replica.", services=_MON),
    _o("mon_max_pool_pg_num", "uint", 65536, "Largest pg_num a pool may have.", services=_MON, level="advanced"),
    _o("osd_pool_default_type", "str", "replicated", "Type of new pools (only replicated is supported).",
       services=_MON, enum=("replicated", "erasure")),
    _o("osd_pool_default_flag_hashpspool", "bool", True, "New pools hash the pool id into PG placement.",
       services=_MON, level="advanced"),
    _o("osd_pool_default_flag_nodelete", "bool", False, "New pools refuse deletion.", services=_MON,
       level="advanced"),
    _o("osd_pool_default_flag_nopgchange", "bool", False, "New pools refuse pg_num changes.", services=_MON,
       level="advanced"),
    _o("osd_pool_default_flag_nosizechange", "bool", False, "New pools refuse size changes.", services=_MON,
       level="advanced"),
    _o("mon_osd_full_ratio", "float", 0.95, "Usage ratio at which an OSD counts as full.", services=_MON),
    _o("mon_osd_backfillfull_ratio", "float", 0.90, "Usage ratio above which an OSD takes no backfill.",
       services=_MON),
    _o("mon_osd_nearfull_ratio", "float", 0.85, "Usage ratio at which health warns an OSD is nearly full.",
       services=_MON),
    _o("mon_warn_on_pool_no_app", "bool", True, "Warn about pools with no application enabled.",
       services=_MON),
    _o("mon_warn_on_pool_no_app_grace", "secs", 300.0,
       "How long a new pool may go without an application before health warns.", services=_MON),
    _o(
        "mon_allow_pool_delete",
        "bool",
        False,
        "Allow `osd pool delete`; off by default so a typo cannot destroy a pool.",
        services=_MON,
    ),
    _o(
        "mon_max_pg_per_osd",
        "uint",
        1000,
        "Refuse pool creation or pg_num changes that would put more PG replicas than this on "
        "an OSD. Ceph uses 250, but the Ceph OpenStack guide creates four pools of 128 PGs on "
        "a three-OSD cluster (4*128*3/3 = 512 per OSD), which Ceph refuses; Shoal must run "
        "the guide's commands as written, hence 1000.",
        level="advanced",
        services=_MON,
        min=1,
    ),
    _o(
        "osd_pool_default_size",
        "uint",
        3,
        "Replicas kept of each object in a new pool.",
        services=_MON,
        min=1,
        max=10,
    ),
    _o(
        "osd_pool_default_min_size",
        "uint",
        0,
        "Replicas that must be up for a new pool's PGs to accept IO; 0 means size - size/2.",
        services=_MON,
        max=10,
    ),
    _o(
        "osd_pool_default_pg_num",
        "uint",
        32,
        "PGs in a new pool when the command does not say.",
        services=_MON,
        min=1,
    ),
    _o(
        "osd_pool_default_pgp_num",
        "uint",
        0,
        "Placement PGs in a new pool when the command does not say; 0 means equal to pg_num.",
        level="advanced",
        services=_MON,
    ),
    _o(
        "osd_crush_chooseleaf_type",
        "uint",
        1,
        "Failure domain the default rule spreads replicas over: 0 = OSD, 1 = host.",
        level="advanced",
        services=_MON,
    ),
    # --- failure detection
    _o(
        "osd_heartbeat_interval",
        "secs",
        1.0,
        "How often an OSD pings its peers.",
        level="advanced",
        services=_OSD,
        min=0.001,
    ),
    _o(
        "osd_heartbeat_grace",
        "secs",
        5.0,
        "Silence after which a peer is reported down. Shorter than Ceph's 20 s so failover is quick.",
        level="advanced",
        services=("mon", "osd"),
        min=0.001,
    ),
    _o(
        "mon_osd_down_out_interval",
        "secs",
        600.0,
        "How long an OSD stays down before the monitor marks it out and its data is re-replicated "
        "(0 = never automatically).",
        level="advanced",
        services=_MON,
    ),
    # --- client timeouts (what OpenStack sets through conf_set)
    _o(
        "rados_osd_op_timeout",
        "secs",
        0.0,
        "Fail an object operation after this long (0 = wait forever).",
        services=_CLIENT,
    ),
    _o(
        "rados_mon_op_timeout",
        "secs",
        0.0,
        "Fail a monitor command after this long (0 = wait forever).",
        services=_CLIENT,
    ),
    _o(
        "client_mount_timeout",
        "secs",
        300.0,
        "Give up connecting to the cluster after this long.",
        services=_CLIENT,
    ),
    # --- RBD image defaults
    _o(
        "rbd_default_features",
        "uint",
        61,
        "Features of new images: a number or comma-separated names (layering, striping, "
        "exclusive-lock, object-map, fast-diff, deep-flatten, journaling, data-pool); always "
        "reported as the number. 61 = layering, exclusive-lock, object-map, fast-diff, deep-flatten.",
        services=_RBD,
        parser=parse_rbd_features,
    ),
    _o(
        "rbd_default_order",
        "uint",
        22,
        "Object size of new images as a power of two (22 = 4 MiB).",
        services=_RBD,
        min=12,
        max=25,
    ),
    _o(
        "rbd_default_stripe_unit",
        "size",
        0,
        "Stripe unit of new images (0 = the object size).",
        level="advanced",
        services=_RBD,
    ),
    _o(
        "rbd_default_stripe_count",
        "uint",
        0,
        "Stripe count of new images (0 = 1).",
        level="advanced",
        services=_RBD,
    ),
    _o(
        "rbd_default_format",
        "uint",
        2,
        "Image format of new images; only 2 is fully supported.",
        level="advanced",
        services=_RBD,
        min=1,
        max=2,
    ),
    _o(
        "rbd_default_clone_format",
        "str",
        "auto",
        "Clone format: 1 (parent snapshot must be protected), 2 (no protection needed) or auto.",
        level="advanced",
        services=_RBD,
        enum=("1", "2", "auto"),
    ),
    _o(
        "rbd_default_pool",
        "str",
        "rbd",
        "Pool the rbd CLI uses when an image spec names none.",
        services=_RBD,
    ),
    _o(
        "rbd_default_data_pool",
        "str",
        "",
        "Separate pool for the data objects of new images (empty = same pool).",
        level="advanced",
        services=_RBD,
    ),
    # --- RBD cache and concurrency
    _o("rbd_cache", "bool", True, "Cache image writes in the client (write-back).", services=_RBD),
    _o(
        "rbd_cache_writethrough_until_flush",
        "bool",
        True,
        "Keep the cache write-through until the guest sends its first flush, so guests that never flush stay safe.",
        services=_RBD,
    ),
    _o("rbd_cache_size", "size", 32 << 20, "Bytes of cache per image.", services=_RBD),
    _o(
        "rbd_cache_max_dirty",
        "size",
        24 << 20,
        "Dirty bytes at which writes wait for writeback (0 = write-through).",
        services=_RBD,
    ),
    _o("rbd_cache_target_dirty", "size", 16 << 20, "Dirty bytes at which writeback starts.", services=_RBD),
    _o(
        "rbd_cache_max_dirty_age",
        "float",
        1.0,
        "Seconds dirty data may stay in the cache before writeback.",
        services=_RBD,
        min=0.0,
    ),
    _o(
        "rbd_concurrent_management_ops",
        "uint",
        10,
        "Object operations in flight at once in management commands (copy, flatten, remove, export, import).",
        services=_RBD,
        min=1,
    ),
    # --- RBD QoS (token-bucket throttles per image)
    _qos("iops_limit", 0, "Operations per second allowed"),
    _qos("iops_burst", 0, "Operations per second allowed in a burst"),
    _qos("read_iops_limit", 0, "Read operations per second allowed"),
    _qos("write_iops_limit", 0, "Write operations per second allowed"),
    _qos("read_iops_burst", 0, "Read operations per second allowed in a burst"),
    _qos("write_iops_burst", 0, "Write operations per second allowed in a burst"),
    _qos("bps_limit", 0, "Bytes per second allowed"),
    _qos("bps_burst", 0, "Bytes per second allowed in a burst"),
    _qos("read_bps_limit", 0, "Bytes read per second allowed"),
    _qos("write_bps_limit", 0, "Bytes written per second allowed"),
    _qos("read_bps_burst", 0, "Bytes read per second allowed in a burst"),
    _qos("write_bps_burst", 0, "Bytes written per second allowed in a burst"),
    _qos("iops_burst_seconds", 1, "Seconds an operations burst may last"),
    _qos("read_iops_burst_seconds", 1, "Seconds a read operations burst may last"),
    _qos("write_iops_burst_seconds", 1, "Seconds a write operations burst may last"),
    _qos("bps_burst_seconds", 1, "Seconds a bytes burst may last"),
    _qos("read_bps_burst_seconds", 1, "Seconds a read bytes burst may last"),
    _qos("write_bps_burst_seconds", 1, "Seconds a write bytes burst may last"),
    _o(
        "rbd_qos_schedule_tick_min",
        "uint",
        50,
        "Shortest interval, in milliseconds, at which throttled IO is released.",
        level="advanced",
        services=_RBD,
        min=1,
    ),
    # --- fencing: the OSD map's blocklist (decision record 0007)
    _o("mon_osd_blocklist_default_expire", "float", 3600.0,
       "Seconds an `osd blocklist add` entry lasts when the command gives no expiry.", services=_MON,
       level="advanced", min=0),
    _o("osd_client_watch_timeout", "int", 30,
       "Seconds an OSD keeps a client's watch without a ping, when the client asks for no timeout "
       "(a dead exclusive-lock owner is noticed after this long).", services=("osd", "client"),
       level="advanced", min=1),
    _o("rbd_blocklist_on_break_lock", "bool", True,
       "Blocklist a dead exclusive-lock owner (and the locker of `rbd lock rm`) before breaking its lock, "
       "so it can never write again.", services=_RBD, level="advanced"),
    _o("rbd_blocklist_expire_seconds", "uint", 0,
       "Seconds such a blocklist entry lasts (0 = the monitor's mon_osd_blocklist_default_expire).",
       services=_RBD, level="advanced"),
)


def _index(options: Iterable[Option]) -> dict[str, Option]:
    table: dict[str, Option] = {}
    for opt in options:
        if opt.name in table:
            raise ValueError(f"option {opt.name} defined twice")
        table[opt.name] = opt
    return table


# name -> Option, sorted by name (what `config show` lists).
OPTIONS: Mapping[str, Option] = dict(sorted(_index(_OPTIONS).items()))


def lookup(name: str, schema: Mapping[str, Option] = OPTIONS) -> Option:
    """The option called `name` in any spelling; UnknownOption if there is none."""
    opt = schema.get(normalize_name(name))
    if opt is None:
        raise UnknownOption(f"unknown config option {name!r}")
    return opt

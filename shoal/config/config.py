"""`Config`: the effective configuration of one entity (client.admin, osd.0, mon.a).

Values come from layers; a higher layer wins:

    default < file < mon < env < cmdline < override

* default  - the schema (`options.py`), daemon defaults for mon/osd/...;
* file     - ceph.conf: `[global]`, then `[<type>]`, then `[<type>.<id>]`;
* mon      - central config the monitor pushes (`set_central`);
* env      - `CEPH_ARGS`;
* cmdline  - the tool's argv;
* override - `set()`: `conf_set`, `config set` on the admin socket.

Values are held typed and printed Ceph-style by `get_str`. String values have their
metavariables expanded when read. Only `read_file` (and the conf search built on it)
touches the filesystem; everything else is pure bookkeeping, so tests need no files.
"""

from __future__ import annotations

import errno as _errno
import os
import platform
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from shoal.config import metavars
from shoal.config.cli_args import ENTITY_TYPES, GlobalArgs, parse_global_args, split_ceph_args
from shoal.config.conffile import ConfFile, ConfFileError, parse_conf
from shoal.config.options import OPTIONS, InvalidValue, Option, UnknownOption, normalize_name

LAYERS: tuple[str, ...] = ("default", "file", "mon", "env", "cmdline", "override")
# Layers other code may write through apply_options (file and default have their own paths).
_WRITABLE = ("mon", "env", "cmdline", "override")

# Where the default conf search looks; a module attribute so tests can point it elsewhere.
ETC_DIR = "/etc/ceph"

Observer = Callable[[set[str]], None]


def conf_search_paths(
    cluster: str, env: Mapping[str, str] | None = None, etc_dir: str | None = None
) -> list[str]:
    """Files the default search tries, in order; the first that exists is read.

    `$CEPH_CONF` (comma-separated) replaces the built-in list, as in Ceph, so pointing it
    at a cluster's conf can never silently fall back to /etc/ceph.
    """
    env = os.environ if env is None else env
    spec = env.get("CEPH_CONF", "")
    if spec.strip():
        return [metavars.expand(p, {"cluster": cluster}) for p in split_conf_list(spec)]
    paths = [os.path.join(ETC_DIR if etc_dir is None else etc_dir, f"{cluster}.conf")]
    home = env.get("HOME")
    if home:
        paths.append(os.path.join(home, ".ceph", f"{cluster}.conf"))
    paths.append(f"{cluster}.conf")  # relative: the current directory
    return paths


def split_path_list(text: str, separators: str = r"[,;\s]+") -> list[str]:
    """Paths from a list; keyrings may be separated by commas, semicolons or whitespace."""
    return [p.strip() for p in re.split(separators, text) if p.strip()]


def split_conf_list(text: str) -> list[str]:
    """Conf file lists (`-c a.conf,b.conf`, $CEPH_CONF) split on commas only: paths may hold spaces."""
    return split_path_list(text, ",")


class Config:
    """The configuration of one entity. Thread-safe: clients read it from many threads."""

    def __init__(
        self,
        entity_type: str = "client",
        entity_id: str = "admin",
        cluster: str = "ceph",
        *,
        conffile: str | None = None,
        env: Mapping[str, str] | None = None,
        schema: Mapping[str, Option] = OPTIONS,
        host: str | None = None,
        pid: int | None = None,
        cctid: int | None = None,
    ) -> None:
        _check_entity(entity_type, entity_id)
        if not cluster:
            raise InvalidValue("cluster name must not be empty")
        self._schema = schema
        self._type = entity_type
        self._id = entity_id
        self._cluster = cluster
        self._host = host
        self._pid = pid
        # Ceph numbers each context by its address; the object id serves the same purpose:
        # two handles in one process get different admin socket paths.
        self._cctid = id(self) if cctid is None else cctid
        self._lock = threading.RLock()
        self._layers: dict[str, dict[str, Any]] = {name: {} for name in _WRITABLE}
        self._conf: ConfFile | None = None
        self._file: dict[str, Any] = {}
        self._observers: list[Observer] = []
        self.conf_path: str | None = None
        self.warnings: list[str] = []
        if conffile is not None:
            self.read_conf(conffile, env=env)

    # ------------------------------------------------------------- identity

    @property
    def entity_type(self) -> str:
        return self._type

    @property
    def entity_id(self) -> str:
        return self._id

    @property
    def entity_name(self) -> str:
        return f"{self._type}.{self._id}"

    @property
    def cluster(self) -> str:
        return self._cluster

    @property
    def conf_file(self) -> ConfFile | None:
        """The parsed conf file, with keys the schema does not know (e.g. a pasted keyring)."""
        return self._conf

    def set_entity(self, entity_type: str, entity_id: str) -> None:
        """Switch entity; the file layer is re-derived from the sections for the new name."""
        _check_entity(entity_type, entity_id)
        with self._lock:
            file_layer = self._file_layer(self._conf, entity_type, entity_id) if self._conf else {}
            old = set(self._file)
            self._type, self._id, self._file = entity_type, entity_id, file_layer
        self._notify(old | set(file_layer))

    def set_cluster(self, cluster: str) -> None:
        if not cluster:
            raise InvalidValue("cluster name must not be empty")
        self._cluster = cluster

    def metavariables(self) -> dict[str, str]:
        if self._host is None:
            self._host = platform.node().split(".")[0]  # Ceph uses the short host name
        pid = os.getpid() if self._pid is None else self._pid  # re-read after a fork
        return metavars.entity_vars(self._cluster, self._type, self._id, pid, self._cctid, self._host)

    # ------------------------------------------------------------- reading

    def option(self, name: str) -> Option:
        opt = self._schema.get(normalize_name(name))
        if opt is None:
            raise UnknownOption(f"unknown config option {name!r}")
        return opt

    def has_option(self, name: str) -> bool:
        return normalize_name(name) in self._schema

    __contains__ = has_option

    def names(self) -> list[str]:
        return list(self._schema)

    def get(self, name: str) -> Any:
        """Typed value; strings come back with metavariables expanded."""
        opt = self.option(name)
        with self._lock:
            value = self._raw(opt)[1]
        if opt.type == "str" and "$" in value:
            value = metavars.expand(value, self._resolver(self.metavariables()))
        return value

    def get_str(self, name: str) -> str:
        """The value as Ceph prints it: "true"/"false", decimal numbers, expanded strings."""
        opt = self.option(name)
        return opt.to_str(self.get(opt.name))

    def source(self, name: str) -> str:
        """Which layer the effective value comes from (one of LAYERS)."""
        opt = self.option(name)
        with self._lock:
            return self._raw(opt)[0]

    def show(self) -> dict[str, str]:
        """Every option with its effective value (`config show`)."""
        return {name: self.get_str(name) for name in self._schema}

    def diff(self) -> dict[str, dict[str, str]]:
        """Options set anywhere but the defaults, value per layer plus "final" (`config diff`)."""
        out: dict[str, dict[str, str]] = {}
        with self._lock:
            layers = {"file": self._file, **self._layers}
            for name, opt in self._schema.items():
                entry = {
                    layer: opt.to_str(values[name]) for layer, values in layers.items() if name in values
                }
                if entry:
                    ordered = {"default": opt.to_str(opt.default_for(self._type))}
                    ordered.update((layer, entry[layer]) for layer in LAYERS if layer in entry)
                    ordered["final"] = self.get_str(name)
                    out[name] = ordered
        return out

    def _raw(self, opt: Option) -> tuple[str, Any]:
        """(layer, typed value) of the highest layer that sets `opt`."""
        for layer in ("override", "cmdline", "env", "mon"):
            values = self._layers[layer]
            if opt.name in values:
                return layer, values[opt.name]
        if opt.name in self._file:
            return "file", self._file[opt.name]
        return "default", opt.default_for(self._type)

    def _resolver(self, meta: Mapping[str, str]) -> Callable[[str], str | None]:
        def resolve(var: str) -> str | None:
            if var in meta:
                return meta[var]
            opt = self._schema.get(var)
            if opt is None:
                return None
            with self._lock:
                return opt.to_str(self._raw(opt)[1])  # unexpanded; expand() recurses

        return resolve

    # ------------------------------------------------------------- writing

    def set(self, name: str, value: str) -> None:
        """Set at the highest layer (`conf_set`, admin socket `config set`); validates."""
        self.apply_options({name: value}, layer="override")

    def unset(self, name: str) -> None:
        """Drop a `set()` value so lower layers show through again."""
        opt = self.option(name)
        with self._lock:
            self._layers["override"].pop(opt.name, None)
        self._notify({opt.name})

    def apply_options(self, values: Mapping[str, Any], layer: str = "override") -> None:
        """Validate all of `values`, then set them in `layer`; nothing changes on error."""
        if layer not in _WRITABLE:
            raise ValueError(f"layer must be one of {', '.join(_WRITABLE)}, not {layer!r}")
        parsed = {}
        for name, value in values.items():
            opt = self.option(name)
            parsed[opt.name] = opt.coerce(value)
        with self._lock:
            self._layers[layer].update(parsed)
        self._notify(set(parsed))

    def set_central(self, values: Mapping[str, str]) -> list[str]:
        """Replace the monitor's layer. Returns warnings for entries that were skipped.

        Central config is pushed to every client and daemon, so one unknown or bad entry
        (say, an option only a newer version knows) must not reject the others.
        """
        parsed: dict[str, Any] = {}
        problems: list[str] = []
        for name, value in values.items():
            try:
                opt = self.option(name)
                parsed[opt.name] = opt.coerce(value)
            except (UnknownOption, InvalidValue) as exc:
                problems.append(f"central config: {exc}")
        with self._lock:
            old = set(self._layers["mon"])
            self._layers["mon"] = parsed
        self._notify(old | set(parsed))
        return problems

    # ------------------------------------------------------------- files

    def read_file(self, path: str) -> None:
        """Read one ceph.conf, replacing any file read before.

        FileNotFoundError if it does not exist; ConfFileError (file and line) if it
        does not parse or a value in a section this entity reads is invalid.
        """
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise FileNotFoundError(_errno.ENOENT, f"can't open {path}: no such file", path) from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise ConfFileError(path, line, "not valid UTF-8") from None
        self.load_conf(parse_conf(text, path))

    def load_conf(self, conf: ConfFile) -> None:
        """Use an already parsed conf file (the sans-IO half of `read_file`)."""
        with self._lock:
            file_layer = self._file_layer(conf, self._type, self._id)
            old = set(self._file)
            self._conf, self._file, self.conf_path = conf, file_layer, conf.path
            self.warnings.extend(conf.warnings)
        self._notify(old | set(file_layer))

    def read_conf(self, conffile: str | None, env: Mapping[str, str] | None = None) -> str | None:
        """python-rados' `conffile` rules; returns the path read, or None.

        None reads nothing. '' searches `conf_search_paths` and, if nothing is there,
        records a warning and returns None. Anything else is a comma-separated list of
        paths of which the first existing one is read; if none exists that is
        FileNotFoundError.
        """
        if conffile is None:
            return None
        meta = self.metavariables()
        if conffile == "":
            candidates = conf_search_paths(self._cluster, env)
        else:
            candidates = [metavars.expand(p, meta) for p in split_conf_list(conffile)]
        for path in candidates:
            if os.path.isfile(path):
                self.read_file(path)
                return path
        if conffile == "":
            self.warnings.append(
                "did not load config file, using default settings (looked in: " + ", ".join(candidates) + ")"
            )
            return None
        raise FileNotFoundError(
            _errno.ENOENT, "can't open config file: " + ", ".join(candidates) + ": not found"
        )

    def _file_layer(self, conf: ConfFile, entity_type: str, entity_id: str) -> dict[str, Any]:
        sections = ("global", entity_type, f"{entity_type}.{entity_id}")
        values: dict[str, Any] = {}
        for section in sections:
            sec = conf.sections.get(section)
            if sec is None:
                continue
            for key, entry in sec.entries.items():
                opt = self._schema.get(key)
                if opt is None:
                    continue  # not ours (a keyring's caps, an option of a Ceph daemon we lack)
                try:
                    values[key] = opt.parse(entry.value)
                except InvalidValue as exc:
                    raise ConfFileError(conf.path, entry.line, f"[{section}] {exc}") from None
        return values

    # ------------------------------------------------------------- argv / env

    def parse_argv(self, argv: Sequence[str]) -> list[str]:
        """Take schema options (and -m/-k/-K) out of argv into the cmdline layer; return the rest."""
        args, rest = parse_global_args(argv, early=False, schema=self._schema)
        self.apply_options(args.options, layer="cmdline")
        return rest

    def parse_env(self, env: Mapping[str, str] | None = None) -> list[str]:
        """Apply `CEPH_ARGS` to the env layer; return the words it did not recognise.

        Besides schema options, CEPH_ARGS may name the entity (`--id`, `--name`), the
        cluster and a conf file (`--conf`, read at once).
        """
        env = os.environ if env is None else env
        args, rest = parse_global_args(split_ceph_args(env), schema=self._schema)
        self.apply_global_args(args, layer="env", env=env)
        return rest

    def apply_global_args(self, args: GlobalArgs, layer: str, env: Mapping[str, str] | None = None) -> None:
        if args.entity_type is not None or args.entity_id is not None:
            self.set_entity(args.entity_type or self._type, args.entity_id or self._id)
        if args.cluster is not None:
            self.set_cluster(args.cluster)
        if args.conf is not None:
            self.read_conf(args.conf, env=env)
        self.apply_options(args.options, layer=layer)

    # ------------------------------------------------------------- observers

    def add_observer(self, callback: Observer) -> None:
        """Call `callback(names)` after values of those options may have changed."""
        self._observers.append(callback)

    def remove_observer(self, callback: Observer) -> None:
        self._observers.remove(callback)

    def _notify(self, names: set[str]) -> None:
        if names:
            for callback in list(self._observers):
                callback(names)


def _check_entity(entity_type: str, entity_id: str) -> None:
    if entity_type not in ENTITY_TYPES:
        raise InvalidValue(
            f"invalid entity type {entity_type!r}: expected one of {', '.join(sorted(ENTITY_TYPES))}"
        )
    if not entity_id:
        raise InvalidValue(f"empty id for entity type {entity_type!r}")


def keyring_search_paths(config: Config) -> list[str]:
    """The keyring files to try for this entity, metavariables expanded, first match wins."""
    seen: dict[str, None] = {}
    for path in split_path_list(config.get("keyring")):
        seen.setdefault(path, None)
    return list(seen)

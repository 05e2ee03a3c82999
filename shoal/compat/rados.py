"""Drop-in replacement for Ceph's python3-rados binding (`import rados`).

The same classes, method names, keyword names, defaults, return types and exceptions as
python-rados (`src/pybind/rados/rados.pyx`), implemented over Shoal's asyncio client core.
Calls block the calling thread while a coroutine runs on the shared client loop thread
(`LoopThread`), so every method may be called from any native thread — including
eventlet's tpool threads — concurrently.
"""

from __future__ import annotations

import builtins
import errno
import json
import math
import os
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any

from shoal.client.blocklist import blocklist_add
from shoal.client.callbacks import CallbackRunner
from shoal.client.loop_thread import Call, LoopThread, _real_threading
from shoal.client.rados_client import RadosClient
from shoal.compat.rados_aio import Completion
from shoal.compat.rados_errors import (
    MAX_ERRNO,
    ConnectionShutdown,
    Error,
    ExtendMismatch,
    InProgress,
    InterruptedOrTimeoutError,
    InvalidArgumentError,
    IoctxStateError,
    IOError,
    IsConnected,
    LogicError,
    NoData,
    NoSpace,
    NotConnected,
    ObjectBusy,
    ObjectExists,
    ObjectNotFound,
    ObjectStateError,
    OSError,
    PermissionDeniedError,
    PermissionError,
    RadosStateError,
    TimedOut,
    as_text,
    cstr,
    from_shoal,
    make_ex,
    require_str,
    type_error,
)
from shoal.compat.rados_ioctx import Ioctx, Object, ObjectIterator, Watch
from shoal.compat.rados_ops import (
    LIBRADOS_ALL_NSPACES,
    LIBRADOS_CMPXATTR_OP_EQ,
    LIBRADOS_CMPXATTR_OP_GT,
    LIBRADOS_CMPXATTR_OP_GTE,
    LIBRADOS_CMPXATTR_OP_LT,
    LIBRADOS_CMPXATTR_OP_LTE,
    LIBRADOS_CMPXATTR_OP_NE,
    LIBRADOS_CREATE_EXCLUSIVE,
    LIBRADOS_CREATE_IDEMPOTENT,
    LIBRADOS_OP_FLAG_EXCL,
    LIBRADOS_OP_FLAG_FADVISE_DONTNEED,
    LIBRADOS_OP_FLAG_FADVISE_FUA,
    LIBRADOS_OP_FLAG_FADVISE_NOCACHE,
    LIBRADOS_OP_FLAG_FADVISE_RANDOM,
    LIBRADOS_OP_FLAG_FADVISE_SEQUENTIAL,
    LIBRADOS_OP_FLAG_FADVISE_WILLNEED,
    LIBRADOS_OP_FLAG_FAILOK,
    LIBRADOS_OPERATION_BALANCE_READS,
    LIBRADOS_OPERATION_FULL_FORCE,
    LIBRADOS_OPERATION_FULL_TRY,
    LIBRADOS_OPERATION_IGNORE_CACHE,
    LIBRADOS_OPERATION_IGNORE_OVERLAY,
    LIBRADOS_OPERATION_IGNORE_REDIRECT,
    LIBRADOS_OPERATION_LOCALIZE_READS,
    LIBRADOS_OPERATION_NOFLAG,
    LIBRADOS_OPERATION_ORDER_READS_WRITES,
    LIBRADOS_OPERATION_ORDERSNAP,
    LIBRADOS_OPERATION_SKIPRWLOCKS,
    LIBRADOS_SNAP_DIR,
    LIBRADOS_SNAP_HEAD,
    OmapIterator,
    OpCtx,
    ReadOp,
    ReadOpCtx,
    WriteOp,
    WriteOpCtx,
)
from shoal.config.cli_args import ArgvError, parse_entity_name, parse_global_args, split_ceph_args
from shoal.config.conffile import ConfFileError
from shoal.config.config import Config
from shoal.config.options import InvalidValue, UnknownOption
from shoal.errors import ShoalError
from shoal.placement.osdmap import Pool

ANONYMOUS_AUID = 0xFFFFFFFFFFFFFFFF
ADMIN_AUID = 0
MONITOR_LEVELS = ["debug", "info", "warn", "warning", "err", "error", "sec"]

_threading = _real_threading()


class Version:
    """librados version; python-rados returns one from `Rados.version()`."""

    def __init__(self, major: int, minor: int, extra: int) -> None:
        self.major = major
        self.minor = minor
        self.extra = extra

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.extra}"


_LIBRADOS_VERSION = (3, 0, 0)  # what Ceph 16 (pacific) librados reports


def _opt_str(value: Any, name: str) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be str or None")


class Rados:
    """A cluster handle: configure, `connect()`, open I/O contexts, `shutdown()`."""

    NO_CONF_FILE = -1
    DEFAULT_CONF_FILES = -2

    def __init__(self, rados_id: str | None = None, name: str | None = None, clustername: str | None = None,
                 conf_defaults: Mapping[str, str] | None = None, conffile: str | int | None = None,
                 conf: Mapping[str, str] | None = None, flags: int = 0, context: object = None) -> None:
        self.state = "configuring"  # set first: __del__ reads it even if construction fails
        _opt_str(rados_id, "rados_id")
        _opt_str(name, "name")
        _opt_str(clustername, "clustername")
        if not (conffile is None or isinstance(conffile, str) or conffile in (self.NO_CONF_FILE,
                                                                             self.DEFAULT_CONF_FILES)):
            raise TypeError("conffile must be str or None")
        self.monitor_callback = None
        self.monitor_callback2 = None
        self.parsed_args: Sequence[str] = []
        self.conf_defaults = conf_defaults
        self.conffile = conffile
        self.rados_id = rados_id
        if rados_id and name:
            raise Error("Rados(): can't supply both rados_id and name")
        if rados_id:
            name = "client." + rados_id
        elif name is None:
            name = "client.admin"
        try:
            entity_type, entity_id = parse_entity_name(name)
            self._conf = Config(entity_type, entity_id, clustername or "ceph")
        except (ArgvError, InvalidValue):
            raise Error(f"rados_initialize failed with error code: {-errno.EINVAL}") from None
        self._lock = _threading.RLock()
        self._loop = LoopThread.shared()
        self._client: RadosClient = None  # type: ignore[assignment]  # set by connect()
        self._finisher: CallbackRunner | None = None
        # Order as in python-rados: conf_defaults, then the conf file, then conf.
        for key, value in (conf_defaults or {}).items():
            self.conf_set(key, value)
        if conffile in (self.DEFAULT_CONF_FILES, ""):
            self.conf_read_file(None)
        elif isinstance(conffile, str):
            self.conf_read_file(conffile)
        for key, value in (conf or {}).items():
            self.conf_set(key, value)

    # -- state ------------------------------------------------------------------------------
    def require_state(self, *args: str) -> None:
        if self.state in args:
            return
        raise RadosStateError(f"You cannot perform that operation on a Rados object in state {self.state}.")

    def version(self) -> Version:
        return Version(*_LIBRADOS_VERSION)

    # -- configuration -------------------------------------------------------------------------
    def conf_read_file(self, path: str | None = None) -> None:
        """Read a ceph.conf; None searches the default places ($CEPH_CONF, /etc/ceph, ~/.ceph, .)."""
        self.require_state("configuring", "connected")
        _opt_str(path, "path")
        try:
            found = self._conf.read_conf("" if path is None else path)
        except FileNotFoundError:
            found = None
        except ConfFileError as exc:
            raise InvalidArgumentError("error calling conf_read_file", errno.EINVAL) from exc
        if found is None:
            raise ObjectNotFound("error calling conf_read_file", errno.ENOENT)

    def conf_parse_argv(self, args: Sequence[str]) -> list[str] | None:
        """Apply the Ceph options in `args`; return the arguments that are not Ceph's."""
        self.require_state("configuring", "connected")
        if not args:
            return None
        words = [w.decode("utf-8") if isinstance(w, bytes) else w for w in args]
        for w in words:
            if not isinstance(w, str):
                raise TypeError("args must be a string")
        try:
            rest = self._conf.parse_argv(words)
        except (ArgvError, InvalidValue, UnknownOption) as exc:
            raise make_ex(exc.errno, "error calling conf_parse_argv_remainder") from exc
        self.parsed_args = args
        return rest

    def conf_parse_env(self, var: str | None = "CEPH_ARGS") -> None:
        """Apply the Ceph options in environment variable `var` (CEPH_ARGS by default)."""
        self.require_state("configuring", "connected")
        if not var:
            return
        require_str(var, "var")
        try:
            # Only options: the entity and conf file were fixed when the handle was made.
            opts, _ = parse_global_args(split_ceph_args({"CEPH_ARGS": os.environ.get(var, "")}), early=False)
            self._conf.apply_options(opts.options, layer="env")
        except (ArgvError, InvalidValue, UnknownOption) as exc:
            raise make_ex(exc.errno, "error calling conf_parse_env") from exc

    def conf_get(self, option: str) -> str | None:
        """The option's value as text; None for an option Ceph does not know."""
        self.require_state("configuring", "connected")
        require_str(option, "option")
        try:
            return self._conf.get_str(option)
        except UnknownOption:
            return None

    def conf_set(self, option: str, val: str) -> None:
        self.require_state("configuring", "connected")
        require_str(option, "option")
        require_str(val, "val")
        try:
            self._conf.set(option, val)
        except (UnknownOption, InvalidValue) as exc:
            raise make_ex(exc.errno, "error calling conf_set") from exc

    # -- connection ------------------------------------------------------------------------------
    def connect(self, timeout: int = 0) -> None:
        """Connect to the monitors; fails within `timeout` (or client_mount_timeout) seconds."""
        with self._lock:
            self.require_state("configuring")
            limit = float(timeout) if timeout and timeout > 0 else float(self._conf.get("client_mount_timeout"))
            client = RadosClient(self._conf, self._conf.entity_name)
            try:
                self._loop.run(client.connect(limit))
            except ShoalError as exc:
                self._quiet_shutdown(client)
                raise make_ex(exc.errno, "error connecting to the cluster") from exc
            except (TimeoutError, builtins.OSError) as exc:  # a socket error escaping the core
                self._quiet_shutdown(client)
                raise make_ex(getattr(exc, "errno", None) or errno.ETIMEDOUT,
                              "error connecting to the cluster") from exc
            except ValueError as exc:
                # A malformed key (shoal/auth/keyring.py find_key raises ValueError): librados says EINVAL.
                self._quiet_shutdown(client)
                raise make_ex(errno.EINVAL, "error connecting to the cluster") from exc
            self._client = client
            self.state = "connected"

    def _quiet_shutdown(self, client: RadosClient) -> None:
        try:
            self._loop.run(client.shutdown(), timeout=10)
        except Exception:  # noqa: BLE001 - already failing; the original error matters
            pass

    def shutdown(self) -> None:
        """Disconnect; idempotent."""
        with self._lock:
            if self.state == "shutdown":
                return
            client, self._client = self._client, None  # type: ignore[assignment]
            self.state = "shutdown"
        if client is not None:
            try:
                self._loop.run(client.shutdown(), timeout=30)
            except RuntimeError:
                Call(self._loop, client.shutdown())  # called from the loop thread: don't block it
            except Exception:  # noqa: BLE001 - shutdown must not raise
                pass
        if self._finisher is not None:
            self._finisher.stop(join_timeout=30.0)

    def __enter__(self) -> Rados:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> bool:
        self.shutdown()
        return False

    def __del__(self) -> None:
        if getattr(self, "state", None) == "connected" and getattr(self, "_client", None) is not None:
            try:
                Call(self._loop, self._client.shutdown())
            except Exception:  # noqa: BLE001 - interpreter exit: nothing to report to
                pass

    def _finisher_for_callbacks(self) -> CallbackRunner:
        with self._lock:
            if self._finisher is None:
                self._finisher = CallbackRunner("rados-finisher")
            return self._finisher

    # -- plumbing ---------------------------------------------------------------------------------
    def _run(self, coro: Coroutine[Any, Any, Any], what: str) -> Any:
        try:
            return self._loop.run(coro)
        except ShoalError as exc:
            raise from_shoal(exc, what) from exc

    def _mon(self, cmd: dict[str, Any], inbuf: bytes = b"", timeout: float | None = None) -> tuple[int, bytes, str]:
        """A monitor command that reports failure only through its return code."""
        try:
            return self._loop.run(self._client.mon_command(cmd, inbuf, timeout or None))
        except ShoalError as exc:
            return -(exc.errno or errno.EIO), b"", str(exc)

    def _pool(self, pool_id: int) -> Pool | None:
        osdmap = self._client.osdmap
        return osdmap.pools.get(pool_id) if osdmap is not None else None

    def _pool_name(self, pool_id: int) -> str | None:
        pool = self._pool(pool_id)
        return pool.name if pool is not None else None

    def _lookup(self, name: str, what: str) -> Pool | None:
        """The pool called `name`, asking the monitor for a newer map before saying "none"."""
        pool = self._client.pool_by_name(name)
        if pool is None:
            self._run(self._client.wait_for_latest_map(), what)
            pool = self._client.pool_by_name(name)
        return pool

    def _df(self, what: str) -> dict[str, Any]:
        ret, outbuf, outs = self._mon({"prefix": "df", "format": "json"})
        if ret < 0:
            raise make_ex(ret, what)
        return json.loads(outbuf)

    def _pool_stats(self) -> dict[str, dict[str, int]]:
        """python-rados' per-pool statistics (Ioctx.get_stats), keyed by pool name."""
        out: dict[str, dict[str, int]] = {}
        sizes = {p.name: p.size for p in self._client.pools()}
        for entry in self._df("get_stats failed").get("pools", []):
            st = entry.get("stats", {})
            used = int(st.get("bytes_used", 0))  # all replicas, as librados' num_bytes
            objects = int(st.get("objects", 0))
            out[entry["name"]] = {
                "num_bytes": used, "num_kb": math.ceil(used / 1024), "num_objects": objects,
                "num_object_clones": 0, "num_object_copies": objects * sizes.get(entry["name"], 1),
                "num_objects_missing_on_primary": 0, "num_objects_unfound": 0, "num_objects_degraded": 0,
                "num_rd": 0, "num_rd_kb": 0, "num_wr": 0, "num_wr_kb": 0,
            }
        return out

    # -- cluster ---------------------------------------------------------------------------------------
    def get_instance_id(self) -> int:
        self.require_state("connected")
        return int(self._client.instance_id)

    def get_fsid(self) -> str:
        self.require_state("connected")
        return str(self._client.fsid)

    def get_cluster_stats(self) -> dict[str, int]:
        self.require_state("connected")
        doc = self._df(f"Rados.get_cluster_stats({self.rados_id}): get_stats failed")
        st = doc.get("stats", {})
        kb = int(st.get("total_bytes", 0)) // 1024
        kb_avail = int(st.get("total_avail_bytes", 0)) // 1024
        objects = sum(int(p.get("stats", {}).get("objects", 0)) for p in doc.get("pools", []))
        return {"kb": kb, "kb_used": kb - kb_avail, "kb_avail": kb_avail, "num_objects": objects}

    def blocklist_add(self, client_address: str, expire_seconds: int = 0) -> None:
        """Fence a client (`ip:port/nonce`) and wait until this client's map holds the entry."""
        self.require_state("connected")
        self._run(blocklist_add(self._client, as_text(client_address, "client_address"), expire_seconds),
                  "error blocklisting client")

    def wait_for_latest_osdmap(self) -> int:
        self.require_state("connected")
        self._run(self._client.wait_for_latest_map(), "error waiting for the latest osdmap")
        return 0

    def mon_command(self, cmd: str | Sequence[str], inbuf: bytes, timeout: int = 0,
                    target: str | int | None = None) -> tuple[int, bytes, str]:
        """Send a JSON command to the monitor: (ret, outbuf, outs); ret < 0 is a negative errno.

        Command failures come back in `ret`, never as exceptions. `target` (a monitor name or
        rank) is accepted; with a single monitor every command goes to it.
        """
        self.require_state("connected")
        if isinstance(cmd, (list, tuple)):
            text = "".join((cstr(c, "cmd") or b"").decode("utf-8") for c in cmd)
        else:
            text = (cstr(cmd, "cmd") or b"").decode("utf-8")
        raw_in = cstr(inbuf, "inbuf") or b""
        cstr(str(target) if isinstance(target, int) else target, "target", opt=True)
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            return -errno.EINVAL, b"", f"unparseable JSON {text}"
        return self._mon(parsed, raw_in, float(timeout) if timeout else None)

    def mgr_command(self, cmd: str | Sequence[str], inbuf: bytes, timeout: int = 0,
                    target: str | None = None) -> tuple[int, bytes, str]:
        """Shoal has no manager daemon: the monitor answers the commands it would (df, osd pool stats…)."""
        return self.mon_command(cmd, inbuf, timeout)

    def osd_command(self, osdid: int, cmd: str | Sequence[str], inbuf: bytes,
                    timeout: int = 0) -> tuple[int, bytes, str]:
        self.require_state("connected")
        return -errno.EOPNOTSUPP, b"", "commands addressed to an OSD are not supported yet"

    def pg_command(self, pgid: str, cmd: str | Sequence[str], inbuf: bytes,
                   timeout: int = 0) -> tuple[int, bytes, str]:
        self.require_state("connected")
        return -errno.EOPNOTSUPP, b"", "commands addressed to a PG are not supported yet"

    # -- pools ----------------------------------------------------------------------------------------
    def list_pools(self) -> list[str]:
        self.require_state("connected")
        return [p.name for p in self._client.pools()]

    def pool_exists(self, pool_name: str) -> bool:
        self.require_state("connected")
        require_str(pool_name, "pool_name")
        return self._lookup(pool_name, f"error looking up pool '{pool_name}'") is not None

    def pool_lookup(self, pool_name: str) -> int | None:
        self.require_state("connected")
        require_str(pool_name, "pool_name")
        pool = self._lookup(pool_name, f"error looking up pool '{pool_name}'")
        return pool.id if pool is not None else None

    def pool_reverse_lookup(self, pool_id: int) -> str | None:
        self.require_state("connected")
        if isinstance(pool_id, bool) or not isinstance(pool_id, int):
            raise type_error("pool_id", "int", pool_id)
        name = self._pool_name(pool_id)
        if name is None:
            self._run(self._client.wait_for_latest_map(), f"error reverse looking up pool '{pool_id}'")
            name = self._pool_name(pool_id)
        return name

    def create_pool(self, pool_name: str, crush_rule: int | None = None, auid: int | None = None) -> None:
        """Create a replicated pool with the monitor's defaults (`auid` is accepted and ignored)."""
        self.require_state("connected")
        require_str(pool_name, "pool_name")
        if crush_rule is not None and (isinstance(crush_rule, bool) or not isinstance(crush_rule, int)):
            raise TypeError("crush_rule must be int or None")
        what = f"error creating pool '{pool_name}'"
        if self._lookup(pool_name, what) is not None:
            raise make_ex(errno.EEXIST, what)
        cmd: dict[str, Any] = {"prefix": "osd pool create", "pool": pool_name}
        if crush_rule:
            cmd["rule"] = str(crush_rule)  # only rule 0 exists; the monitor rejects others with ENOENT
        ret, _, _ = self._mon(cmd)
        if ret < 0:
            raise make_ex(ret, what)

    def delete_pool(self, pool_name: str) -> None:
        self.require_state("connected")
        require_str(pool_name, "pool_name")
        what = f"error deleting pool '{pool_name}'"
        if self._lookup(pool_name, what) is None:
            raise make_ex(errno.ENOENT, what)
        ret, _, _ = self._mon({"prefix": "osd pool delete", "pool": pool_name, "pool2": pool_name,
                               "yes_i_really_really_mean_it_not_faking": True})
        if ret < 0:
            raise make_ex(ret, what)

    def get_pool_base_tier(self, pool_id: int) -> int:
        self.require_state("connected")
        if isinstance(pool_id, bool) or not isinstance(pool_id, int):
            raise type_error("pool_id", "int", pool_id)
        if self.pool_reverse_lookup(pool_id) is None:
            raise make_ex(errno.ENOENT, f"get_pool_base_tier({pool_id})")
        return pool_id  # no cache tiering: every pool is its own base

    def open_ioctx(self, ioctx_name: str) -> Ioctx:
        """An I/O context on the named pool; ObjectNotFound if there is no such pool."""
        self.require_state("connected")
        require_str(ioctx_name, "ioctx_name")
        what = f"error opening pool '{ioctx_name}'"
        pool = self._lookup(ioctx_name, what)
        if pool is None:
            raise make_ex(errno.ENOENT, what)
        return Ioctx(self, ioctx_name, pool.id)

    def open_ioctx2(self, pool_id: int) -> Ioctx:
        self.require_state("connected")
        if isinstance(pool_id, bool) or not isinstance(pool_id, int):
            raise type_error("pool_id", "int", pool_id)
        if self.pool_reverse_lookup(pool_id) is None:
            raise make_ex(errno.ENOENT, f"error opening pool id '{pool_id}'")
        return Ioctx(self, str(pool_id), pool_id)  # python-rados names it by the id


__all__ = [
    "ADMIN_AUID", "ANONYMOUS_AUID", "Completion", "ConnectionShutdown", "Error", "ExtendMismatch", "IOError",
    "InProgress", "InterruptedOrTimeoutError", "InvalidArgumentError", "Ioctx", "IoctxStateError",
    "IsConnected", "LIBRADOS_ALL_NSPACES", "LIBRADOS_CMPXATTR_OP_EQ", "LIBRADOS_CMPXATTR_OP_GT",
    "LIBRADOS_CMPXATTR_OP_GTE", "LIBRADOS_CMPXATTR_OP_LT", "LIBRADOS_CMPXATTR_OP_LTE", "LIBRADOS_CMPXATTR_OP_NE",
    "LIBRADOS_CREATE_EXCLUSIVE", "LIBRADOS_CREATE_IDEMPOTENT", "LIBRADOS_OPERATION_BALANCE_READS",
    "LIBRADOS_OPERATION_FULL_FORCE", "LIBRADOS_OPERATION_FULL_TRY", "LIBRADOS_OPERATION_IGNORE_CACHE",
    "LIBRADOS_OPERATION_IGNORE_OVERLAY", "LIBRADOS_OPERATION_IGNORE_REDIRECT",
    "LIBRADOS_OPERATION_LOCALIZE_READS", "LIBRADOS_OPERATION_NOFLAG", "LIBRADOS_OPERATION_ORDERSNAP",
    "LIBRADOS_OPERATION_ORDER_READS_WRITES", "LIBRADOS_OPERATION_SKIPRWLOCKS", "LIBRADOS_OP_FLAG_EXCL",
    "LIBRADOS_OP_FLAG_FADVISE_DONTNEED", "LIBRADOS_OP_FLAG_FADVISE_FUA", "LIBRADOS_OP_FLAG_FADVISE_NOCACHE",
    "LIBRADOS_OP_FLAG_FADVISE_RANDOM", "LIBRADOS_OP_FLAG_FADVISE_SEQUENTIAL", "LIBRADOS_OP_FLAG_FADVISE_WILLNEED",
    "LIBRADOS_OP_FLAG_FAILOK", "LIBRADOS_SNAP_DIR", "LIBRADOS_SNAP_HEAD", "LogicError", "MAX_ERRNO",
    "MONITOR_LEVELS", "NoData", "NoSpace", "NotConnected", "OSError", "Object", "ObjectBusy", "ObjectExists",
    "ObjectIterator", "ObjectNotFound", "ObjectStateError", "OmapIterator", "OpCtx", "PermissionDeniedError",
    "PermissionError", "Rados", "RadosStateError", "ReadOp", "ReadOpCtx", "TimedOut", "Version", "Watch", "WriteOp",
    "WriteOpCtx", "make_ex",
]

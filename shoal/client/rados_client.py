"""The client core (librados equivalent): coroutines run on the client loop thread.

`compat/rados.py` (python-rados API) and the CLIs wrap it; it raises `ShoalError`
subclasses carrying the errno an operation failed with.

A connected client also has what Ceph's CephContext gives a librados handle: perf
counters (`perf`: objecter op counts here, librbd per-image counters from shoal.rbd),
an admin socket when `admin_socket` is set (path metavariables expanded for this
handle: two handles in one process differ by `$cctid`), and a log file when
`log_file` is set (a handler on the `shoal` logger; the host's root logger is left alone).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import random
import time
from collections.abc import AsyncIterator
from typing import Any

from shoal.admin.asok import AdminSocket, start_admin_socket
from shoal.admin.logsetup import attach_client_log, detach_client_log
from shoal.admin.perf import PerfRegistry
from shoal.auth.keyring import find_key
from shoal.client.monclient import MonClient
from shoal.client.objecter import Objecter, OpReply
from shoal.client.watch import WatchCallback, WatchErrorCallback
from shoal.config.config import keyring_search_paths
from shoal.errors import InvalidArgument, NotFound, from_errno
from shoal.net.connection import parse_mon_hosts
from shoal.net.handshake import Identity
from shoal.placement.osdmap import OSDMap, Pool
from shoal.wire.messages import AUTH_NONE
from shoal.wire.osd_op import ALL_NSPACES, WRITE_OPS, OpBuilder

log = logging.getLogger("shoal.client")

# Objecter counters as Ceph names them, plus op_active_max: the most ops this client had in
# flight at once since the last `perf reset` (what bounds such as
# rbd_concurrent_management_ops are checked against).
OBJECTER_COUNTERS = ("op_active", "op_active_max", "op", "op_r", "op_w", "op_send_bytes", "op_reply")


class RadosClient:
    def __init__(self, conf: Any, entity: str) -> None:
        self.conf = conf
        self.entity = entity
        self.monc: MonClient | None = None
        self.objecter: Objecter | None = None
        self.osdmap: OSDMap | None = None
        self.instance_id = 0
        self._osd_timeout: float | None = None
        self.perf = PerfRegistry()
        self.objecter_perf = self.perf.create("objecter", OBJECTER_COUNTERS, ("op_latency",), ("op_active",))
        self.asok: AdminSocket | None = None
        self._log_handler: logging.Handler | None = None

    # -- connection --------------------------------------------------------------------
    async def connect(self, timeout: float | None = None) -> None:
        mon_host = str(self.conf.get("mon_host") or "")
        addrs = parse_mon_hosts(mon_host)
        if not addrs:
            raise NotFound("no monitors configured (set mon_host in ceph.conf or pass -m)", errno.ENOENT)
        timeout = timeout or float(self.conf.get("client_mount_timeout") or 300)
        nonce = random.getrandbits(32)
        try:
            key = find_key(self.conf, self.entity)
        except ValueError as exc:
            raise InvalidArgument(f"bad key for {self.entity}: {exc}", errno.EINVAL) from exc
        identity = Identity.from_config(self.conf, self.entity, key.secret if key else None)
        if key is None and AUTH_NONE not in identity.methods:
            raise NotFound(f"unable to find a keyring for {self.entity} on "
                           f"{','.join(keyring_search_paths(self.conf))}: (2) No such file or directory",
                           errno.ENOENT)
        self.monc = MonClient(addrs, identity, self._on_map)
        self.objecter = Objecter(identity, self.monc.tickets, f"{self.entity}.{os.getpid()}.{nonce:08x}",
                                 self._request_map)
        try:
            await self.monc.connect(timeout)
        except TimeoutError as exc:
            await self.monc.close()
            raise from_errno(errno.ETIMEDOUT, f"error connecting to the cluster: no monitor answered "
                             f"at {', '.join(addrs)} within {timeout:g}s") from exc
        except BaseException:
            await self.monc.close()
            raise
        self.instance_id = self.monc.global_id
        await self._start_admin()

    async def _start_admin(self) -> None:
        """The handle's log file and admin socket (options read once, at connect, as librados)."""
        log_file = str(self.conf.get("log_file") or "")
        if log_file and self._log_handler is None:
            try:
                self._log_handler = attach_client_log(log_file)
            except OSError as exc:
                log.warning("event=log_file_failed path=%s error=%s", log_file, exc.strerror or exc)
        path = str(self.conf.get("admin_socket") or "")
        if path and self.asok is None:
            self.asok = await start_admin_socket(path, self.conf, self.perf)
        log.info("event=client_connected entity=%s gid=%d asok=%s", self.entity, self.instance_id,
                 self.asok.path if self.asok else "")

    def _request_map(self) -> None:
        if self.monc is not None:
            self.monc.request_map()

    def _on_map(self, osdmap: OSDMap) -> None:
        self.osdmap = osdmap
        if self.objecter is not None:
            self.objecter.handle_map(osdmap)

    async def shutdown(self) -> None:
        if self.asok is not None:
            asok, self.asok = self.asok, None
            await asok.close()
        if self.objecter is not None:
            await self.objecter.close()
        if self.monc is not None:
            await self.monc.close()
        if self._log_handler is not None:
            log.info("event=client_shutdown entity=%s gid=%d", self.entity, self.instance_id)
            handler, self._log_handler = self._log_handler, None
            detach_client_log(handler)

    @property
    def fsid(self) -> str:
        assert self.monc is not None
        return self.monc.fsid

    # -- monitor ------------------------------------------------------------------------
    async def mon_command(self, cmd: dict[str, Any], inbuf: bytes = b"",
                          timeout: float | None = None) -> tuple[int, bytes, str]:
        assert self.monc is not None
        timeout = timeout or float(self.conf.get("rados_mon_op_timeout") or 0) or None
        ret, outbuf, outs = await self.monc.command(cmd, inbuf, timeout)
        if ret == 0 and cmd.get("prefix", "").startswith(("osd pool", "osd down", "osd out", "osd in")):
            # Later calls of this client must see the change the command made.
            await self.wait_for_latest_map()
        return ret, outbuf, outs

    async def wait_for_latest_map(self) -> None:
        assert self.monc is not None and self.objecter is not None
        ret, outbuf, _ = await self.monc.command({"prefix": "osd stat", "format": "json"}, b"", 30)
        if ret != 0:
            return
        epoch = int(json.loads(outbuf).get("epoch", 0))
        while self.osdmap is None or self.osdmap.epoch < epoch:
            await self.objecter.wait_for_map_change(10.0)

    # -- pools --------------------------------------------------------------------------
    def pool_by_name(self, name: str) -> Pool | None:
        return self.osdmap.pool_by_name(name) if self.osdmap else None

    def pools(self) -> list[Pool]:
        return sorted(self.osdmap.pools.values(), key=lambda p: p.id) if self.osdmap else []

    # -- object ops ---------------------------------------------------------------------------
    def _op_timeout(self) -> float | None:
        # Read once per client: Config.get is too slow for the per-op path.
        if self._osd_timeout is None:
            self._osd_timeout = float(self.conf.get("rados_osd_op_timeout") or 0)
        return self._osd_timeout or None

    async def operate(self, pool_id: int, oid: str, builder: OpBuilder, nspace: str = "",
                      timeout: float | None = None, *, snapc: tuple[int, list[int]] | None = None,
                      snap: int | None = None) -> OpReply:
        """Run an op vector; returns the reply (result < 0 is left to the caller).

        `snapc` (seq, snap ids descending) goes with writes; `snap` reads at that snapshot."""
        assert self.objecter is not None
        if len(oid.encode()) > 2048:
            raise InvalidArgument(f"object name too long ({len(oid.encode())} bytes)", errno.ENAMETOOLONG)
        perf = self.objecter_perf
        values = perf.values
        data = builder.data()
        active = values["op_active"] + 1
        values["op_active"] = active
        if active > values["op_active_max"]:
            values["op_active_max"] = active
        values["op"] += 1
        values["op_w" if any(op["op"] in WRITE_OPS for op in builder.ops) else "op_r"] += 1
        values["op_send_bytes"] += len(data)
        start = time.monotonic()
        try:
            reply = await self.objecter.op(pool_id, oid, nspace, builder.ops, data,
                                           timeout=timeout or self._op_timeout(), snapc=snapc, snap=snap)
        finally:
            values["op_active"] -= 1
        values["op_reply"] += 1
        perf.tinc("op_latency", time.monotonic() - start)
        return reply

    # -- self-managed snapshots -------------------------------------------------------------
    async def selfmanaged_snap_create(self, pool_id: int) -> int:
        """A new snap id from the monitor for this pool (librados selfmanaged_snap_create)."""
        ret, outbuf, outs = await self._snap_op("create", pool_id)
        if ret < 0:
            raise from_errno(ret, f"creating a self-managed snapshot in pool {pool_id}: {outs}")
        return int(json.loads(outbuf)["snapid"])

    async def selfmanaged_snap_remove(self, pool_id: int, snap_id: int) -> None:
        ret, _, outs = await self._snap_op("remove", pool_id, snapid=snap_id)
        if ret < 0:
            raise from_errno(ret, f"removing self-managed snapshot {snap_id} of pool {pool_id}: {outs}")

    async def _snap_op(self, op: str, pool_id: int, **args: Any) -> tuple[int, bytes, str]:
        assert self.objecter is not None
        pool = self.objecter.pool(pool_id)
        return await self.mon_command({"prefix": f"osd pool selfmanaged-snap {op}", "pool": pool.name,
                                       "format": "json", **args})

    async def list_objects(self, pool_id: int, nspace: str | None = "",
                           page: int = 1024) -> AsyncIterator[tuple[str, str]]:
        """Every (namespace, name) in a pool, PG by PG (nspace None = all namespaces)."""
        assert self.objecter is not None
        pool = self.objecter.pool(pool_id)
        for ps in range(pool.pg_num):
            start: list[str] | None = None
            while True:
                b = OpBuilder()
                b.add("pgls", start_after=start, max=page)
                # The namespace travels with the listing, as librados sends it: the OSD checks
                # caps against it and answers with its objects only.
                reply = await self.objecter.op(pool_id, "", ALL_NSPACES if nspace is None else nspace, b.ops,
                                               b"", ps=ps, timeout=self._op_timeout())
                if reply.result < 0:
                    raise from_errno(reply.result, f"listing pool {pool_id}")
                out = reply.outs[0]
                for ns, name in out["names"]:
                    if nspace is None or ns == nspace:
                        yield ns, name
                if not out.get("more") or not out["names"]:
                    break
                start = out["names"][-1]

    # -- watch/notify (shoal/client/watch.py, shoal/osd/watch.py) ------------------------------
    async def watch(self, pool_id: int, oid: str, nspace: str, callback: WatchCallback,
                    error_callback: WatchErrorCallback | None = None, timeout: int = 0) -> int:
        """Watch an object; returns the watch's cookie.

        `callback(notify_id, notifier_gid, cookie, payload)` runs on the client's callback
        thread for every notify and returns the ack's reply data (None: empty; raising: no ack).
        `error_callback(cookie, -errno)` is called once if the watch is lost (-ENOTCONN when
        re-registration fails, the object is deleted or pings stopped reaching the OSD).
        `timeout` (s, 0 = `osd_client_watch_timeout`, 30) is how long the OSD keeps the watch
        without a ping."""
        assert self.objecter is not None
        timeout = timeout or int(self.conf.get("osd_client_watch_timeout") or 30)
        self.objecter.pool(pool_id)  # ENOENT now for a pool that does not exist
        lingers = self.objecter.lingers
        lingers.gid = self.instance_id
        return await lingers.watch(pool_id, oid, nspace, callback, error_callback, int(timeout),
                                   deadline=self._op_timeout())

    async def unwatch(self, cookie: int) -> None:
        assert self.objecter is not None
        await self.objecter.lingers.unwatch(cookie)

    async def watch_check(self, cookie: int) -> int:
        """Milliseconds since the watch was last confirmed by its OSD; raises if it is lost."""
        assert self.objecter is not None
        return self.objecter.lingers.check(cookie)

    def watch_flush(self, timeout: float = 30.0) -> bool:
        """Block (a caller's thread, not the loop's) until queued watch callbacks have run."""
        return self.objecter.lingers.flush(timeout) if self.objecter is not None else True

    async def notify(self, pool_id: int, oid: str, nspace: str, payload: bytes = b"",
                     timeout: float = 30.0) -> tuple[dict[tuple[int, int], bytes], list[tuple[int, int]]]:
        """Notify every watcher of an object and wait for their acks, at most `timeout` s
        (0 = the OSD's 30 s). Returns (acks: {(gid, cookie): reply}, timeouts: [(gid, cookie)]);
        a non-empty `timeouts` is librados' -ETIMEDOUT."""
        assert self.objecter is not None
        b = OpBuilder()
        b.add("notify", payload, timeout=timeout, gid=self.instance_id)
        # The OSD answers when the notify ends; allow for a resend to a new primary as well.
        wait = (timeout or 30.0) * 2 + 10.0
        reply = await self.objecter.op(pool_id, oid, nspace, b.ops, b.data(), timeout=wait)
        if (reply.result < 0 and reply.result != -errno.ETIMEDOUT) or not reply.outs:
            raise from_errno(reply.result or -errno.EIO, f"notify on {oid!r} in pool {pool_id}")
        out = reply.outs[0]
        data = memoryview(reply.data)
        acks = {(int(gid), int(cookie)): bytes(data[ref[0]:ref[0] + ref[1]])
                for gid, cookie, ref in out.get("acks", [])}
        return acks, [(int(gid), int(cookie)) for gid, cookie in out.get("timeouts", [])]

    async def list_watchers(self, pool_id: int, oid: str, nspace: str = "") -> list[dict[str, Any]]:
        """[{"name": "client.4123", "watcher_id": 4123, "addr": "ip:0/nonce", "cookie": n,
        "timeout": s}] of the object's watchers (librados' list_watchers)."""
        b = OpBuilder()
        b.add("list_watchers")
        reply = await self.operate(pool_id, oid, b, nspace)
        if reply.result < 0:
            raise from_errno(reply.result, f"listing the watchers of {oid!r} in pool {pool_id}")
        return list(reply.outs[0].get("watchers", []))

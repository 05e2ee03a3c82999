"""The monitor daemon: owns the OSD map, answers commands, watches OSD liveness.

One asyncio loop. State changes go through `_commit_osdmap`, which persists the new
epoch before anyone sees it and then pushes it to every subscriber.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import itertools
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import msgpack

from shoal.auth import negotiate
from shoal.auth.caps_mon import MonCap
from shoal.auth.caps_osd import OSDCap
from shoal.auth.cephx import MonAuthServer
from shoal.auth.cephx_core import AuthError, required_for
from shoal.auth.keyring import Entry
from shoal.auth.tickets import ServiceSecrets
from shoal.errors import ShoalError
from shoal.mon.auth_db import AuthDB
from shoal.mon.commands import handle_command
from shoal.mon.commands_blocklist import expire_entries
from shoal.mon.commands_pools import SNAP_OP_PREFIXES
from shoal.mon.state import CommandResult, MonInfo, MonMap, MonState, OSDStat, PGStat
from shoal.mon.store.base import MonStore
from shoal.net.connection import Connection, serve, split_addr
from shoal.net.serving import protocol_ok, serve_frame
from shoal.placement.osdmap import TYPE_HOST, OSDInfo, OSDMap, pgid_str
from shoal.wire.frame import Frame
from shoal.wire.messages import AUTH_NONE, Msg

log = logging.getLogger("shoal.mon")


def _pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def _unpack(raw: bytes) -> Any:
    return msgpack.unpackb(raw, raw=False, strict_map_key=False)


ALLOW_ALL = MonCap.parse("allow *")
OSD_MESSAGES = frozenset({Msg.OSD_BOOT, Msg.OSD_BEACON, Msg.OSD_FAILURE})


class Monitor:
    def __init__(self, name: str, addr: str, store: MonStore, conf: Callable[[str], Any],
                 initial_keyring: dict[str, Entry] | None = None) -> None:
        self.name = name
        self.addr = addr
        self.store = store
        self.conf = conf
        self.server: asyncio.Server | None = None
        self.subscribers: set[Connection] = set()
        self.sessions: set[Connection] = set()
        self.osd_sessions: dict[int, Connection] = {}
        self.last_beacon: dict[int, float] = {}
        self.state = self._load()
        self.auth_db, self.secrets = self._load_auth(initial_keyring or {})
        self._global_ids = itertools.count(int(time.time()) % 100000 * 1000 + 4100)
        self._tick_task: asyncio.Task[None] | None = None
        self._handshake_handlers = {Msg.HELLO: self._hello, Msg.AUTH_REQUEST: self._auth_request}
        self._handlers = {
            Msg.TICKET_REQUEST: lambda c, f: c.reply(f, Msg.TICKET_REPLY, c.info["auth"].handle_ticket_request(f.meta)),
            Msg.ROTATING_REQUEST: lambda c, f: c.reply(
                f, Msg.ROTATING_REPLY, c.info["auth"].handle_rotating_request(f.meta)),
            Msg.MON_COMMAND: self._command,
            Msg.MON_SUBSCRIBE: self._subscribe,
            Msg.OSD_BOOT: self._osd_boot,
            Msg.OSD_BEACON: self._osd_beacon,
            Msg.OSD_FAILURE: lambda c, f: self._osd_failure(f),
        }

    # -- persistence ------------------------------------------------------------------
    def _load(self) -> MonState:
        now = time.time()
        raw_map = self.store.get("osdmap")
        raw_mon = self.store.get("monmap")
        if raw_map is None or raw_mon is None:
            fsid = str(self.conf("fsid") or uuid.uuid4())
            osdmap = OSDMap(fsid=fsid, epoch=1, created=now, modified=now,
                            chooseleaf_type=int(self._conf_or("osd_crush_chooseleaf_type", TYPE_HOST)))
            monmap = MonMap(fsid=fsid, epoch=1, created=now, modified=now,
                            mons=[MonInfo(self.name, self.addr, 0)])
            self.store.commit({"osdmap": _pack(osdmap.to_dict()),
                               "monmap": _pack(dataclasses.asdict(monmap))})
            log.info("event=mkfs fsid=%s", fsid)
        else:
            osdmap = OSDMap.from_dict(_unpack(raw_map))
            md = _unpack(raw_mon)
            monmap = MonMap(**{**md, "mons": [MonInfo(**m) for m in md["mons"]]})
            if monmap.mons[0].addr != self.addr:
                monmap.mons[0].addr = self.addr
                monmap.epoch += 1
                monmap.modified = now
                self.store.commit({"monmap": _pack(dataclasses.asdict(monmap))})
        return MonState(osdmap=osdmap, monmap=monmap, conf=self.conf, start_time=now)

    def _load_auth(self, initial: dict[str, Entry]) -> tuple[AuthDB, ServiceSecrets]:
        raw_auth = self.store.get("auth")
        if raw_auth is None:
            db = AuthDB(entities=dict(initial))
            self.store.commit({"auth": _pack(db.to_dict())})
            log.info("event=auth_mkfs entities=%d", len(db))
        else:
            db = AuthDB.from_dict(_unpack(raw_auth))
        ttl = float(self._conf_or("auth_service_ticket_ttl", 3600.0))
        raw_secrets = self.store.get("rotating")
        if raw_secrets is None:
            secrets = ServiceSecrets(ttl, ["osd"])
        else:
            secrets = ServiceSecrets.from_wire(_unpack(raw_secrets), authoritative=True)
        if secrets.rotate_if_due(time.time()) or raw_secrets is None:
            self.store.commit({"rotating": _pack(secrets.to_wire())})
        return db, secrets

    def _required(self, entity: str) -> str:
        return required_for(entity, str(self._conf_or("auth_cluster_required", "cephx")),
                            str(self._conf_or("auth_service_required", "cephx")))

    def _lookup(self, entity: str) -> tuple[bytes, dict[str, str]] | None:
        entry = self.auth_db.get(entity)
        if entry is None or entry.key is None:
            return None
        return entry.key.secret, dict(entry.caps)

    def _conf_or(self, name: str, default: Any) -> Any:
        value = self.conf(name)
        return default if value is None else value

    # -- lifecycle --------------------------------------------------------------------
    async def start(self) -> None:
        host, port = split_addr(self.addr)
        self.server = await serve(host, port, self._handle, name=f"mon.{self.name}")
        # OSDs recorded up before a restart must beacon again within the grace.
        now = time.time()
        for osd in self.state.osdmap.osds.values():
            if osd.up:
                self.last_beacon[osd.id] = now
        self._tick_task = asyncio.create_task(self._tick())
        log.info("event=started mon=%s addr=%s fsid=%s epoch=%d", self.name, self.addr,
                 self.state.osdmap.fsid, self.state.osdmap.epoch)

    async def stop(self) -> None:
        if self._tick_task:
            self._tick_task.cancel()
        if self.server:
            self.server.close()
        self.store.close()

    # -- map changes ----------------------------------------------------------------
    def _next_map(self) -> OSDMap:
        m = self.state.osdmap.copy()
        m.epoch += 1
        m.modified = time.time()
        return m

    def _commit_osdmap(self, new: OSDMap) -> None:
        assert new.epoch == self.state.osdmap.epoch + 1, "OSD map epochs must be consecutive"
        self.store.commit({"osdmap": _pack(new.to_dict())})
        self.state.osdmap = new
        self._forget_stale_pg_stats()
        log.info("event=osdmap epoch=%d up=%d in=%d pools=%d", new.epoch, new.num_up(), new.num_in(),
                 len(new.pools))
        self._publish()

    def _publish(self) -> None:
        m = self.state.osdmap
        payload = {"epoch": m.epoch, "map": m.to_dict()}
        for conn in list(self.subscribers):
            if conn.closed:
                self.subscribers.discard(conn)
                continue
            try:
                conn.send(Msg.OSDMAP, dict(payload))
            except ShoalError:
                self.subscribers.discard(conn)

    def _forget_stale_pg_stats(self) -> None:
        """Drop PG stats that no longer describe the PG's current primary and up set."""
        m = self.state.osdmap
        keep: dict[str, PGStat] = {}
        for pool in m.pools.values():
            for ps in range(pool.pg_num):
                pgid = pgid_str(pool.id, ps)
                stat = self.state.pg_stats.get(pgid)
                if stat is not None and stat.up == m.pg_to_up(pool, ps):
                    keep[pgid] = stat
        self.state.pg_stats = keep

    def mark_down(self, osd_ids: list[int], reason: str) -> None:
        ids = [i for i in osd_ids if i in self.state.osdmap.osds and self.state.osdmap.osds[i].up]
        if not ids:
            return
        new = self._next_map()
        for i in ids:
            new.osds[i].up = False
            new.osds[i].down_at = new.epoch
            new.last_up_change = new.modified
            log.warning("event=osd_down osd=%d reason=%s epoch=%d", i, reason, new.epoch)
        self._commit_osdmap(new)

    # -- liveness -------------------------------------------------------------------
    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            grace = float(self._conf_or("osd_heartbeat_grace", 5.0))
            now = time.time()
            late = [i for i, o in self.state.osdmap.osds.items()
                    if o.up and now - self.last_beacon.get(i, 0.0) > grace]
            if late:
                self.mark_down(late, f"no beacon for {grace:g}s")
            expired = expire_entries(self.state.osdmap, now)
            if expired is not None:
                log.info("event=blocklist_expired addrs=%s", sorted(set(self.state.osdmap.blocklist)
                                                                    - set(expired.blocklist)))
                self._commit_osdmap(expired)
            if self.secrets.rotate_if_due(now):
                self.store.commit({"rotating": _pack(self.secrets.to_wire())})
                log.info("event=rotating_secrets generation=%d", self.secrets.generation)

    # -- request handling -------------------------------------------------------------
    async def _handle(self, conn: Connection, frame: Frame) -> None:
        await serve_frame(conn, frame, log, handshake=self._handshake_handlers, handlers=self._handlers,
                          daemons_only=OSD_MESSAGES, is_daemon=self._is_osd)

    def _hello(self, conn: Connection, frame: Frame) -> None:
        meta = frame.meta
        if not protocol_ok(conn, frame, log):
            return
        if "auth" in conn.info:
            raise AuthError("HELLO repeated on one connection")
        server = MonAuthServer(self._lookup, self.secrets, self._required, time.time,
                               next_global_id=lambda: next(self._global_ids))
        reply = server.handle_hello(meta)
        mode = negotiate.choose_mode(list(meta.get("modes") or ["crc"]), str(self._conf_or("ms_mode", "crc secure")).split())
        conn.info.update(auth=server, mode=mode, entity=str(meta["entity"]))
        reply.update(fsid=self.state.osdmap.fsid, mon=self.name, mode=mode)
        if server.method == AUTH_NONE:
            self._authenticated(conn, server.entity, None)
            reply.setdefault("global_id", server.global_id)
        conn.reply(frame, Msg.HELLO_REPLY, reply)

    def _auth_request(self, conn: Connection, frame: Frame) -> None:
        server: MonAuthServer | None = conn.info.get("auth")
        if server is None:
            raise AuthError("AUTH_REQUEST before HELLO")
        reply = server.handle_auth_request(frame.meta)
        conn.reply(frame, Msg.AUTH_REPLY, reply)
        mode = conn.info["mode"]
        conn.install_session(*server.session(negotiate.is_secure(mode), negotiate.context(mode)))
        self._authenticated(conn, server.entity, server.caps.get("mon", ""))

    def _authenticated(self, conn: Connection, entity: str, mon_caps: str | None) -> None:
        conn.info.update(entity=entity, authenticated=True,
                         moncap=ALLOW_ALL if mon_caps is None else MonCap.for_session(mon_caps, entity))
        conn.name = entity
        self.sessions.add(conn)
        conn_closed = asyncio.ensure_future(conn.wait_closed())
        conn_closed.add_done_callback(lambda _f: self._session_closed(conn))
        log.info("event=session entity=%s peer=%s method=%s mode=%s", entity, conn.peer,
                 conn.info["auth"].method, conn.info.get("mode"))

    def _is_osd(self, conn: Connection, frame: Frame) -> bool:
        entity = str(conn.info.get("entity", ""))
        if not entity.startswith("osd."):
            return False
        osd = frame.meta.get("osd", frame.meta.get("reporter"))
        return conn.info["auth"].method == AUTH_NONE or entity == f"osd.{osd}"

    def _session_closed(self, conn: Connection) -> None:
        self.subscribers.discard(conn)
        self.sessions.discard(conn)
        osd = conn.info.get("osd")
        if osd is not None and self.osd_sessions.get(osd) is conn:
            del self.osd_sessions[osd]
            self.mark_down([osd], "session closed")

    def _command(self, conn: Connection, frame: Frame) -> None:
        cmd = frame.meta["cmd"]
        if not isinstance(cmd, dict) or not isinstance(cmd.get("prefix"), str):
            result = CommandResult(-errno.EINVAL, b"", "command must be a JSON object with a prefix")
        elif not self._command_allowed(conn, cmd):
            result = CommandResult(-errno.EACCES, b"", "access denied")
        else:
            result = handle_command(self.state, cmd, time.time(), auth_db=self.auth_db, inbuf=bytes(frame.data))
        if result.new_osdmap is not None:
            self._commit_osdmap(result.new_osdmap)
        new_db = getattr(result, "new_auth_db", None)
        if new_db is not None:
            self._commit_auth(new_db)
        log.info("event=command entity=%s prefix=%r ret=%d", conn.info.get("entity"), cmd.get("prefix")
                 if isinstance(cmd, dict) else None, result.ret)
        conn.reply(frame, Msg.MON_COMMAND_REPLY, {"ret": result.ret, "outs": result.outs},
                   result.outbuf)

    def _command_allowed(self, conn: Connection, cmd: dict[str, Any]) -> bool:
        if conn.info["moncap"].allows_command(cmd["prefix"], cmd, addr=conn.peer):
            return True
        if cmd["prefix"] in SNAP_OP_PREFIXES:
            # As Ceph's monitor: self-managed snap ids also go to whoever may write the pool.
            osd_caps = self.auth_db.caps_of(str(conn.info.get("entity", "")), "osd")
            return osd_caps is not None and OSDCap.for_session(osd_caps).allows_unmanaged_snaps(
                str(cmd.get("pool", "")))
        return False

    def _commit_auth(self, db: AuthDB) -> None:
        self.store.commit({"auth": _pack(db.to_dict())})
        removed = set(self.auth_db.entities) - set(db.entities)
        self.auth_db = db
        # A deleted entity loses its monitor sessions now (its tickets expire by themselves).
        for conn in list(self.sessions):
            if conn.info.get("entity") in removed:
                log.info("event=session_revoked entity=%s", conn.info.get("entity"))
                conn.close()

    def _subscribe(self, conn: Connection, frame: Frame) -> None:
        self.subscribers.add(conn)
        if self.state.osdmap.epoch > int(frame.meta.get("start", 0)):
            m = self.state.osdmap
            conn.send(Msg.OSDMAP, {"epoch": m.epoch, "map": m.to_dict()})

    def _osd_boot(self, conn: Connection, frame: Frame) -> None:
        meta = frame.meta
        osd_id = int(meta["osd"])
        new = self._next_map()
        info = new.osds.get(osd_id) or OSDInfo(id=osd_id)
        if info.id not in new.osds:
            new.last_in_change = new.modified
        info.host = str(meta.get("host", "localhost"))
        info.addr = str(meta["addr"])
        info.uuid = str(meta.get("uuid", ""))
        info.weight = float(meta.get("weight", info.weight))
        info.up = True
        info.up_from = new.epoch
        new.osds[osd_id] = info
        new.last_up_change = new.modified
        old = self.osd_sessions.get(osd_id)
        self.osd_sessions[osd_id] = conn
        conn.info["osd"] = osd_id
        if old is not None and old is not conn:
            old.close()
        self.last_beacon[osd_id] = time.time()
        log.info("event=osd_boot osd=%d addr=%s host=%s epoch=%d", osd_id, info.addr, info.host, new.epoch)
        self._commit_osdmap(new)
        conn.reply(frame, Msg.OSD_BOOT_REPLY, {"epoch": new.epoch})

    def _osd_beacon(self, conn: Connection, frame: Frame) -> None:
        meta = frame.meta
        osd_id = int(meta["osd"])
        if self.osd_sessions.get(osd_id) is not conn:
            return  # a beacon from a previous incarnation's session
        now = time.time()
        self.last_beacon[osd_id] = now
        stat = meta.get("stat")
        if stat:
            self.state.osd_stats[osd_id] = OSDStat(osd=osd_id, stamp=now, **stat)
        m = self.state.osdmap
        for raw in meta.get("pgs", ()):
            pg = PGStat(**raw)
            pg.stamp = now
            pool_id = int(pg.pgid.split(".")[0])
            pool = m.pools.get(pool_id)
            if pool is None:
                continue
            self.state.pg_stats[pg.pgid] = pg
        rates = meta.get("io")
        if rates:
            self.state.io_rates[str(osd_id)] = rates

    def _osd_failure(self, frame: Frame) -> None:
        target = int(frame.meta["target"])
        info = self.state.osdmap.osds.get(target)
        if info is None or not info.up:
            return
        # A peer's report counts once the target has also missed a beacon interval.
        interval = float(self._conf_or("osd_heartbeat_interval", 1.0))
        if time.time() - self.last_beacon.get(target, 0.0) > 2 * interval:
            self.mark_down([target], f"reported by osd.{frame.meta.get('reporter')}")

"""What the monitor knows, as plain data: the input of every mon command handler.

The daemon (`mon/daemon.py`) keeps one `MonState`, feeds it OSD boots, failures and
PG/OSD statistics, and asks `mon/commands.py` to answer `{"prefix": …}` commands.
Handlers are pure: they read the state and return a `CommandResult`, possibly with
a new OSD map for the daemon to commit, persist and publish.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shoal.placement.osdmap import OSDMap


@dataclass
class MonInfo:
    name: str  # "a"
    addr: str  # "127.0.0.1:6789"
    rank: int = 0


@dataclass
class MonMap:
    fsid: str
    epoch: int = 1
    created: float = 0.0
    modified: float = 0.0
    mons: list[MonInfo] = field(default_factory=list)


@dataclass
class PGStat:
    """What a PG's primary last reported for it."""

    pgid: str  # "2.1f"
    state: str = "unknown"  # "active+clean", "peering", "active+undersized+degraded", …
    up: list[int] = field(default_factory=list)
    acting: list[int] = field(default_factory=list)
    num_objects: int = 0
    num_bytes: int = 0
    num_omap_bytes: int = 0
    num_omap_keys: int = 0
    log_size: int = 0
    version: str = "0'0"  # last_update, "epoch'seq"
    reported_epoch: int = 0
    stamp: float = 0.0


@dataclass
class OSDStat:
    """Capacity an OSD last reported (bytes)."""

    osd: int
    total: int = 0
    used: int = 0
    avail: int = 0
    num_pgs: int = 0
    stamp: float = 0.0


@dataclass
class MonState:
    osdmap: OSDMap
    monmap: MonMap
    pg_stats: dict[str, PGStat] = field(default_factory=dict)
    osd_stats: dict[int, OSDStat] = field(default_factory=dict)
    # Config lookup for mon options (`mon_allow_pool_delete`, `mon_max_pg_per_osd`,
    # `osd_pool_default_size`, …): name -> typed value.
    conf: Callable[[str], Any] = lambda name: None
    start_time: float = 0.0  # when this monitor started (for "quorum a (age 2m)")
    # Client I/O rates for `ceph -s` "io:" (bytes/s and ops/s), filled from OSD reports.
    io_rates: dict[str, float] = field(default_factory=dict)


@dataclass
class CommandResult:
    ret: int = 0  # 0 or a negative errno, as Rados.mon_command returns it
    outbuf: bytes = b""  # the command's data output (JSON when a JSON format was asked)
    outs: str = ""  # the status line Ceph prints on stderr ("pool 'x' created")
    new_osdmap: OSDMap | None = None  # to commit as the next epoch, if the command changed it

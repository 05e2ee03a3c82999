"""A PG's log of recent modifications (pure logic, no I/O).

Each write to a PG gets a version `(epoch, seq)`: the map epoch in which its primary
ordered it and a per-PG counter. Versions compare as tuples, so a write ordered by a
later primary sorts after anything an earlier primary ordered, even if that earlier
primary reused a counter value for a write that never completed.

The log serves three purposes:
* duplicate detection: a client resending a request (same reqid) after a map change
  gets the recorded result instead of a second application;
* log-based recovery: a member whose last_update is inside the log gets exactly the
  objects named by later entries;
* divergence: entries a member has that the authoritative log lacks were never
  acknowledged; the objects they touched are resynchronised from the authority.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

Version = tuple[int, int]
ZERO: Version = (0, 0)


def ver(v: Any) -> Version:
    return (int(v[0]), int(v[1]))


def ver_str(v: Version) -> str:
    """`12'345`, as Ceph prints an eversion."""
    return f"{v[0]}'{v[1]}"


@dataclass(frozen=True)
class LogEntry:
    version: Version
    op: str  # "modify" | "delete"
    name: str
    nspace: str = ""
    reqid: str | None = None
    result: int = 0

    def to_wire(self) -> list[Any]:
        return [list(self.version), self.op, self.name, self.nspace, self.reqid, self.result]

    @classmethod
    def from_wire(cls, w: list[Any]) -> LogEntry:
        return cls(ver(w[0]), str(w[1]), str(w[2]), str(w[3]), w[4], int(w[5]))

    @property
    def key(self) -> tuple[str, str]:
        return (self.nspace, self.name)


@dataclass
class PGInfo:
    last_update: Version = ZERO
    log_tail: Version = ZERO  # version just before the oldest entry still logged
    last_epoch_started: int = 0
    # This member's store key of its newest log entry. Keys are local (a member that
    # adopted another log renumbers), and the logged entries occupy the keys just below.
    log_key: int = 0

    def to_wire(self) -> dict[str, Any]:
        return {"last_update": list(self.last_update), "log_tail": list(self.log_tail),
                "les": self.last_epoch_started, "lk": self.log_key}

    @classmethod
    def from_wire(cls, w: dict[str, Any]) -> PGInfo:
        return cls(ver(w["last_update"]), ver(w["log_tail"]), int(w.get("les", 0)), int(w.get("lk", 0)))


@dataclass
class PGLog:
    entries: list[LogEntry] = field(default_factory=list)
    tail: Version = ZERO
    _dups: dict[str, LogEntry] = field(default_factory=dict)

    @classmethod
    def from_entries(cls, entries: Iterable[LogEntry], tail: Version) -> PGLog:
        log = cls(tail=tail)
        for entry in entries:
            log.append(entry)
        return log

    @property
    def head(self) -> Version:
        return self.entries[-1].version if self.entries else self.tail

    def append(self, entry: LogEntry) -> None:
        assert entry.version > self.head, f"log versions must increase: {entry.version} after {self.head}"
        self.entries.append(entry)
        if entry.reqid is not None:
            self._dups[entry.reqid] = entry

    def find_dup(self, reqid: str) -> LogEntry | None:
        return self._dups.get(reqid)

    def trim_to(self, keep: int) -> Version | None:
        """Keep the newest `keep` entries; returns the new tail if anything was dropped."""
        drop = len(self.entries) - keep
        if drop <= 0:
            return None
        for entry in self.entries[:drop]:
            if entry.reqid is not None and self._dups.get(entry.reqid) is entry:
                del self._dups[entry.reqid]
        self.tail = self.entries[drop - 1].version
        del self.entries[:drop]
        return self.tail

    def covers(self, version: Version) -> bool:
        """Whether every change after `version` is in this log (so log recovery works)."""
        return version >= self.tail

    def objects_after(self, version: Version) -> dict[tuple[str, str], LogEntry]:
        """The newest entry per object among entries newer than `version`."""
        latest: dict[tuple[str, str], LogEntry] = {}
        for entry in self.entries:
            if entry.version > version:
                latest[entry.key] = entry
        return latest

    def divergent(self, other: list[LogEntry]) -> list[LogEntry]:
        """Entries of `other` (a member's log) that this authoritative log does not hold."""
        mine = {e.version: e for e in self.entries}
        out = []
        for entry in other:
            if entry.version <= self.tail:
                continue
            have = mine.get(entry.version)
            if have is None or have != entry:
                out.append(entry)
        return out

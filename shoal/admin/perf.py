"""Perf counters, as `perf dump` shows them: named groups of counters per process or client.

Ceph's shapes: a plain counter is a number; a time average is
`{"avgcount": n, "sum": seconds, "avgtime": seconds/n}`. Counters are only touched on the
thread that owns them (the client loop or a daemon loop); `perf dump` runs there too, so
no locking is needed.
"""

from __future__ import annotations

from typing import Any


class PerfCounters:
    """One group (`librbd-<id>-<pool>-<image>`, `objecter`…) of counters."""

    def __init__(self, name: str, counters: tuple[str, ...] = (), averages: tuple[str, ...] = (),
                 gauges: tuple[str, ...] = ()) -> None:
        self.name = name
        self.gauges = frozenset(gauges)  # current levels (ops in flight): a reset leaves them
        self.values: dict[str, int] = dict.fromkeys(counters, 0)
        self.avgs: dict[str, list[float]] = {k: [0, 0.0] for k in averages}

    def inc(self, key: str, n: int = 1) -> None:
        self.values[key] = self.values.get(key, 0) + n

    def dec(self, key: str, n: int = 1) -> None:
        self.values[key] = self.values.get(key, 0) - n

    def set(self, key: str, value: int) -> None:  # noqa: A003 - Ceph's name for a gauge update
        self.values[key] = value

    def set_max(self, key: str, value: int) -> None:
        """Keep the largest value seen since the last reset (a high-water mark)."""
        if value > self.values.get(key, 0):
            self.values[key] = value

    def tinc(self, key: str, seconds: float) -> None:
        avg = self.avgs.setdefault(key, [0, 0.0])
        avg[0] += 1
        avg[1] += seconds

    def reset(self) -> None:
        for key in self.values:
            if key not in self.gauges:
                self.values[key] = 0
        for avg in self.avgs.values():
            avg[0], avg[1] = 0, 0.0

    def dump(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.values)
        for key, (count, total) in self.avgs.items():
            out[key] = {"avgcount": int(count), "sum": round(total, 9),
                        "avgtime": round(total / count, 9) if count else 0.0}
        return out

    def schema(self) -> dict[str, Any]:
        """`perf schema`: type bits as Ceph's (2 = u64, 5 = time avg, 8 = counter)."""
        out: dict[str, Any] = {k: {"type": 10, "metric_type": "counter", "value_type": "integer"}
                               for k in self.values}
        out.update({k: {"type": 5, "metric_type": "gauge", "value_type": "real-integer-pair"} for k in self.avgs})
        return out


class PerfRegistry:
    """Every counter group of one process or client (what `perf dump` walks)."""

    def __init__(self) -> None:
        self._groups: dict[str, PerfCounters] = {}

    def create(self, name: str, counters: tuple[str, ...] = (), averages: tuple[str, ...] = (),
               gauges: tuple[str, ...] = ()) -> PerfCounters:
        """A new group; a name already in use gets a numeric suffix (two handles of one image)."""
        unique, n = name, 1
        while unique in self._groups:
            n += 1
            unique = f"{name}-{n}"
        group = PerfCounters(unique, counters, averages, gauges)
        self._groups[unique] = group
        return group

    def remove(self, group: PerfCounters) -> None:
        if self._groups.get(group.name) is group:
            del self._groups[group.name]

    def get(self, name: str) -> PerfCounters | None:
        return self._groups.get(name)

    def dump(self, group: str | None = None, counter: str | None = None) -> dict[str, Any]:
        out = {}
        for name in sorted(self._groups):
            if group is not None and name != group:
                continue
            values = self._groups[name].dump()
            if counter is not None:
                values = {k: v for k, v in values.items() if k == counter}
            out[name] = values
        return out

    def schema(self) -> dict[str, Any]:
        return {name: self._groups[name].schema() for name in sorted(self._groups)}

    def reset(self, group: str = "all") -> bool:
        """`perf reset <group|all>`: False for an unknown group."""
        if group == "all":
            for g in self._groups.values():
                g.reset()
            return True
        g = self._groups.get(group)
        if g is None:
            return False
        g.reset()
        return True

"""Per-process memory and CPU sampling from /proc, for the cluster benchmark.

`ProcSampler` is a thread that reads VmRSS/VmHWM of a set of named pids every
`interval` seconds and keeps the peak per name, both for the whole run and for the
current window (one window per workload). `cpu_seconds` and `system_busy_seconds`
give CPU time so that a workload can report what each daemon, the client and
everything else on the box consumed while it ran.
"""

from __future__ import annotations

import os
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
MiB = 1024 * 1024


def status_kib(pid: int, fields: tuple[str, ...] = ("VmRSS", "VmHWM")) -> dict[str, int]:
    """Fields of /proc/PID/status in KiB ({} if the process is gone)."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in fields:
                    out[key] = int(rest.split()[0])
    except (OSError, ValueError):
        return {}
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds; 0.0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    # after the ")" field 3 (state) is index 0, so utime (14) / stime (15) are 11 / 12
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def start_time_boottime(pid: int) -> float:
    """When the process started, in seconds on CLOCK_BOOTTIME (comparable to time.clock_gettime)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return int(fields[19]) / CLK_TCK  # starttime is field 22


def system_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of all CPUs since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    total = sum(parts[:8])  # user nice system idle iowait irq softirq steal (guest is in user)
    idle = parts[3] + parts[4]
    return (total - idle) / CLK_TCK, total / CLK_TCK


class CpuWindow:
    """CPU seconds used by named pids and by the whole box between start() and stop()."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._start: dict[str, float] = {}
        self._sys0 = (0.0, 0.0)
        self._t0 = 0.0

    def start(self) -> None:
        self._start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self._sys0 = system_busy_seconds()
        self._t0 = time.monotonic()

    def stop(self) -> dict[str, float]:
        """Per name: CPU used as a fraction of one core ("osd.0": 0.45 = 45 %), plus
        "all_cpus_busy" (whole box, 2.0 = both cores) and "others" (box minus named pids)."""
        wall = max(time.monotonic() - self._t0, 1e-9)
        out = {name: (cpu_seconds(pid) - self._start[name]) / wall for name, pid in self.pids.items()}
        busy, _ = system_busy_seconds()
        out["all_cpus_busy"] = (busy - self._sys0[0]) / wall
        out["others"] = max(0.0, out["all_cpus_busy"] - sum(v for k, v in out.items() if k != "all_cpus_busy"))
        return out


class ProcSampler(threading.Thread):
    """Samples VmRSS (and VmHWM) of named pids; peaks overall and per window, in MiB."""

    def __init__(self, pids: dict[str, int], interval: float = 0.1) -> None:
        super().__init__(name="bench-rss-sampler", daemon=True)
        self.pids = pids
        self.interval = interval
        self.peak_rss: dict[str, float] = {name: 0.0 for name in pids}
        self.hwm: dict[str, float] = {name: 0.0 for name in pids}
        self.window_peak: dict[str, float] = {name: 0.0 for name in pids}
        self.samples = 0
        self._lock = threading.Lock()
        self._stop_event = threading.Event()

    def sample(self) -> None:
        for name, pid in self.pids.items():
            st = status_kib(pid)
            if not st:
                continue
            rss = st.get("VmRSS", 0) / 1024
            with self._lock:
                self.peak_rss[name] = max(self.peak_rss[name], rss)
                self.window_peak[name] = max(self.window_peak[name], rss)
                self.hwm[name] = max(self.hwm[name], st.get("VmHWM", 0) / 1024)
        self.samples += 1

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.sample()

    def new_window(self) -> dict[str, float]:
        """Ends the current window: returns its peaks and starts a new one."""
        self.sample()
        with self._lock:
            peaks, self.window_peak = self.window_peak, {name: 0.0 for name in self.pids}
        return peaks

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)
        self.sample()


def wait_for_quiet(max_wait: float, threshold: float = 0.25, probe: float = 2.0,
                   exclude: dict[str, int] | None = None) -> float:
    """Waits (up to max_wait s) until processes other than `exclude` use less than
    `threshold` cores over `probe` seconds; returns the last measured load in cores."""
    deadline = time.monotonic() + max_wait
    pids = exclude or {}
    while True:
        b0, _ = system_busy_seconds()
        ours0 = sum(cpu_seconds(p) for p in pids.values())
        time.sleep(probe)
        ours = sum(cpu_seconds(p) for p in pids.values()) - ours0
        busy = max(0.0, (system_busy_seconds()[0] - b0 - ours) / probe)
        if busy < threshold or time.monotonic() >= deadline:
            return busy

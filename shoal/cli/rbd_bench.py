"""`rbd bench`: timed reads and/or writes of one image, with Ceph 16's options and report.

`--io-threads` worker threads each keep one I/O outstanding on the shared image handle (python-
rbd images may be used from many threads at once), until `--io-total` bytes have been issued.
The main thread prints a line per second (ops completed, and ops/s and bytes/s averaged over
the last 5 seconds, as Ceph's rolling window does), then the summary.
"""

from __future__ import annotations

import errno
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from shoal.cli import rbd_render as render
from shoal.cli.rados_cmd import err, strerror
from shoal.cli.rbd_args import SNAP_NONE, SNAP_PERMITTED, Args, image_spec, invalid
from shoal.cli.rbd_session import API_ERRORS, Exit, Session, errno_of, fail, out
from shoal.mon.render_units import byte_u

WINDOW = 5  # seconds in the rolling averages of the per-second lines


@dataclass
class BenchRun:
    """Shared by the workers (under `lock`) and the reporting main thread."""

    io_size: int
    total: int
    size: int
    rand: bool
    mix_read: int | None  # percentage of reads in a readwrite run, else None
    is_read: bool
    issued: int = 0  # bytes handed out to workers
    done: int = 0  # ops completed
    read_ops: int = 0
    error: BaseException | None = None
    error_was_write: bool = False
    running: int = 0  # workers still going; the last one to stop sets `finished`
    finished: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def claim(self, rng: random.Random, cursor: list[int]) -> tuple[int, bool] | None:
        """(offset, is_read) of this worker's next I/O, or None when the total is issued."""
        with self.lock:
            if self.issued >= self.total or self.error is not None:
                return None
            self.issued += self.io_size
        blocks = self.size // self.io_size
        if self.rand:
            offset = rng.randrange(blocks) * self.io_size
        else:
            cursor[0] += self.io_size
            if cursor[0] + self.io_size > self.size:
                cursor[0] = 0
            offset = cursor[0]
        reading = self.is_read if self.mix_read is None else rng.randrange(100) < self.mix_read
        return offset, reading


def worker(image: Any, run: BenchRun, seed: int) -> None:
    try:
        _work(image, run, seed)
    finally:
        with run.lock:
            run.running -= 1
            if not run.running:
                run.finished.set()


def _work(image: Any, run: BenchRun, seed: int) -> None:
    rng = random.Random(seed)
    # Sequential workers start at scattered block offsets, as Ceph's do.
    cursor = [rng.randrange(max(run.size // run.io_size, 1)) * run.io_size]
    payload = bytes([rng.randrange(256)]) * run.io_size
    while (job := run.claim(rng, cursor)) is not None:
        offset, reading = job
        try:
            if reading:
                image.read(offset, run.io_size)
            else:
                image.write(payload, offset)
        except API_ERRORS as exc:
            with run.lock:
                run.error, run.error_was_write = exc, not reading
            return
        with run.lock:
            run.done += 1
            run.read_ops += reading


def cmd_bench(s: Session, a: Args) -> int:
    io_type = a.get("io-type")
    spec = image_spec(a, snap=SNAP_PERMITTED if io_type == "read" else SNAP_NONE)
    if io_type is None:
        raise invalid("rbd: --io-type must be specified.")
    io_size = a.get("io-size", 4096)
    if io_size == 0:
        raise invalid("rbd: --io-size should be greater than zero.")
    threads = a.get("io-threads", 16)
    total = a.get("io-total", 1 << 30)
    rand = a.get("io-pattern", "seq") == "rand"
    readwrite = io_type in ("readwrite", "rw")
    mix_read = a.get("rw-mix-read", 50)
    if readwrite and mix_read > 100:
        raise invalid("rbd: --rw-mix-read should not be larger than 100.")
    image = s.open_image(s.open_pool(spec.pool, spec.namespace), spec.image, False, spec.snap)
    try:
        size = image.size()
        if io_size > size:
            err(f"rbd: io-size {byte_u(io_size)} larger than image size {byte_u(size)}")
            raise fail("bench failed", errno.EINVAL)
        run = BenchRun(io_size, total, size, rand, mix_read if readwrite else None, io_type == "read")
        out(render.bench_banner(io_type, io_size, threads, total, rand, mix_read))
        out(render.BENCH_HEADER)
        elapsed = _drive(image, run, max(threads, 1))
        if run.error is not None:
            code = errno_of(run.error)
            out(f"{'write' if run.error_was_write else 'read'} error: {strerror(code)}\n")
            raise Exit(code)
        if io_type != "read":
            # The final flush counts, as in Ceph's rbd bench: with the write-back cache
            # (the rbd tool turns writethrough-until-flush off) writes return from memory.
            flush_start = time.monotonic()
            try:
                image.flush()
            except API_ERRORS as exc:
                err(f"rbd: failed to flush at the end: {strerror(errno_of(exc))}")
            elapsed += time.monotonic() - flush_start
        out(render.bench_summary(elapsed, run.done, run.done * io_size, io_size,
                                 run.read_ops if readwrite else None))
    finally:
        image.close()
    return 0


def _drive(image: Any, run: BenchRun, threads: int) -> float:
    """Run the workers, printing a line per second; returns the elapsed seconds."""
    seed = random.SystemRandom().randrange(1 << 30)
    run.running = threads
    workers = [threading.Thread(target=worker, args=(image, run, seed + i), daemon=True) for i in range(threads)]
    start = time.monotonic()
    for t in workers:
        t.start()
    samples: deque[tuple[float, int, int]] = deque(maxlen=WINDOW)  # (seconds, ops, bytes) per tick
    last_time, last_done = start, 0
    next_tick = start + 1
    while not run.finished.wait(timeout=max(0.0, next_tick - time.monotonic())):
        now = time.monotonic()
        with run.lock:
            done = run.done
        samples.append((now - last_time, done - last_done, (done - last_done) * run.io_size))
        span = sum(x[0] for x in samples) or 1e-9
        out(render.bench_line(int(now - start), done, sum(x[1] for x in samples) / span,
                              sum(x[2] for x in samples) / span))
        last_time, last_done = now, done
        next_tick = start + int(now - start) + 1
    for t in workers:
        t.join()
    return time.monotonic() - start

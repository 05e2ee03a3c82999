"""`rados bench` and `rados cleanup`: many concurrent object ops on the client loop thread.

The ops run as N asyncio workers inside one coroutine on the client's loop thread (N =
`-t`, 16 by default), never a thread per op; the CLI's main thread prints the
per-second progress lines from counters the workers update, as Ceph's status thread does.
Objects, their contents and the run's metadata object are laid out as Ceph's
ObjBencher does, so `seq`/`rand` (and `cleanup`) find what an earlier `write
--no-cleanup` left, and an operator sees the same names:

* objects `benchmark_data_<host>_<pid>_object<N>`, each op's buffer starting
  "I'm the <16-wide op number>th op!" then NUL, padded with 'z';
* metadata object `benchmark_last_metadata` (or `--run-name`): little-endian
  u64 object_size, i32 ops written, i32 pid, u64 op_size.
"""

from __future__ import annotations

import asyncio
import errno
import os
import random
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shoal.cli import rados_render
from shoal.errors import ShoalError
from shoal.wire.osd_op import OpBuilder

if TYPE_CHECKING:
    from shoal.cli.rados_cmd import Tool

BENCH_METADATA = "benchmark_last_metadata"
BENCH_PREFIX = "benchmark_data"
_META = struct.Struct("<QiiQ")
_META_OLD = struct.Struct("<Qii")  # written before op_size was recorded: op_size == object_size
_MIB = 1024 * 1024


def object_prefix(pid: int | None = None) -> str:
    host = socket.gethostname().split(".")[0][:29]
    return f"{BENCH_PREFIX}_{host}_{os.getpid() if pid is None else pid}"


def object_name(n: int, pid: int | None = None) -> str:
    return f"{object_prefix(pid)}_object{n}"


def op_contents(n: int, op_size: int) -> bytes:
    """What op number `n` writes (and a verified read expects)."""
    head = f"I'm the {n:16d}th op!".encode()[:max(op_size - 1, 0)] + b"\0"
    return (head + b"z" * op_size)[:op_size]


def encode_metadata(object_size: int, num_ops: int, pid: int, op_size: int) -> bytes:
    return _META.pack(object_size, num_ops, pid, op_size)


def decode_metadata(raw: bytes) -> tuple[int, int, int, int]:
    """(object_size, num_ops, pid, op_size); ValueError when it is too short to be metadata."""
    if len(raw) >= _META.size:
        return _META.unpack_from(raw)
    if len(raw) >= _META_OLD.size:
        object_size, num_ops, pid = _META_OLD.unpack_from(raw)
        return object_size, num_ops, pid, object_size
    raise ValueError("benchmark metadata object is too short")


@dataclass
class BenchData:
    """Counters shared by the workers (loop thread) and the status printer (main thread)."""

    op_size: int
    object_size: int
    started: int = 0
    finished: int = 0
    in_flight: int = 0
    cur_latency: float = 0.0
    total_latency: float = 0.0
    min_latency: float = 9999.0
    max_latency: float = 0.0
    latencies: list[float] = field(default_factory=list)
    start_time: float = field(default_factory=time.monotonic)
    error: int = 0
    bad_reads: list[str] = field(default_factory=list)

    @property
    def avg_latency(self) -> float:
        return self.total_latency / self.finished if self.finished else 0.0

    def done_op(self, started_at: float) -> None:
        lat = time.monotonic() - started_at
        self.cur_latency = lat
        self.latencies.append(lat)
        self.total_latency += lat
        self.max_latency = max(self.max_latency, lat)
        self.min_latency = min(self.min_latency, lat)
        self.finished += 1
        self.in_flight -= 1


class StatusPrinter:
    """Ceph's status thread: one line per second, the header every 20 lines."""

    def __init__(self, data: BenchData, json_mode: bool) -> None:
        self.data = data
        self.json_mode = json_mode
        self.i = 0
        self.previous = 0
        self.cycles = 0
        self.bandwidth: list[float] = []
        self.iops: list[int] = []
        self.samples: list[dict[str, str]] = []

    def tick(self) -> None:
        d = self.data
        now = time.monotonic()
        if self.i % 20 == 0 and not self.json_mode:
            if self.i > 0:
                out(rados_render.bench_latency_line(time.time(), d.min_latency, d.max_latency, d.avg_latency))
            out(rados_render.BENCH_HEADER)
        finished = d.finished
        bandwidth = (finished - self.previous) * d.op_size / _MIB / self.cycles if self.cycles else -1.0
        if bandwidth > -1:
            self.bandwidth.append(bandwidth)
        iops = int((finished - self.previous) / self.cycles) if self.cycles else -1
        if iops > -1:
            self.iops.append(iops)
        elapsed = max(now - d.start_time, 1e-9)
        avg_bw = d.op_size * finished / elapsed / _MIB
        changed = finished != self.previous
        if changed:
            self.previous = finished
            self.cycles = 0
        if self.json_mode:
            self.samples.append({
                "sec": str(self.i), "cur_ops": str(d.in_flight), "started": str(d.started),
                "finished": str(finished), "avg_bw": f"{avg_bw:f}", "cur_bw": f"{bandwidth if changed else 0:f}",
                "last_lat": f"{d.cur_latency if changed else 0:f}", "avg_lat": f"{d.avg_latency:f}"})
        else:
            out(rados_render.bench_progress_line(
                self.i, d.in_flight, d.started, finished, avg_bw, bandwidth if changed else None,
                d.cur_latency if changed else None, d.avg_latency))
        self.i += 1
        self.cycles += 1


def out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


async def _op(t: Tool, oid: str, builder: OpBuilder, nspace: str | None = None) -> tuple[int, Any]:
    assert t.pool is not None
    try:
        reply = await t.client.operate(t.pool.id, oid, builder, t.nspace if nspace is None else nspace)
    except ShoalError as exc:
        return -(exc.errno or errno.EIO), None
    return reply.result, reply


async def _workers(n: int, work: Any) -> None:
    """Run `work()` in n concurrent tasks; the first failure cancels the rest."""
    tasks = [asyncio.create_task(work()) for _ in range(max(n, 1))]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()


async def write_bench(t: Tool, d: BenchData, seconds: int, concurrent: int, max_objects: int) -> None:
    wpo = max(d.object_size // d.op_size, 1) if d.op_size else 1
    stop_at = d.start_time + seconds
    limit = max_objects * wpo

    async def work() -> None:
        while not d.error and (not seconds or time.monotonic() < stop_at) and (not limit or d.started < limit):
            n = d.started
            d.started += 1
            d.in_flight += 1
            b = OpBuilder()
            b.add("write", op_contents(n, d.op_size), off=d.op_size * (n % wpo))
            began = time.monotonic()
            result, _ = await _op(t, object_name(n // wpo), b)
            if result < 0:
                d.error = d.error or result
                d.in_flight -= 1
                return
            d.done_op(began)

    await _workers(concurrent, work)


async def read_bench(t: Tool, d: BenchData, seconds: int, concurrent: int, num_ops: int, pid: int,
                     rand: bool, verify: bool) -> None:
    wpo = max(d.object_size // d.op_size, 1) if d.op_size else 1
    stop_at = d.start_time + seconds

    async def work() -> None:
        while not d.error and (not seconds or time.monotonic() < stop_at) and (rand or d.started < num_ops):
            n = random.randrange(num_ops) if rand else d.started
            d.started += 1
            d.in_flight += 1
            b = OpBuilder()
            b.add("read", off=d.op_size * (n % wpo), len=d.op_size)
            began = time.monotonic()
            name = object_name(n // wpo, pid)
            result, reply = await _op(t, name, b)
            if result < 0:
                d.error = d.error or result
                d.in_flight -= 1
                return
            d.done_op(began)
            if verify and reply.out_data(0) != op_contents(n, d.op_size):
                d.bad_reads.append(name)

    await _workers(concurrent, work)


async def remove_objects(t: Tool, names: list[tuple[str, str | None]], concurrent: int) -> int:
    """Remove objects (name, namespace) with `concurrent` in flight; missing ones are fine."""
    queue = list(reversed(names))
    removed = 0
    failure = 0

    async def work() -> None:
        nonlocal removed, failure
        while queue and not failure:
            name, nspace = queue.pop()
            b = OpBuilder()
            b.add("delete")
            result, _ = await _op(t, name, b, nspace)
            if result < 0 and result != -errno.ENOENT:
                failure = result
                return
            removed += 1

    await _workers(min(concurrent, max(len(names), 1)), work)
    if failure:
        raise ShoalError(f"remove got {failure}", -failure)
    return removed


def _wait_printing(t: Tool, coro: Any, printer: StatusPrinter) -> None:
    """Run the bench coroutine on the loop thread; print a status line each second meanwhile."""
    printer.tick()  # Ceph's status thread prints its first line before any op is started
    future = t.loop.submit(coro)
    while True:
        try:
            future.result(timeout=1.0)
            return
        except TimeoutError:
            printer.tick()


def fetch_metadata(t: Tool, run_name: str) -> tuple[int, int, int, int] | int:
    """The metadata of the last write run, or a negative errno."""
    b = OpBuilder()
    b.add("read", off=0, len=_META.size)
    result, reply = t.run(_op(t, run_name, b))
    if result < 0:
        return result
    try:
        return decode_metadata(reply.out_data(0))
    except ValueError:
        return -errno.ENOENT  # an empty metadata object counts as none, as in Ceph


def _fail(what: str, ret: int) -> None:
    from shoal.cli.rados_cmd import Fail, strerror

    err(f"{what}: {strerror(ret)}")
    err(f"error {-ret}: {strerror(ret)}")
    raise Fail()


def run_bench(t: Tool) -> None:
    from shoal.cli.rados_cmd import Fail, int_opt, usage_fail

    o = t.o
    args = o.args
    if t.pool is None or len(args) < 3:
        raise usage_fail()
    seconds_text, operation = args[1], args[2]
    try:
        seconds = int(seconds_text)
    except ValueError:
        err(f"Invalid value for seconds: '{seconds_text}'")
        raise Fail() from None
    if operation not in ("write", "seq", "rand"):
        raise usage_fail()
    if operation != "write":
        if o.has("block-size") or o.has("object-size"):
            err("-b|--block_size option can be used only with 'write' bench test")
            raise Fail()
        if o.has("write-dest-obj") or o.has("write-dest-omap") or o.has("write-dest-xattr"):
            err("--write-object, --write-omap and --write-xattr options can only be used with the 'write' bench test")
            raise Fail()
    if o.has("output") and not t.fmt:
        err("-o|--output option can only be used with '--format' option")
        raise Fail()
    concurrent = int_opt(o, "concurrent-ios", 16)
    if concurrent <= 0:
        _fail("error during benchmark", -errno.EINVAL)
    op_size = t.op_size
    object_size = int_opt(o, "object-size", 0)
    if not object_size:
        object_size = op_size
    elif object_size < op_size:
        op_size = object_size
    max_objects = int_opt(o, "max-objects", 0)
    run_name = o.get("run-name") or BENCH_METADATA
    hints = not o.has("no-hints")
    out(f"hints = {int(hints)}\n")

    pid, num_ops = os.getpid(), 0
    if operation != "write":
        meta = fetch_metadata(t, run_name)
        if isinstance(meta, int):
            if meta == -errno.ENOENT:
                err("Must write data before running a read benchmark!")
            _fail("error during benchmark", meta)
            return
        object_size, num_ops, pid, op_size = meta
    d = BenchData(op_size=op_size, object_size=object_size)
    report: dict[str, Any] = {}
    if operation == "write":
        preamble = rados_render.bench_preamble("write", concurrent, op_size, object_size, seconds, max_objects,
                                               object_prefix())
        report.update(concurrent_ios=str(concurrent), object_size=str(object_size), op_size=str(op_size),
                      seconds_to_run=str(seconds), max_objects=str(max_objects), object_prefix=object_prefix())
        if not t.fmt:
            out(preamble.split("\n", 1)[1])  # the "hints" line is already out
        coro = write_bench(t, d, seconds, concurrent, max_objects)
    else:
        coro = read_bench(t, d, seconds, concurrent, num_ops, pid, operation == "rand", not o.has("no-verify"))
    printer = StatusPrinter(d, bool(t.fmt))
    d.start_time = time.monotonic()
    _wait_printing(t, coro, printer)
    time_run = time.monotonic() - d.start_time
    for name in d.bad_reads:
        err(f"{name} is not correct!")
    if d.error:
        if operation != "write":
            err(f"read got {d.error}")
        _fail("error during benchmark", d.error)
    summary = rados_render.summarize(operation, time_run, d.finished, op_size, object_size, d.latencies,
                                     printer.bandwidth, printer.iops)
    if t.fmt:
        report["datas"] = printer.samples
        report.update(_json_summary(summary))
    else:
        out(rados_render.bench_summary(summary))
    if operation == "write":
        _finish_write(t, d, run_name, concurrent, not o.has("no-cleanup"), report)
    if t.fmt:
        _emit_json(t, report)
    if d.bad_reads:
        raise Fail()


def _finish_write(t: Tool, d: BenchData, run_name: str, concurrent: int, cleanup: bool,
                  report: dict[str, Any]) -> None:
    meta = encode_metadata(d.object_size, d.finished, os.getpid(), d.op_size)
    b = OpBuilder()
    b.add("writefull", meta)
    result, _ = t.run(_op(t, run_name, b))
    if result < 0:
        _fail("error during benchmark", result)
    if not cleanup:
        return
    wpo = max(d.object_size // d.op_size, 1)
    num_objects = (d.finished + wpo - 1) // wpo
    began = time.monotonic()
    if not t.fmt:
        out("Cleaning up (deleting benchmark objects)\n")
    try:
        removed = t.run(remove_objects(t, [(object_name(i), None) for i in range(num_objects)], concurrent))
    except ShoalError as exc:
        _fail("error during benchmark", -exc.errno)
        return
    b = OpBuilder()
    b.add("delete")
    t.run(_op(t, run_name, b))
    if not t.fmt:
        out(rados_render.bench_cleanup(removed, time.monotonic() - began).split("\n", 1)[1])


def _json_summary(s: rados_render.BenchSummary) -> dict[str, str]:
    """The summary as Ceph's formatter dumps it: every figure a string (dump_format)."""
    write = s.op == "write"
    doc = {"total_time_run": f"{s.time_run:f}", f"total_{'writes' if write else 'reads'}_made": str(s.ops),
           "write_size" if write else "read_size": str(s.op_size), "object_size": str(s.object_size),
           "bandwidth": f"{s.bandwidth:f}"}
    if write:
        doc.update(stddev_bandwidth=f"{s.stddev_bandwidth:f}", max_bandwidth=f"{s.max_bandwidth:f}",
                   min_bandwidth=f"{s.min_bandwidth:f}")
    doc.update(average_iops=str(s.avg_iops), stddev_iops=f"{s.stddev_iops:f}", max_iops=str(s.max_iops),
               min_iops=str(s.min_iops), average_latency=f"{s.avg_latency:f}")
    if write:
        doc["stddev_latency"] = f"{s.stddev_latency:f}"
    doc.update(max_latency=f"{s.max_latency:f}", min_latency=f"{s.min_latency:f}")
    return doc


def _emit_json(t: Tool, report: dict[str, Any]) -> None:
    from shoal.cli.rados_cmd import dump_json

    assert t.fmt is not None
    body = dump_json(report, t.fmt)
    target = t.o.get("output")
    if target:
        with open(target, "wb") as f:
            f.write(body + b"\n")
    else:
        sys.stdout.buffer.write(body + b"\n")
        sys.stdout.flush()


def run_cleanup(t: Tool) -> None:
    from shoal.cli.rados_cmd import ALL_NSPACES, int_opt, usage_fail

    o = t.o
    if t.pool is None:
        raise usage_fail()
    concurrent = int_opt(o, "concurrent-ios", 16)
    run_name = o.get("run-name") or BENCH_METADATA
    prefix = o.get("prefix") or ""
    wildcard = o.has("all") and not o.has("default") and not o.has("namespace")
    meta = fetch_metadata(t, run_name)
    if isinstance(meta, int):
        if meta != -errno.ENOENT or not prefix:
            _fail("error during cleanup", meta)
            return
        out("Warning: using slow linear search\n")
        nspace = None if wildcard or t.nspace == ALL_NSPACES else t.nspace

        async def matching() -> list[tuple[str, str | None]]:
            assert t.pool is not None
            return [(name, ns) async for ns, name in t.client.list_objects(t.pool.id, nspace)
                    if name.startswith(prefix)]

        try:
            names = t.run(matching())
            removed = t.run(remove_objects(t, names, concurrent))
        except ShoalError as exc:
            _fail("error during cleanup", -exc.errno)
            return
        out(rados_render.render_cleanup(removed))
        return
    object_size, num_ops, pid, op_size = meta
    wpo = max(object_size // op_size, 1) if op_size else 1
    num_objects = (num_ops + wpo - 1) // wpo
    try:
        removed = t.run(remove_objects(t, [(object_name(i, pid), None) for i in range(num_objects)], concurrent))
    except ShoalError as exc:
        _fail("error during cleanup", -exc.errno)
        return
    out(rados_render.render_cleanup(removed))
    b = OpBuilder()
    b.add("delete")
    result, _ = t.run(_op(t, run_name, b))
    if result < 0 and result != -errno.ENOENT:
        _fail("error during cleanup", result)

"""Two OS processes on one image (python-rbd in each, the cluster's ceph.conf).

* `test_watch_notify_*` need watch/notify: the exclusive lock is cooperative (a writer that
  does not own the lock asks the owner over the header object's watch to release it), and a
  resize reaches other open handles as a header-update notification. A failure there points
  at watch/notify or the exclusive-lock state machine before anything else.
* `test_concurrent_copyup_without_lock_*` needs no watch/notify: two writers without the
  exclusive-lock feature race copy-up into the same clone objects, which cls `rbd.copyup`
  (writes only when the object does not exist) plus the write in one op makes safe.

Each worker writes its own disjoint 4 KiB blocks (interleaved with the other's inside the same
objects) and appends every acknowledged write to a ledger; afterwards every block must hold
the last acknowledged version, and blocks nobody wrote must hold what they held before.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shoal.testing.cluster import TestCluster
from tests.rbd.rbd_helpers import pool_ioctx, read_all

try:
    import rbd
except ImportError:  # python-rbd drop-in not written yet: the tests fail (not skip) until it lands
    rbd = None  # type: ignore[assignment]

POOL = "rbd_concurrency"
BLOCK = 4096
LAYERING, EXCLUSIVE_LOCK, OBJECT_MAP, FAST_DIFF, DEEP_FLATTEN = 1, 4, 8, 16, 32
LOCKED = LAYERING | EXCLUSIVE_LOCK | OBJECT_MAP | FAST_DIFF | DEEP_FLATTEN
WORKER_TIMEOUT = 240.0

WORKER = r'''
import hashlib, json, os, random, sys, time
import rados, rbd

args = json.loads(sys.argv[1])
BLOCK = 4096

def payload(who, block, seq):
    return hashlib.sha256(f"{who}:{block}:{seq}".encode()).digest() * (BLOCK // 32)

def wait_for(path, what):
    deadline = time.monotonic() + 60
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            sys.exit(f"worker {args['who']}: timed out waiting for {what}")
        time.sleep(0.01)

r = rados.Rados(conffile=args["conf"])
r.connect()
io = r.open_ioctx(args["pool"])
img = rbd.Image(io, args["image"])
open(args["ready"], "w").close()
wait_for(args["go"], "the go file")
rnd = random.Random(args["seed"])
if args["mode"] == "write":
    owned = writes = 0
    with open(args["ledger"], "a") as ledger:
        for seq in range(args["rounds"]):
            blocks = list(args["blocks"])
            rnd.shuffle(blocks)
            for i, b in enumerate(blocks):
                n = img.write(payload(args["who"], b, seq), b * BLOCK)
                assert n == BLOCK, n
                ledger.write(json.dumps({"block": b, "seq": seq}) + "\n")
                ledger.flush()
                writes += 1
                owned += bool(img.is_exclusive_lock_owner())
                if i % 8 == 7:
                    time.sleep(rnd.random() * 0.02)
    print(json.dumps({"writes": writes, "owned_after_write": owned}))
elif args["mode"] == "watch_size":
    seen = []
    for want in args["sizes"]:
        t0 = time.monotonic()
        while img.size() != want:
            if time.monotonic() - t0 > args["wait"]:
                print(json.dumps({"seen": seen, "stuck_at": img.size(), "wanted": want}))
                sys.exit(3)
            time.sleep(0.02)
        seen.append(want)
        if want > args["old_size"]:
            # the handle refreshed for I/O too: a write past the old end succeeds
            assert img.write(b"grown", args["old_size"]) == 5
            assert img.read(args["old_size"], 5) == b"grown"
        open(args["ready"] + f".{len(seen)}", "w").close()
    print(json.dumps({"seen": seen}))
img.close()
io.close()
r.shutdown()
'''


@pytest.fixture(scope="module")
def io(cluster: TestCluster) -> Iterator[Any]:
    assert rbd is not None, "`import rbd` failed: shoal/compat/rbd.py (python-rbd drop-in) is missing"
    with pool_ioctx(cluster, POOL) as io:
        yield io


def payload(who: str, block: int, seq: int) -> bytes:
    return hashlib.sha256(f"{who}:{block}:{seq}".encode()).digest() * (BLOCK // 32)


class Workers:
    """Starts worker processes, releases them together, and always reaps them."""

    def __init__(self, cluster: TestCluster, tmp: Path) -> None:
        self.cluster = cluster
        self.tmp = tmp
        self.script = tmp / "worker.py"
        self.script.write_text(WORKER)
        self.go = tmp / "go"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.args: dict[str, dict[str, Any]] = {}

    def start(self, who: str, **kw: Any) -> dict[str, Any]:
        args = {"who": who, "conf": self.cluster.conf_path, "pool": POOL, "go": str(self.go),
                "ready": str(self.tmp / f"ready.{who}"), "ledger": str(self.tmp / f"ledger.{who}"), **kw}
        self.args[who] = args
        self.procs[who] = subprocess.Popen([sys.executable, str(self.script), json.dumps(args)],
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.cluster.env())
        return args

    def wait_ready(self, suffix: str = "", timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        for who, args in self.args.items():
            path = Path(args["ready"] + suffix)
            while not path.exists():
                proc = self.procs[who]
                if proc.poll() is not None:
                    out, err = proc.communicate()
                    raise AssertionError(f"worker {who} exited {proc.returncode} before ready{suffix}: "
                                         f"{out.decode()} {err.decode()}")
                assert time.monotonic() < deadline, f"worker {who} not ready{suffix} within {timeout} s"
                time.sleep(0.02)

    def release(self) -> None:
        self.go.write_text("go")

    def finish(self) -> dict[str, tuple[int, str, str]]:
        results = {}
        for who, proc in self.procs.items():
            try:
                out, err = proc.communicate(timeout=WORKER_TIMEOUT)
            except subprocess.TimeoutExpired as exc:
                proc.kill()
                out, err = proc.communicate()
                raise AssertionError(f"worker {who} still running after {WORKER_TIMEOUT} s: {err.decode()[-2000:]}") \
                    from exc
            results[who] = (proc.returncode, out.decode(), err.decode())
        return results

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def ledger(self, who: str) -> dict[int, int]:
        """block -> last acknowledged seq."""
        last: dict[int, int] = {}
        path = Path(self.args[who]["ledger"])
        if path.exists():
            for line in path.read_text().splitlines():
                entry = json.loads(line)
                last[entry["block"]] = max(entry["seq"], last.get(entry["block"], -1))
        return last


def run_writers(cluster: TestCluster, io: Any, tmp_path: Path, image: str, before: bytes, rounds: int,
                nblocks: int, what: str, locked: bool) -> None:
    """Worker a writes blocks 0, 4, 8, ...; b writes 1, 5, 9, ...; blocks 2, 3 mod 4 nobody writes."""
    workers = Workers(cluster, tmp_path)
    try:
        for who, first in (("a", 0), ("b", 1)):
            workers.start(who, image=image, mode="write", rounds=rounds, seed=first,
                          blocks=list(range(first, nblocks, 4)))
        workers.wait_ready()
        workers.release()
        results = workers.finish()
    finally:
        workers.stop()
    reports = {}
    for who, (code, out, err) in results.items():
        assert code == 0, f"{what}: worker {who} exited {code}: {out} {err[-3000:]}"
        reports[who] = json.loads(out.splitlines()[-1])
    expected = bytearray(before)
    for who in ("a", "b"):
        last = workers.ledger(who)
        assert len(last) == len(workers.args[who]["blocks"]), f"{what}: worker {who} acknowledged {len(last)} blocks"
        assert set(last.values()) == {rounds - 1}, f"{what}: worker {who} did not finish every round"
        for block, seq in last.items():
            expected[block * BLOCK:(block + 1) * BLOCK] = payload(who, block, seq)
    with rbd.Image(io, image, read_only=True) as img:
        got = read_all(img)
    lost = [b for b in range(len(before) // BLOCK)
            if got[b * BLOCK:(b + 1) * BLOCK] != expected[b * BLOCK:(b + 1) * BLOCK]]
    owners = {0: "a (acknowledged)", 1: "b (acknowledged)", 2: "nobody", 3: "nobody"}
    assert not lost, (f"{what}: {len(lost)} blocks differ from the ledger, e.g. "
                      + ", ".join(f"block {b} written by {owners[b % 4]}" for b in lost[:8]))
    for who, report in reports.items():
        if locked:
            # each writer held the lock at some point (Image.is_exclusive_lock_owner): it really moved
            assert report["owned_after_write"] > 0, f"{what}: worker {who} never owned the exclusive lock: {report}"
        else:
            assert report["owned_after_write"] == 0, f"{what}: worker {who} owned a lock the image lacks: {report}"


@pytest.mark.parametrize("clone", [False, True], ids=["plain", "clone"])
def test_watch_notify_exclusive_lock_handoff_loses_no_write(cluster: TestCluster, io: Any, tmp_path: Path,
                                                            clone: bool) -> None:
    """Needs watch/notify: both writers share EXCLUSIVE_LOCK images by cooperative hand-off."""
    size, order = 512 * 1024, 16  # 8 objects of 64 KiB, 128 blocks, both writers in every object
    r = rbd.RBD()
    image = f"lock-{'clone' if clone else 'plain'}"
    if clone:
        parent = image + "-parent"
        r.create(io, parent, size, order=order, features=LOCKED)
        with rbd.Image(io, parent) as p:
            p.write(bytes(range(256)) * (size // 256), 0)
            p.create_snap("base")
            p.protect_snap("base")
        r.clone(io, parent, "base", io, image, features=LOCKED, order=order)
        before = bytes(range(256)) * (size // 256)
    else:
        r.create(io, image, size, order=order, features=LOCKED)
        before = bytes(size)
    run_writers(cluster, io, tmp_path, image, before, rounds=3, nblocks=size // BLOCK,
                what=f"exclusive-lock hand-off ({'clone' if clone else 'plain image'}; needs watch/notify)", locked=True)


def test_concurrent_copyup_without_lock_loses_no_write(cluster: TestCluster, io: Any, tmp_path: Path) -> None:
    """No exclusive lock: both writers copy up the same clone objects at once."""
    size, order = 512 * 1024, 16
    r = rbd.RBD()
    r.create(io, "race-parent", size, order=order, features=LAYERING)
    base = hashlib.sha256(b"parent").digest() * (size // 32)
    with rbd.Image(io, "race-parent") as p:
        p.write(base, 0)
        p.create_snap("base")
        p.protect_snap("base")
    r.clone(io, "race-parent", "base", io, "race-child", features=LAYERING, order=order)
    run_writers(cluster, io, tmp_path, "race-child", base, rounds=1, nblocks=size // BLOCK,
                what="concurrent copy-up without exclusive lock", locked=False)


def test_watch_notify_resize_seen_by_other_process(cluster: TestCluster, io: Any, tmp_path: Path) -> None:
    """Needs watch/notify: another process's open handle sees a grow and a shrink (header update notification)."""
    r = rbd.RBD()
    old, grown, shrunk = 1 << 20, 3 << 20, 1 << 19
    r.create(io, "resize-watch", old, order=20, features=LOCKED)
    workers = Workers(cluster, tmp_path)
    try:
        workers.start("w", image="resize-watch", mode="watch_size", sizes=[grown, shrunk], old_size=old, wait=10.0,
                      seed=0)
        workers.wait_ready()
        workers.release()
        with rbd.Image(io, "resize-watch") as img:
            img.resize(grown)
            try:
                workers.wait_ready(".1", timeout=30)
            except AssertionError as exc:
                raise AssertionError(f"another process's open handle did not see the grow {old} -> {grown} "
                                     f"(needs watch/notify: header update notification): {exc}") from exc
            img.resize(shrunk)
        results = workers.finish()
    finally:
        workers.stop()
    code, out, err = results["w"]
    assert code == 0, (f"the other process did not see the resize within 10 s (needs watch/notify header "
                       f"updates): exit {code}, {out.strip()} {err[-2000:]}")
    assert json.loads(out.splitlines()[-1]) == {"seen": [grown, shrunk]}
    with rbd.Image(io, "resize-watch", read_only=True) as img:
        assert img.size() == shrunk

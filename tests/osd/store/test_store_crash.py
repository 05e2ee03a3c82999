"""kill -9 at random moments: every acknowledged batch survives, no batch is partial.

A child process applies numbered transactions to a SqliteStore and prints each number
once apply() has returned (the acknowledgement). We SIGKILL it at a random moment,
reopen the store and check that (1) the last applied number is at least the last
acknowledged one and (2) the whole store equals, exactly, a MemoryStore that applied
transactions 1..n: a torn transaction would differ from every prefix. The child is then
restarted on the same store, so later rounds also crash a store that recovered.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import shoal
from shoal.osd.store.conformance import dump_store
from shoal.osd.store.memory import MemoryStore
from shoal.osd.store.sqlite_store import SqliteStore

# Shared by the child (as source) and the test (exec'd): transaction number i.
BUILD = r'''
import random
from shoal.osd.store.transaction import ObjectId, Transaction

C = "3.7"

def build_txn(i):
    rnd = random.Random(i)
    t = Transaction()
    if i == 1:
        t.create_collection(C)
    for k in range(3):
        oid = ObjectId(f"rbd_data.{(i + k) % 5}")
        n = 3 * 65536 + 123 if (i + k) % 7 == 0 else 4096  # some writes span blocks
        t.write(C, oid, rnd.randrange(1 << 19), rnd.randbytes(n))
        t.omap_setkeys(C, oid, {f"k{i % 11}": b"%d" % i})
        t.setattrs(C, oid, {"_": b"v%d" % i})
    if i % 9 == 0:
        t.clone(C, ObjectId("rbd_data.0"), ObjectId("rbd_data.0", snap=i))
    if i % 9 == 4 and i > 9:
        t.remove(C, ObjectId("rbd_data.0", snap=i - 13))
    if i % 13 == 0:
        t.truncate(C, ObjectId("rbd_data.1"), rnd.randrange(1 << 19))
    t.log_append(C, i, b"entry %d" % i)
    if i > 40:
        t.log_trim(C, i - 40)
    t.set_meta(C, "last", b"%d" % i)
    return t
'''

CHILD = BUILD + r'''
import sys
from shoal.osd.store.sqlite_store import SqliteStore

store = SqliteStore(sys.argv[1])
store.mount()
last = int(store.get_meta(C, "last") or 0) if store.collection_exists(C) else 0
print("start", last, flush=True)
i = last + 1
while True:
    store.apply([build_txn(i)])
    print(i, flush=True)  # acknowledged: apply() returned
    i += 1
'''


def _run_child(path: str, kill_after: float) -> tuple[int, list[str]]:
    env = dict(os.environ, PYTHONPATH=str(Path(shoal.__file__).resolve().parents[1]))
    p = subprocess.Popen([sys.executable, "-c", CHILD, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(p.stdout))  # type: ignore[arg-type]
    reader.start()
    # time the kill from when the child is running, not from the interpreter's start
    deadline = time.monotonic() + 20
    while not lines and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(kill_after)
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    reader.join(10)
    err = p.stderr.read() if p.stderr else ""
    assert p.returncode == -signal.SIGKILL, f"child ended by itself ({p.returncode}): {err[-2000:]}"
    acked = [int(x) for x in lines if x.strip().isdigit()]
    return (acked[-1] if acked else 0), lines


def test_store_crash_kill9_keeps_acknowledged_batches_whole(tmp_path: Path) -> None:
    seed = int(os.environ.get("SHOAL_CRASH_SEED", random.randrange(1 << 32)))
    rnd = random.Random(seed)
    ns: dict[str, object] = {}
    exec(BUILD, ns)
    build_txn = ns["build_txn"]
    path = str(tmp_path / "osd")
    model = MemoryStore()
    model.mount()
    applied = 0  # transactions the model has
    max_acked = 0
    started = time.monotonic()
    for rnd_no in range(8):
        kill_after = rnd.choice([0.0, 0.001, 0.01]) if rnd_no == 0 else rnd.uniform(0.0, 0.6)
        acked, lines = _run_child(path, kill_after)
        max_acked = max(max_acked, acked)
        store = SqliteStore(path)
        store.mount()
        try:
            last = int(store.get_meta("3.7", "last") or 0) if store.collection_exists("3.7") else 0
            where = f"(seed {seed}, round {rnd_no}, kill after {kill_after:.3f}s, acked {acked}, found {last})"
            assert last >= max_acked, f"acknowledged transaction lost {where}"
            while applied < last:
                applied += 1
                model.apply([build_txn(applied)])  # type: ignore[operator]
            assert dump_store(store) == dump_store(model), f"store is not the state after txn {last} {where}"
            assert store.fsck() == [], f"fsck after crash {where}"
        finally:
            store.umount()
    assert max_acked > 20, f"the child made too little progress to test anything (seed {seed})"
    assert time.monotonic() - started < 60

"""ObjectStore benchmark: python bench/bench_store.py [--seconds S] [--repeat N] [--lmdb] [--sweep]

Measures, in a temp dir, each store against a raw-file baseline taken in the same run:

* write_full 4 MiB: truncate + write of a whole 4 MiB object (32 names reused), one
  apply each (MB/s);
* 4 KiB overwrites at random 4 KiB-aligned offsets inside 4 MiB objects, one apply per
  transaction and 16 transactions per apply (IOPS). Each transaction is what an OSD
  write looks like: the data, an object-info xattr (256 B) and a PG log entry (180 B);
* 4 KiB random reads and 4 MiB whole-object reads (IOPS, MB/s), one thread;
* clone of a 4 MiB object (ops/s).

Raw baselines: a Python loop of 4 KiB pwrite + fsync, and 4 MiB pwrite + fsync
cycling over 32 preallocated slots, on one file in the same directory. `--lmdb` adds a minimal LMDB chunk store
(same 64 KiB chunks with crc32c, read-modify-write, one sync per commit) for
comparison, if the `lmdb` package is importable. `--sweep` compares SQLite block and
page sizes. Numbers for docs/decisions/0001-object-store.md.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import crc32c  # noqa: E402

from shoal.osd.store.base import ObjectStore  # noqa: E402
from shoal.osd.store.memory import MemoryStore  # noqa: E402
from shoal.osd.store.sqlite_store import SqliteStore  # noqa: E402
from shoal.osd.store.transaction import ObjectId, Transaction  # noqa: E402

KiB, MiB = 1024, 1024 * 1024
COLL = "1.0"
N_OBJECTS = 16  # 4 MiB objects targeted by overwrites and reads
OI = os.urandom(256)  # object info xattr, about the size of Ceph's
LOG = os.urandom(180)  # PG log entry


def timed(fn: Callable[[int], None], seconds: float, min_iters: int = 3) -> tuple[int, float]:
    """Runs fn(i) for i = 0.. until `seconds` have passed; returns (iterations, elapsed)."""
    start = time.perf_counter()
    i = 0
    while True:
        fn(i)
        i += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and i >= min_iters:
            return i, elapsed


def raw_baseline(d: str, seconds: float) -> dict[str, float]:
    path = os.path.join(d, "raw.bin")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        buf4k = os.urandom(4 * KiB)
        os.pwrite(fd, bytes(64 * MiB), 0)
        os.fsync(fd)
        rnd = random.Random(1)
        n, t = timed(lambda i: (os.pwrite(fd, buf4k, rnd.randrange(16384) * 4 * KiB), os.fsync(fd)), seconds)
        iops = n / t
        buf4m = os.urandom(4 * MiB)
        os.pwrite(fd, bytes(128 * MiB), 64 * MiB)  # 32 preallocated 4 MiB slots, as the stores reuse
        os.fsync(fd)
        n, t = timed(lambda i: (os.pwrite(fd, buf4m, 64 * MiB + (i % 32) * 4 * MiB), os.fsync(fd)), seconds)
        mbs = n * 4 / t
        n, t = timed(lambda i: os.pread(fd, 4 * KiB, rnd.randrange(16384) * 4 * KiB), seconds / 2)
        read_iops = n / t
    finally:
        os.close(fd)
        os.unlink(path)
    return {"write_4k_fsync_iops": iops, "write_4m_fsync_mbs": mbs, "pread_4k_iops": read_iops}


def bench_store(store: ObjectStore, seconds: float) -> dict[str, float]:
    store.mount()
    out: dict[str, float] = {}
    try:
        t = Transaction()
        t.create_collection(COLL)
        store.apply([t])
        data4m = os.urandom(4 * MiB)

        def write_full(i: int) -> None:
            # Ceph's write_full: replace the whole content; names cycle so memory stays bounded
            t = Transaction()
            oid = ObjectId(f"rbd_data.full.{i % 32:016x}")
            t.truncate(COLL, oid, 0)
            t.write(COLL, oid, 0, data4m)
            t.setattrs(COLL, oid, {"_": OI})
            store.apply([t])

        n, el = timed(write_full, seconds)
        out["write_full_4m_mbs"] = n * 4 / el
        for k in range(N_OBJECTS):
            t = Transaction()
            t.write(COLL, ObjectId(f"obj.{k}"), 0, os.urandom(4 * MiB))
            store.apply([t])
        rnd = random.Random(2)
        buf = os.urandom(4 * KiB)
        seq = [0]

        def overwrite_txn() -> Transaction:
            seq[0] += 1
            oid = ObjectId(f"obj.{rnd.randrange(N_OBJECTS)}")
            t = Transaction()
            t.write(COLL, oid, rnd.randrange(1024) * 4 * KiB, buf)
            t.setattrs(COLL, oid, {"_": OI})
            t.log_append(COLL, seq[0], LOG)
            return t

        n, el = timed(lambda i: store.apply([overwrite_txn()]), seconds)
        out["overwrite_4k_batch1_iops"] = n / el
        n, el = timed(lambda i: store.apply([overwrite_txn() for _ in range(16)]), seconds)
        out["overwrite_4k_batch16_iops"] = 16 * n / el
        n, el = timed(lambda i: store.read(COLL, ObjectId(f"obj.{rnd.randrange(N_OBJECTS)}"),
                                           rnd.randrange(1024) * 4 * KiB, 4 * KiB), seconds / 2)
        out["read_4k_iops"] = n / el
        n, el = timed(lambda i: store.read(COLL, ObjectId(f"obj.{i % N_OBJECTS}"), 0, 0), seconds / 2)
        out["read_4m_mbs"] = n * 4 / el

        def clone(i: int) -> None:
            t = Transaction()
            t.clone(COLL, ObjectId(f"obj.{i % N_OBJECTS}"), ObjectId(f"obj.{i % N_OBJECTS}", snap=i + 1))
            store.apply([t])

        n, el = timed(clone, min(seconds / 2, 0.5))  # bounded: each MemoryStore clone holds 4 MiB
        out["clone_4m_ops"] = n / el
    finally:
        store.umount()
    return out


class LmdbChunkStore:
    """Just enough of a chunk store on LMDB to time the same workload (not a full store)."""

    BS = 64 * KiB

    def __init__(self, path: str) -> None:
        import lmdb

        self.env = lmdb.open(path, map_size=1 << 34, max_dbs=4, sync=True, metasync=True)
        self.data = self.env.open_db(b"data")
        self.meta = self.env.open_db(b"meta")

    def _key(self, oid: str, blk: int) -> bytes:
        return oid.encode() + b"\0" + blk.to_bytes(8, "big")

    def write(self, txn: object, oid: str, off: int, buf: bytes) -> None:
        bs = self.BS
        end = off + len(buf)
        for blk in range(off // bs, (end - 1) // bs + 1):
            s, e = max(off, blk * bs) - blk * bs, min(end, blk * bs + bs) - blk * bs
            piece = buf[blk * bs + s - off:blk * bs + e - off]
            if s == 0 and e == bs:
                block = piece
            else:
                old = txn.get(self._key(oid, blk), db=self.data)  # type: ignore[attr-defined]
                b = bytearray(old[4:] if old else bytes(bs))
                assert old is None or crc32c.crc32c(old[4:]) == int.from_bytes(old[:4], "little")
                b[s:e] = piece
                block = bytes(b)
            txn.put(self._key(oid, blk), crc32c.crc32c(block).to_bytes(4, "little") + block,  # type: ignore[attr-defined]
                    db=self.data)

    def read(self, oid: str, off: int, n: int) -> bytes:
        out = []
        with self.env.begin() as txn:
            for blk in range(off // self.BS, (off + n - 1) // self.BS + 1):
                v = txn.get(self._key(oid, blk), db=self.data)
                assert crc32c.crc32c(v[4:]) == int.from_bytes(v[:4], "little")
                out.append(v[4:])
        b = b"".join(out)
        s = off % self.BS
        return b[s:s + n]


def bench_lmdb(d: str, seconds: float) -> dict[str, float]:
    st = LmdbChunkStore(d)
    out: dict[str, float] = {}
    data4m = os.urandom(4 * MiB)

    def write_full(i: int) -> None:
        with st.env.begin(write=True) as txn:
            st.write(txn, f"full.{i % 32}", 0, data4m)
            txn.put(f"oi.full.{i % 32}".encode(), OI, db=st.meta)

    n, el = timed(write_full, seconds)
    out["write_full_4m_mbs"] = n * 4 / el
    for k in range(N_OBJECTS):
        with st.env.begin(write=True) as txn:
            st.write(txn, f"obj.{k}", 0, os.urandom(4 * MiB))
    rnd = random.Random(2)
    buf = os.urandom(4 * KiB)
    seq = [0]

    def one(txn: object) -> None:
        seq[0] += 1
        k = rnd.randrange(N_OBJECTS)
        st.write(txn, f"obj.{k}", rnd.randrange(1024) * 4 * KiB, buf)
        txn.put(f"oi.{k}".encode(), OI, db=st.meta)  # type: ignore[attr-defined]
        txn.put(b"log" + seq[0].to_bytes(8, "big"), LOG, db=st.meta)  # type: ignore[attr-defined]

    def batch(n: int) -> None:
        with st.env.begin(write=True) as txn:
            for _ in range(n):
                one(txn)

    n, el = timed(lambda i: batch(1), seconds)
    out["overwrite_4k_batch1_iops"] = n / el
    n, el = timed(lambda i: batch(16), seconds)
    out["overwrite_4k_batch16_iops"] = 16 * n / el
    n, el = timed(lambda i: st.read(f"obj.{rnd.randrange(N_OBJECTS)}", rnd.randrange(1024) * 4 * KiB, 4 * KiB),
                  seconds / 2)
    out["read_4k_iops"] = n / el
    n, el = timed(lambda i: st.read(f"obj.{i % N_OBJECTS}", 0, 4 * MiB), seconds / 2)
    out["read_4m_mbs"] = n * 4 / el
    st.env.close()
    return out


def report(name: str, res: dict[str, float], raw: dict[str, float]) -> None:
    base = {
        "write_full_4m_mbs": raw["write_4m_fsync_mbs"],
        "overwrite_4k_batch1_iops": raw["write_4k_fsync_iops"],
        "overwrite_4k_batch16_iops": raw["write_4k_fsync_iops"],
        "read_4k_iops": raw["pread_4k_iops"],
    }
    print(f"\n{name}")
    for k, v in res.items():
        ratio = f"  ({v / base[k]:.2f}x raw)" if k in base else ""
        print(f"  {k:28s} {v:12.1f}{ratio}")


def _best(into: dict[str, float], new: dict[str, float]) -> None:
    for k, v in new.items():
        into[k] = max(into.get(k, 0.0), v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.5, help="time per measurement")
    ap.add_argument("--repeat", type=int, default=3,
                    help="rounds; each number is the best of the rounds (the disk may be shared)")
    ap.add_argument("--dir", default=None, help="where to put the stores (default: a temp dir)")
    ap.add_argument("--lmdb", action="store_true", help="also time a minimal LMDB chunk store")
    ap.add_argument("--sweep", action="store_true", help="also compare SQLite block/page sizes")
    ap.add_argument("--no-memory", action="store_true")
    args = ap.parse_args()
    d = tempfile.mkdtemp(prefix="shoal-bench-", dir=args.dir)

    def sqlite(name: str, **kw: int) -> Callable[[], dict[str, float]]:
        def run() -> dict[str, float]:
            p = os.path.join(d, name)
            try:
                return bench_store(SqliteStore(p, **kw), args.seconds)
            finally:
                shutil.rmtree(p, ignore_errors=True)
        return run

    def lmdb_run() -> dict[str, float]:
        p = os.path.join(d, "lmdb")
        os.makedirs(p)
        try:
            return bench_lmdb(p, args.seconds)
        finally:
            shutil.rmtree(p, ignore_errors=True)

    runs: dict[str, Callable[[], dict[str, float]]] = {}
    if not args.no_memory:
        runs["MemoryStore"] = lambda: bench_store(MemoryStore(), args.seconds)
    runs["SqliteStore (defaults: 16 KiB blocks, 4 KiB pages, synchronous=FULL)"] = sqlite("sqlite")
    if args.sweep:
        for bs, ps in [(32 * KiB, 4096), (64 * KiB, 4096), (64 * KiB, 16384), (256 * KiB, 4096)]:
            runs[f"SqliteStore block {bs // KiB} KiB, page {ps}"] = sqlite(f"sq-{bs}-{ps}", block_size=bs, page_size=ps)
    if args.lmdb:
        try:
            import lmdb  # noqa: F401
        except ImportError:
            print("lmdb not installed: skipped")
        else:
            runs["LMDB chunk store (64 KiB chunks, sync=True; partial store, for comparison)"] = lmdb_run
    raw: dict[str, float] = {}
    best: dict[str, dict[str, float]] = {name: {} for name in runs}
    try:
        for r in range(args.repeat):  # rounds interleave the stores so that noise hits all alike
            print(f"round {r + 1}/{args.repeat}...", file=sys.stderr, flush=True)
            _best(raw, raw_baseline(d, args.seconds))
            for name, run in runs.items():
                _best(best[name], run())
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print(f"best of {args.repeat} rounds, {args.seconds:g} s per measurement")
    print("raw baseline (Python, same filesystem)")
    for k, v in raw.items():
        print(f"  {k:28s} {v:12.1f}")
    for name, res in best.items():
        report(name, res, raw)


if __name__ == "__main__":
    main()

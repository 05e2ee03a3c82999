"""RBD client cache benchmark: python bench/bench_rbd_cache.py [--writes N] [--threads T] [--dir DIR]

Starts a fresh 3-OSD cluster (TestCluster) and, through python-rbd, does N synchronous
4 KiB random writes from T threads (default 1: a guest with queue depth 1, where a
write-back cache matters most), then one flush (timed too), in three modes:

* `rbd_cache = false` (every write waits for the cluster);
* cache on, writethrough until flush (no flush yet: still write-through);
* cache on after a first flush (write-back; the final flush is included in the time).

Prints writes/s per mode (timings are printed, never asserted).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

import rados  # noqa: E402
import rbd  # noqa: E402
from shoal.testing.cluster import TestCluster  # noqa: E402

MiB = 1 << 20
POOL = "cachebench"


def one(conf_path: str, mode: str, writes: int, threads: int, seed: int) -> float:
    conf = {"rbd_cache": "false"} if mode == "off" else {"rbd_cache": "true"}
    with rados.Rados(conffile=conf_path, conf=conf) as r, r.open_ioctx(POOL) as io:
        name = f"img-{mode}"
        rbd.RBD().create(io, name, 256 * MiB)
        with rbd.Image(io, name) as img:
            if mode == "writeback":
                img.flush()  # ends the write-through phase
            data = os.urandom(4096)

            def worker(k: int) -> None:
                rng = random.Random(seed + k)
                for _ in range(writes // threads):
                    img.write(data, rng.randrange(256 * MiB // 4096) * 4096)

            workers = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
            t0 = time.perf_counter()
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            img.flush()
            elapsed = time.perf_counter() - t0
        rbd.RBD().remove(io, name)
    return writes / elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--writes", type=int, default=2000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--dir", default=None)
    args = p.parse_args()
    d = tempfile.mkdtemp(prefix="cachebench-", dir=args.dir)
    c = TestCluster(os.path.join(d, "cluster"), osds=3)
    c.start()
    try:
        with c.admin() as admin:
            admin.command({"prefix": "osd pool create", "pool": POOL, "pg_num": 32})
        for mode in ("off", "writethrough", "writeback"):
            rate = one(c.conf_path, mode, args.writes, args.threads, 1)
            print(f"4K random writes, {args.threads} thread(s), {mode:>12}: {rate:8.0f} writes/s "
                  "(final flush included)", flush=True)
    finally:
        c.down()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Crash test: writers keep going while OSDs are kill -9'd and restarted.

Afterwards every acknowledged write reads back byte-exact (an "acknowledged writes
ledger"), and every OSD's copy of every object agrees (store checksums compared
with the daemons stopped).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import time
from collections import defaultdict

import pytest

from shoal.client.loop_thread import LoopThread
from shoal.client.rados_client import RadosClient
from shoal.config.cli_args import build_config
from shoal.osd.store.sqlite_store import SqliteStore
from shoal.testing.cluster import TestCluster
from shoal.wire.osd_op import OpBuilder

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("SHOAL_TEST_SEED", random.randrange(1 << 30)))


def wait_clean(cluster: TestCluster, timeout: float = 60.0) -> None:
    cluster.wait_healthy(cluster.osds, timeout)


async def writer(client: RadosClient, pool: int, wid: int, ledger: dict[str, bytes], stop: asyncio.Event,
                 rng: random.Random) -> int:
    """Writes until stopped; records in `ledger` the content each object must have."""
    acked = 0
    while not stop.is_set():
        name = f"w{wid}-{rng.randrange(40)}"
        current = ledger.get(name, b"")
        if rng.random() < 0.5 or not current:
            data = rng.randbytes(rng.choice([0, 1, 100, 4096, 65536, 300_000]))
            b = OpBuilder()
            b.add("writefull", data)
            new = data
        else:
            off = rng.randrange(len(current) + 1)
            data = rng.randbytes(rng.choice([1, 512, 8192]))
            b = OpBuilder()
            b.add("write", data, off=off)
            new = bytearray(current.ljust(off, b"\0"))
            new[off:off + len(data)] = data
            new = bytes(new)
        reply = await client.operate(pool, name, b)
        assert reply.result == 0, f"write {name} failed: {reply.result}"
        ledger[name] = new  # only now is it acknowledged
        acked += 1
    return acked


def test_acknowledged_writes_survive_osd_kills(fresh_cluster: TestCluster) -> None:
    cluster = fresh_cluster
    rng = random.Random(SEED)
    print(f"seed={SEED}")
    conf, _ = build_config("client", ["-c", cluster.conf_path], {})
    loop = LoopThread.shared()
    client = RadosClient(conf, "client.admin")
    loop.run(client.connect(30))
    try:
        ret, _, outs = loop.run(client.mon_command({"prefix": "osd pool create", "pool": "crash", "pg_num": 16}))
        assert ret == 0, outs
        pool = client.pool_by_name("crash").id
        wait_clean(cluster)
        ledgers: list[dict[str, bytes]] = [{} for _ in range(4)]
        stop = asyncio.Event()

        async def start_writers() -> list[asyncio.Task[int]]:
            return [asyncio.create_task(writer(client, pool, i, ledgers[i], stop, random.Random(rng.random())))
                    for i in range(4)]

        tasks = loop.run(start_writers())
        for victim in [rng.randrange(3) for _ in range(3)]:
            time.sleep(rng.uniform(0.3, 1.0))
            cluster.kill(f"osd.{victim}")
            time.sleep(rng.uniform(0.5, 2.0))  # writers continue on two copies
            cluster.restart(f"osd.{victim}")
            wait_clean(cluster)
        time.sleep(0.5)

        async def stop_writers() -> list[int]:
            stop.set()
            return list(await asyncio.gather(*tasks))

        acked = loop.run(stop_writers(), timeout=120)
        assert sum(acked) > 50, f"too few writes acknowledged: {acked} (seed={SEED})"

        async def verify() -> int:
            checked = 0
            for ledger in ledgers:
                for name, want in ledger.items():
                    b = OpBuilder()
                    b.add("read", off=0, len=0)
                    reply = await client.operate(pool, name, b)
                    assert reply.result == 0, f"{name}: {reply.result} (seed={SEED})"
                    got = reply.out_data(0)
                    assert got == want, f"{name}: {len(got)} bytes read, {len(want)} acknowledged (seed={SEED})"
                    checked += 1
            return checked

        assert loop.run(verify(), timeout=120) > 0
    finally:
        loop.run(client.shutdown())
    cluster.down()
    assert_replicas_agree(cluster, pool)


def assert_replicas_agree(cluster: TestCluster, pool: int) -> None:
    """Every OSD that holds a PG of `pool` holds identical objects."""
    copies: dict[str, dict[int, dict[str, str]]] = defaultdict(dict)
    for osd in range(cluster.osds):
        store = SqliteStore(os.path.join(cluster.dir, f"osd.{osd}", "store.db"))
        store.mount()
        try:
            for coll in store.list_collections():
                if not coll.startswith(f"{pool}."):
                    continue
                objects, _ = store.list_objects(coll)
                copies[coll][osd] = {o.name: hashlib.sha256(store.read(coll, o, 0, 0)).hexdigest() + str(
                    store.checksum(coll, o)) for o in objects}
        finally:
            store.umount()
    assert copies, "no PGs found"
    for coll, by_osd in copies.items():
        versions = list(by_osd.values())
        assert all(v == versions[0] for v in versions), f"replicas of pg {coll} disagree (seed={SEED})"
        assert len(by_osd) == cluster.osds, f"pg {coll} is on {sorted(by_osd)} only"

"""Group commit: every transaction queued while a commit runs goes into the next one.

The store's `apply` is atomic and durable for the whole batch (one fsync), and runs
on a dedicated thread so the event loop keeps serving while the disk works. Under
load batches grow by themselves; an idle OSD commits a lone transaction at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging

from shoal.osd.store.base import ObjectStore
from shoal.osd.store.transaction import Transaction

log = logging.getLogger("shoal.osd")

MAX_BATCH = 256


class GroupCommitter:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._pending: list[tuple[Transaction, asyncio.Future[None]]] = []
        self._running = False
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="commit")

    def submit(self, txn: Transaction) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((txn, fut))
        if not self._running:
            self._running = True
            asyncio.get_running_loop().create_task(self._run())
        return fut

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                try:
                    await loop.run_in_executor(self._executor, self.store.apply, [t for t, _ in batch])
                except Exception as exc:  # noqa: BLE001 - an error must reach every waiter
                    if len(batch) > 1:
                        # One bad transaction must not fail its neighbours: retry each alone.
                        await self._apply_singly(batch)
                        continue
                    log.error("event=commit_failed error=%r", exc)
                    if not batch[0][1].done():
                        batch[0][1].set_exception(exc)
                    continue
                for _, fut in batch:
                    if not fut.done():
                        fut.set_result(None)
        finally:
            self._running = False

    async def _apply_singly(self, batch: list[tuple[Transaction, asyncio.Future[None]]]) -> None:
        loop = asyncio.get_running_loop()
        for txn, fut in batch:
            try:
                await loop.run_in_executor(self._executor, self.store.apply, [txn])
            except Exception as exc:  # noqa: BLE001
                log.error("event=commit_failed error=%r", exc)
                if not fut.done():
                    fut.set_exception(exc)
            else:
                if not fut.done():
                    fut.set_result(None)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)

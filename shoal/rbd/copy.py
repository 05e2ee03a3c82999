"""Image copy (`rbd cp`, python-rbd Image.copy) and disk usage (`rbd du`).

Copy reads the source version (through its parent, so a clone copies flat) one stripe
period at a time, `rbd_concurrent_management_ops` periods in flight, and writes only
the non-zero 4 KiB runs: the copy stays as sparse as the data allows. Image-meta is
copied too, as librbd does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shoal.rbd import features as F
from shoal.rbd import io as rbd_io
from shoal.rbd.create import CreateOptions, create_image
from shoal.rbd.diff import diff_iterate
from shoal.rbd.header import metadata_list
from shoal.rbd.image import ImageCtx, open_image
from shoal.rbd.ioctx import CEPH_NOSNAP, IoCtx, bounded_each

Progress = Callable[[int, int], Any] | None
SPARSE_BLOCK = 4096
_ZERO_BLOCK = bytes(SPARSE_BLOCK)


def nonzero_runs(buf: memoryview, block: int = SPARSE_BLOCK) -> list[tuple[int, int]]:
    """(offset, length) runs of `buf` that are not all zero, at `block` granularity."""
    runs: list[tuple[int, int]] = []
    zero = _ZERO_BLOCK if block == SPARSE_BLOCK else bytes(block)
    for off in range(0, len(buf), block):
        chunk = buf[off:off + block]
        if chunk == zero[:len(chunk)]:
            continue
        if runs and runs[-1][0] + runs[-1][1] == off:
            runs[-1] = (runs[-1][0], runs[-1][1] + len(chunk))
        else:
            runs.append((off, len(chunk)))
    return runs


async def copy(src: ImageCtx, dest_io: IoCtx, dest_name: str, opts: CreateOptions, progress: Progress = None,
               concurrency: int = 10) -> None:
    """Create `dest_name` like the selected version of `src` (or with `opts`) and copy its data."""
    await src.refresh_if_needed()
    await src.flush_cache()  # the copy reads the cluster: cached writes go there first
    size = src.size
    st = src.st
    features = opts.features if opts.features is not None else st.features & ~(F.INTERNAL | F.DATA_POOL)
    dest_opts = CreateOptions(
        order=opts.order or st.order, features=features,
        stripe_unit=opts.stripe_unit if opts.stripe_unit is not None else st.stripe_unit,
        stripe_count=opts.stripe_count if opts.stripe_count is not None else st.stripe_count,
        data_pool=opts.data_pool)
    await create_image(dest_io, dest_name, size, dest_opts)
    dest = await open_image(dest_io, name=dest_name)
    try:
        meta = await metadata_list(src.io, src.header.oid)
        if meta:
            await dest.header.metadata_set(meta)
        period = src.layout.period
        chunks = [(off, min(period, size - off)) for off in range(0, size, period)]
        done = 0

        async def one(chunk: tuple[int, int]) -> None:
            nonlocal done
            off, length = chunk
            buf = bytearray(length)
            view = memoryview(buf)
            await rbd_io.read_into(src, src.read_snap, off, length, view)
            # One run after the other: `concurrency` chunks in flight means at most that many
            # object ops in flight (rbd_concurrent_management_ops), as librbd's copy.
            for o, n in nonzero_runs(view):
                await rbd_io.write(dest, off + o, view[o:o + n])
            done += 1
            if progress is not None:
                progress(done * period if done < len(chunks) else size, size)

        await bounded_each(chunks, concurrency, one)
    finally:
        await dest.close()


@dataclass(frozen=True)
class Usage:
    name: str | None  # snapshot name, None for HEAD
    snap_id: int
    provisioned: int
    used: int


async def disk_usage(ictx: ImageCtx, concurrency: int = 10) -> list[Usage]:
    """Per snapshot (oldest first) and HEAD: size and bytes written since the previous one,
    counted in whole objects as `rbd du` does (fast-diff object maps when present)."""
    await ictx.refresh_if_needed()
    last = ictx.read_snap
    versions = [s for s in sorted(ictx.st.snaps) if s <= last]
    if last == CEPH_NOSNAP:
        versions.append(CEPH_NOSNAP)
    out: list[Usage] = []
    prev = 0
    for v in versions:
        size = ictx.size_at(v)
        used = 0
        if size:
            async for batch in diff_iterate(ictx, prev or None, 0, size, include_parent=False, whole_object=True,
                                            concurrency=concurrency, end_snap=v):
                used += sum(n for _, n, exists in batch if exists)
        out.append(Usage(None if v == CEPH_NOSNAP else ictx.snap_info(v).name, v, size, used))
        prev = v
    return out

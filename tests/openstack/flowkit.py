"""What every OpenStack flow needs: the guide's cluster (from the environment the test
set), an admin view of it to check data through our own `rados`/`rbd` modules, test
data, oslo.config files written the way the guide prints them, and the eventlet mode."""

from __future__ import annotations

import contextlib
import json
import os
import random
from typing import Any

import rados
import rbd

MiB = 1 << 20
GiB = 1 << 30
# cinder.conf's backend section as the guide prints it ({conf}: the cluster's ceph.conf)
GUIDE_CINDER_BACKEND = """
[ceph]
volume_driver = cinder.volume.drivers.rbd.RBDDriver
volume_backend_name = ceph
rbd_pool = volumes
rbd_ceph_conf = {conf}
rbd_flatten_volume_from_snapshot = false
rbd_max_clone_depth = 5
rbd_store_chunk_size = 4
rados_connect_timeout = -1
rbd_user = cinder
rbd_secret_uuid = 457eb676-33da-42ec-9a8c-9293d545c337
"""


class FlowContext:
    def __init__(self, eventlet: bool) -> None:
        self.eventlet = eventlet
        self.conf = os.environ["SHOAL_OS_CONF"]
        self.fsid = os.environ["SHOAL_OS_FSID"]
        self.dir = os.environ["SHOAL_OS_DIR"]
        self.etc = os.path.dirname(self.conf)
        self._admin: rados.Rados | None = None
        self._ioctxs: dict[str, rados.Ioctx] = {}

    # -- checking through our own modules, as client.admin ---------------------------------
    def admin_ioctx(self, pool: str) -> rados.Ioctx:
        if self._admin is None:
            self._admin = rados.Rados(conffile=self.conf)
            self._admin.connect()
        if pool not in self._ioctxs:
            self._ioctxs[pool] = self._admin.open_ioctx(pool)
        return self._ioctxs[pool]

    def mon(self, **cmd: Any) -> tuple[int, bytes, str]:
        self.admin_ioctx("volumes")
        assert self._admin is not None
        return self._admin.mon_command(json.dumps(cmd), b"")

    def read_image(self, pool: str, name: str, snap: str | None = None) -> bytes:
        with rbd.Image(self.admin_ioctx(pool), name, snapshot=snap, read_only=True) as img:
            size = img.size()
            return b"".join(img.read(off, min(32 * MiB, size - off)) for off in range(0, size, 32 * MiB))

    def write_image(self, pool: str, name: str, data: bytes, size: int | None = None,
                    features: int | None = None) -> None:
        ioctx = self.admin_ioctx(pool)
        rbd.RBD().create(ioctx, name, size or len(data), features=features)
        with rbd.Image(ioctx, name) as img:
            img.write(data, 0)

    def images(self, pool: str) -> list[str]:
        return sorted(rbd.RBD().list(self.admin_ioctx(pool)))

    def trash(self, pool: str) -> list[dict[str, Any]]:
        return list(rbd.RBD().trash_list(self.admin_ioctx(pool)))

    def snaps(self, pool: str, name: str) -> list[str]:
        with rbd.Image(self.admin_ioctx(pool), name, read_only=True) as img:
            return [s["name"] for s in img.list_snaps()]

    def data_objects(self, pool: str, name: str) -> int:
        with rbd.Image(self.admin_ioctx(pool), name, read_only=True) as img:
            prefix = img.stat()["block_name_prefix"]
        return sum(1 for o in self.admin_ioctx(pool).list_objects() if o.key.startswith(prefix + "."))

    # -- inputs ------------------------------------------------------------------------------
    @staticmethod
    def data(size: int, seed: int, hole_every: int = 0, hole: int = 0) -> bytes:
        """Random bytes of SIZE; with HOLE_EVERY, a run of HOLE zero bytes at each multiple."""
        buf = bytearray(random.Random(seed).randbytes(size))
        if hole_every:
            for off in range(0, size, hole_every):
                buf[off:off + hole] = bytes(min(hole, size - off))
        return bytes(buf)

    def write_file(self, name: str, text: str) -> str:
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def tpool(self, obj: Any) -> Any:
        """Wrap OBJ the way cinder's tpool_wrap / nova's RbdProxy do in eventlet mode."""
        if not self.eventlet:
            return obj
        from eventlet import tpool

        return tpool.Proxy(obj)

    def close(self) -> None:
        for ioctx in self._ioctxs.values():
            ioctx.close()
        if self._admin is not None:
            self._admin.shutdown()


def expect(exc: type[BaseException] | tuple[type[BaseException], ...], fn: Any, *args: Any,
           **kwargs: Any) -> BaseException:
    """Call FN and return the exception of type EXC it must raise."""
    try:
        fn(*args, **kwargs)
    except exc as e:
        return e
    raise AssertionError(f"{getattr(fn, '__name__', fn)}{args} did not raise {exc}")


def same(got: bytes, want: bytes, what: str) -> int:
    """Byte-for-byte check; returns the number of bytes verified."""
    if got != want:
        first = next((i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b), min(len(got), len(want)))
        raise AssertionError(f"{what}: {len(got)} bytes vs {len(want)} expected, first difference at {first}")
    return len(want)


@contextlib.contextmanager
def user_ioctx(conf: str, user: str, pool: str) -> Any:
    cl = rados.Rados(rados_id=user, conffile=conf)
    cl.connect()
    try:
        with cl.open_ioctx(pool) as io:
            yield io
    finally:
        cl.shutdown()

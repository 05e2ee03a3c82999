"""What every `rbd` command shares: the cluster handle, opening pools and images, progress
lines, and failure reporting with rbd's texts and exit codes.

The tool sits on the python-rados / python-rbd API (`shoal.compat.rados`, `shoal.compat.rbd`),
as Ceph's own `rbd` sits on librados / librbd. A command reports a failure on stderr and
raises `Exit(errno)`; rbd exits with the positive errno (Shell.cc returns `abs(r)`).
"""

from __future__ import annotations

import contextlib
import errno
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from shoal.cli import rbd_render as render
from shoal.cli.rados_cmd import err, strerror
from shoal.cli.rbd_args import Args, ImageSpec, formatter
from shoal.compat import rados, rbd
from shoal.config.config import Config
from shoal.rbd.features import SnapNamespaceType

# python-rbd's exceptions and python-rados' share no base class; catch either.
API_ERRORS = (rbd.Error, rados.Error)


class Exit(Exception):
    """Stop the command with this exit status (the failure is already on stderr)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def errno_of(exc: BaseException) -> int:
    """The positive errno of an API failure; a KeyError is python-rbd's "no such key"."""
    if isinstance(exc, KeyError):
        return errno.ENOENT
    code = getattr(exc, "errno", None)
    return abs(code) if code else errno.EIO


def fail(message: str, exc_or_errno: BaseException | int) -> Exit:
    """Print `message: (N) strerror` and return the Exit to raise."""
    code = exc_or_errno if isinstance(exc_or_errno, int) else errno_of(exc_or_errno)
    err(f"{message}: {strerror(code)}")
    return Exit(code)


def out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def emit(a: Args, data: Any, plain: str, root: str, items: Mapping[str, Any] | None = None) -> None:
    """Print `data` in the requested --format (XML elements named by `root`/`items`), or `plain`."""
    fmt, pretty = formatter(a)
    out(render.dump(data, fmt, pretty, root, items or {}) if fmt else plain)


class Progress:
    """Ceph's utils::ProgressContext: "\\r<op>: N% complete..." on stderr, only on progress."""

    def __init__(self, operation: str, enabled: bool) -> None:
        self.operation = operation
        self.enabled = enabled
        self.last = 0

    def update(self, done: int, total: int) -> int:
        """Also python-rbd's `on_progress(offset, total)` callback, hence the int result."""
        pc = 100 * done // total if total else 0
        if self.enabled and pc > self.last:
            sys.stderr.write(f"\r{self.operation}: {pc}% complete...")
            sys.stderr.flush()
            self.last = pc
        return 0

    def finish(self) -> None:
        if self.enabled:
            sys.stderr.write(f"\r{self.operation}: 100% complete...done.\n")
            sys.stderr.flush()

    def fail(self) -> None:
        if self.enabled:
            sys.stderr.write(f"\r{self.operation}: {self.last}% complete...failed.\n")
            sys.stderr.flush()


class Session:
    """One cluster handle for the command, connected on first use and shut down at the end."""

    def __init__(self, conf: Config, argv: Sequence[str]) -> None:
        self.conf = conf
        self.argv = list(argv)
        self._cluster: rados.Rados | None = None
        self._ioctxs: list[Any] = []

    @property
    def cluster(self) -> rados.Rados:
        """The connected handle; "couldn't connect" is reported as rbd reports it."""
        if self._cluster is None:
            cluster = rados.Rados(name=self.conf.entity_name, clustername=self.conf.cluster,
                                  conffile=self.conf.conf_path)
            try:
                # The options build_config validated, applied to this handle in the same order:
                # CEPH_ARGS, then the command line.
                cluster.conf_parse_env()
                cluster.conf_parse_argv(self.argv)
                # As rbd's init_context: the tool flushes when it is done, so the cache need not
                # stay write-through until a first flush.
                cluster.conf_set("rbd_cache_writethrough_until_flush", "false")
                cluster.connect()
            except API_ERRORS as exc:
                err("rbd: couldn't connect to the cluster!")
                raise Exit(errno_of(exc)) from None
            self._cluster = cluster
        return self._cluster

    def conf_get(self, option: str) -> str | None:
        return self.conf.get_str(option) if self.conf.has_option(option) else None

    def default_pool(self) -> str:
        return self.conf_get("rbd_default_pool") or "rbd"

    def open_pool(self, pool: str, namespace: str = "") -> Any:
        """An ioctx on `pool` ("" = rbd_default_pool) and namespace, with rbd's errors."""
        name = pool or self.default_pool()
        try:
            ioctx = self.cluster.open_ioctx(name)
        except API_ERRORS as exc:
            code = errno_of(exc)
            if code == errno.ENOENT and name == self.default_pool():
                err(f"rbd: error opening default pool '{name}'\n"
                    "Ensure that the default pool has been created or specify an alternate pool name.")
                raise Exit(code) from None
            raise fail(f"rbd: error opening pool '{name}'", exc) from None
        self._ioctxs.append(ioctx)
        if namespace:
            try:
                exists = rbd.RBD().namespace_exists(ioctx, namespace)
            except API_ERRORS as exc:
                raise fail("rbd: error asserting namespace", exc) from None
            if not exists:
                err(f"rbd: namespace '{namespace}' does not exist.")
                raise Exit(errno.ENOENT)
            ioctx.set_namespace(namespace)
        return ioctx

    def open_image(self, ioctx: Any, name: str, read_only: bool, snap: str = "") -> Any:
        """Open by name, then select `snap` (rbd's two steps, each with its own message)."""
        try:
            image = rbd.Image(ioctx, name, read_only=read_only)
        except API_ERRORS as exc:
            raise fail(f"rbd: error opening image {name}", exc) from None
        if snap:
            try:
                image.set_snap(snap)
            except API_ERRORS as exc:
                image.close()
                raise fail("error setting snapshot context", exc) from None
        return image

    @contextlib.contextmanager
    def image(self, spec: ImageSpec, read_only: bool, failing: str, progress: Progress | None = None,
              errors: tuple[type[BaseException], ...] = (), at_snap: bool = False,
              detail: str | None = None) -> Iterator[Any]:
        """The image of `spec` (at its snapshot with `at_snap`), closed afterwards; an API
        failure (or one of `errors`) inside the block fails the progress line, then is reported
        as `failing: (N) strerror`, as most rbd actions report theirs (some first say
        `detail: (N) strerror`)."""
        image = self.open_image(self.open_pool(spec.pool, spec.namespace), spec.image, read_only,
                                spec.snap if at_snap else "")
        try:
            yield image
        except (*API_ERRORS, *errors) as exc:
            if progress is not None:
                progress.fail()
            if detail is not None:
                err(f"{detail}: {strerror(errno_of(exc))}")
            raise fail(failing, exc) from None
        finally:
            image.close()

    def close(self) -> None:
        for ioctx in self._ioctxs:
            ioctx.close()
        if self._cluster is not None:
            self._cluster.shutdown()


def user_snaps(image: Any) -> list[dict[str, Any]]:
    """The image's snapshots in the user namespace, oldest (lowest id) first."""
    user = SnapNamespaceType.USER
    snaps = [s for s in image.list_snaps() if s.get("namespace", user) == user]
    return sorted(snaps, key=lambda s: s["id"])


def parent_of(image: Any) -> dict[str, Any] | None:
    """python-rbd's get_parent_image_spec() of the selected snapshot, or None for no parent."""
    try:
        return dict(image.get_parent_image_spec())
    except rbd.ImageNotFound:
        return None

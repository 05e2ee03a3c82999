"""One errno-based exception hierarchy shared by every layer.

Daemons answer operations with a negative errno, as Ceph does; the client turns a
negative result into the matching `ShoalError` subclass, and the compat modules map
those onto python-rados / python-rbd classes by errno.
"""

from __future__ import annotations

import errno as _errno
import os


class ShoalError(Exception):
    """An error with an errno (positive, like `OSError.errno`)."""

    errno: int = _errno.EIO

    def __init__(self, message: str = "", errno: int | None = None) -> None:
        super().__init__(message)
        if errno is not None:
            self.errno = errno
        self.message = message

    def __str__(self) -> str:
        return self.message or os.strerror(self.errno)


class NotFound(ShoalError):
    errno = _errno.ENOENT


class Exists(ShoalError):
    errno = _errno.EEXIST


class PermissionDenied(ShoalError):
    errno = _errno.EPERM


class AccessDenied(ShoalError):
    errno = _errno.EACCES


class InvalidArgument(ShoalError):
    errno = _errno.EINVAL


class Busy(ShoalError):
    errno = _errno.EBUSY


class NoData(ShoalError):
    errno = _errno.ENODATA


class TimedOut(ShoalError):
    errno = _errno.ETIMEDOUT


class RangeError(ShoalError):
    errno = _errno.ERANGE


class NotSupported(ShoalError):
    errno = _errno.EOPNOTSUPP


class Corrupt(ShoalError):
    """Stored or received bytes failed their checksum or could not be decoded."""

    errno = _errno.EIO


class ProtocolError(ShoalError):
    """A peer sent a frame or message that does not follow the protocol."""

    errno = _errno.EBADMSG


class Shutdown(ShoalError):
    errno = _errno.ESHUTDOWN


_BY_ERRNO: dict[int, type[ShoalError]] = {
    cls.errno: cls
    for cls in (
        NotFound, Exists, PermissionDenied, AccessDenied, InvalidArgument, Busy, NoData,
        TimedOut, RangeError, NotSupported, ProtocolError, Shutdown,
    )
}


def from_errno(err: int, message: str = "") -> ShoalError:
    """Build the exception for a (positive or negative) errno result."""
    err = abs(err)
    cls = _BY_ERRNO.get(err, ShoalError)
    return cls(message or os.strerror(err), err)


def errno_name(err: int) -> str:
    """`ENOENT` for 2: the symbolic name Ceph prints in `Error ENOENT: …`."""
    return _errno.errorcode.get(abs(err), f"E{abs(err)}")

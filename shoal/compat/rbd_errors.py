"""python-rbd's exception hierarchy, errno mapping and argument conversions.

Same class names, bases, constructor `(message, errno=None)`, message prefixes and `str()`
(`[errno 2] RBD image not found (error opening image b'x' at snapshot None)`) as Ceph's
binding (`src/pybind/rbd/rbd.pyx`), checked against recorded python3-rbd 16.2.15 behaviour
(fixtures/python-errors.json).
"""

from __future__ import annotations

import errno as _errno
from typing import Any

from shoal.compat import rados_errors

ECANCELED = _errno.ECANCELED


class Error(Exception):
    __module__ = "rbd"  # as python-rbd reports it (and where pickle finds it again)


class OSError(Error):  # noqa: A001 - python-rbd shadows the builtin name on purpose
    """`OSError` of python-rbd: carries `errno`; str() is "[errno N] message".

    Subclasses wrap the message in their prefix: "RBD image not found (message)".
    """

    __module__ = "rbd"
    _prefix = ""

    def __init__(self, message: Any, errno: int | None = None) -> None:
        self.raw_message = message
        super().__init__(f"{self._prefix} ({message})" if self._prefix else message)
        self.errno = errno

    @property
    def message(self) -> Any:
        return self.args[0] if self.args else ""

    def __str__(self) -> str:
        msg = super().__str__()
        if self.errno is None:
            return msg
        return f"[errno {self.errno}] {msg}"

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuild from the unprefixed message so pickling does not prefix it twice.
        return (self.__class__, (self.raw_message, self.errno))


class PermissionError(OSError):  # noqa: A001
    __module__ = "rbd"
    _prefix = "RBD permission error"


class ImageNotFound(OSError):
    __module__ = "rbd"
    _prefix = "RBD image not found"


class ObjectNotFound(OSError):
    __module__ = "rbd"
    _prefix = "RBD object not found"


class ImageExists(OSError):
    __module__ = "rbd"
    _prefix = "RBD image already exists"


class ObjectExists(OSError):
    __module__ = "rbd"
    _prefix = "RBD object already exists"


class IOError(OSError):  # noqa: A001
    __module__ = "rbd"
    _prefix = "RBD I/O error"


class NoSpace(OSError):
    __module__ = "rbd"
    _prefix = "RBD insufficient space available"


class IncompleteWriteError(OSError):
    __module__ = "rbd"
    _prefix = "RBD incomplete write"


class InvalidArgument(OSError):
    __module__ = "rbd"
    _prefix = "RBD invalid argument"


class LogicError(OSError):
    __module__ = "rbd"
    _prefix = "RBD logic error"


class ReadOnlyImage(OSError):
    __module__ = "rbd"
    _prefix = "RBD read-only image"


class ImageBusy(OSError):
    __module__ = "rbd"
    _prefix = "RBD image is busy"


class ImageHasSnapshots(OSError):
    __module__ = "rbd"
    _prefix = "RBD image has snapshots"


class FunctionNotSupported(OSError):
    __module__ = "rbd"
    _prefix = "RBD function not supported"


class ArgumentOutOfRange(OSError):
    __module__ = "rbd"
    _prefix = "RBD arguments out of range"


class ConnectionShutdown(OSError):
    __module__ = "rbd"
    _prefix = "RBD connection was shutdown"


class Timeout(OSError):
    __module__ = "rbd"
    _prefix = "RBD operation timeout"


class DiskQuotaExceeded(OSError):
    __module__ = "rbd"
    _prefix = "RBD disk quota exceeded"


class OperationNotSupported(OSError):
    __module__ = "rbd"
    _prefix = "RBD operation not supported"


class OperationCanceled(OSError):
    __module__ = "rbd"
    _prefix = "RBD operation canceled"


ERRNO_TO_EXCEPTION: dict[int, type[OSError]] = {
    _errno.EPERM: PermissionError,
    _errno.ENOENT: ImageNotFound,
    _errno.EIO: IOError,
    _errno.ENOSPC: NoSpace,
    _errno.EEXIST: ImageExists,
    _errno.EINVAL: InvalidArgument,
    _errno.EROFS: ReadOnlyImage,
    _errno.EBUSY: ImageBusy,
    _errno.ENOTEMPTY: ImageHasSnapshots,
    _errno.ENOSYS: FunctionNotSupported,
    _errno.EDOM: ArgumentOutOfRange,
    _errno.ESHUTDOWN: ConnectionShutdown,
    _errno.ETIMEDOUT: Timeout,
    _errno.EDQUOT: DiskQuotaExceeded,
    _errno.EOPNOTSUPP: OperationNotSupported,
    ECANCELED: OperationCanceled,
}


def make_ex(ret: int, msg: str) -> OSError:
    """The exception python-rbd raises for a librbd result (an unmapped errno: plain OSError)."""
    ret = abs(int(ret))
    cls = ERRNO_TO_EXCEPTION.get(ret)
    if cls is not None:
        return cls(msg, errno=ret)
    return OSError(msg, errno=ret)


def cstr(val: Any, name: str, opt: bool = False) -> bytes | None:
    """str → utf-8 bytes as python-rbd's `cstr`; anything else is InvalidArgument."""
    return rados_errors.cstr(val, name, opt, not_string=InvalidArgument)


def text(val: Any, name: str) -> str:
    return rados_errors.as_text(val, name, not_string=InvalidArgument, bad_utf8=InvalidArgument)


def opt_text(val: Any, name: str) -> str | None:
    return None if val is None else text(val, name)


def uint(value: Any, ctype: str = "uint64_t") -> int:
    """An int for a C unsigned parameter: TypeError / OverflowError as Cython raises them."""
    if isinstance(value, bool):
        return int(value)
    if not isinstance(value, int):
        try:
            value = value.__index__()
        except AttributeError:
            raise TypeError(f"an integer is required (got type {type(value).__name__})") from None
    if value < 0:
        raise OverflowError(f"can't convert negative value to {ctype}")
    if value >= 1 << 64:
        raise OverflowError(f"value too large to convert to {ctype}")
    return int(value)


__all__ = [
    "ArgumentOutOfRange", "ConnectionShutdown", "DiskQuotaExceeded", "Error", "FunctionNotSupported", "IOError",
    "ImageBusy", "ImageExists", "ImageHasSnapshots", "ImageNotFound", "IncompleteWriteError", "InvalidArgument",
    "LogicError", "NoSpace", "OSError", "ObjectExists", "ObjectNotFound", "OperationCanceled",
    "OperationNotSupported", "PermissionError", "ReadOnlyImage", "Timeout", "make_ex",
]

"""python-rados' exception hierarchy and errno mapping (the `rados` module re-exports it).

Same class names, bases, constructor `(message, errno=None)` and `str()` format
(`[errno N] RADOS object not found (...)`) as Ceph's binding, so code written against
python3-rados (OpenStack's drivers, Ceph's own tests) catches and prints the same things.
"""

from __future__ import annotations

import errno as _errno
from collections.abc import Callable
from typing import Any

from shoal.errors import ShoalError

# librados folds a cmpext mismatch offset into the result: -(MAX_ERRNO + offset).
MAX_ERRNO = 4095


class Error(Exception):
    """Base of every rados exception; `errno` is positive or None."""

    _prefix = ""

    def __init__(self, message: Any = "", errno: int | None = None) -> None:
        self.raw_message = message
        text = f"{self._prefix} ({message})" if self._prefix else message
        super().__init__(text)
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


class InvalidArgumentError(Error):
    _prefix = "RADOS invalid argument"


class ExtendMismatch(Error):
    """A compare-extent op found a difference; `offset` is where."""

    _prefix = "object content does not match"

    def __init__(self, message: Any, errno: int | None, offset: int = 0) -> None:
        super().__init__(message, errno)
        self.offset = offset

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, (self.raw_message, self.errno, self.offset))


class OSError(Error):  # noqa: A001 - python-rados shadows the builtin name on purpose
    pass


class InterruptedOrTimeoutError(OSError):
    _prefix = "RADOS interrupted or timeout"


class PermissionError(OSError):  # noqa: A001
    _prefix = "RADOS permission error"


class PermissionDeniedError(OSError):
    _prefix = "RADOS permission denied"


class ObjectNotFound(OSError):
    _prefix = "RADOS object not found"


class NoData(OSError):
    _prefix = "RADOS no data"


class ObjectExists(OSError):
    _prefix = "RADOS object exists"


class ObjectBusy(OSError):
    _prefix = "RADOS object busy"


class IOError(OSError):  # noqa: A001
    _prefix = "RADOS I/O error"


class NoSpace(OSError):
    _prefix = "RADOS no space"


class NotConnected(OSError):
    _prefix = "RADOS not connected"


class ConnectionShutdown(OSError):
    _prefix = "RADOS connection was shutdown"


class TimedOut(OSError):
    _prefix = "RADOS timed out"


class RadosStateError(Error):
    _prefix = "RADOS rados state"


class IoctxStateError(Error):
    _prefix = "RADOS Ioctx state error"


class ObjectStateError(Error):
    _prefix = "RADOS object state error"


class LogicError(Error):
    _prefix = "RADOS logic error"


class InProgress(Error):
    _prefix = "RADOS in progress error"


class IsConnected(Error):
    _prefix = "RADOS is connected error"


ERRNO_TO_EXCEPTION: dict[int, type[Error]] = {
    _errno.EPERM: PermissionError,
    _errno.ENOENT: ObjectNotFound,
    _errno.EIO: IOError,
    _errno.ENOSPC: NoSpace,
    _errno.EEXIST: ObjectExists,
    _errno.EBUSY: ObjectBusy,
    _errno.ENODATA: NoData,
    _errno.EINTR: InterruptedOrTimeoutError,
    _errno.ETIMEDOUT: TimedOut,
    _errno.EACCES: PermissionDeniedError,
    _errno.EINPROGRESS: InProgress,
    _errno.EISCONN: IsConnected,
    _errno.EINVAL: InvalidArgumentError,
    _errno.ENOTCONN: NotConnected,
    _errno.ESHUTDOWN: ConnectionShutdown,
}


def make_ex(ret: int, msg: str) -> Error:
    """The exception python-rados raises for a (negative or positive) librados result."""
    ret = abs(int(ret))
    cls = ERRNO_TO_EXCEPTION.get(ret)
    if cls is not None:
        return cls(msg, errno=ret)
    if ret > MAX_ERRNO:
        return ExtendMismatch(msg, ret, ret - MAX_ERRNO)
    return OSError(msg, errno=ret)


def from_shoal(exc: ShoalError, msg: str) -> Error:
    """Map an error of the client core onto the rados class for its errno."""
    return make_ex(exc.errno or _errno.EIO, msg)


def type_error(name: str, expected: str, value: Any) -> TypeError:
    """Cython's message for an argument of the wrong type, as python-rados raises it."""
    return TypeError(f"Argument '{name}' has incorrect type (expected {expected}, got {type(value).__name__})")


def require_str(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise type_error(name, "str", value)
    return value


def require_bytes(value: Any, name: str) -> bytes:
    if not isinstance(value, bytes):
        raise type_error(name, "bytes", value)
    return value


def require_uint(value: Any, name: str, ctype: str = "uint64_t") -> int:
    """Non-negative int, as a C unsigned parameter of python-rados accepts."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"an integer is required (got type {type(value).__name__}) for '{name}'")
    if value < 0:
        raise OverflowError(f"can't convert negative value to {ctype}")
    return value


def cstr(value: Any, name: str, opt: bool = False,
         not_string: Callable[[str], Exception] = TypeError) -> bytes | None:
    """str or bytes → bytes (python-rados' `cstr`), None allowed when `opt`; anything else
    raises `not_string` (python-rbd raises InvalidArgument where python-rados says TypeError)."""
    if opt and value is None:
        return None
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise not_string(f"{name} must be a string")


def as_text(value: Any, name: str, not_string: Callable[[str], Exception] = TypeError,
            bad_utf8: Callable[[str], Exception] | None = None) -> str:
    """A key/name given as str or bytes, as text (our wire carries str names)."""
    raw = cstr(value, name, not_string=not_string)
    assert raw is not None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        message = f"{name} is not valid UTF-8"
        raise (bad_utf8(message) if bad_utf8 else InvalidArgumentError(message, _errno.EINVAL)) from None


__all__ = [
    "ConnectionShutdown", "Error", "ExtendMismatch", "IOError", "InProgress", "InterruptedOrTimeoutError",
    "InvalidArgumentError", "IoctxStateError", "IsConnected", "LogicError", "MAX_ERRNO", "NoData", "NoSpace",
    "NotConnected", "OSError", "ObjectBusy", "ObjectExists", "ObjectNotFound", "ObjectStateError",
    "PermissionDeniedError", "PermissionError", "RadosStateError", "TimedOut", "make_ex",
]

"""The client end of the admin socket, blocking: what `ceph daemon` / `ceph --admin-daemon` use.

As Ceph's `ceph_daemon.admin_socket`: fetch `get_command_descriptions`, match the
operator's words against them, send the resulting command (one connection each).
"""

from __future__ import annotations

import errno
import json
import socket
import struct
from typing import Any

from shoal.admin.asok_protocol import frame_request, match_words

TIMEOUT = 30.0
MAX_REPLY = 1 << 30


class AsokError(Exception):
    def __init__(self, message: str, err: int = errno.EINVAL) -> None:
        super().__init__(message)
        self.errno = err


def request(path: str, cmd: dict[str, Any] | str, timeout: float = TIMEOUT) -> bytes:
    """Send one command, return the reply payload."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        try:
            s.connect(path)
        except OSError as exc:
            raise AsokError(f"exception: [Errno {exc.errno}] {exc.strerror}", exc.errno or errno.EIO) from exc
        s.sendall(frame_request(cmd))
        head = _recv_exact(s, 4)
        (length,) = struct.unpack(">I", head)
        if length > MAX_REPLY:
            raise AsokError(f"reply of {length} bytes is too large", errno.EFBIG)
        return _recv_exact(s, length)
    except OSError as exc:
        raise AsokError(f"exception: {exc}", exc.errno or errno.EIO) from exc
    finally:
        s.close()


def _recv_exact(s: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            raise AsokError("no data returned from admin socket", errno.EIO)
        buf += chunk
    return bytes(buf)


def daemon_command(path: str, words: list[str], fmt: str | None = None) -> bytes:
    """Run `words` (`config get rbd_cache`) on the socket at `path`, as `ceph daemon` does."""
    descriptions = json.loads(request(path, {"prefix": "get_command_descriptions"}))
    if words == ["get_command_descriptions"]:
        return json.dumps(descriptions, indent=4).encode() + b"\n"
    try:
        cmd = match_words(descriptions, words)
    except ValueError as exc:
        raise AsokError(f"invalid command: {exc}") from exc
    if fmt:
        cmd["format"] = fmt
    return request(path, cmd)

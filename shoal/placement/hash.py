"""The two hash families placement rests on, computed exactly as Ceph computes them.

* `str_hash_rjenkins` -- Bob Jenkins' lookup2 over bytes (Ceph's object-name hash).
  Object -> PG must match Ceph bit for bit: `ceph osd map` output, PG ids an operator
  sees and any future Ceph-wire front end all depend on it.
* `crush_hash32_2` / `crush_hash32_3` -- CRUSH's "rjenkins1" integer hashes, used for
  the PG -> placement input (pps) and for the weighted draws in `crush.py`.

All results are unsigned 32-bit. These run on every object operation and on every PG
of every pool at each map change, so the mix is written out inline: a Python function
call per mix round would double the cost. Arithmetic is done on unbounded Python ints
and reduced mod 2^32 only where it matters: the low 32 bits of `x - y`, `x ^ y` and
`x << k` depend only on the low 32 bits of the operands, so a value needs masking just
before it is shifted right (and at the end). `tests/placement/test_hash.py` checks
this against a plain reference that masks after every step.
"""

from __future__ import annotations

import struct

__all__ = ["crush_hash32_2", "crush_hash32_3", "str_hash_rjenkins"]

_M = 0xFFFFFFFF
_GOLDEN = 0x9E3779B9  # lookup2's initial a and b ("golden ratio")
_CRUSH_SEED = 1315423911
_CRUSH_X = 231232
_CRUSH_Y = 1232

_unpack_block = struct.Struct("<3I").unpack_from


def str_hash_rjenkins(data: bytes) -> int:
    """lookup2 hash of `data` as Ceph's `ceph_str_hash_rjenkins` computes it (u32).

    This is the object-name hash that decides an object's PG, so it must agree with
    Ceph on every input: the vectors in the tests come from real `ceph osd map` output.
    """
    n = len(data)
    a = b = _GOLDEN
    c = 0
    full = n - n % 12
    pos = 0
    while pos < full:
        w0, w1, w2 = _unpack_block(data, pos)
        pos += 12
        a += w0
        b += w1
        c = (c + w2) & _M
        # mix(a, b, c)
        a = (a - b - c) ^ (c >> 13)
        b = ((b - c - a) ^ (a << 8)) & _M
        c = ((c - a - b) ^ (b >> 13)) & _M
        a = (a - b - c) ^ (c >> 12)
        b = ((b - c - a) ^ (a << 16)) & _M
        c = ((c - a - b) ^ (b >> 5)) & _M
        a = (a - b - c) ^ (c >> 3)
        b = ((b - c - a) ^ (a << 10)) & _M
        c = ((c - a - b) ^ (b >> 15)) & _M
        a &= _M
    # Tail (0..11 bytes), zero-padded to one block. The length takes c's low byte,
    # so tail bytes 8..10 land in c shifted up by one byte; byte 11 of the padded
    # block is always zero, which keeps that shifted word within 32 bits.
    w0, w1, w2 = _unpack_block(data[full:] + bytes(12 - (n - full)))
    a += w0
    b += w1
    c = (c + n + (w2 << 8)) & _M
    a = (a - b - c) ^ (c >> 13)
    b = ((b - c - a) ^ (a << 8)) & _M
    c = ((c - a - b) ^ (b >> 13)) & _M
    a = (a - b - c) ^ (c >> 12)
    b = ((b - c - a) ^ (a << 16)) & _M
    c = ((c - a - b) ^ (b >> 5)) & _M
    a = (a - b - c) ^ (c >> 3)
    b = ((b - c - a) ^ (a << 10)) & _M
    c = ((c - a - b) ^ (b >> 15)) & _M
    return c


def crush_hash32_2(a: int, b: int) -> int:
    """CRUSH rjenkins1 hash of two u32 values (negative ints are taken mod 2^32, as C would).

    Used for the pool-salted placement input (pps) and for the probabilistic
    reweight ("is out") test of a device.
    """
    a &= _M
    b &= _M
    h = _CRUSH_SEED ^ a ^ b
    x = _CRUSH_X
    y = _CRUSH_Y
    # mix(a, b, h)
    a = (a - b - h) ^ (h >> 13)
    b = ((b - h - a) ^ (a << 8)) & _M
    h = ((h - a - b) ^ (b >> 13)) & _M
    a = (a - b - h) ^ (h >> 12)
    b = ((b - h - a) ^ (a << 16)) & _M
    h = ((h - a - b) ^ (b >> 5)) & _M
    a = (a - b - h) ^ (h >> 3)
    b = ((b - h - a) ^ (a << 10)) & _M
    h = ((h - a - b) ^ (b >> 15)) & _M
    # mix(x, a, h)
    x = (x - a - h) ^ (h >> 13)
    a = ((a - h - x) ^ (x << 8)) & _M
    h = ((h - x - a) ^ (a >> 13)) & _M
    x = (x - a - h) ^ (h >> 12)
    a = ((a - h - x) ^ (x << 16)) & _M
    h = ((h - x - a) ^ (a >> 5)) & _M
    x = (x - a - h) ^ (h >> 3)
    a = ((a - h - x) ^ (x << 10)) & _M
    h = ((h - x - a) ^ (a >> 15)) & _M
    # mix(b, y, h)
    b = (b - y - h) ^ (h >> 13)
    y = ((y - h - b) ^ (b << 8)) & _M
    h = ((h - b - y) ^ (y >> 13)) & _M
    b = (b - y - h) ^ (h >> 12)
    y = ((y - h - b) ^ (b << 16)) & _M
    h = ((h - b - y) ^ (y >> 5)) & _M
    b = (b - y - h) ^ (h >> 3)
    y = ((y - h - b) ^ (b << 10)) & _M
    h = ((h - b - y) ^ (y >> 15)) & _M
    return h


def crush_hash32_3(a: int, b: int, c: int) -> int:
    """CRUSH rjenkins1 hash of three u32 values (negative ints are taken mod 2^32).

    Used for the per-(PG, device) weighted draw in `crush.map_pg`.
    """
    a &= _M
    b &= _M
    c &= _M
    h = _CRUSH_SEED ^ a ^ b ^ c
    x = _CRUSH_X
    y = _CRUSH_Y
    # mix(a, b, h)
    a = (a - b - h) ^ (h >> 13)
    b = ((b - h - a) ^ (a << 8)) & _M
    h = ((h - a - b) ^ (b >> 13)) & _M
    a = (a - b - h) ^ (h >> 12)
    b = ((b - h - a) ^ (a << 16)) & _M
    h = ((h - a - b) ^ (b >> 5)) & _M
    a = (a - b - h) ^ (h >> 3)
    b = ((b - h - a) ^ (a << 10)) & _M
    h = ((h - a - b) ^ (b >> 15)) & _M
    # mix(c, x, h)
    c = (c - x - h) ^ (h >> 13)
    x = ((x - h - c) ^ (c << 8)) & _M
    h = ((h - c - x) ^ (x >> 13)) & _M
    c = (c - x - h) ^ (h >> 12)
    x = ((x - h - c) ^ (c << 16)) & _M
    h = ((h - c - x) ^ (x >> 5)) & _M
    c = (c - x - h) ^ (h >> 3)
    x = ((x - h - c) ^ (c << 10)) & _M
    h = ((h - c - x) ^ (x >> 15)) & _M
    # mix(y, a, h)
    y = (y - a - h) ^ (h >> 13)
    a = ((a - h - y) ^ (y << 8)) & _M
    h = ((h - y - a) ^ (a >> 13)) & _M
    y = (y - a - h) ^ (h >> 12)
    a = ((a - h - y) ^ (y << 16)) & _M
    h = ((h - y - a) ^ (a >> 5)) & _M
    y = (y - a - h) ^ (h >> 3)
    a = ((a - h - y) ^ (y << 10)) & _M
    h = ((h - y - a) ^ (a >> 15)) & _M
    # mix(b, x, h)
    b = (b - x - h) ^ (h >> 13)
    x = ((x - h - b) ^ (b << 8)) & _M
    h = ((h - b - x) ^ (x >> 13)) & _M
    b = (b - x - h) ^ (h >> 12)
    x = ((x - h - b) ^ (b << 16)) & _M
    h = ((h - b - x) ^ (x >> 5)) & _M
    b = (b - x - h) ^ (h >> 3)
    x = ((x - h - b) ^ (b << 10)) & _M
    h = ((h - b - x) ^ (x >> 15)) & _M
    # mix(y, c, h)
    y = (y - c - h) ^ (h >> 13)
    c = ((c - h - y) ^ (y << 8)) & _M
    h = ((h - y - c) ^ (c >> 13)) & _M
    y = (y - c - h) ^ (h >> 12)
    c = ((c - h - y) ^ (y << 16)) & _M
    h = ((h - y - c) ^ (c >> 5)) & _M
    y = (y - c - h) ^ (h >> 3)
    c = ((c - h - y) ^ (y << 10)) & _M
    h = ((h - y - c) ^ (c >> 15)) & _M
    return h

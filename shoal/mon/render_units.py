"""Number formatting of Ceph's plain-text outputs: byte units, SI counts, weights, percentages, ages.

Every rule here was read off real Ceph 16 output (the fixtures, transcripts, and a throw-away
`shared/tools/realceph` cluster), so a value renders byte for byte as `ceph`/`rados` would show it.
Both the monitor's renderers and the `rados` CLI import this module; it imports nothing from Shoal.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, tzinfo

_IEC_UNITS = (" B", " KiB", " MiB", " GiB", " TiB", " PiB", " EiB")
_SI_UNITS = ("", "k", "M", "G", "T", "P", "E")
_U64 = 1 << 64
# The whole rendered value ("2.7 KiB", "1.50k") may take this many characters before Ceph drops a
# decimal; integers are never cut, so "1023 KiB" still has 8.
_MAX_WIDTH = 7


def f32(x: float) -> float:
    """Round a double to the nearest float32, as C++ code that keeps the value in a `float` does."""
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


def _format_units(value: int, base: int, units: tuple[str, ...]) -> str:
    value = max(0, int(value)) % _U64  # Ceph takes an unsigned 64-bit value; negatives would be junk
    n, index = value, 0
    while n >= base and index < len(units) - 1:
        n //= base
        index += 1
    unit = units[index]
    mult = base**index
    if index == 0 or value % mult == 0:
        return f"{n}{unit}"  # exact multiples never get a fraction: "24 GiB", "1k"
    scaled = float(value) / float(mult)  # C divides doubles, not exact integers
    text = ""
    for decimals in (2, 1, 0):  # the most decimals that still fit in 7 characters
        text = f"{scaled:.{decimals}f}{unit}"
        if len(text) <= _MAX_WIDTH:
            break
    return text


def byte_u(value: int) -> str:
    """IEC bytes as Ceph prints them: 0 -> "0 B", 2783 -> "2.7 KiB", 943718400 -> "900 MiB"."""
    return _format_units(value, 1024, _IEC_UNITS)


def si_u(value: int) -> str:
    """A count with a decimal prefix and no unit: 35 -> "35", 1000 -> "1k", 1500 -> "1.50k"."""
    return _format_units(value, 1000, _SI_UNITS)


def percentify(percent: float) -> str:
    """`ceph df` percentages: under 0.01 is "0", otherwise two decimals of the float32 value."""
    value = f32(percent)
    return "0" if value < 0.01 else f"{value:.2f}"


def weightf(weight: float) -> str:
    """CRUSH weights, reweights and primary affinities in `osd tree`/`osd df`: "0.00780", "1.00000"."""
    value = f32(weight)
    if value < -0.01:
        return "-"
    if value < 0.000001:
        return "0"
    return f"{value:.5f}"


def lowprecision(value: float) -> str:
    """`osd df` %USE, VAR and STDDEV: "0" below 0.001, otherwise two decimals."""
    if value < -0.01:
        return "-"
    if value < 0.001:
        return "0"
    return f"{value:.2f}"


def cfloat(value: float) -> str:
    """A double through C++'s default ostream format (%g, 6 significant digits): 0.95, 265.193, 1."""
    return f"{float(value):g}"


def timespan_str(seconds: float) -> str:
    """An age as `ceph -s` prints it: "0.5s", "107s", "2m", "5h", "3d", "4w", "7M", "2y".

    Whole units are truncated, never rounded; the unit changes once the count reaches 120 s,
    120 min, 48 h, 14 d, 12 weeks and 24 months.
    """
    nsec = max(0, int(seconds * 1_000_000_000))
    if nsec < 2_000_000_000:
        return f"{f32(nsec / 1_000_000_000):g}s"  # Ceph divides as float here
    sec = nsec // 1_000_000_000
    if sec < 120:
        return f"{sec}s"
    minutes = sec // 60
    if minutes < 120:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if days < 14:
        return f"{days}d"
    if days // 7 < 12:
        return f"{days // 7}w"
    if days // 30 < 24:
        return f"{days // 30}M"
    return f"{days // 365}y"


def format_stamp(epoch_seconds: float, tz: tzinfo | None = None) -> str:
    """A utime as Ceph prints it: "2026-11-23T21:38:50.847913+0000" (local time unless `tz` is given)."""
    # A float epoch keeps only ~0.5 us at today's dates: round to the nearest microsecond.
    whole, micros = divmod(round(epoch_seconds * 1_000_000), 1_000_000)
    moment = datetime.fromtimestamp(whole, tz or UTC)
    if tz is None:
        moment = moment.astimezone()
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{micros:06d}" + moment.strftime("%z")


def parse_stamp(text: str) -> float:
    """Epoch seconds of a Ceph JSON timestamp: "...+0000", "...Z" or a bare "YYYY-MM-DD HH:MM:SS.ffffff"."""
    text = text.strip().replace(" ", "T", 1)
    if text.endswith("Z"):
        text = text[:-1] + "+0000"
    moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z") if "." in text else \
        datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z")
    return moment.timestamp()

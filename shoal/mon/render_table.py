"""The column layout of Ceph's plain-text tables (`ceph df`, `osd tree`, `osd df`, `rados df`, ...).

Each column is as wide as its widest cell or heading; cells are padded to that width (so a short
last column leaves trailing spaces, as `osd tree` shows) and columns are joined by two spaces.
A heading and the cells below it are aligned separately: `osd tree` has left-aligned headings
over right-aligned numbers, `ceph df` right-aligned ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

LEFT = "left"
RIGHT = "right"
_SEPARATOR = "  "


@dataclass(frozen=True)
class Column:
    heading: str
    heading_align: str = LEFT
    align: str = LEFT


def _pad(text: str, width: int, align: str) -> str:
    return text.rjust(width) if align == RIGHT else text.ljust(width)


def render_table(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> str:
    """The table, one line per row after the heading line, each line ending in a newline.

    A row shorter than the heading gets empty cells at the end (bucket lines of `osd tree`).
    """
    for row in rows:
        if len(row) > len(columns):
            raise ValueError(f"table row has {len(row)} cells for {len(columns)} columns: {row!r}")
    full = [list(row) + [""] * (len(columns) - len(row)) for row in rows]
    widths = [max([len(c.heading)] + [len(r[i]) for r in full]) for i, c in enumerate(columns)]
    lines = [_SEPARATOR.join(_pad(c.heading, w, c.heading_align) for c, w in zip(columns, widths, strict=True))]
    for row in full:
        lines.append(_SEPARATOR.join(_pad(cell, w, c.align) for cell, c, w in zip(row, columns, widths, strict=True)))
    return "".join(line + "\n" for line in lines)

"""Public face of the `rbd export` / `export-diff` stream codecs (all sans-IO).

- `stream_records`: record types, banners, errors.
- `stream_diff`: export-diff v1/v2 `DiffWriter`, `DiffReader`, `split_sparse`.
- `stream_export`: raw (format 1) and `--export-format 2` readers and writers.
- `stream_merge`: `merge_diffs` (`rbd merge-diff`).
"""

from __future__ import annotations

from shoal.rbd.stream_diff import DiffReader, DiffWriter, encode_diff, encode_record, parse_diff, split_sparse
from shoal.rbd.stream_export import (
    ExportSnap,
    ExportV2Reader,
    ExportV2Writer,
    RawExportWriter,
    RawImportReader,
    encode_export_v2,
)
from shoal.rbd.stream_merge import merge_diffs
from shoal.rbd.stream_records import (
    BadBanner,
    DiffCount,
    DiffRecord,
    DiffStart,
    End,
    ExportRecord,
    FromSnap,
    HeaderEnd,
    HeaderField,
    MalformedStream,
    Metadata,
    Protected,
    Size,
    StreamError,
    ToSnap,
    TruncatedStream,
    Unknown,
    Write,
    Zero,
)

__all__ = [
    "BadBanner", "DiffCount", "DiffReader", "DiffRecord", "DiffStart", "DiffWriter", "End",
    "ExportRecord", "ExportSnap", "ExportV2Reader", "ExportV2Writer", "FromSnap", "HeaderEnd",
    "HeaderField", "MalformedStream", "Metadata", "Protected", "RawExportWriter", "RawImportReader",
    "Size", "StreamError", "ToSnap", "TruncatedStream", "Unknown", "Write", "Zero", "encode_diff",
    "encode_export_v2", "encode_record", "merge_diffs", "parse_diff", "split_sparse",
]

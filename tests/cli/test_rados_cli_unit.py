"""Pieces of the `rados` CLI that need no cluster: hexdump, option parsing, bench layout."""

from __future__ import annotations

import pytest

from shoal.cli.rados_bench import decode_metadata, encode_metadata, object_name, op_contents
from shoal.cli.rados_cmd import dump_json, hexdump, parse_iec, parse_options, strerror, strtoll


def test_hexdump_matches_ceph_bufferlist_hexdump() -> None:
    assert hexdump(b"") == ""
    assert hexdump(b"v2") == (
        "00000000  76 32                                             |v2|\n"
        "00000002\n")
    assert hexdump(b"hello world this is a long value!!") == (
        "00000000  68 65 6c 6c 6f 20 77 6f  72 6c 64 20 74 68 69 73  |hello world this|\n"
        "00000010  20 69 73 20 61 20 6c 6f  6e 67 20 76 61 6c 75 65  | is a long value|\n"
        "00000020  21 21                                             |!!|\n"
        "00000022\n")
    assert hexdump(b"bin\x00\x01\x7f\xff") == (
        "00000000  62 69 6e 00 01 7f ff                              |bin....|\n"
        "00000007\n")


def test_hexdump_collapses_repeated_rows_like_hexdump_c() -> None:
    row = "  ".join([" ".join(["00"] * 8)] * 2)
    assert hexdump(bytes(64)) == (
        f"00000000  {row}  |................|\n"
        "*\n"
        f"00000030  {row}  |................|\n"
        "00000040\n")
    # A row equal to the one before it collapses even when it is not zeros; the last row never does.
    data = b"a" * 48 + b"b" * 16 + b"a" * 16
    lines = hexdump(data).splitlines()
    assert lines[1] == "*" and lines[2].startswith("00000030") and lines[-1] == "00000050"
    assert len(lines) == 5


def test_parse_options() -> None:
    o = parse_options(["-p", "rbd", "--namespace=ns", "ls", "--all", "-f", "json", "--run_name", "r", "x",
                       "-b", "4K", "--", "-5"])
    assert o.opts == {"pool": "rbd", "namespace": "ns", "all": "true", "format": "json", "run-name": "r",
                      "block-size": "4K"}
    assert o.args == ["ls", "x", "-5"]
    # Unknown dashes stay positional (as in Ceph's rados): "truncate obj -5" reaches the command.
    assert parse_options(["truncate", "obj", "-5"]).args == ["truncate", "obj", "-5"]


def test_numbers() -> None:
    assert parse_iec("4096") == 4096 and parse_iec("4K") == 4096 and parse_iec("4M") == 4 << 20
    assert parse_iec("1GiB") == 1 << 30 and parse_iec("2Mi") == 2 << 20
    for bad in ("xyz", "4Q", "iB", ""):
        with pytest.raises(ValueError):
            parse_iec(bad)
    assert strtoll("12") == 12 and strtoll(" -3") == -3 and strtoll("12x") is None and strtoll("") is None
    assert strerror(-2) == "(2) No such file or directory" and strerror(61) == "(61) No data available"


def test_json_output_styles() -> None:
    assert dump_json([{"a": 1}], "json") == b'[{"a":1}]'
    assert dump_json([{"a": 1}], "json-pretty") == b'[\n    {\n        "a": 1\n    }\n]\n'


def test_bench_layout() -> None:
    assert object_name(7, 1234).endswith("_1234_object7") and object_name(7, 1234).startswith("benchmark_data_")
    c = op_contents(3, 64)
    assert len(c) == 64 and c.startswith(b"I'm the                3th op!\0") and c.endswith(b"z")
    assert op_contents(3, 8) == b"I'm the\0"
    meta = encode_metadata(4 << 20, 203, 4242, 4 << 20)
    assert len(meta) == 24 and decode_metadata(meta) == (4 << 20, 203, 4242, 4 << 20)
    assert decode_metadata(meta[:16]) == (4 << 20, 203, 4242, 4 << 20)
    with pytest.raises(ValueError):
        decode_metadata(b"")

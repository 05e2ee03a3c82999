"""Pieces of the `rbd` CLI that need no cluster: option parsing, size units, image specs, the
renderers against real rbd 16 output (shared fixtures, plus outputs captured from a throw-away
`tools/realceph` cluster quoted inline), stream checks against the broken-stream fixtures, and
the failures rbd reports before it connects."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from shoal.cli import rbd_render as render
from shoal.cli.rbd_args import (
    SNAP_NONE,
    SNAP_REQUIRED,
    VALIDATE_FULL,
    VALIDATE_SNAP,
    ArgError,
    ImageSpec,
    command_words,
    create_options,
    find_command,
    image_spec,
    parse,
    parse_image_size,
    pool_spec,
    strict_iecstrtoll,
)
from shoal.cli.rbd_cmd import COMMANDS, run
from shoal.cli.rbd_import_cmd import Failure, check_diff, import_dest
from shoal.cli.rbd_meta_cmd import notify_op
from shoal.cli.rbd_session import Progress
from shoal.cli.rbd_streams_cmd import MergeError, _header_snaps
from shoal.rbd import features as feat
from tests.mon.plain_fixtures import FIXTURES, json_fixture, plain_blocks

STREAMS = FIXTURES / "streams"
U64_MAX = (1 << 64) - 1


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The fixtures were captured on a UTC machine; ctime() prints local time."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def args(*tokens: str) -> Any:
    words = command_words(tokens)
    found = find_command(words, COMMANDS)
    assert found is not None, tokens
    return parse(tokens, *found)


def fixture_bytes(name: str) -> str:
    return (FIXTURES / "json" / f"{name}.json").read_text()


# -- values ---------------------------------------------------------------------------------------------

def test_strict_iecstrtoll_takes_what_ceph_takes() -> None:
    # Accepted and refused as real `rbd create --size X` did (tools/realceph, Ceph 16.2.15).
    assert [strict_iecstrtoll(t) for t in ("4096", "4096B", "1K", "1MB", "1Mi", "2G", "0")] == [
        4096, 4096, 1024, 1 << 20, 1 << 20, 2 << 30, 0]
    for bad in ("1GiB", "1.5G", " 5", "1g", "4k", "abc", "", "1Bi", "1Q"):
        with pytest.raises(ValueError):
            strict_iecstrtoll(bad)


def test_image_size_is_mib_without_a_unit() -> None:
    assert parse_image_size("10") == 10 << 20
    assert parse_image_size("10M") == 10 << 20
    assert parse_image_size("4096B") == 4096
    assert parse_image_size("1G") == 1 << 30
    with pytest.raises(ValueError):
        parse_image_size("-1")


# -- command line -------------------------------------------------------------------------------------

def test_commands_are_found_by_spec_or_alias_longest_first() -> None:
    def name(*words: str) -> tuple[str, ...] | None:
        found = find_command(list(words), COMMANDS)
        return found[0].spec if found else None

    assert name("snap", "ls", "img") == ("snap", "list")
    assert name("snap", "limit", "set", "img") == ("snap", "limit", "set")
    assert name("ls") == ("list",)
    assert name("rm", "x") == ("remove",)
    assert name("mv", "a", "b") == ("rename",)
    assert name("showmapped") == ("device", "list")
    assert name("du") == ("disk-usage",)
    assert name("image-meta", "ls", "x") == ("image-meta", "list")
    assert name("bogus") is None and name("snap") is None


def test_command_words_skip_option_values() -> None:
    assert command_words(["-p", "rbd", "snap", "ls", "x"]) == ["snap", "ls", "x"]
    assert command_words(["--pool=rbd", "ls", "-l", "--format", "json"]) == ["ls"]
    assert command_words(["ls", "--no-progress", "x", "--", "-y"]) == ["ls", "x", "-y"]


def test_options_anywhere_and_in_legacy_spellings() -> None:
    # Cinder's copy_image_to_volume argv (openstack-surface §3), after the global options went.
    a = args("import", "--pool", "volumes", "--order", "22", "/tmp/f", "vol", "--new-format")
    assert a.opts == {"pool": "volumes", "order": 22, "new-format": True}
    assert a.positional == ["/tmp/f", "vol"]
    a = args("export", "--pool", "images", "--image", "img", "--path", "/tmp/x", "--snap", "s")
    assert a.opts == {"pool": "images", "image": "img", "path": "/tmp/x", "snap": "s"}
    a = args("import", "--pool", "p", "base", "name", "--image-format=2")
    assert a.get("image-format") == 2
    a = args("create", "-s", "10G", "-prbd", "img", "--image-feature", "layering",
             "--image-feature", "exclusive-lock,3")
    assert a.opts["size"] == 10 << 30 and a.opts["pool"] == "rbd"
    assert a.opts["image-feature"] == ["layering", "exclusive-lock,3"]
    assert args("ls", "-l", "--format=json").opts == {"long": True, "format": "json"}


@pytest.mark.parametrize(("tokens", "message"), [
    (("create", "img", "--size", "1", "--bogus"), "rbd: unrecognised option '--bogus'"),
    (("info", "img", "--no-progress"), "rbd: unrecognised option '--no-progress'"),
    (("info", "--no-progress=1", "img"), "rbd: unrecognised option '--no-progress=1'"),
    (("info", "img", "-p", "a", "-p", "b"), "rbd: option '--pool' cannot be specified more than once"),
    (("info", "img", "--pool"), "rbd: the required argument for option '--pool' is missing"),
    (("create", "img", "--size", "abc"), "rbd: the argument for option '--size' is invalid"),
    (("create", "img", "--size", "1", "--order", "30"), "rbd: the argument for option '--order' is invalid"),
    (("ls", "--format", "yaml"), "rbd: the argument for option '--format' is invalid"),
    (("bench", "img", "--io-type", "bogus"), "rbd: the argument for option '--io-type' is invalid"),
    (("bench", "img", "--io-size", "4k"), "rbd: the argument for option '--io-size' is invalid"),
    (("info", "img1", "junk"), "rbd: too many arguments"),
    (("showmapped", "junk"), "rbd: too many arguments"),
])
def test_parse_errors_are_rbds(tokens: tuple[str, ...], message: str) -> None:
    with pytest.raises(ArgError) as exc:
        args(*tokens)
    assert (str(exc.value), exc.value.code) == (message, 1)


def test_image_specs() -> None:
    assert image_spec(args("info", "p/ns/img@s")) == ImageSpec("p", "ns", "img", "s")
    assert image_spec(args("info", "--pool", "p", "--image", "img", "--snap", "s")) == ImageSpec("p", "", "img", "s")
    assert image_spec(args("info", "--image", "p/img")) == ImageSpec("p", "", "img", "")
    a = args("clone", "p/img@s", "child")
    src = image_spec(a, snap=SNAP_REQUIRED)
    dest = image_spec(a, dest=True, snap=SNAP_NONE, validation=VALIDATE_FULL, preset=ImageSpec(pool=src.pool))
    assert (src, dest) == (ImageSpec("p", "", "img", "s"), ImageSpec("p", "", "child", ""))
    a = args("cp", "img", "--dest-pool", "q", "--dest", "copy")
    image_spec(a)
    assert image_spec(a, dest=True, snap=SNAP_NONE) == ImageSpec("q", "", "copy", "")
    assert pool_spec(args("ls", "rbd/ns")) == ("rbd", "ns")
    assert pool_spec(args("ls", "-p", "rbd")) == ("rbd", "")


@pytest.mark.parametrize(("tokens", "kwargs", "message"), [
    (("info",), {}, "rbd: image name was not specified"),
    (("snap", "ls", "img@s1"), {"snap": SNAP_NONE}, "rbd: snapshot name specified for a command that doesn't use it"),
    (("snap", "create", "img"), {"snap": SNAP_REQUIRED}, "rbd: snapshot name was not specified"),
    (("create", "p/x/y/z"), {"validation": VALIDATE_FULL}, "rbd: invalid spec 'p/x/y/z'"),
    (("snap", "create", "img@a@b"), {"validation": VALIDATE_SNAP}, "rbd: invalid spec 'img@a@b'"),
])
def test_image_spec_errors(tokens: tuple[str, ...], kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ArgError) as exc:
        image_spec(args(*tokens), **kwargs)
    assert (str(exc.value), exc.value.code) == (message, 22)


def test_import_destination_keeps_the_legacy_spellings() -> None:
    # nova: import --pool POOL BASE NAME; cinder: --dest-pool; a bare file name names the image.
    a = args("import", "--pool", "vms", "/t/base", "disk")
    assert import_dest(a, a.next_positional()) == ImageSpec("vms", "", "disk")
    a = args("import", "--dest-pool", "volumes", "/t/f", "vol")
    assert import_dest(a, a.next_positional()) == ImageSpec("volumes", "", "vol")
    a = args("import", "/var/tmp/disk.raw")
    assert import_dest(a, a.next_positional()) == ImageSpec("", "", "disk.raw")
    a = args("import", "f", "--image", "p2/name")
    assert import_dest(a, a.next_positional()) == ImageSpec("p2", "", "name")


def test_create_options() -> None:
    o, warnings = create_options(args("create", "x", "--object-size", "1M", "--image-shared"), True)
    assert (o.order, o.features, o.features_clear, warnings) == (20, None, feat.SINGLE_CLIENT, [])
    o, _ = create_options(args("create", "x", "--image-feature", "layering,exclusive-lock", "--image-shared"), True)
    assert o.features == feat.LAYERING
    o, _ = create_options(args("create", "x", "--image-feature", "1", "--stripe-count", "4"), True)
    assert (o.features, o.stripe_unit, o.stripe_count) == (1, 0, 4)
    o, warnings = create_options(args("create", "x", "--image-format", "1"), True)
    assert (o.image_format, warnings) == (1, ["rbd: image format 1 is deprecated"])
    with pytest.raises(ArgError, match="features not allowed with format 1"):
        create_options(args("create", "x", "--image-format", "1", "--image-feature", "layering"), True)


def test_deprecated_options_warn_in_rbds_order() -> None:
    a = args("import", "--pool", "p", "--order", "20", "f", "v", "--new-format", "--image", "i")
    assert a.deprecation_warnings() == [
        "rbd: --new-format is deprecated, use --image-format 2", "rbd: --order is deprecated, use --object-size",
        "rbd: -p [ --pool ] is deprecated, use --dest-pool", "rbd: --image is deprecated, use --dest"]
    assert args("create", "--pool", "p", "x").deprecation_warnings() == []


# -- renderers against the shared fixtures -------------------------------------------------------------

def _stamp(text: str) -> datetime:
    return datetime.strptime(text, "%a %b %d %H:%M:%S %Y")


def info_input(doc: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """What rbd_image_cmd.image_info gathers, for the image a fixture describes."""
    info = {k: doc[k] for k in ("name", "id", "size", "objects", "order", "object_size", "snapshot_count",
                                "block_name_prefix", "format")}
    info.update(features=feat.parse_features(doc["features"]), op_features=0, flags=0, snapshot_limit=U64_MAX,
                parent=None, **{k: _stamp(doc[k]) for k in ("create_timestamp", "access_timestamp",
                                                             "modify_timestamp")})
    info.update(extra)
    return info


@pytest.mark.parametrize(("name", "extra"), [
    ("rbd-info-plain", {}),
    ("rbd-info-snap", {"protected": True}),
    ("rbd-info-striped", {"stripe_unit": 65536, "stripe_count": 4}),
    ("rbd-info-clone", {"overlap": 16 << 20, "parent": {"pool_name": "images", "pool_namespace": "",
                                                          "image_name": "base", "snap_name": "snap",
                                                          "image_id": "1317b159b84a", "trash": False}}),
])
def test_info_matches_fixtures(name: str, extra: dict[str, Any]) -> None:
    doc = render.info_data(info_input(json_fixture(name), **extra))
    assert render.dump(doc, "json", False, "image", render.INFO_ITEMS) == fixture_bytes(name)
    assert render.info_plain(doc) == plain_blocks()[name].stdout


def test_info_xml_as_real_rbd_prints_it() -> None:
    doc = render.info_data(info_input(json_fixture("rbd-info-plain")))
    compact = render.dump(doc, "xml", False, "image", render.INFO_ITEMS)
    assert compact.startswith("<image><name>base</name><id>1317b159b84a</id><size>16777216</size>")
    assert "<features><feature>layering</feature><feature>exclusive-lock</feature>" in compact
    assert compact.endswith("<op_features></op_features><flags></flags><create_timestamp>Mon Nov 23 21:38:48 2026"
                            "</create_timestamp><access_timestamp>Mon Nov 23 21:38:48 2026</access_timestamp>"
                            "<modify_timestamp>Mon Nov 23 21:38:48 2026</modify_timestamp></image>\n")
    pretty = render.dump(doc, "xml", True, "image", render.INFO_ITEMS)
    assert pretty.startswith("<image>\n <name>base</name>\n")
    assert "\n <features>\n  <feature>layering</feature>\n" in pretty
    assert "\n <op_features>\n </op_features>\n" in pretty
    assert pretty.endswith(" <modify_timestamp>Mon Nov 23 21:38:48 2026</modify_timestamp>\n</image>\n\n")
    assert render.dump({"a": [1]}, "json", True, "x", {}) == '{\n    "a": [\n        1\n    ]\n}\n'


def test_listings_match_fixtures() -> None:
    blocks = plain_blocks()
    for name in ("rbd-ls-l", "rbd-ls-l-volumes"):
        entries = json_fixture(name)
        assert render.ls_long_plain(entries) == blocks[name].stdout
        assert render.dump(entries, "json", False, "images", {}) == fixture_bytes(name)
    assert render.dump(json_fixture("rbd-ls"), "json", False, "images", {}) == fixture_bytes("rbd-ls")
    assert render.dump(["a", "b"], "xml", False, "images", {"images": "name"}) == (
        "<images><name>a</name><name>b</name></images>\n")
    for name in ("rbd-snap-ls", "rbd-snap-ls-protected"):
        assert render.snap_ls_plain(json_fixture(name)) == blocks[name].stdout
    assert render.ls_long_plain([]) == render.snap_ls_plain([]) == ""


def test_du_and_diff_match_fixtures() -> None:
    blocks = plain_blocks()
    du = json_fixture("rbd-du")["images"]
    head = [e for e in du if "snapshot" not in e][0]
    assert render.du_plain(du, (head["provisioned_size"], sum(e["used_size"] for e in du))) == blocks["rbd-du"].stdout
    pool = json_fixture("rbd-du-pool")
    totals = (pool["total_provisioned_size"], pool["total_used_size"])
    assert render.du_plain(pool["images"], totals) == blocks["rbd-du-pool"].stdout
    assert render.dump(pool, "json", False, "stats", {"images": "image"}) == fixture_bytes("rbd-du-pool")
    # A lone row gets no <TOTAL> (real `rbd du images/test@snap`-style output).
    assert render.du_plain(du[:1], (1, 1)).count("\n") == 2
    for name in ("rbd-diff", "rbd-diff-full", "rbd-diff-whole-object", "rbd-diff-striped", "rbd-diff-clone"):
        assert render.diff_plain(json_fixture(name)) == blocks[name].stdout
        assert render.dump(json_fixture(name), "json", False, "extents", {}) == fixture_bytes(name)
    assert render.diff_plain([]) == ""


def test_status_children_trash_match_fixtures() -> None:
    blocks = plain_blocks()
    for name in ("rbd-status", "rbd-status-watched"):
        doc = json_fixture(name)
        assert render.status_plain(doc["watchers"]) == blocks[name].stdout
        assert render.dump(doc, "json", False, "status", {}) == fixture_bytes(name)
    for name in ("rbd-children", "rbd-children-none"):
        assert render.children_plain(json_fixture(name)) == blocks[name].stdout
    assert render.dump([], "xml", False, "children", {}) == "<children></children>\n"
    assert render.trash_plain(json_fixture("rbd-trash-ls"), long=False) == blocks["rbd-trash-ls"].stdout
    long = json_fixture("rbd-trash-ls-l")
    assert render.trash_plain(long, long=True) == blocks["rbd-trash-ls-l"].stdout
    # --expires-at "2099-01-01" was stored as 23:59:59 the day before (whole seconds of delay).
    end = render.epoch(datetime(2098, 12, 31, 23, 59, 59))
    assert render.trash_status(end, end - 1) == "protected until Wed Dec 31 23:59:59 2098"
    assert render.trash_status(end, end) == "expired at Wed Dec 31 23:59:59 2098"


def test_locks_and_metadata_as_real_rbd() -> None:
    lockers = [{"id": "s1", "locker": "client.4478", "address": "127.0.0.1:0/6927914"},
               {"id": "s2", "locker": "client.4480", "address": "127.0.0.1:0/2679025575"}]
    assert render.locks_plain(lockers, False, "tagA") == (
        "There are 2 shared locks on this image.\nLock tag: tagA\n"
        "Locker       ID  Address               \n"
        "client.4478  s1  127.0.0.1:0/6927914   \n"
        "client.4480  s2  127.0.0.1:0/2679025575\n")
    assert render.locks_plain(lockers[:1], True, "").startswith("There is 1 exclusive lock on this image.\nLocker")
    assert render.locks_plain([], True, "") == ""
    assert render.metadata_plain([("k2", "value two"), ("zz", "2")]) == (
        "There are 2 metadata on this image:\n\nKey  Value    \nk2   value two\nzz   2        \n")
    assert render.metadata_plain([("k2", "value two")]).startswith("There is 1 metadatum on this image:\n\n")
    assert render.metadata_plain([]) == "There are 0 metadata on this image.\n"


def test_bench_lines_as_real_rbd() -> None:
    assert render.bench_banner("write", 4096, 16, 41943040, False, 50) == (
        "bench  type write io_size 4096 io_threads 16 bytes 41943040 pattern sequential\n")
    assert render.bench_banner("rw", 65536, 16, 8388608, True, 70) == (
        "bench  type readwrite read:write=70:30 io_size 65536 io_threads 16 bytes 8388608 pattern random\n")
    assert render.bench_line(1, 3200, 3228.92, 13 * 2**20 + 1000) == "    1      3200   3228.92    13 MiB/s\n"
    assert render.bench_line(2, 4288, 2147.7, 8.4 * 2**20) == "    2      4288    2147.7   8.4 MiB/s\n"
    assert render.bench_summary(6.6, 10240, 10240 * 4096, 4096, None) == (
        "elapsed: 6   ops: 10240   ops/sec: 1551.52   bytes/sec: 6.1 MiB/s\n")
    summary = render.bench_summary(1.0, 100, 100 * 4096, 4096, 60).split("\n")
    assert summary[1] == "read_ops: 60   read_ops/sec: 60   read_bytes/sec: 240 KiB/s"
    assert summary[2] == "write_ops: 40   write_ops/sec: 40   write_bytes/sec: 160 KiB/s"


def test_progress_lines(capsys: pytest.CaptureFixture[str]) -> None:
    pc = Progress("Importing image", True)
    for done in (0, 1, 1, 3):
        pc.update(done, 8)
    pc.fail()
    Progress("Exporting image", True).finish()
    Progress("Quiet", False).finish()
    assert capsys.readouterr().err == (
        "\rImporting image: 12% complete...\rImporting image: 37% complete...\rImporting image: 37% complete..."
        "failed.\n\rExporting image: 100% complete...done.\n")


def test_watch_notify_ops() -> None:
    header = bytes([2, 1]) + (4).to_bytes(4, "little")
    assert notify_op(header + (3).to_bytes(4, "little")) == ", notify_op=HeaderUpdate"
    assert notify_op(header + (99).to_bytes(4, "little")) == ""
    assert notify_op(b"") == ""


# -- streams ---------------------------------------------------------------------------------------------

def _errors() -> dict[str, dict[str, Any]]:
    cases = json.loads((STREAMS / "import-diff-errors.json").read_text())["results"]
    return {c["file"]: c for c in cases if "--no-progress" in c["command"]}


@pytest.mark.parametrize("name", ["bad-trunc-mid-w-data.diff", "bad-trunc-mid-w-header.diff", "bad-no-end.diff",
                                  "bad-banner-v9.diff", "bad-banner-garbage.diff"])
def test_broken_streams_fail_with_ceph_texts_and_codes(name: str) -> None:
    case = _errors()[name]
    with open(STREAMS / name, "rb") as f:
        try:
            fault = check_diff(f).fault
        except Failure as exc:
            fault = exc
    assert fault is not None
    assert (f"{fault.message}\nrbd: import-diff failed: ", fault.code) == (
        case["stderr"].split("(")[0], case["exit_code"])


def test_sound_streams_check_clean() -> None:
    with open(STREAMS / "bad-unknown-tag.diff", "rb") as f:  # Ceph skips the junk byte by byte, exit 0
        summary = check_diff(f)
    assert (summary.fault, summary.from_snap, summary.to_snap) == (None, "s2", None)
    with open(STREAMS / "img1-s2-head.diff", "rb") as f:
        summary = check_diff(f)
    assert (summary.fault, summary.from_snap, summary.to_snap) == (None, "s2", None)
    too_long = b"rbd diff v1\nf" + (5000).to_bytes(4, "little") + b"x" * 5000
    fault = check_diff(io.BytesIO(too_long)).fault
    assert fault is not None and (fault.message, fault.code) == ("rbd: failed to decode start snap name", 22)
    assert check_diff(io.BytesIO(b"rbd diff v1\n")).fault.message == "rbd: failed to decode tag"  # type: ignore[union-attr]
    with pytest.raises(Failure, match="failed to decode diff banner"):
        check_diff(io.BytesIO(b"rbd dif"))


def test_merge_diff_headers() -> None:
    data = (STREAMS / "img1-s2-head.diff").read_bytes()
    assert _header_snaps("first", data) == ("s2", "")
    with pytest.raises(MergeError) as exc:
        _header_snaps("second", (STREAMS / "bad-banner-v9.diff").read_bytes())
    assert str(exc.value) == ("invalid banner 'rbd diff v9\n', expected 'rbd diff v1\n'\n"
                              "rbd: failed to parse second diff header")


# -- whole runs that fail before connecting ---------------------------------------------------------------

@pytest.mark.parametrize(("argv", "code", "stderr"), [
    (["create"], 22, "rbd: image name was not specified\n"),
    (["create", "img7"], 22, "rbd: must specify --size <M/G/T>\n"),
    (["create", "img7", "--size", "abc"], 1, "rbd: the argument for option '--size' is invalid\n"),
    (["info", "img1", "junk"], 1, "rbd: too many arguments\n"),
    (["resize", "img"], 22, "rbd: must specify --size <M/G/T>\n"),
    (["info", "img", "--pretty-format"], 22, "rbd: --pretty-format only works when --format is json or xml\n"),
    (["bench", "img"], 22, "rbd: --io-type must be specified.\n"),
    (["snap", "rename", "img@s1", "s1c"], 22, "rbd: destination snapshot name was not specified\n"),
    (["mv", "img", "p2/img"], 22, "rbd: mv/rename across pools not supported\nsource pool:  dest pool: p2\n"),
    (["feature", "enable", "img", "bogus"], 1, "rbd: the argument for option is invalid\n"),
    (["feature", "enable", "img"], 22, "rbd: at least one feature name must be specified\n"),
    (["bogus"], 1, "error: unknown option 'bogus'\n\n"),
])
def test_failures_before_connecting(argv: list[str], code: int, stderr: str, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CEPH_CONF", str(tmp_path / "none.conf"))
    monkeypatch.delenv("CEPH_ARGS", raising=False)
    (tmp_path / "none.conf").write_text("[global]\nmon_host = 127.0.0.1:1\n")
    assert run(argv) == code
    assert capsys.readouterr().err == stderr


def test_usage_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert run([]) == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: rbd <command> ...\n\nCommand-line interface for managing Ceph RBD images.\n")
    assert "    snap list (... ls)" in text and "    device list (showmapped)" in text
    assert run(["help", "create"]) == 0
    assert "--image-feature arg" in capsys.readouterr().out

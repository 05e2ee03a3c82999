"""The `ceph` CLI against real daemons: every command, plain and JSON, as Ceph 16 prints it.

JSON outputs are compared key by key (recursively) with the fixtures recorded from real
Ceph (`fixtures/json/ceph-*.json`); plain outputs with the headers, columns and line
shapes of `fixtures/plain-outputs.md`. Status lines (`pool 'x' created`) go to stderr,
data to stdout, errors are `Error ENAME: reason` with the errno as exit status, and a
refused command changes nothing (same pools, same OSD map epoch).

The shared `cluster` fixture is used read-mostly with pools named `cli_*`; anything that
marks OSDs down/out or creates hundreds of PGs runs on a `fresh_cluster`.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shoal.auth.keyring import Entry, write_keyring
from shoal.auth.keys import CryptoKey
from shoal.testing.cluster import TestCluster
from shoal.wire.osd_op import OpBuilder
from tests.conftest import FIXTURES

pytestmark = pytest.mark.integration

JSON_FIXTURES = FIXTURES / "json"
PLAIN_FIXTURES = FIXTURES / "plain-outputs.md"
TRANSCRIPTS = FIXTURES.parent / "real-ceph-transcripts.md"
POOL = "cli_data"  # the pool most read-only checks look at (8 PGs, objects, quota, application)
UNSET = "cli_unset"  # a pool without quota or application

# Dicts whose keys are data (pool options, application names, health check codes...): their key
# sets are not compared, only the entries both sides have (or every entry against a template).
FREE_KEYS = frozenset({
    "options", "application_metadata", "checks", "pool_weights", "services", "erasure_code_profiles",
    "blocklist", "range_blocklist", "crush_node_flags", "device_class_flags", "progress_events",
    "stats_by_class",
})
# Keys Ceph itself prints only sometimes (IO rates appear while there is IO; detail lines only
# with `health detail`; recovery/degraded ratios only while PGs are not clean).
OPTIONAL_KEYS = frozenset({
    "read_bytes_sec", "write_bytes_sec", "read_op_per_sec", "write_op_per_sec",
    "recovering_objects_per_sec", "recovering_bytes_per_sec", "recovering_keys_per_sec",
    "num_objects_recovered", "num_bytes_recovered", "num_keys_recovered",
    "unknown_pgs_ratio", "inactive_pgs_ratio", "degraded_ratio", "degraded_objects", "degraded_total",
    "misplaced_ratio", "misplaced_objects", "misplaced_total", "detail",
})


# -- helpers ------------------------------------------------------------------------------------

@dataclass
class Out:
    rc: int
    out: str
    err: str
    raw: bytes

    def json(self) -> Any:
        return json.loads(self.out)


def ceph(cluster: TestCluster, *args: str) -> Out:
    proc: subprocess.CompletedProcess[bytes] = cluster.cli("ceph", *args, timeout=60)
    return Out(proc.returncode, proc.stdout.decode(), proc.stderr.decode(), proc.stdout)


def ok(cluster: TestCluster, *args: str) -> Out:
    res = ceph(cluster, *args)
    assert res.rc == 0, f"ceph {' '.join(args)} -> {res.rc}: {res.err}"
    return res


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return "null" if v is None else type(v).__name__


def key_diff(ours: Any, ref: Any, path: str = "") -> list[str]:
    """Differences in key structure (and JSON value kinds) between our document and Ceph's."""
    errs: list[str] = []
    if _kind(ours) != _kind(ref):
        return [f"{path or '.'}: {_kind(ours)} where Ceph has {_kind(ref)}"]
    if isinstance(ref, dict):
        last = path.rsplit(".", 1)[-1]
        if last in FREE_KEYS:
            common = set(ours) & set(ref)
            for k in common:
                errs += key_diff(ours[k], ref[k], f"{path}.{k}")
            if ref and ours and not common:
                template = next(iter(ref.values()))
                for k, v in ours.items():
                    errs += key_diff(v, template, f"{path}.{k}")
            return errs
        mine, theirs = set(ours) - OPTIONAL_KEYS, set(ref) - OPTIONAL_KEYS
        if mine - theirs:
            errs.append(f"{path or '.'}: keys Ceph does not have: {sorted(mine - theirs)}")
        if theirs - mine:
            errs.append(f"{path or '.'}: missing keys: {sorted(theirs - mine)}")
        for k in set(ours) & set(ref):
            errs += key_diff(ours[k], ref[k], f"{path}.{k}")
    elif isinstance(ref, list) and ref and ours:
        for i, item in enumerate(ours):
            if isinstance(item, dict) and any(isinstance(r, dict) for r in ref):
                # Lists mixing kinds (osd tree: root, host and osd nodes): the closest one.
                best = min((r for r in ref if isinstance(r, dict)), key=lambda r: len(set(r) ^ set(item)))
            else:
                best = ref[0]
            errs += key_diff(item, best, f"{path}[{i}]")
    return errs


def fixture_json(name: str) -> Any:
    return json.loads((JSON_FIXTURES / f"{name}.json").read_text())


def fixture_bytes(name: str) -> bytes:
    return (JSON_FIXTURES / f"{name}.json").read_bytes()


def plain_fixture(name: str) -> list[str]:
    """The stdout lines of block `## name` in plain-outputs.md."""
    text = PLAIN_FIXTURES.read_text()
    m = re.search(rf"^## {re.escape(name)}( \([^\n]*\))?\n+```\n\$ [^\n]*\n(.*?)\n```", text, re.S | re.M)
    assert m, f"no block {name} in {PLAIN_FIXTURES}"
    return m.group(2).split("\n[stderr]")[0].split("\n")


def transcript(command: str) -> list[str]:
    """The output lines of `$ <command>` in real-ceph-transcripts.md."""
    text = TRANSCRIPTS.read_text()
    m = re.search(rf"^\$ {re.escape(command)}\n(.*?)\n```", text, re.S | re.M)
    assert m, f"no `$ {command}` in {TRANSCRIPTS}"
    return m.group(1).split("\n")


def columns(line: str) -> list[str]:
    """Table cells: separated by two or more spaces (single spaces belong to a header like RAW USED)."""
    return re.split(r"\s{2,}", line.strip())


def osd_epoch(cluster: TestCluster) -> int:
    return int(ok(cluster, "osd", "stat", "--format", "json").json()["epoch"])


def pool_names(cluster: TestCluster) -> list[str]:
    return list(ok(cluster, "osd", "pool", "ls", "--format", "json").json())


def write_objects(cluster: TestCluster, pool: str, objects: dict[str, bytes]) -> None:
    with cluster.admin() as admin:
        admin.loop.run(admin.client.wait_for_latest_map())
        found = admin.client.pool_by_name(pool)
        assert found is not None, pool
        for name, data in objects.items():
            b = OpBuilder()
            b.add("writefull", data)
            reply = admin.loop.run(admin.client.operate(found.id, name, b), timeout=30)
            assert reply.result == 0, f"write {pool}/{name}: {reply.result}"


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def data_cluster(cluster: TestCluster) -> Iterator[TestCluster]:
    """The shared cluster with `cli_data` (objects, rbd application, quota) and `cli_unset`."""
    for pool in (POOL, UNSET):
        res = ceph(cluster, "osd", "pool", "create", pool, "8")
        assert res.rc == 0, res.err
    ok(cluster, "osd", "pool", "application", "enable", POOL, "rbd")
    ok(cluster, "osd", "pool", "set-quota", POOL, "max_objects", "1000")
    ok(cluster, "osd", "pool", "set-quota", POOL, "max_bytes", "1G")
    write_objects(cluster, POOL, {"obj1": b"", "a": b"alpha" * 100, "b": b"\0" * 4096})
    cluster.wait_healthy(cluster.osds, 60)
    yield cluster
    # Leave the shared cluster as we found it (a pool without an application would turn its
    # health to HEALTH_WARN for later modules once mon_warn_on_pool_no_app_grace has passed).
    for pool in pool_names(cluster):
        if pool.startswith("cli_"):
            ok(cluster, "osd", "pool", "delete", pool, pool, "--yes-i-really-really-mean-it")


# -- JSON: key structure of every command ----------------------------------------------------------

JSON_CASES: list[tuple[str, list[str]]] = [
    ("ceph-status", ["status"]),
    ("ceph-status", ["-s"]),
    ("ceph-health", ["health"]),
    ("ceph-health-detail", ["health", "detail"]),
    ("ceph-df", ["df"]),
    ("ceph-df-detail", ["df", "detail"]),
    ("ceph-mon-dump", ["mon", "dump"]),
    ("ceph-osd-tree", ["osd", "tree"]),
    ("ceph-osd-dump", ["osd", "dump"]),
    ("ceph-osd-stat", ["osd", "stat"]),
    ("ceph-osd-pool-ls", ["osd", "pool", "ls"]),
    ("ceph-osd-pool-ls-detail", ["osd", "pool", "ls", "detail"]),
    ("ceph-osd-pool-get-size", ["osd", "pool", "get", POOL, "size"]),
    ("ceph-osd-map", ["osd", "map", POOL, "obj1"]),
    ("ceph-osd-pool-get-quota", ["osd", "pool", "get-quota", POOL]),
    ("ceph-osd-pool-get-quota-unset", ["osd", "pool", "get-quota", UNSET]),
]


@pytest.mark.parametrize("fmt", ["json", "json-pretty"])
@pytest.mark.parametrize(("fixture", "args"), JSON_CASES, ids=[" ".join(a) for _, a in JSON_CASES])
def test_json_has_the_fixture_key_structure(data_cluster: TestCluster, fixture: str, args: list[str],
                                           fmt: str) -> None:
    res = ok(data_cluster, *args, "--format", fmt)
    doc = res.json()
    # Health may legitimately warn on a shared cluster; a structure with checks is compared then.
    ref = fixture_json(fixture)
    if fixture in ("ceph-health", "ceph-health-detail") and doc["status"] != "HEALTH_OK":
        ref = fixture_json("ceph-health-detail-warn")
    if fixture == "ceph-status" and doc["health"]["status"] != "HEALTH_OK":
        ref = fixture_json("ceph-status-warn")
    assert key_diff(doc, ref) == [], f"ceph {' '.join(args)} --format {fmt}"
    if fmt == "json-pretty" and isinstance(doc, (dict, list)) and doc:
        assert "\n    " in res.out, "json-pretty must indent by 4"
    else:
        assert "\n " not in res.out.strip("\n"), "--format json must be compact"


def test_json_values_agree_with_each_other(data_cluster: TestCluster) -> None:
    """Numbers that several commands report must be the same cluster facts."""
    c = data_cluster
    fsid = ok(c, "fsid").out.strip()
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", fsid)
    assert ok(c, "fsid", "--format", "json").json() == {"fsid": fsid}
    assert f"fsid = {fsid}" in Path(c.conf_path).read_text()
    status = ok(c, "status", "--format", "json").json()
    dump = ok(c, "osd", "dump", "--format", "json").json()
    stat = ok(c, "osd", "stat", "--format", "json").json()
    mon = ok(c, "mon", "dump", "--format", "json").json()
    assert status["fsid"] == dump["fsid"] == mon["fsid"] == fsid
    assert status["osdmap"]["epoch"] == dump["epoch"] == stat["epoch"]
    assert status["osdmap"]["num_osds"] == stat["num_osds"] == len(dump["osds"]) == 3
    assert status["osdmap"]["num_up_osds"] == 3
    assert [m["name"] for m in mon["mons"]] == ["a"] and mon["quorum"] == [0]
    assert ok(c, "osd", "ls", "--format", "json").json() == [0, 1, 2]
    assert ok(c, "osd", "ls").out == "0\n1\n2\n"
    tree = ok(c, "osd", "tree", "--format", "json").json()
    osds = sorted(n["id"] for n in tree["nodes"] if n["type"] == "osd")
    assert osds == [0, 1, 2]
    assert all(n["status"] == "up" for n in tree["nodes"] if n["type"] == "osd")
    ls = ok(c, "osd", "pool", "ls", "--format", "json").json()
    detail = ok(c, "osd", "pool", "ls", "detail", "--format", "json").json()
    assert ls == [p["pool_name"] for p in detail] == [p["pool_name"] for p in dump["pools"]]
    mine = next(p for p in detail if p["pool_name"] == POOL)
    assert (mine["pg_num"], mine["size"], mine["min_size"]) == (8, 3, 2)
    assert mine["application_metadata"] == {"rbd": {}}
    assert (mine["quota_max_objects"], mine["quota_max_bytes"]) == (1000, 1 << 30)
    assert status["pgmap"]["num_pools"] == len(ls)
    assert status["pgmap"]["num_pgs"] == sum(p["pg_num"] for p in detail)
    quota = ok(c, "osd", "pool", "get-quota", POOL, "--format", "json").json()
    assert quota["pool_id"] == mine["pool_id"] and quota["quota_max_objects"] == 1000
    unset = ok(c, "osd", "pool", "get-quota", UNSET, "--format", "json").json()
    assert (unset["quota_max_objects"], unset["quota_max_bytes"]) == (0, 0)
    # obj1's placement depends only on its name hash and pg_num (the fixture's pool also had 8 PGs).
    omap = ok(c, "osd", "map", POOL, "obj1", "--format", "json").json()
    ref = fixture_json("ceph-osd-map")
    pool_id = mine["pool_id"]
    assert omap["raw_pgid"] == f"{pool_id}.{ref['raw_pgid'].split('.')[1]}"
    assert omap["pgid"] == f"{pool_id}.{ref['pgid'].split('.')[1]}"
    assert omap["pool"] == POOL and omap["pool_id"] == pool_id and omap["objname"] == "obj1"
    assert len(omap["up"]) == 3 and omap["up_primary"] == omap["up"][0] == omap["acting_primary"]
    df = ok(c, "df", "--format", "json").json()
    assert df["stats"]["num_osds"] == 3
    assert any(p["name"] == POOL and p["id"] == pool_id for p in df["pools"])


def test_json_byte_framing_matches_ceph(data_cluster: TestCluster) -> None:
    """Ceph's CLI prints `\\n` before every JSON document; some end in `\\n`, others do not."""
    c = data_cluster
    wrong = []
    for fixture, args in JSON_CASES:
        if args == ["-s"]:
            continue
        want = fixture_bytes(fixture)
        got = ok(c, *args, "--format", "json").raw
        shape = (want.startswith(b"\n"), want.endswith(b"\n"))
        ours = (got.startswith(b"\n"), got.endswith(b"\n"))
        if ours != shape:
            wrong.append(f"ceph {' '.join(args)}: starts/ends with a newline: {ours}, Ceph: {shape}")
    assert wrong == []


# -- plain output -----------------------------------------------------------------------------------

SIZE = r"[\d.]+ (B|KiB|MiB|GiB|TiB|PiB)"


def test_status_plain(data_cluster: TestCluster) -> None:
    for args in (["-s"], ["status"], ["--status"]):
        res = ok(data_cluster, *args)
        lines = res.out.split("\n")
        fsid = ok(data_cluster, "fsid").out.strip()
        # The section skeleton of Ceph's output, in order (mgr and io lines are optional).
        skeleton = [r"  cluster:", rf"    id:     {fsid}", r"    health: HEALTH_(OK|WARN|ERR)", r" ",
                    r"  services:", r"    mon: 1 daemons, quorum a \(age \S+\)",
                    r"    osd: 3 osds: 3 up \(since \S+\), 3 in \(since \S+\)", r" ", r"  data:",
                    r"    pools:   \d+ pools, \d+ pgs", rf"    objects: \d+ objects, {SIZE}",
                    rf"    usage:   {SIZE} used, {SIZE} / {SIZE} avail",
                    r"    pgs:     (\d+ active\+clean)?"]
        it = iter(lines)
        for pattern in skeleton:
            for line in it:
                if re.fullmatch(pattern, line):
                    break
            else:
                raise AssertionError(f"ceph {args[0]}: no line matching {pattern!r} in order:\n{res.out}")
        assert lines[0] == plain_fixture("ceph-status")[0]
        assert res.err == ""


def test_health_plain(data_cluster: TestCluster) -> None:
    for _ in range(3):  # health can change between two calls on a shared cluster: retry then
        res = ok(data_cluster, "health")
        detail = ok(data_cluster, "health", "detail")
        status = ok(data_cluster, "health", "--format", "json").json()["status"]
        if res.out.split("\n")[0].split(" ")[0] == detail.out.split("\n")[0].split(" ")[0] == status:
            break
    else:
        raise AssertionError(f"plain and JSON health disagree: {res.out!r} {detail.out!r} {status}")
    if status == "HEALTH_OK":
        assert res.out == detail.out == "\n".join(plain_fixture("ceph-health")) + "\n" == "HEALTH_OK\n"
    else:
        # `HEALTH_WARN <summaries>`, then `[WRN] CODE: summary` lines, as in the noout fixture.
        ref = plain_fixture("ceph-health-detail-warn")
        assert re.fullmatch(r"HEALTH_WARN .+", ref[0]) and re.fullmatch(r"\[WRN\] [A-Z_]+: .+", ref[1])
        assert re.fullmatch(r"HEALTH_WARN .+", detail.out.split("\n")[0])
        assert re.fullmatch(r"\[WRN\] [A-Z_]+: .+", detail.out.split("\n")[1])


def test_df_plain(data_cluster: TestCluster) -> None:
    for name, args in (("ceph-df", ["df"]), ("ceph-df-detail", ["df", "detail"])):
        ref = plain_fixture(name)
        lines = ok(data_cluster, *args).out.rstrip("\n").split("\n")
        assert lines[0] == ref[0] == "--- RAW STORAGE ---"
        assert columns(lines[1]) == columns(ref[1])
        assert columns(lines[2])[0] == "hdd" and columns(lines[3])[0] == "TOTAL"
        assert lines[4] == ref[4] == " "
        assert lines[5] == ref[5] == "--- POOLS ---"
        assert columns(lines[6]) == columns(ref[6])
        rows = {columns(line)[0]: columns(line) for line in lines[7:]}
        pool_id = next(p["pool_id"] for p in ok(data_cluster, "osd", "pool", "ls", "detail", "--format",
                                                  "json").json() if p["pool_name"] == POOL)
        assert rows[POOL][1:3] == [str(pool_id), "8"]
        assert len(rows[POOL]) == len(columns(ref[7]))
        if name == "ceph-df-detail":
            header = columns(ref[6])
            row = dict(zip(header, rows[POOL], strict=True))
            assert (row["QUOTA OBJECTS"], row["QUOTA BYTES"]) == ("1k", "1 GiB")
            assert dict(zip(header, rows[UNSET], strict=True))["QUOTA OBJECTS"] == "N/A"


def test_mon_dump_plain(data_cluster: TestCluster) -> None:
    res = ok(data_cluster, "mon", "dump")
    ref = plain_fixture("ceph-mon-dump")
    lines = res.out.rstrip("\n").split("\n")
    assert [line.split(" ")[0] for line in lines] == [line.split(" ")[0] for line in ref]
    assert lines[4] == ref[4] == "min_mon_release 16 (pacific)"
    assert re.fullmatch(r"0: \[v\d:127\.0\.0\.1:\d+/0(,v\d:127\.0\.0\.1:\d+/0)*\] mon\.a", lines[-1])
    epoch = lines[0].split()[1]
    assert res.err == f"dumped monmap epoch {epoch}\n"
    assert ok(data_cluster, "mon", "dump", "--format", "json").err == res.err


def test_osd_tree_plain(data_cluster: TestCluster) -> None:
    ref = plain_fixture("ceph-osd-tree")
    lines = ok(data_cluster, "osd", "tree").out.rstrip("\n").split("\n")
    assert lines[0] == ref[0]  # the same header, columns at the same places
    assert re.fullmatch(r"-1\s+[\d.]+  root default\s*", lines[1])
    assert re.fullmatch(r"-\d+\s+[\d.]+      host \S+\s*", lines[2])
    for i, line in enumerate(lines[3:]):
        assert re.fullmatch(rf" {i}    hdd  [\d.]+          osd\.{i}      up   1\.00000  1\.00000", line), line
    assert len(lines) == len(ref)


def test_osd_df_plain(data_cluster: TestCluster) -> None:
    ref = transcript("ceph osd df")
    lines = ok(data_cluster, "osd", "df").out.rstrip("\n").split("\n")
    assert columns(lines[0]) == columns(ref[0])
    for i in range(3):
        cells = columns(lines[1 + i])
        assert cells[0] == str(i) and cells[1] == "hdd" and cells[-1] == "up", lines[1 + i]
        assert len(cells) == len(columns(ref[1 + i]))
    assert columns(lines[4])[0] == columns(ref[4])[0] == "TOTAL"
    assert re.fullmatch(r"MIN/MAX VAR: [\d.]+/[\d.]+  STDDEV: [\d.]+", lines[5])
    assert re.fullmatch(r"MIN/MAX VAR: [\d.]+/[\d.]+  STDDEV: [\d.]+", ref[5])


def test_osd_stat_plain(data_cluster: TestCluster) -> None:
    epoch = osd_epoch(data_cluster)
    out = ok(data_cluster, "osd", "stat").out
    assert re.fullmatch(rf"3 osds: 3 up \(since \S+\), 3 in \(since \S+\); epoch: e{epoch}\n", out), out
    assert re.fullmatch(r"3 osds: 3 up \(since \S+\), 3 in \(since \S+\); epoch: e\d+",
                        plain_fixture("ceph-osd-stat")[0])


POOL_LINE = (r"pool (\d+) '([^']+)' replicated size (\d+) min_size (\d+) crush_rule 0 object_hash rjenkins "
             r"pg_num (\d+) pgp_num (\d+) autoscale_mode (on|off|warn) last_change \d+ flags ([a-z_,]+)"
             r"( max_bytes \d+)?( max_objects \d+)? stripe_width 0( pg_num_max \d+)?( pg_num_min \d+)?"
             r"( application [a-z_,]+)?")


def test_osd_dump_plain(data_cluster: TestCluster) -> None:
    ref = plain_fixture("ceph-osd-dump")
    for line in ref:  # the pattern describes the fixture's own pool lines
        if line.startswith("pool "):
            assert re.fullmatch(POOL_LINE, line), line
    lines = ok(data_cluster, "osd", "dump").out.rstrip("\n").split("\n")
    head = [line.split(" ")[0] for line in lines if not line.startswith(("pool ", "osd.", "\t"))]
    want = [line.split(" ")[0] for line in ref if not line.startswith(("pool ", "osd.", "\t"))]
    assert head == want
    assert lines[0] == f"epoch {osd_epoch(data_cluster)}"
    assert lines[4] == ref[4]  # flags
    pools = [re.fullmatch(POOL_LINE, line) for line in lines if line.startswith("pool ")]
    assert all(pools), [line for line in lines if line.startswith("pool ")]
    mine = next(m for m in pools if m and m.group(2) == POOL)
    assert mine.group(3, 4, 5, 6) == ("3", "2", "8", "8")
    assert mine.group(9, 10) == (" max_bytes 1073741824", " max_objects 1000")
    assert mine.group(13) == " application rbd"
    osd_lines = [line for line in lines if line.startswith("osd.")]
    assert len(osd_lines) == 3
    for line in osd_lines:
        assert re.fullmatch(r"osd\.\d+ up   in  weight 1 up_from \d+ up_thru \d+ down_at \d+ "
                            r"last_clean_interval \[\d+,\d+\) \[\S+\] \[\S+\] exists,up [0-9a-f-]{36}", line), line
    assert "max_osd 3" in lines


def test_pool_ls_plain(data_cluster: TestCluster) -> None:
    names = pool_names(data_cluster)
    assert ok(data_cluster, "osd", "pool", "ls").out == "".join(f"{n}\n" for n in names)
    detail = ok(data_cluster, "osd", "pool", "ls", "detail").out
    pool_lines = [line for line in detail.split("\n") if line.startswith("pool ")]
    assert [re.fullmatch(POOL_LINE, line).group(2) for line in pool_lines] == names  # type: ignore[union-attr]
    assert detail.endswith("\n\n")  # Ceph ends `ls detail` with an empty line
    assert ok(data_cluster, "osd", "pool", "ls", "--format", "json-pretty").json() == names


def test_pool_get_and_set(data_cluster: TestCluster) -> None:
    c = data_cluster
    assert ok(c, "osd", "pool", "get", POOL, "size").out == plain_fixture("ceph-osd-pool-get-size")[0] + "\n"
    pool_id = ok(c, "osd", "pool", "get", POOL, "size", "--format", "json").json()["pool_id"]
    assert ok(c, "osd", "pool", "get", POOL, "pg_num").out == "pg_num: 8\n"
    assert ok(c, "osd", "pool", "get", POOL, "min_size", "--format", "json").json() == {
        "pool": POOL, "pool_id": pool_id, "min_size": 2}
    everything = ok(c, "osd", "pool", "get", POOL, "all").out
    assert {"size: 3", "min_size: 2", "pg_num: 8", "pgp_num: 8"} <= set(everything.split("\n"))
    res = ok(c, "osd", "pool", "set", UNSET, "min_size", "1")
    assert (res.out, res.err) == ("", f"set pool {ok(c, 'osd', 'pool', 'get', UNSET, 'size', '--format', 'json').json()['pool_id']} min_size to 1\n")
    assert ok(c, "osd", "pool", "get", UNSET, "min_size").out == "min_size: 1\n"
    ok(c, "osd", "pool", "set", UNSET, "min_size", "2")
    assert ok(c, "osd", "pool", "get", UNSET, "min_size").out == "min_size: 2\n"


def test_quota_plain(data_cluster: TestCluster) -> None:
    c = data_cluster
    ref_unset = plain_fixture("ceph-osd-pool-get-quota-unset")
    got = ok(c, "osd", "pool", "get-quota", UNSET).out.rstrip("\n").split("\n")
    assert got == [ref_unset[0].replace("'images'", f"'{UNSET}'"), *ref_unset[1:]]
    ref = plain_fixture("ceph-osd-pool-get-quota")
    got = ok(c, "osd", "pool", "get-quota", POOL).out.rstrip("\n").split("\n")
    assert got[0] == ref[0].replace("'volumes'", f"'{POOL}'")
    assert re.fullmatch(r"  max objects: 1k objects  \(current num objects: \d+ objects\)", got[1]), got[1]
    assert re.fullmatch(r"  max bytes  : 1 GiB  \(current num bytes: \d+ bytes\)", got[2]), got[2]
    res = ok(c, "osd", "pool", "set-quota", UNSET, "max_objects", "10")
    assert (res.out, res.err) == ("", f"set-quota max_objects = 10 for pool {UNSET}\n")
    res = ok(c, "osd", "pool", "set-quota", UNSET, "max_objects", "0")
    assert ok(c, "osd", "pool", "get-quota", UNSET).out.rstrip("\n").split("\n")[1] == "  max objects: N/A"


def test_application_enable_get(data_cluster: TestCluster) -> None:
    c = data_cluster
    res = ok(c, "osd", "pool", "create", "cli_app", "4")
    res = ok(c, "osd", "pool", "application", "enable", "cli_app", "rbd")
    assert (res.out, res.err) == ("", "enabled application 'rbd' on pool 'cli_app'\n")
    # As in the transcript: plain `application get` prints pretty JSON.
    assert ok(c, "osd", "pool", "application", "get", "cli_app").out == '{\n    "rbd": {}\n}\n'
    assert ok(c, "osd", "pool", "application", "get", "cli_app", "--format", "json").json() == {"rbd": {}}
    everything = ok(c, "osd", "pool", "application", "get", "--format", "json").json()
    assert everything["cli_app"] == {"rbd": {}} and everything[POOL] == {"rbd": {}}
    # Enabling it again is a no-op (same epoch); a second application needs the confirmation flag.
    epoch = osd_epoch(c)
    ok(c, "osd", "pool", "application", "enable", "cli_app", "rbd")
    assert osd_epoch(c) == epoch
    res = ceph(c, "osd", "pool", "application", "enable", "cli_app", "rgw")
    assert res.rc == 1 and res.err.startswith("Error EPERM: Are you SURE?"), res.err
    assert osd_epoch(c) == epoch
    ok(c, "osd", "pool", "application", "enable", "cli_app", "rgw", "--yes-i-really-mean-it")
    assert ok(c, "osd", "pool", "application", "get", "cli_app", "--format", "json").json() == {"rbd": {},
                                                                                               "rgw": {}}
    res = ceph(c, "osd", "pool", "application", "get", "cli_app", "cephfs")
    assert res.rc == 2 and res.err.startswith("Error ENOENT:"), res.err
    ok(c, "osd", "pool", "delete", "cli_app", "cli_app", "--yes-i-really-really-mean-it")


def test_osd_map_plain(data_cluster: TestCluster) -> None:
    ref = plain_fixture("ceph-osd-map")[0]
    pattern = (r"osdmap e(\d+) pool '([^']+)' \((\d+)\) object '([^']+)' -> pg (\d+)\.([0-9a-f]+) "
               r"\((\d+)\.([0-9a-f]+)\) -> up \((\[[\d,]+\]), p(\d+)\) acting \((\[[\d,]+\]), p(\d+)\)")
    fx = re.fullmatch(pattern, ref)
    assert fx, ref
    out = ok(data_cluster, "osd", "map", POOL, "obj1").out
    m = re.fullmatch(pattern + "\n", out)
    assert m, out
    doc = ok(data_cluster, "osd", "map", POOL, "obj1", "--format", "json").json()
    assert int(m.group(1)) == doc["epoch"] and m.group(2) == POOL and int(m.group(3)) == doc["pool_id"]
    assert m.group(6) == fx.group(6) and m.group(8) == fx.group(8)  # 6cf8deff / 7, like Ceph
    assert json.loads(m.group(9)) == doc["up"] and int(m.group(10)) == doc["up_primary"]


# -- pool lifecycle ---------------------------------------------------------------------------------

def test_pool_create_status_lines_and_exists(data_cluster: TestCluster) -> None:
    c = data_cluster
    res = ok(c, "osd", "pool", "create", "cli_new", "4", "4")
    assert (res.out, res.err) == ("", "pool 'cli_new' created\n")
    epoch = osd_epoch(c)
    res = ok(c, "osd", "pool", "create", "cli_new", "4")
    assert (res.out, res.err) == ("", "pool 'cli_new' already exists\n")
    assert osd_epoch(c) == epoch
    res = ok(c, "osd", "pool", "create", "cli_defpg")  # pg_num from osd_pool_default_pg_num
    detail = {p["pool_name"]: p for p in ok(c, "osd", "pool", "ls", "detail", "--format", "json").json()}
    assert detail["cli_new"]["pg_num"] == 4 and detail["cli_new"]["pg_placement_num"] == 4
    assert detail["cli_defpg"]["pg_num"] > 0
    for name in ("cli_new", "cli_defpg"):
        ok(c, "osd", "pool", "delete", name, name, "--yes-i-really-really-mean-it")


def test_pool_delete_refusals_then_success(data_cluster: TestCluster) -> None:
    c = data_cluster
    ok(c, "osd", "pool", "create", "cli_del", "4")
    ok(c, "osd", "pool", "create", "cli_other", "4")
    write_objects(c, "cli_del", {"keep": b"k"})
    warning = ("Error EPERM: WARNING: this will *PERMANENTLY DESTROY* all data stored in pool cli_del.  If you "
               "are *ABSOLUTELY CERTAIN* that is what you want, pass the pool name *twice*, followed by "
               "--yes-i-really-really-mean-it.\n")
    before, epoch = pool_names(c), osd_epoch(c)
    for args in (["cli_del"], ["cli_del", "cli_del"], ["cli_del", "cli_other", "--yes-i-really-really-mean-it"],
                 ["cli_del", "--yes-i-really-really-mean-it"]):
        for verb in ("delete", "rm"):
            res = ceph(c, "osd", "pool", verb, *args)
            assert (res.rc, res.out, res.err) == (1, "", warning), args
    ok(c, "osd", "pool", "set", "cli_del", "nodelete", "true")
    epoch = osd_epoch(c)
    res = ceph(c, "osd", "pool", "delete", "cli_del", "cli_del", "--yes-i-really-really-mean-it")
    assert (res.rc, res.err) == (1, "Error EPERM: pool deletion is disabled; you must unset nodelete flag for "
                                    "the pool first\n")
    assert pool_names(c) == before and osd_epoch(c) == epoch
    ok(c, "osd", "pool", "set", "cli_del", "nodelete", "false")
    res = ok(c, "osd", "pool", "delete", "cli_del", "cli_del", "--yes-i-really-really-mean-it")
    assert (res.out, res.err) == ("", "pool 'cli_del' removed\n")
    assert pool_names(c) == [p for p in before if p != "cli_del"]
    res = ok(c, "osd", "pool", "rm", "cli_del", "cli_del", "--yes-i-really-really-mean-it")
    assert (res.out, res.err) == ("", "pool 'cli_del' does not exist\n")
    res = ok(c, "osd", "pool", "rm", "cli_other", "cli_other", "--yes-i-really-really-mean-it")
    assert res.err == "pool 'cli_other' removed\n"
    # A new pool of the same name is a new, empty pool with a new id.
    ok(c, "osd", "pool", "create", "cli_del", "4")
    with c.admin() as admin:
        admin.loop.run(admin.client.wait_for_latest_map())
        pool = admin.client.pool_by_name("cli_del")
        assert pool is not None
        b = OpBuilder()
        b.add("read", off=0, len=0)
        assert admin.loop.run(admin.client.operate(pool.id, "keep", b), timeout=30).result == -2
    ok(c, "osd", "pool", "rm", "cli_del", "cli_del", "--yes-i-really-really-mean-it")


def test_pool_delete_disabled_without_mon_allow_pool_delete(tmp_path: Path) -> None:
    c = TestCluster(str(tmp_path / "nodelete"), osds=3)
    c.start()  # no `mon allow pool delete`: the default (false) applies
    try:
        ok(c, "osd", "pool", "create", "cli_keep", "4")
        epoch = osd_epoch(c)
        res = ceph(c, "osd", "pool", "delete", "cli_keep", "cli_keep", "--yes-i-really-really-mean-it")
        assert (res.rc, res.out) == (1, "")
        assert res.err == ("Error EPERM: pool deletion is disabled; you must first set the "
                           "mon_allow_pool_delete config option to true before you can destroy a pool\n")
        # The confirmation check comes first, as in Ceph.
        res = ceph(c, "osd", "pool", "delete", "cli_keep")
        assert res.rc == 1 and "pass the pool name *twice*" in res.err
        assert pool_names(c) == ["cli_keep"] and osd_epoch(c) == epoch
    finally:
        c.down()


def test_openstack_guide_pool_flow(fresh_cluster: TestCluster) -> None:
    c = fresh_cluster
    for pool in ("volumes", "images", "backups", "vms"):
        res = ceph(c, "osd", "pool", "create", pool, "128")
        assert (res.rc, res.out, res.err) == (0, "", f"pool '{pool}' created\n"), res.err
    res = ceph(c, "osd", "pool", "create", "vms", "128")
    assert (res.rc, res.out, res.err) == (0, "", "pool 'vms' already exists\n")
    assert ok(c, "osd", "pool", "ls").out == "volumes\nimages\nbackups\nvms\n"
    for pool in ("volumes", "images", "backups", "vms"):
        ok(c, "osd", "pool", "application", "enable", pool, "rbd")
    c.wait_healthy(3, 60)
    status = ok(c, "status", "--format", "json").json()
    assert status["pgmap"]["num_pgs"] == 512
    assert status["pgmap"]["pgs_by_state"] == [{"state_name": "active+clean", "count": 512}]
    assert ok(c, "health").out == "HEALTH_OK\n"
    assert "    pgs:     512 active+clean" in ok(c, "-s").out.split("\n")
    # Past mon_max_pg_per_osd: Ceph's ERANGE, with its double space after the colon, exit 34.
    epoch = osd_epoch(c)
    res = ceph(c, "osd", "pool", "create", "toomany", "512")
    assert res.rc == 34, res.err
    assert re.fullmatch(r"Error ERANGE:  pg_num 512 size 3 would mean \d+ total pgs, which exceeds max \d+ "
                        r"\(mon_max_pg_per_osd \d+ \* num_in_osds 3\)\n", res.err), res.err
    assert osd_epoch(c) == epoch and "toomany" not in pool_names(c)


# -- bad input through the CLI ----------------------------------------------------------------------

BAD_COMMANDS: list[tuple[list[str], int, str]] = [
    (["osd", "pool", "get", "cli_nosuch", "size"], 2, "Error ENOENT: unrecognized pool 'cli_nosuch'\n"),
    (["osd", "pool", "set", "cli_nosuch", "size", "2"], 2, "Error ENOENT: unrecognized pool 'cli_nosuch'\n"),
    (["osd", "pool", "get-quota", "cli_nosuch"], 2, "Error ENOENT: unrecognized pool 'cli_nosuch'\n"),
    (["osd", "pool", "set-quota", "cli_nosuch", "max_objects", "1"], 2,
     "Error ENOENT: unrecognized pool 'cli_nosuch'\n"),
    (["osd", "pool", "application", "enable", "cli_nosuch", "rbd"], 2,
     "Error ENOENT: unrecognized pool 'cli_nosuch'\n"),
    (["osd", "pool", "application", "get", "cli_nosuch"], 2, "Error ENOENT: unrecognized pool 'cli_nosuch'\n"),
    (["osd", "map", "cli_nosuch", "obj1"], 2, "Error ENOENT: pool cli_nosuch does not exist\n"),
    (["osd", "pool", "create", "cli_neg", "-1"], 22, "Error EINVAL: "),
    (["osd", "pool", "create", "cli_neg", "8", "-3"], 22, "Error EINVAL: "),
    (["osd", "pool", "create", "cli_neg", "8", "16"], 34, "Error ERANGE: "),
    (["osd", "pool", "create", "cli_neg", "abc"], 22, "Invalid command: "),
    (["osd", "pool", "set", POOL, "size", "-1"], 22, "Error EINVAL: "),
    (["osd", "pool", "set", POOL, "size", "abc"], 22, "Error EINVAL: "),
    (["osd", "pool", "set", POOL, "min_size", "7"], 22, "Error EINVAL: "),
    (["osd", "pool", "set", POOL, "pg_num", "-5"], 34, "Error ERANGE: "),
    (["osd", "pool", "set", POOL, "nosuchvar", "1"], 22, "Error EINVAL: "),
    (["osd", "pool", "get", POOL, "nosuchvar"], 22, "Error EINVAL: "),
    (["osd", "pool", "set-quota", POOL, "max_bytes", "lots"], 22, "Error EINVAL: "),
    (["osd", "pool", "set-quota", POOL, "max_files", "1"], 22, "Invalid command: "),
    (["osd", "out", "abc"], 22, "Error EINVAL: "),
    (["osd", "pool", "create"], 22, "Invalid command: missing required parameter pool"),
    (["osd", "pool", "ls", "extra"], 22, "Invalid command: "),
    (["foo", "bar"], 22, "no valid command found"),
    (["osd", "frobnicate"], 22, "no valid command found"),
    (["osd", "pool", "frobnicate", POOL], 22, "no valid command found"),
]


def test_bad_input_is_refused_and_changes_nothing(data_cluster: TestCluster) -> None:
    c = data_cluster
    before_pools = ok(c, "osd", "pool", "ls", "detail", "--format", "json").json()
    before_epoch = osd_epoch(c)
    failures = []
    for args, rc, err in BAD_COMMANDS:
        res = ceph(c, *args)
        if res.rc != rc or not res.err.startswith(err) or res.out != "":
            failures.append(f"ceph {' '.join(args)}: exit {res.rc} (want {rc}), stdout {res.out!r}, "
                            f"stderr {res.err!r} (want {err!r}...)")
        if err.startswith(("no valid command found", "Invalid command")):
            # Ceph lists the closest signatures, then the final EINVAL line.
            lines = res.err.rstrip("\n").split("\n")
            if lines[-1] != "Error EINVAL: invalid command" or len(lines) < 3:
                failures.append(f"ceph {' '.join(args)}: stderr {res.err!r}")
    assert failures == []
    assert osd_epoch(c) == before_epoch
    assert ok(c, "osd", "pool", "ls", "detail", "--format", "json").json() == before_pools


def test_unknown_command_names_the_closest_matches(data_cluster: TestCluster) -> None:
    res = ceph(data_cluster, "osd", "pool", "frobnicate")
    assert res.rc == 22 and res.out == ""
    lines = res.err.rstrip("\n").split("\n")
    assert lines[0] == "no valid command found; 10 closest matches:"
    assert len(lines) == 12 and all(line.startswith("osd pool ") for line in lines[1:11])
    assert "osd pool create <pool> [<pg_num>] [<pgp_num>] [replicated|erasure]" in lines
    assert lines[-1] == "Error EINVAL: invalid command"


def test_wrong_key_fails_fast_with_eacces(data_cluster: TestCluster, tmp_path: Path) -> None:
    """Real Ceph: `[errno 13] RADOS permission denied (error connecting to the cluster)`, in milliseconds."""
    keyring = tmp_path / "wrong.keyring"
    write_keyring(str(keyring), [Entry("client.admin", CryptoKey.generate(), {})])
    started = time.monotonic()
    res = ceph(data_cluster, "-s", "--keyring", str(keyring), "--client_mount_timeout", "5")
    took = time.monotonic() - started
    assert (res.rc, res.out) == (13, ""), res.err
    assert res.err.startswith("[errno 13] RADOS permission denied (error connecting to the cluster"), res.err
    assert took < 4, f"took {took:.1f}s"


def test_raw_mon_command_errors(data_cluster: TestCluster) -> None:
    """What python-rados' mon_command gets for commands the CLI would never send."""
    with data_cluster.admin() as admin:
        epoch = osd_epoch(data_cluster)
        assert admin.command({"prefix": "no such thing"}) == (-22, b"", "command not known")
        assert admin.command({"prefix": 5})[0] == -22  # type: ignore[dict-item]
        ret, _, outs = admin.command({"prefix": "osd pool create", "pool": "cli_raw", "pg_num": "many"})
        assert ret == -22, outs
        ret, _, outs = admin.command({"prefix": "osd pool create", "pool": "cli_raw", "pg_num": -8})
        assert ret == -22, outs
        ret, _, outs = admin.command({"prefix": "osd pool create"})
        assert ret == -22, outs
        ret, _, outs = admin.command({"prefix": "osd pool get", "pool": POOL, "var": {"size": 1}})
        assert ret == -22, outs
        assert osd_epoch(data_cluster) == epoch


# -- osd down / out / in (a cluster of its own) --------------------------------------------------------

def _osd_state(c: TestCluster, osd: int) -> tuple[bool, bool]:
    dump = ok(c, "osd", "dump", "--format", "json").json()
    entry = next(o for o in dump["osds"] if o["osd"] == osd)
    return bool(entry["up"]), bool(entry["in"])


def test_osd_out_in(fresh_cluster: TestCluster) -> None:
    c = fresh_cluster
    ok(c, "osd", "pool", "create", "cli_oi", "8")
    c.wait_healthy(3, 30)
    res = ok(c, "osd", "out", "1")
    assert (res.out, res.err) == ("", "marked out osd.1. \n")
    assert _osd_state(c, 1) == (True, False)
    assert re.fullmatch(r"3 osds: 3 up \(since \S+\), 2 in \(since \S+\); epoch: e\d+\n", ok(c, "osd", "stat").out)
    tree = ok(c, "osd", "tree").out.split("\n")
    assert re.fullmatch(r" 1    hdd  [\d.]+          osd\.1      up         0  1\.00000", tree[4]), tree[4]
    epoch = osd_epoch(c)
    res = ok(c, "osd", "out", "1")
    assert res.err == "osd.1 is already out. \n" and osd_epoch(c) == epoch
    # With only two OSDs in, size-3 PGs map to two OSDs.
    doc = ok(c, "osd", "map", "cli_oi", "x", "--format", "json").json()
    assert 1 not in doc["up"]
    res = ok(c, "osd", "in", "osd.1")
    assert res.err == "marked in osd.1. \n"
    assert _osd_state(c, 1) == (True, True)
    c.wait_healthy(3, 30)
    res = ok(c, "osd", "down", "7")
    assert res.err == "osd.7 does not exist. \n"


def test_osd_down(fresh_cluster: TestCluster) -> None:
    c = fresh_cluster
    ok(c, "osd", "pool", "create", "cli_down", "8")
    ok(c, "osd", "pool", "application", "enable", "cli_down", "rbd")
    c.wait_healthy(3, 30)
    # A live OSD marked down boots again at once (as in Ceph): stop it so it stays down.
    c.kill("osd.2", signal.SIGSTOP)
    res = ok(c, "osd", "down", "2")
    assert (res.out, res.err) == ("", "marked down osd.2. \n")
    doc = ok(c, "health", "detail", "--format", "json").json()
    assert doc["status"] == "HEALTH_WARN" and "OSD_DOWN" in doc["checks"]
    assert key_diff(doc, fixture_json("ceph-health-detail-warn")) == []
    assert key_diff(ok(c, "status", "--format", "json").json(), fixture_json("ceph-status-warn")) == []
    detail = ok(c, "health", "detail").out.split("\n")
    assert detail[0].startswith("HEALTH_WARN ") and "[WRN] OSD_DOWN: 1 osds down" in detail
    c.kill("osd.2", signal.SIGCONT)


def test_osd_marked_down_by_command_comes_back_up(fresh_cluster: TestCluster) -> None:
    """Ceph's `ceph osd down N` on a live OSD: it notices and boots again within seconds."""
    c = fresh_cluster
    ok(c, "osd", "down", "0")
    wait_for(lambda: _osd_state(c, 0)[0], 6, "osd.0 to be up again after `ceph osd down 0`")

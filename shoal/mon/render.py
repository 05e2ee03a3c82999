"""Ceph's plain-text output of monitor commands, rendered from their JSON documents.

`render_plain(prefix, cmd, data)` returns exactly what `ceph <command>` prints on stdout when no
`--format` is given; `data` is the document the command returns with `--format json` (the shapes
of `shared/reference/fixtures/json/ceph-*.json`). `status_line(prefix, data, cmd)` returns what
Ceph prints on stderr next to it ("dumped monmap epoch 1"), or None. Unknown prefixes fall back to
JSON indented by 4, as Ceph does for commands that have no plain form.

Keys a document may carry beyond Ceph's JSON (a plain renderer needs them; JSON output must not
show them; the monitor adds them only when the client asked for plain text):

* `_now` (epoch seconds, float): "now" for every age. Taken from `cmd["_now"]`, else `data["_now"]`,
  else the local clock. Used by `status`, `osd stat` ("up (since 107s)" = now - osd_up_since, also a
  real key; Shoal may send fractional seconds) and mute ttls in `health`/`status`.
* `status`: `osdmap.flags` (comma string or list, as in `osd dump`; `sortbitwise` and the other
  always-set flags are dropped) for the "flags noout" line; `mgrmap.active_name`,
  `mgrmap.active_since` (epoch s) and `mgrmap.standbys` (names) for the "mgr:" line, which is left
  out when there is no `active_name` (Shoal has no mgr); `monmap.out_of_quorum` (names).
  `quorum_age` is Ceph's own key. The "io:" section appears only when a pgmap rate
  (`read_bytes_sec`, `write_bytes_sec`, `read_op_per_sec`, `write_op_per_sec`,
  `recovering_*_per_sec`) is non-zero.
* `osd stat`: `flags`, as for `status`.
* `df`: each pool's PG count as `_pg_num` (or `pg_num`).
* `osd pool ls detail`: either Ceph's list of pools, each with an optional `removed_snaps_queue`
  (the osd dump's [{"begin", "length"}] list), or {"pools": [...], "removed_snaps_queue": [...]}
  shaped like `osd dump`.
* `osd tree`: a bucket may carry `crush_weight`; otherwise its weight is the sum of its items'.
* `mon stat`: `_mon_addrs` ({name: {"addrvec": [...]}}) and `_election_epoch`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from shoal.mon.render_auth import auth_get_status, render_auth_key, render_auth_ls, render_keyring
from shoal.mon.render_df import render_df
from shoal.mon.render_monmap import (
    mon_dump_status,
    render_fsid,
    render_mon_dump,
    render_mon_stat,
    render_version,
)
from shoal.mon.render_osdmap import (
    render_application_get,
    render_osd_dump,
    render_osd_ls,
    render_osd_map,
    render_pool_get,
    render_pool_ls,
    render_pool_quota,
)
from shoal.mon.render_status import (
    now_of,
    render_health,
    render_osd_stat,
    render_pg_stat,
    render_status,
)
from shoal.mon.render_tree import render_osd_df, render_osd_tree

Renderer = Callable[[Mapping[str, Any], Any], str]


def _detail(cmd: Mapping[str, Any]) -> bool:
    value = cmd.get("detail")
    return value is True or value == "detail"


_RENDERERS: dict[str, Renderer] = {
    "status": lambda cmd, d: render_status(d, now_of(cmd, d)),
    "health": lambda cmd, d: render_health(d, _detail(cmd), now_of(cmd, d)),
    "df": lambda cmd, d: render_df(d, _detail(cmd)),
    "pg stat": lambda cmd, d: render_pg_stat(d),
    "osd stat": lambda cmd, d: render_osd_stat(d, now_of(cmd, d)),
    "osd tree": lambda cmd, d: render_osd_tree(d),
    "osd df": lambda cmd, d: render_osd_df(d),
    "osd dump": lambda cmd, d: render_osd_dump(d),
    "osd ls": lambda cmd, d: render_osd_ls(d),
    "osd map": lambda cmd, d: render_osd_map(d),
    "osd pool ls": lambda cmd, d: render_pool_ls(d, _detail(cmd)),
    "osd lspools": lambda cmd, d: "".join(f"{p['poolnum']} {p['poolname']}\n" for p in d),
    "osd pool get": lambda cmd, d: render_pool_get(d),
    "osd pool get-quota": lambda cmd, d: render_pool_quota(d),
    "osd pool application get": lambda cmd, d: render_application_get(d),
    "mon dump": lambda cmd, d: render_mon_dump(d),
    "mon stat": lambda cmd, d: render_mon_stat(d),
    "fsid": lambda cmd, d: render_fsid(d),
    "version": lambda cmd, d: render_version(d),
    "auth get": lambda cmd, d: render_keyring(d, with_caps=True),
    "auth export": lambda cmd, d: render_keyring(d, with_caps=True),
    "auth get-or-create": lambda cmd, d: render_keyring(d, with_caps=False),
    "auth ls": lambda cmd, d: render_auth_ls(d),
    "auth list": lambda cmd, d: render_auth_ls(d),
    "auth get-key": lambda cmd, d: render_auth_key(d),
    "auth print-key": lambda cmd, d: render_auth_key(d),
}
_ALIASES = {"s": "status", "auth print_key": "auth print-key"}


def json_fallback(data: Any) -> str:
    return json.dumps(data, indent=4) + "\n"


def render_plain(prefix: str, cmd: Mapping[str, Any] | None, data: Any) -> str:
    """Exactly the stdout of `ceph <prefix ...>` without `--format`, from the command's JSON document."""
    prefix = _ALIASES.get(prefix, prefix)
    renderer = _RENDERERS.get(prefix)
    if renderer is None:
        return json_fallback(data)
    return renderer(cmd or {}, data)


def status_line(prefix: str, data: Any, cmd: Mapping[str, Any] | None = None) -> str | None:
    """What Ceph writes to stderr beside the output (newline included), or None.

    `mon dump` and `auth get` print it in every format; `auth ls` only in plain mode.
    """
    prefix = _ALIASES.get(prefix, prefix)
    if prefix == "mon dump":
        return mon_dump_status(data)
    if prefix in ("auth get", "auth export"):
        return auth_get_status(data) or None
    if prefix in ("auth ls", "auth list"):
        wants_json = str((cmd or {}).get("format", "plain")).startswith("json")
        return None if wants_json else "installed auth entries:\n"
    return None

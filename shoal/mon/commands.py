"""The monitor's `mon_command` handlers, as pure functions of the monitor state.

`handle_command(state, cmd, now)` answers one `{"prefix": ..., ...}` command with the
same prefixes, argument names, errno results and status lines (`outs`) as Ceph 16's
monitor, so python-rados `mon_command` callers and the `ceph` CLI work unchanged. It
never mutates `state`: a command that changes the OSD map returns the next epoch in
`CommandResult.new_osdmap` (a modified copy, epoch + 1, `modified = now`) for the daemon
to commit and publish; errors leave it None.

`command_data(state, cmd, now)` returns the result plus the data document; then
`handle_command` formats it. With `"format": "json"` the outbuf is compact JSON with
exactly the key layout of Ceph's output (see `shared/reference/fixtures/json/`);
`json-pretty` indents by 4. Without a JSON format the data goes to
`shoal.mon.render.render_plain(prefix, cmd, data)` (pretty JSON if that module cannot be
imported); commands Ceph answers in json-pretty by default (`osd pool application get`,
`versions`) are pretty JSON in plain mode too, and str data is sent as it is. The `ceph` CLI prints a `\\n` before any JSON output;
the trailing newline Ceph's CLI shows for some commands is part of outbuf here.

Prefix → data (None = status line only). "plain extras" are keys added only when no
JSON format was asked, for what plain text shows but Ceph's JSON lacks:

  status            {fsid, health{status,checks,mutes}, election_epoch, quorum[int],
                     quorum_names[str], quorum_age, monmap{epoch,min_mon_release_name,num_mons},
                     osdmap{epoch,num_osds,num_up_osds,osd_up_since,num_in_osds,osd_in_since,
                     num_remapped_pgs}, pgmap{pgs_by_state[{state_name,count}], num_pgs, num_pools,
                     num_objects, data_bytes, bytes_used, bytes_avail, bytes_total,
                     [unknown_pgs_ratio], [inactive_pgs_ratio], [read_bytes_sec], [write_bytes_sec],
                     [read_op_per_sec, write_op_per_sec]}, fsmap, mgrmap, servicemap, progress_events}
                     plain extras: _now (float, for "since" ages)
  health            {status, checks{CODE: {severity, summary{message,count}, [detail[{message}]],
                     muted}}, mutes[]}; detail lines only with "detail": "detail"
  df                {stats{total_bytes,total_avail_bytes,total_used_bytes,total_used_raw_bytes,
                     total_used_raw_ratio,num_osds,num_per_pool_osds,num_per_pool_omap_osds},
                     stats_by_class{hdd{first five of stats}}, pools[{name,id,stats{stored,objects,
                     kb_used,bytes_used,percent_used,max_avail}}]}; "detail" adds the per-pool
                     fields of ceph-df-detail.json. plain extras: pools[]._pg_num
  pg stat           {pg_ready, pg_summary{num_pg_by_state[{name,num}], num_pgs, num_bytes,
                     total_bytes, total_avail_bytes, total_used_bytes, total_used_raw_bytes}}
  fsid              {fsid}                       (plain: the fsid alone)
  mon dump          ceph-mon-dump.json layout; outs "dumped monmap epoch N"
  mon stat          {epoch, min_mon_release_name, num_mons, leader, quorum[{rank,name}]}
  version           {version: "ceph version 16.2.15 (shoal) pacific (stable)"}
  versions          {mon{version: n}, mgr{}, osd{version: n}, mds{}, overall{version: n}}
  osd tree          {nodes[root, hosts, osds], stray[]} (ceph-osd-tree.json layout)
  osd stat          osdmap section of status; plain extras: _now
  osd dump          ceph-osd-dump.json layout
  osd ls            [osd id, ...]                (plain: one id per line)
  osd df            {nodes[{id,device_class,name,type,type_id,crush_weight,depth,pool_weights,
                     reweight,kb,kb_used,kb_used_data,kb_used_omap,kb_used_meta,kb_avail,
                     utilization,var,pgs,status}], stray[], summary{total_kb,...,dev}}
  osd map           {epoch,pool,pool_id,objname,raw_pgid,pgid,up,up_primary,acting,acting_primary}
  osd blocklist add|rm|ls|clear (and `osd blacklist …`): see `shoal.mon.commands_blocklist`
  osd down|out|in   None; outs "marked down osd.0. " (per id; "osd.9 does not exist. ")
  osd lspools       [{poolnum, poolname}]
  osd pool ls       [pool name, ...]; with "detail": [{pool_id, pool_name, <pg_pool_t dump>}]
                     (ceph-osd-pool-ls-detail.json). Plain `ls detail` data is instead
                     {pools[<osd dump pool entries>], removed_snaps_queue[]} (as in osd dump)
  osd pool get      {pool, pool_id, <var>: value, ...} (all vars for "all"; plain "var: value")
  osd pool get-quota {pool_name, pool_id, quota_max_objects, current_num_objects,
                     quota_max_bytes, current_num_bytes}
  osd pool application get  {app: {key: value}} for a pool; {pool: {app: {...}}} with no pool;
                     {key: value} with app; the bare value + "\\n" (a str) with app and key
  osd pool create | delete | rm | rename | set | set-quota | application enable | disable |
  set | rm          None; outs as Ceph ("pool 'x' created", "set pool 2 size to 3", ...)

  auth ...          answered by `shoal.mon.commands_auth` from the `auth_db` and `inbuf`
                     given to `handle_command`; the result is an `AuthCommandResult` whose
                     `new_auth_db` is the changed database to persist (None: unchanged)

Unknown prefixes get -EINVAL and Ceph's monitor answer "command not known".
"""

from __future__ import annotations

import errno
from typing import Any

from shoal.mon import commands_blocklist, commands_cluster, commands_osd, commands_pools, commands_poolset
from shoal.mon.auth_db import AuthDB
from shoal.mon.commands_auth import AUTH_PREFIXES, auth_command_result
from shoal.mon.commands_common import CommandError, Handler, Request, encode_json, reply
from shoal.mon.state import CommandResult, MonState

HANDLERS: dict[str, Handler] = {
    **commands_cluster.HANDLERS,
    **commands_osd.HANDLERS,
    **commands_pools.HANDLERS,
    **commands_poolset.HANDLERS,
    **commands_blocklist.HANDLERS,
}

# Compact JSON Ceph's CLI prints with a final newline (the others end without one).
_TRAILING_NEWLINE = frozenset({"status", "df", "mon dump", "osd dump", "osd tree", "osd pool get-quota"})
# Commands Ceph answers in json-pretty when no format is given.
_PRETTY_BY_DEFAULT = frozenset({"osd pool application get", "versions"})


def command_data(state: MonState, cmd: dict[str, Any], now: float) -> tuple[CommandResult, Any]:
    """Run one command: its result (ret, outs, new map) and its data document."""
    prefix = cmd.get("prefix")
    if not isinstance(prefix, str):
        return reply(ret=-errno.EINVAL, outs="command not known")
    handler = HANDLERS.get(prefix)
    if handler is None:
        return reply(ret=-errno.EINVAL, outs="command not known")
    try:
        return handler(Request(state, cmd, now))
    except CommandError as e:
        return reply(ret=e.ret, outs=e.outs)


def handle_command(
    state: MonState, cmd: dict[str, Any], now: float, *, auth_db: AuthDB | None = None, inbuf: bytes = b""
) -> CommandResult:
    """Run one command and put its data, formatted as asked, in `outbuf`."""
    prefix = cmd.get("prefix")
    if isinstance(prefix, str) and prefix in AUTH_PREFIXES:
        return auth_command_result(auth_db, cmd, inbuf, now)
    result, data = command_data(state, cmd, now)
    if data is None or result.ret < 0:
        return result
    prefix = str(cmd.get("prefix"))
    fmt = cmd.get("format")
    if fmt in ("json", "json-pretty"):
        result.outbuf = encode_json(data, fmt == "json-pretty", prefix in _TRAILING_NEWLINE)
    elif isinstance(data, str):
        result.outbuf = data.encode("utf-8")
    elif prefix in _PRETTY_BY_DEFAULT:
        result.outbuf = encode_json(data, pretty=True)
    else:
        result.outbuf = _plain(prefix, cmd, data)
    return result


def _plain(prefix: str, cmd: dict[str, Any], data: Any) -> bytes:
    try:
        from shoal.mon.render import render_plain
    except ImportError:
        return encode_json(data, pretty=True)
    return render_plain(prefix, cmd, data).encode("utf-8")

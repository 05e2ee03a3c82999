"""Pool lifecycle commands: create, delete, rename, list, quotas, applications."""

from __future__ import annotations

import errno
import re
from typing import Any

from shoal.mon.commands_common import (
    CommandError,
    Handler,
    Reply,
    Request,
    next_map,
    parse_iec,
    parse_si,
    reply,
)
from shoal.mon.commands_pooldump import (
    AUTOSCALE_KEY,
    FLAG_BY_NAME,
    RULE_NAME,
    pool_for_ls_detail,
    pool_for_osd_dump,
    removed_snaps_queue,
)
from shoal.mon.commands_stats import pool_usage
from shoal.placement.osdmap import FLAG_SELFMANAGED_SNAPS, Pool

MAX_POOL_APPLICATIONS = 4
MAX_POOL_APPLICATION_LENGTH = 128
_APP_NAME = re.compile(r"[A-Za-z0-9_.-]+")


# -- helpers shared with commands_poolset ---------------------------------------------

def lookup_pool(req: Request, arg: str = "pool") -> Pool:
    """The pool named by `arg`, or ENOENT with Ceph's `unrecognized pool 'x'`."""
    name = req.str_arg(arg) or ""
    pool = req.osdmap.pool_by_name(name)
    if pool is None:
        raise CommandError(errno.ENOENT, f"unrecognized pool '{name}'")
    return pool


def default_min_size(req: Request, size: int) -> int:
    configured = int(req.conf("osd_pool_default_min_size"))
    return min(configured, size) if configured else size - size // 2


def check_pg_num(req: Request, pool_id: int | None, pg_num: int, size: int) -> None:
    """ERANGE if the cluster would hold more PG replicas than mon_max_pg_per_osd allows.

    Counts every pool's pg_num x size (with `pg_num`/`size` for the pool being created or
    changed) against mon_max_pg_per_osd x max(in OSDs, 3), as Ceph 16 does.
    """
    per_osd = int(req.conf("mon_max_pg_per_osd"))
    num_in = max(req.osdmap.num_in(), 3)
    limit = per_osd * num_in
    projected = 0 if pool_id is not None else pg_num * size
    for pool in req.osdmap.pools.values():
        projected += pg_num * size if pool.id == pool_id else pool.pg_num * pool.size
    if projected > limit:
        who = f"pool id {pool_id}" if pool_id is not None else ""
        raise CommandError(errno.ERANGE,
                           f"{who} pg_num {pg_num} size {size} would mean {projected} total pgs, "
                           f"which exceeds max {limit} (mon_max_pg_per_osd {per_osd} * num_in_osds {num_in})")


def check_max_pool_pg_num(req: Request, pg_num: int) -> None:
    limit = int(req.conf("mon_max_pool_pg_num"))
    if pg_num <= 0 or pg_num > limit:
        raise CommandError(errno.ERANGE,
                           f"'pg_num' must be greater than 0 and less than or equal to {limit} "
                           "(you may adjust 'mon max pool pg num' for higher values)")


# -- create / delete / rename ------------------------------------------------------------

def _non_negative(req: Request, name: str, default: int) -> int:
    value = req.int_arg(name, default)
    assert value is not None
    if value < 0:
        raise CommandError(errno.EINVAL, f"invalid value for '{name}': {value} is negative")
    return value


def _create_rule(req: Request) -> None:
    rule = req.str_arg("rule") or ""
    # The ceph CLI's positional parsing puts a replicated pool's rule name into
    # `erasure_code_profile` (and expected_num_objects into `rule`).
    if req.str_arg("erasure_code_profile"):
        rule = req.str_arg("erasure_code_profile") or ""
    if rule and rule != RULE_NAME:
        raise CommandError(errno.ENOENT, f"specified rule {rule} doesn't exist")


def _new_pool_options(req: Request) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name in ("pg_num_min", "pg_num_max", "target_size_bytes"):
        value = _non_negative(req, name, 0)
        if value:
            options[name] = value
    ratio = req.str_arg("target_size_ratio")
    if ratio:
        try:
            options["target_size_ratio"] = float(ratio)
        except ValueError:
            raise CommandError(errno.EINVAL, f"invalid value for 'target_size_ratio': '{ratio}'") from None
    mode = req.str_arg("autoscale_mode")
    if mode:
        if mode not in ("on", "off", "warn"):
            raise CommandError(errno.EINVAL, f"invalid autoscale_mode '{mode}'")
        options[AUTOSCALE_KEY] = mode
    return options


def _pool_create(req: Request) -> Reply:
    name = req.required_str("pool", "<poolname>")
    pg_num = _non_negative(req, "pg_num", 0)
    pgp_num = _non_negative(req, "pgp_num", pg_num)
    pool_type = req.str_arg("pool_type") or str(req.conf("osd_pool_default_type"))
    if name.startswith(".") and not req.bool_arg("yes_i_really_mean_it"):
        return reply(outs="pool names beginning with . are not allowed")
    existing = req.osdmap.pool_by_name(name)
    if existing is not None:
        if pool_type != "replicated":
            raise CommandError(errno.EINVAL, f"pool '{name}' cannot change to type {pool_type}")
        return reply(outs=f"pool '{name}' already exists")
    if pool_type == "erasure":
        raise CommandError(errno.EOPNOTSUPP, "erasure-coded pools are not supported; create a replicated pool")
    if pool_type != "replicated":
        raise CommandError(errno.EINVAL, f"unknown pool type '{pool_type}'")
    _create_rule(req)
    options = _new_pool_options(req)
    pg_num = pg_num or int(req.conf("osd_pool_default_pg_num"))
    pgp_num = pgp_num or int(req.conf("osd_pool_default_pgp_num")) or pg_num
    check_max_pool_pg_num(req, pg_num)
    if pgp_num > pg_num:
        raise CommandError(errno.ERANGE, "'pgp_num' must be greater than 0 and lower or equal than 'pg_num'"
                                         f", which in this case is {pg_num}")
    size = _non_negative(req, "size", 0) or int(req.conf("osd_pool_default_size"))
    check_pg_num(req, None, pg_num, size)
    new = next_map(req)
    pool_id = req.osdmap.pool_max + 1
    new.pools[pool_id] = Pool(
        id=pool_id, name=name, size=size, min_size=default_min_size(req, size),
        pg_num=pg_num, pgp_num=pgp_num, crush_rule=0, flags=_default_flags(req),
        create_time=req.now, last_change=new.epoch, options=options,
    )
    new.pool_max = pool_id
    return reply(outs=f"pool '{name}' created", new_osdmap=new)


def _default_flags(req: Request) -> int:
    flags = 0
    for name in ("hashpspool", "nodelete", "nopgchange", "nosizechange"):
        if req.conf(f"osd_pool_default_flag_{name}"):
            flags |= FLAG_BY_NAME[name]
    return flags


def _delete_confirmed(req: Request) -> bool:
    if req.bool_arg("yes_i_really_really_mean_it") or req.bool_arg("yes_i_really_really_mean_it_not_faking"):
        return True
    # Older CLIs send the flag as `sure`.
    return req.str_arg("sure") in ("--yes-i-really-really-mean-it", "--yes-i-really-really-mean-it-not-faking")


def _pool_delete(req: Request) -> Reply:
    name = req.str_arg("pool") or ""
    pool = req.osdmap.pool_by_name(name)
    if pool is None:
        return reply(outs=f"pool '{name}' does not exist")
    if (req.str_arg("pool2") or "") != name or not _delete_confirmed(req):
        raise CommandError(errno.EPERM,
                           f"WARNING: this will *PERMANENTLY DESTROY* all data stored in pool {name}.  "
                           "If you are *ABSOLUTELY CERTAIN* that is what you want, pass the pool name *twice*, "
                           "followed by --yes-i-really-really-mean-it.")
    if not req.conf("mon_allow_pool_delete"):
        raise CommandError(errno.EPERM,
                           "pool deletion is disabled; you must first set the mon_allow_pool_delete "
                           "config option to true before you can destroy a pool")
    if pool.flags & FLAG_BY_NAME["nodelete"]:
        raise CommandError(errno.EPERM,
                           "pool deletion is disabled; you must unset nodelete flag for the pool first")
    new = next_map(req)
    del new.pools[pool.id]
    return reply(outs=f"pool '{name}' removed", new_osdmap=new)


def _pool_rename(req: Request) -> Reply:
    src = req.required_str("srcpool", "<poolname>")
    dst = req.required_str("destpool", "<poolname>")
    if dst.startswith(".") and not req.bool_arg("yes_i_really_mean_it"):
        return reply(outs="pool names beginning with . are not allowed")
    pool = req.osdmap.pool_by_name(src)
    dst_exists = req.osdmap.pool_by_name(dst) is not None
    if pool is None:
        if dst_exists:
            return reply(outs=f"pool '{src}' does not exist; pool '{dst}' does -- assuming successful rename")
        raise CommandError(errno.ENOENT, f"unrecognized pool '{src}'")
    if dst_exists:
        raise CommandError(errno.EEXIST, f"pool '{dst}' already exists")
    new = next_map(req)
    new.pools[pool.id].name = dst
    new.pools[pool.id].last_change = new.epoch
    return reply(outs=f"pool '{src}' renamed to '{dst}'", new_osdmap=new)


# -- listing ------------------------------------------------------------------------------

def _sorted_pools(req: Request) -> list[Pool]:
    return sorted(req.osdmap.pools.values(), key=lambda p: p.id)


def _pool_ls(req: Request) -> Reply:
    pools = _sorted_pools(req)
    if req.str_arg("detail") != "detail":
        return reply([p.name for p in pools])
    if req.wants_json:
        return reply([pool_for_ls_detail(p) for p in pools])
    # Plain `ls detail` prints the pool lines of `osd dump`, which need the removed-snaps queue.
    return reply({"pools": [pool_for_osd_dump(p) for p in pools],
                  "removed_snaps_queue": removed_snaps_queue(req.osdmap.pools)})


def _lspools(req: Request) -> Reply:
    return reply([{"poolnum": p.id, "poolname": p.name} for p in _sorted_pools(req)])


# -- quotas -------------------------------------------------------------------------------

def _get_quota(req: Request) -> Reply:
    pool = lookup_pool(req)
    usage = pool_usage(req.state)[pool.id]
    return reply({
        "pool_name": pool.name,
        "pool_id": pool.id,
        "quota_max_objects": pool.quota_max_objects,
        "current_num_objects": usage.objects,
        "quota_max_bytes": pool.quota_max_bytes,
        "current_num_bytes": usage.bytes,
    })


def _set_quota(req: Request) -> Reply:
    pool = lookup_pool(req)
    field = req.str_arg("field") or ""
    if field not in ("max_objects", "max_bytes"):
        raise CommandError(errno.EINVAL, f"unrecognized field '{field}'; should be 'max_bytes' or 'max_objects'")
    val = req.str_arg("val") or ""
    try:
        value = parse_si(val) if field == "max_objects" else parse_iec(val)
    except ValueError as e:
        raise CommandError(errno.EINVAL, f"error parsing value '{val}': {e}") from None
    new = next_map(req)
    target = new.pools[pool.id]
    setattr(target, f"quota_{field}", value)
    target.last_change = new.epoch
    return reply(outs=f"set-quota {field} = {value} for pool {pool.name}", new_osdmap=new)


# -- applications ---------------------------------------------------------------------------

def _app_changed(req: Request, pool: Pool, apps: dict[str, dict[str, str]], outs: str) -> Reply:
    if apps == pool.application:
        return reply(outs=outs)
    new = next_map(req)
    new.pools[pool.id].application = apps
    new.pools[pool.id].last_change = new.epoch
    return reply(outs=outs, new_osdmap=new)


def _copy_apps(pool: Pool) -> dict[str, dict[str, str]]:
    return {app: dict(meta) for app, meta in pool.application.items()}


def _app_enable(req: Request) -> Reply:
    pool = lookup_pool(req)
    app = req.str_arg("app") or ""
    if not app:
        raise CommandError(errno.EINVAL, "application name must be provided")
    if not _APP_NAME.fullmatch(app):
        raise CommandError(errno.EINVAL, f"invalid application name '{app}': use letters, digits, '-', '_', '.'")
    apps = _copy_apps(pool)
    if app not in apps:
        if apps and not req.bool_arg("yes_i_really_mean_it"):
            raise CommandError(errno.EPERM, f"Are you SURE? Pool '{pool.name}' already has an enabled "
                                            "application; pass --yes-i-really-mean-it to proceed anyway")
        if len(apps) >= MAX_POOL_APPLICATIONS:
            raise CommandError(errno.EINVAL, f"too many enabled applications on pool '{pool.name}'; "
                                             f"max {MAX_POOL_APPLICATIONS}")
        if len(app) > MAX_POOL_APPLICATION_LENGTH:
            raise CommandError(errno.EINVAL, f"application name '{app}' too long; max length "
                                             f"{MAX_POOL_APPLICATION_LENGTH}")
        apps[app] = {}
    return _app_changed(req, pool, apps, f"enabled application '{app}' on pool '{pool.name}'")


def _app_disable(req: Request) -> Reply:
    pool = lookup_pool(req)
    app = req.str_arg("app") or ""
    if not req.bool_arg("yes_i_really_mean_it"):
        raise CommandError(errno.EPERM, "Are you SURE? Disabling an application within a pool might result "
                                        "in loss of application functionality; pass "
                                        "--yes-i-really-mean-it to proceed anyway")
    if app not in pool.application:
        return reply(outs=f"application '{app}' is not enabled on pool '{pool.name}'")
    apps = _copy_apps(pool)
    del apps[app]
    return _app_changed(req, pool, apps, f"disable application '{app}' on pool '{pool.name}'")


def _app_key_args(req: Request, pool: Pool) -> tuple[str, str]:
    app = req.str_arg("app") or ""
    key = req.str_arg("key") or ""
    if key == "all":
        raise CommandError(errno.EINVAL, "key cannot be 'all'")
    if app not in pool.application:
        raise CommandError(errno.ENOENT, f"application '{app}' is not enabled on pool '{pool.name}'")
    if not key:
        raise CommandError(errno.EINVAL, "key must be provided")
    return app, key


def _app_set(req: Request) -> Reply:
    pool = lookup_pool(req)
    app, key = _app_key_args(req, pool)
    value = req.str_arg("value") or ""
    if value == "all":
        raise CommandError(errno.EINVAL, "value cannot be 'all'")
    if len(key) > MAX_POOL_APPLICATION_LENGTH or len(value) > MAX_POOL_APPLICATION_LENGTH:
        raise CommandError(errno.EINVAL, f"key or value too long; max length {MAX_POOL_APPLICATION_LENGTH}")
    apps = _copy_apps(pool)
    apps[app][key] = value
    return _app_changed(req, pool, apps,
                        f"set application '{app}' key '{key}' to '{value}' on pool '{pool.name}'")


def _app_rm(req: Request) -> Reply:
    pool = lookup_pool(req)
    app, key = _app_key_args(req, pool)
    if key not in pool.application[app]:
        return reply(outs=f"application '{app}' on pool '{pool.name}' does not have key '{key}'")
    apps = _copy_apps(pool)
    del apps[app][key]
    return _app_changed(req, pool, apps, f"removed application '{app}' key '{key}' on pool '{pool.name}'")


def _app_get(req: Request) -> Reply:
    name = req.str_arg("pool") or ""
    if not name:
        return reply({p.name: _copy_apps(p) for p in _sorted_pools(req)})
    pool = lookup_pool(req)
    app = req.str_arg("app") or ""
    if not app:
        return reply(_copy_apps(pool))
    if app not in pool.application:
        raise CommandError(errno.ENOENT, f"pool '{pool.name}' has no application '{app}'")
    key = req.str_arg("key") or ""
    if not key:
        return reply(dict(pool.application[app]))
    if key not in pool.application[app]:
        raise CommandError(errno.ENOENT, f"application '{app}' on pool '{pool.name}' does not have key '{key}'")
    return reply(pool.application[app][key] + "\n")



# -- self-managed snapshots (Ceph's unmanaged-snap pool ops; decision record 0005) ----------
SNAP_OP_PREFIXES = frozenset({"osd pool selfmanaged-snap create", "osd pool selfmanaged-snap remove"})


def _snap_create(req: Request) -> Reply:
    pool = lookup_pool(req)
    new = next_map(req)
    changed = new.pools[pool.id]
    changed.snap_seq += 1
    changed.flags |= FLAG_SELFMANAGED_SNAPS
    changed.last_change = new.epoch
    return reply({"snapid": changed.snap_seq}, outs=f"created snap {changed.snap_seq} in pool '{pool.name}'",
                 new_osdmap=new)


def _snap_remove(req: Request) -> Reply:
    pool = lookup_pool(req)
    snapid = req.int_arg("snapid")
    if snapid is None or snapid <= 0:
        raise CommandError(errno.EINVAL, f"invalid snap id {req.cmd.get('snapid')!r}")
    if snapid in pool.removed_snap_set():
        return reply({"snapid": snapid}, outs=f"snap {snapid} already removed")
    if snapid > pool.snap_seq:
        raise CommandError(errno.ENOENT, f"snap {snapid} does not exist in pool '{pool.name}'")
    new = next_map(req)
    changed = new.pools[pool.id]
    changed.removed_snaps = [*changed.removed_snaps, snapid]
    changed.last_change = new.epoch
    return reply({"snapid": snapid}, outs=f"removed snap {snapid} from pool '{pool.name}'", new_osdmap=new)

HANDLERS: dict[str, Handler] = {
    "osd pool create": _pool_create,
    "osd pool delete": _pool_delete,
    "osd pool rm": _pool_delete,
    "osd pool rename": _pool_rename,
    "osd pool ls": _pool_ls,
    "osd lspools": _lspools,
    "osd pool get-quota": _get_quota,
    "osd pool set-quota": _set_quota,
    "osd pool application enable": _app_enable,
    "osd pool application disable": _app_disable,
    "osd pool application set": _app_set,
    "osd pool application rm": _app_rm,
    "osd pool application get": _app_get,
    "osd pool selfmanaged-snap create": _snap_create,
    "osd pool selfmanaged-snap remove": _snap_remove,
}

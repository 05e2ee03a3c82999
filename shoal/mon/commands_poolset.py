"""`osd pool get` and `osd pool set`: one pool variable at a time."""

from __future__ import annotations

import errno
from typing import Any

from shoal.mon.commands_common import (
    CommandError,
    Handler,
    Reply,
    Request,
    next_map,
    parse_iec,
    parse_int,
    reply,
)
from shoal.mon.commands_pooldump import AUTOSCALE_KEY, FLAG_BY_NAME, RULE_NAME, autoscale_mode
from shoal.mon.commands_pools import check_max_pool_pg_num, check_pg_num, default_min_size, lookup_pool
from shoal.placement.osdmap import Pool

# Every variable `osd pool get` knows, in the order Ceph lists them for `all`.
GET_VARS = (
    "size", "min_size", "pg_num", "pgp_num", "crush_rule", "hashpspool", "allow_ec_overwrites",
    "nodelete", "nopgchange", "nosizechange", "write_fadvise_dontneed", "noscrub", "nodeep-scrub",
    "hit_set_type", "hit_set_period", "hit_set_count", "hit_set_fpp", "use_gmt_hitset",
    "target_max_objects", "target_max_bytes", "cache_target_dirty_ratio",
    "cache_target_dirty_high_ratio", "cache_target_full_ratio", "cache_min_flush_age",
    "cache_min_evict_age", "erasure_code_profile", "min_read_recency_for_promote",
    "min_write_recency_for_promote", "fast_read", "hit_set_grade_decay_rate", "hit_set_search_last_n",
    "scrub_min_interval", "scrub_max_interval", "deep_scrub_interval", "recovery_priority",
    "recovery_op_priority", "scrub_priority", "compression_mode", "compression_algorithm",
    "compression_required_ratio", "compression_max_blob_size", "compression_min_blob_size",
    "csum_type", "csum_max_block", "csum_min_block", "fingerprint_algorithm", "pg_autoscale_mode",
    "pg_num_min", "target_size_bytes", "target_size_ratio", "pg_autoscale_bias", "eio", "bulk",
    "pg_num_max",
)
TIER_ONLY = frozenset({
    "hit_set_type", "hit_set_period", "hit_set_count", "hit_set_fpp",
    "target_max_objects", "target_max_bytes", "cache_target_full_ratio", "cache_target_dirty_ratio",
    "cache_target_dirty_high_ratio", "cache_min_flush_age", "cache_min_evict_age",
    "min_read_recency_for_promote", "min_write_recency_for_promote", "hit_set_grade_decay_rate",
    "hit_set_search_last_n",
})
SET_TIER_ONLY = TIER_ONLY | {"use_gmt_hitset"}  # readable on any pool, settable on tiers only
EC_ONLY = frozenset({"allow_ec_overwrites", "erasure_code_profile"})
FLAG_VARS = ("hashpspool", "nodelete", "nopgchange", "nosizechange", "write_fadvise_dontneed",
             "noscrub", "nodeep-scrub", "eio", "bulk")
# Per-pool options (pool_opts_t) and their value types; unset unless a user set them.
OPTION_TYPES: dict[str, type] = {
    "scrub_min_interval": float, "scrub_max_interval": float, "deep_scrub_interval": float,
    "recovery_priority": int, "recovery_op_priority": int, "scrub_priority": int,
    "compression_mode": str, "compression_algorithm": str, "compression_required_ratio": float,
    "compression_max_blob_size": int, "compression_min_blob_size": int, "csum_type": str,
    "csum_max_block": int, "csum_min_block": int, "fingerprint_algorithm": str,
    "pg_num_min": int, "pg_num_max": int, "target_size_bytes": int, "target_size_ratio": float,
    "pg_autoscale_bias": float,
}
_IEC_OPTIONS = frozenset({"target_size_bytes", "compression_max_blob_size", "compression_min_blob_size",
                          "csum_max_block", "csum_min_block"})


# -- get ------------------------------------------------------------------------------------

def _get_value(pool: Pool, var: str) -> Any:
    if var in ("size", "min_size", "pg_num", "pgp_num"):
        return getattr(pool, var)
    if var == "crush_rule":
        return RULE_NAME if pool.crush_rule == 0 else str(pool.crush_rule)
    if var in FLAG_VARS:
        return bool(pool.flags & FLAG_BY_NAME[var])
    if var == "fast_read":
        return 0
    if var == "use_gmt_hitset":
        return True
    if var == "pg_autoscale_mode":
        return autoscale_mode(pool)
    return pool.options[var]


def _selected_vars(pool: Pool, var: str) -> list[str]:
    if var == "all":
        return [v for v in GET_VARS if v not in TIER_ONLY and v not in EC_ONLY
                and (v not in OPTION_TYPES or v in pool.options)]
    if var not in GET_VARS:
        raise CommandError(errno.EINVAL, f"pool '{pool.name}': invalid variable: '{var}'")
    if var in TIER_ONLY:
        raise CommandError(errno.EACCES, f"pool '{pool.name}' is not a tier pool: variable not applicable")
    if var in EC_ONLY:
        raise CommandError(errno.EACCES, f"pool '{pool.name}' is not a erasure pool: variable not applicable")
    if var in OPTION_TYPES and var not in pool.options:
        raise CommandError(errno.ENOENT, f"option '{var}' is not set on pool '{pool.name}'")
    return [var]


def _pool_get(req: Request) -> Reply:
    pool = lookup_pool(req)
    var = req.required_str("var", "<var>")
    data: dict[str, Any] = {"pool": pool.name, "pool_id": pool.id}
    for name in _selected_vars(pool, var):
        data[name] = _get_value(pool, name)
    return reply(data)


# -- set ------------------------------------------------------------------------------------

def _int_val(val: str) -> int:
    n = parse_int(val)
    if n is None:
        raise CommandError(errno.EINVAL, f"error parsing integer value '{val}': expected an integer")
    return n


def _flag_val(val: str) -> bool:
    if val in ("true", "1"):
        return True
    if val in ("false", "0"):
        return False
    raise CommandError(errno.EINVAL, "expecting value 'true', 'false', '0', or '1'")


def _set_size(req: Request, p: Pool, val: str) -> None:
    if p.flags & FLAG_BY_NAME["nosizechange"]:
        raise CommandError(errno.EPERM, "pool size change is disabled; you must unset nosizechange "
                                        "flag for the pool first")
    n = _int_val(val)
    if n <= 0 or n > 10:
        raise CommandError(errno.EINVAL, "pool size must be between 1 and 10")
    if n == 1:
        if not req.conf("mon_allow_pool_size_one"):
            raise CommandError(errno.EPERM, "configuring pool size as 1 is disabled by default.")
        if not req.bool_arg("yes_i_really_mean_it"):
            raise CommandError(errno.EPERM, "WARNING: setting pool size 1 could lead to data loss without "
                                            "recovery. If you are *ABSOLUTELY CERTAIN* that is what you want, "
                                            "pass the flag --yes-i-really-mean-it.")
    if n > p.size:
        check_pg_num(req, p.id, p.pg_num, n)
    p.size = n
    p.min_size = default_min_size(req, n)


def _set_min_size(req: Request, p: Pool, val: str) -> None:
    if p.flags & FLAG_BY_NAME["nosizechange"]:
        raise CommandError(errno.EPERM, "pool min size change is disabled; you must unset nosizechange "
                                        "flag for the pool first")
    n = _int_val(val)
    if n < 1 or n > p.size:
        raise CommandError(errno.EINVAL, f"pool min_size must be between 1 and size, which is set to {p.size}")
    p.min_size = n


def _set_pg_num(req: Request, p: Pool, val: str) -> bool:
    if p.flags & FLAG_BY_NAME["nopgchange"]:
        raise CommandError(errno.EPERM, "pool pg_num change is disabled; you must unset nopgchange "
                                        "flag for the pool first")
    n = _int_val(val)
    if n == p.pg_num:
        return False
    check_max_pool_pg_num(req, n)
    if n > p.pg_num:
        check_pg_num(req, p.id, n, p.size)
    pg_min = int(p.options.get("pg_num_min", 0))
    pg_max = int(p.options.get("pg_num_max", 0))
    if pg_min and n < pg_min:
        raise CommandError(errno.EINVAL, f"specified pg_num {n} < pg_num_min {pg_min}")
    if pg_max and n > pg_max:
        raise CommandError(errno.EINVAL, f"specified pg_num {n} < pg_num_max {pg_max}")
    if p.pgp_num == p.pg_num:
        p.pgp_num = n  # pgp_num follows pg_num unless the user set it apart
    p.pgp_num = min(p.pgp_num, n)
    p.pg_num = n
    return True


def _set_pgp_num(p: Pool, val: str) -> None:
    if p.flags & FLAG_BY_NAME["nopgchange"]:
        raise CommandError(errno.EPERM, "pool pgp_num change is disabled; you must unset nopgchange "
                                        "flag for the pool first")
    n = _int_val(val)
    if n <= 0:
        raise CommandError(errno.EINVAL, f"specified pgp_num must > 0, but you set to {n}")
    if n > p.pg_num:
        raise CommandError(errno.EINVAL, f"specified pgp_num {n} > pg_num {p.pg_num}")
    p.pgp_num = n


def _set_flag(req: Request, p: Pool, var: str, val: str) -> None:
    if var == "hashpspool" and not req.bool_arg("yes_i_really_mean_it"):
        raise CommandError(errno.EPERM, "are you SURE?  this will remap all placement groups in this pool, "
                                        "this triggers large data movement, pass --yes-i-really-mean-it "
                                        "if you really do.")
    if _flag_val(val):
        p.flags |= FLAG_BY_NAME[var]
    else:
        p.flags &= ~FLAG_BY_NAME[var]


def _set_option(p: Pool, var: str, val: str) -> None:
    kind = OPTION_TYPES[var]
    if kind is str:
        if val == "unset":
            p.options.pop(var, None)
        else:
            p.options[var] = val
        return
    try:
        value: float = (parse_iec(val) if var in _IEC_OPTIONS else _int_val(val)) if kind is int else float(val)
    except ValueError:
        raise CommandError(errno.EINVAL, f"error parsing value '{val}'") from None
    if var == "pg_num_min" and value > p.pg_num:
        raise CommandError(errno.EINVAL, f"specified pg_num_min {value} > pg_num {p.pg_num}")
    if var == "pg_num_max" and value and value < p.pg_num:
        raise CommandError(errno.EINVAL, f"specified pg_num_max {value} < pg_num {p.pg_num}")
    if value == 0:
        p.options.pop(var, None)
    else:
        p.options[var] = value


def _apply_set(req: Request, p: Pool, var: str, val: str) -> bool:
    """Change `p` in place; False when the value was already set (nothing to commit)."""
    if var in SET_TIER_ONLY:
        raise CommandError(errno.EACCES, f"pool '{p.name}' is not a tier pool: variable not applicable")
    if var == "size":
        _set_size(req, p, val)
    elif var == "min_size":
        _set_min_size(req, p, val)
    elif var == "pg_num":
        return _set_pg_num(req, p, val)
    elif var == "pgp_num":
        _set_pgp_num(p, val)
    elif var == "crush_rule":
        if val not in (RULE_NAME, "0"):
            raise CommandError(errno.ENOENT, f"crush rule {val} does not exist")
        p.crush_rule = 0
    elif var in FLAG_VARS:
        _set_flag(req, p, var, val)
    elif var == AUTOSCALE_KEY:
        if val not in ("on", "off", "warn"):
            raise CommandError(errno.EINVAL, f"specified invalid mode {val}")
        p.options[AUTOSCALE_KEY] = val
    elif var == "fast_read":
        raise CommandError(errno.EINVAL, "fast read is not supported in replication pool")
    elif var == "allow_ec_overwrites":
        raise CommandError(errno.EINVAL, "ec overwrites can only be enabled for an erasure coded pool")
    elif var in OPTION_TYPES:
        _set_option(p, var, val)
    else:
        raise CommandError(errno.EINVAL, f"unrecognized variable '{var}'")
    return True


def _pool_set(req: Request) -> Reply:
    pool = lookup_pool(req)
    var = req.required_str("var", "<var>")
    val = req.str_arg("val") or ""
    new = next_map(req)
    target = new.pools[pool.id]
    if not _apply_set(req, target, var, val):
        return reply()
    target.last_change = new.epoch
    outs = f"unset pool {pool.id} {var}" if val == "unset" else f"set pool {pool.id} {var} to {val}"
    return reply(outs=outs, new_osdmap=new)


HANDLERS: dict[str, Handler] = {
    "osd pool get": _pool_get,
    "osd pool set": _pool_set,
}

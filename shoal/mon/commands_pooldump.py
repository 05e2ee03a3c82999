"""A pool as Ceph's `osd dump` / `osd pool ls detail` JSON shows it, and pool flag names.

Shoal's `Pool` keeps what it uses; the fields Ceph shows for features Shoal lacks
(tiering, hit sets, erasure coding, stretch mode) appear with Ceph's neutral values so
the document has Ceph's exact key layout.
"""

from __future__ import annotations

from typing import Any

from shoal.mon.commands_common import stamp
from shoal.placement.osdmap import Pool

# pg_pool_t flag bits, in the order Ceph names them.
POOL_FLAGS: tuple[tuple[int, str], ...] = (
    (1 << 0, "hashpspool"), (1 << 1, "full"), (1 << 2, "ec_overwrites"),
    (1 << 3, "incomplete_clones"), (1 << 4, "nodelete"), (1 << 5, "nopgchange"),
    (1 << 6, "nosizechange"), (1 << 7, "write_fadvise_dontneed"), (1 << 8, "noscrub"),
    (1 << 9, "nodeep-scrub"), (1 << 10, "full_quota"), (1 << 11, "nearfull"),
    (1 << 12, "backfillfull"), (1 << 13, "selfmanaged_snaps"), (1 << 14, "pool_snaps"),
    (1 << 15, "creating"), (1 << 16, "eio"), (1 << 17, "bulk"),
)
FLAG_BY_NAME = {name: bit for bit, name in POOL_FLAGS}

RULE_NAME = "replicated_rule"  # Shoal has one placement rule, id 0
AUTOSCALE_KEY = "pg_autoscale_mode"  # kept in Pool.options, shown as its own field


def flag_names(flags: int) -> list[str]:
    return [name for bit, name in POOL_FLAGS if flags & bit]


def autoscale_mode(pool: Pool) -> str:
    return str(pool.options.get(AUTOSCALE_KEY, "off"))


def pool_options(pool: Pool) -> dict[str, Any]:
    return {k: v for k, v in sorted(pool.options.items()) if k != AUTOSCALE_KEY}


def snap_intervals(snaps: list[int]) -> list[tuple[int, int]]:
    """[3, 4, 5, 9] → [(3, 3), (9, 1)]: (begin, length) runs, as interval sets encode."""
    runs: list[tuple[int, int]] = []
    for snap in sorted(set(snaps)):
        if runs and runs[-1][0] + runs[-1][1] == snap:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((snap, 1))
    return runs


def removed_snaps_queue(pools: dict[int, Pool]) -> list[dict[str, Any]]:
    """The osd dump's `removed_snaps_queue`: snaps deleted but not yet purged, per pool."""
    return [
        {"pool": pool.id, "snaps": [{"begin": b, "length": n} for b, n in snap_intervals(pool.removed_snaps)]}
        for pool in sorted(pools.values(), key=lambda p: p.id)
        if pool.removed_snaps
    ]


def pool_body(pool: Pool) -> dict[str, Any]:
    """Everything after the id and name: pg_pool_t's JSON dump."""
    return {
        "create_time": stamp(pool.create_time),
        "flags": pool.flags,
        "flags_names": ",".join(flag_names(pool.flags)),
        "type": 1,  # replicated
        "size": pool.size,
        "min_size": pool.min_size,
        "crush_rule": pool.crush_rule,
        "peering_crush_bucket_count": 0,
        "peering_crush_bucket_target": 0,
        "peering_crush_bucket_barrier": 0,
        "peering_crush_bucket_mandatory_member": 2147483647,
        "object_hash": 2,  # rjenkins
        "pg_autoscale_mode": autoscale_mode(pool),
        "pg_num": pool.pg_num,
        "pg_placement_num": pool.pgp_num,
        "pg_placement_num_target": pool.pgp_num,
        "pg_num_target": pool.pg_num,
        "pg_num_pending": pool.pg_num,
        "last_pg_merge_meta": {
            "source_pgid": "0.0", "ready_epoch": 0, "last_epoch_started": 0,
            "last_epoch_clean": 0, "source_version": "0'0", "target_version": "0'0",
        },
        "last_change": str(pool.last_change),
        "last_force_op_resend": "0",
        "last_force_op_resend_prenautilus": "0",
        "last_force_op_resend_preluminous": "0",
        "auid": 0,
        "snap_mode": "selfmanaged",
        "snap_seq": pool.snap_seq,
        "snap_epoch": pool.last_change if pool.snap_seq else 0,
        "pool_snaps": [],
        "removed_snaps": "[]",
        "quota_max_bytes": pool.quota_max_bytes,
        "quota_max_objects": pool.quota_max_objects,
        "tiers": [],
        "tier_of": -1,
        "read_tier": -1,
        "write_tier": -1,
        "cache_mode": "none",
        "target_max_bytes": 0,
        "target_max_objects": 0,
        "cache_target_dirty_ratio_micro": 400000,
        "cache_target_dirty_high_ratio_micro": 600000,
        "cache_target_full_ratio_micro": 800000,
        "cache_min_flush_age": 0,
        "cache_min_evict_age": 0,
        "erasure_code_profile": "",
        "hit_set_params": {"type": "none"},
        "hit_set_period": 0,
        "hit_set_count": 0,
        "use_gmt_hitset": True,
        "min_read_recency_for_promote": 0,
        "min_write_recency_for_promote": 0,
        "hit_set_grade_decay_rate": 0,
        "hit_set_search_last_n": 0,
        "grade_table": [],
        "stripe_width": 0,
        "expected_num_objects": 0,
        "fast_read": False,
        "options": pool_options(pool),
        "application_metadata": {app: dict(meta) for app, meta in sorted(pool.application.items())},
    }


def pool_for_osd_dump(pool: Pool) -> dict[str, Any]:
    return {"pool": pool.id, "pool_name": pool.name, **pool_body(pool)}


def pool_for_ls_detail(pool: Pool) -> dict[str, Any]:
    return {"pool_id": pool.id, "pool_name": pool.name, **pool_body(pool)}

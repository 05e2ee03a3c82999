"""Metavariable expansion in option values: `$cluster`, `$name`, `${id}`...

Ceph lets string options refer to the entity (`$cluster $type $id $name`), the process
(`$pid $cctid $host`) and to other options (`admin_socket = $run_dir/$name.asok`).
Expansion happens when a value is read, so changing `run_dir` later also moves every
path built from it. Unknown variables stay as written (a `$` in a password or a shell
variable left unexpanded by a deploy script is not an error), and a variable that
refers back to itself is left unexpanded rather than looping.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

# The metavariables every entity has; option names may be used as well.
METAVARIABLES: tuple[str, ...] = ("cluster", "type", "id", "name", "pid", "cctid", "host")

_VAR_RE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")

Resolver = Callable[[str], str | None]


def entity_vars(
    cluster: str, entity_type: str, entity_id: str, pid: int, cctid: int, host: str
) -> dict[str, str]:
    """The fixed metavariables for one entity in one process."""
    return {
        "cluster": cluster,
        "type": entity_type,
        "id": entity_id,
        "name": f"{entity_type}.{entity_id}",
        "pid": str(pid),
        "cctid": str(cctid),
        "host": host,
    }


def expand(value: str, resolve: Resolver | Mapping[str, str]) -> str:
    """Replace `$var` and `${var}` in `value`.

    `resolve` maps a variable name to its raw (possibly itself `$`-containing) text,
    or None when the name means nothing; a mapping works as well as a function.
    """
    lookup: Resolver = resolve.get if isinstance(resolve, Mapping) else resolve
    return _expand(value, lookup, ())


def _expand(value: str, lookup: Resolver, active: tuple[str, ...]) -> str:
    if "$" not in value:  # the common case: nothing to do
        return value

    def substitute(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name in active:  # a loop such as run_dir = $admin_socket/..., admin_socket = $run_dir/...
            return m.group(0)
        raw = lookup(name)
        if raw is None:
            return m.group(0)
        return _expand(raw, lookup, (*active, name))

    return _VAR_RE.sub(substitute, value)

"""The monitor's auth database: every entity's key and caps (pure data, no I/O).

The monitor daemon keeps one `AuthDB`, persists it with `to_dict()` / `from_dict()`
in its store, and hands it to `commands_auth.handle_auth_command`, which never
changes the instance it is given: a command that changes entities returns a modified
copy with `version` + 1 for the daemon to persist and publish.

Entities are listed in Ceph's order (type, then id: OSDs before clients, `mgr.*`
last), which is what `ceph auth ls` and `auth export` show.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from shoal.auth.caps import CapsError, validate_caps
from shoal.auth.entity import entity_sort_key, is_valid_entity
from shoal.auth.keyring import Entry
from shoal.auth.keys import CryptoKey

FORMAT = 1  # of to_dict(); from_dict() refuses others

# What Ceph creates at mkfs (`_generate_bootstrap_keys`): the admin and bootstrap keys.
INITIAL_CAPS: dict[str, dict[str, str]] = {
    "client.admin": {"mon": "allow *", "osd": "allow *", "mds": "allow *", "mgr": "allow *"},
    "client.bootstrap-osd": {"mon": "allow profile bootstrap-osd"},
    "client.bootstrap-rgw": {"mon": "allow profile bootstrap-rgw"},
    "client.bootstrap-mds": {"mon": "allow profile bootstrap-mds"},
    "client.bootstrap-mgr": {"mon": "allow profile bootstrap-mgr"},
    "client.bootstrap-rbd": {"mon": "allow profile bootstrap-rbd"},
    "client.bootstrap-rbd-mirror": {"mon": "allow profile bootstrap-rbd-mirror"},
}
# What `ceph osd new` gives an OSD's own key (AuthMonitor::validate_osd_new).
OSD_CAPS: dict[str, str] = {"osd": "allow *", "mon": "allow profile osd", "mgr": "allow profile osd"}


class AuthDBError(ValueError):
    """A persisted auth database that cannot be loaded (names the entity and the problem)."""


@dataclass
class AuthDB:
    entities: dict[str, Entry] = field(default_factory=dict)
    version: int = 0  # bumped by every change a command makes

    # -- reading ----------------------------------------------------------------------
    def get(self, name: str) -> Entry | None:
        return self.entities.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self.entities

    def __len__(self) -> int:
        return len(self.entities)

    def sorted_entries(self) -> list[Entry]:
        """Entities in Ceph's order (`ceph auth ls`)."""
        return [self.entities[n] for n in sorted(self.entities, key=entity_sort_key)]

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.sorted_entries())

    def key_of(self, name: str) -> CryptoKey | None:
        entry = self.entities.get(name)
        return entry.key if entry else None

    def caps_of(self, name: str, service: str) -> str | None:
        entry = self.entities.get(name)
        return entry.caps.get(service) if entry else None

    def invalid_caps(self) -> list[tuple[str, str]]:
        """(entity, problem) for every stored cap that does not parse.

        Ceph raises the AUTH_BAD_CAPS health error for these ("N auth entities have
        invalid capabilities"); `auth import` can store them, as in Ceph.
        """
        bad: list[tuple[str, str]] = []
        for entry in self.sorted_entries():
            for service in sorted(entry.caps):
                try:
                    validate_caps(service, entry.caps[service])
                except CapsError as exc:
                    bad.append((entry.name, f"{entry.name} {exc}"))
        return bad

    # -- changing (in place; command handlers work on a copy) ---------------------------
    def copy(self) -> AuthDB:
        return AuthDB({n: e.copy() for n, e in self.entities.items()}, self.version)

    def add(self, entry: Entry) -> None:
        """Add or replace an entity (Ceph's AUTH_INC_ADD). It must have a key."""
        if not is_valid_entity(entry.name):
            raise ValueError(f"bad entity name {entry.name!r}")
        if entry.key is None:
            raise ValueError(f"entity {entry.name} has no key")
        self.entities[entry.name] = Entry(entry.name, entry.key, dict(entry.caps))

    def remove(self, name: str) -> bool:
        """Delete an entity; False when there was none."""
        return self.entities.pop(name, None) is not None

    def set_caps(self, name: str, caps: dict[str, str]) -> None:
        """Replace all caps of an existing entity (KeyError when it does not exist)."""
        entry = self.entities[name]
        entry.caps = dict(caps)

    # -- persistence --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": self.version,
            "entities": [
                {"entity": e.name, "key": e.key.encode() if e.key else None, "caps": dict(sorted(e.caps.items()))}
                for e in self.sorted_entries()
            ],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AuthDB:
        if not isinstance(d, dict):
            raise AuthDBError("auth database: expected a mapping")
        if d.get("format") != FORMAT:
            raise AuthDBError(f"auth database: unsupported format {d.get('format')!r} (this Shoal reads {FORMAT})")
        db = cls(version=int(d.get("version", 0)))
        for item in d.get("entities", []):
            name = item.get("entity") if isinstance(item, dict) else None
            if not isinstance(name, str) or not is_valid_entity(name):
                raise AuthDBError(f"auth database: bad entity name {name!r}")
            try:
                key = CryptoKey.decode(item["key"])
            except (KeyError, TypeError, ValueError) as exc:
                raise AuthDBError(f"auth database: bad key for {name}: {exc}") from None
            caps = item.get("caps") or {}
            if not isinstance(caps, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in caps.items()):
                raise AuthDBError(f"auth database: bad caps for {name}")
            db.entities[name] = Entry(name, key, dict(caps))
        return db

    # -- a new cluster --------------------------------------------------------------------
    @classmethod
    def create_initial(cls, now: float | None = None, admin_key: CryptoKey | None = None,
                       extra: Iterable[Entry] = ()) -> AuthDB:
        """The database of a new cluster: client.admin (`allow *` everywhere) and the
        bootstrap keys Ceph creates, plus `extra` entities (e.g. OSD keys)."""
        db = cls()
        for name, caps in INITIAL_CAPS.items():
            key = admin_key if name == "client.admin" and admin_key else CryptoKey.generate(now)
            db.add(Entry(name, key, dict(caps)))
        for entry in extra:
            db.add(entry)
        db.version = 1
        return db


def osd_entry(osd_id: int, key: CryptoKey | None = None, now: float | None = None) -> Entry:
    """The auth entity of `osd.<id>` with the caps Ceph gives OSDs."""
    return Entry(f"osd.{osd_id}", key or CryptoKey.generate(now), dict(OSD_CAPS))

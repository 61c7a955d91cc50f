"""The live formulary in Redis: what the payer's formulary events changed, per NDC,
and the version (the sequence of the last event applied), published by ``rxfleet
webhooks`` and read by the crosswalk link on every batch.

Keys:

* ``{p}:formulary:entries``: NDC-11 to its entry as JSON (``CrosswalkEntry`` plus
  ``v``, the version that set it); an NDC here overrides the run's crosswalk file;
* ``{p}:formulary:version``: the version published (absent: 0);
* ``{p}:formulary:waiting``: epoch seconds since when an event has been stored and
  not applied (a gap in the sequence); absent when nothing waits.

The entries and the version change together, in one script, and only forward from
the version the publisher read after (``formulary_publish.lua``): a batch's read
(one MULTI) sees a version and exactly the entries of that version.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import redis
from redis.commands.core import Script

from rxfleet.claims.crosswalk import CrosswalkEntry
from rxfleet.stores import lua
from rxfleet.stores.connection import as_text


@dataclass(frozen=True)
class FormularyView:
    """One batch's read: the version, since when an update waits, each NDC's entry."""

    version: int
    waiting_since: float | None
    entries: list[CrosswalkEntry | None]


@dataclass
class FormularyCache:
    client: redis.Redis
    prefix: str = "rx"
    _scripts: dict[str, Script] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._scripts = lua.register(self.client, "formulary", ("publish",))

    @property
    def entries_key(self) -> str:
        return f"{self.prefix}:formulary:entries"

    @property
    def version_key(self) -> str:
        return f"{self.prefix}:formulary:version"

    @property
    def waiting_key(self) -> str:
        return f"{self.prefix}:formulary:waiting"

    def publish(
        self, after: int, version: int, changes: Sequence[tuple[int, CrosswalkEntry]]
    ) -> int | None:
        """Publish ``changes`` (version, entry; in version order) moving ``after`` → ``version``.

        None when Redis now holds ``version`` (or later); else the version Redis holds,
        from which the caller publishes again (another publisher got there first)."""
        args: list[str | int] = [after, version]
        for at, entry in changes:
            args += [entry.ndc11, json.dumps({**entry.to_json(), "v": at})]
        held = int(self._scripts["publish"](keys=[self.entries_key, self.version_key], args=args))
        return None if held < 0 else held

    def version(self) -> int:
        return int(as_text(self.client.get(self.version_key)) or 0)

    def set_waiting(self, since: float | None) -> None:
        """Say since when an event waits behind a gap (None: nothing waits)."""
        if since is None:
            self.client.delete(self.waiting_key)
        else:
            self.client.set(self.waiting_key, repr(since))

    def lookup(self, ndcs: Sequence[str]) -> FormularyView:
        """The version, the waiting mark and the entry of each NDC (None: the event set
        none), read together."""
        pipe = self.client.pipeline(transaction=True)
        pipe.get(self.version_key)
        pipe.get(self.waiting_key)
        if ndcs:
            pipe.hmget(self.entries_key, list(ndcs))
        replies = pipe.execute()
        raw = replies[2] if ndcs else []
        waiting = as_text(replies[1])
        return FormularyView(
            version=int(as_text(replies[0]) or 0),
            waiting_since=float(waiting) if waiting else None,
            entries=[_entry(doc) for doc in raw],
        )

    def clear(self) -> None:
        self.client.delete(self.entries_key, self.version_key, self.waiting_key)


def _entry(doc: str | None) -> CrosswalkEntry | None:
    if not doc:
        return None
    data = json.loads(doc)
    data.pop("v", None)
    return CrosswalkEntry.from_json(data)

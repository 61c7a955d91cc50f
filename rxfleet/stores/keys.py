"""Every Redis key rxfleet uses, in one place.

Per run (expire with the run): ``{p}:run:{id}`` meta hash, ``:work`` claim
records by sequence number, ``:results`` terminal results by sequence number,
``:counts`` by status, ``:ids`` claim ids seen, ``:audit`` the audit stream;
``{p}:vault:{id}`` sealed PHI by sequence number. Fleet-wide: the portal token
and its lock, the gateway pause and route-miss memos, crosswalk versions, the
dead-letter stream and the run index.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str = "rx"

    def run(self, run_id: str) -> str:
        return f"{self.prefix}:run:{run_id}"

    def work(self, run_id: str) -> str:
        return f"{self.prefix}:run:{run_id}:work"

    def results(self, run_id: str) -> str:
        return f"{self.prefix}:run:{run_id}:results"

    def counts(self, run_id: str) -> str:
        return f"{self.prefix}:run:{run_id}:counts"

    def ids(self, run_id: str) -> str:
        return f"{self.prefix}:run:{run_id}:ids"

    def audit(self, run_id: str) -> str:
        return f"{self.prefix}:run:{run_id}:audit"

    def vault(self, run_id: str) -> str:
        return f"{self.prefix}:vault:{run_id}"

    def run_keys(self, run_id: str) -> list[str]:
        return [
            self.run(run_id),
            self.work(run_id),
            self.results(run_id),
            self.counts(run_id),
            self.ids(run_id),
            self.audit(run_id),
            self.vault(run_id),
        ]

    @property
    def runs(self) -> str:
        return f"{self.prefix}:runs"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}:dlq"

    @property
    def token(self) -> str:
        return f"{self.prefix}:token"

    @property
    def token_lock(self) -> str:
        return f"{self.prefix}:lock:token"

    @property
    def token_stats(self) -> str:
        return f"{self.prefix}:token:stats"

    @property
    def pause(self) -> str:
        return f"{self.prefix}:gateway:pause"

    @property
    def pauses(self) -> str:
        """A capped log of fleet pauses (set_at, until): what the fleet was told."""
        return f"{self.prefix}:gateway:pauses"

    @property
    def breaker_open(self) -> str:
        return f"{self.prefix}:breaker:open"

    @property
    def breaker_tripped(self) -> str:
        return f"{self.prefix}:breaker:tripped"

    @property
    def breaker_probe(self) -> str:
        return f"{self.prefix}:breaker:probe"

    @property
    def breaker_stats(self) -> str:
        return f"{self.prefix}:breaker:stats"

    def breaker_bucket(self, second: int) -> str:
        return f"{self.prefix}:breaker:w:{second}"

    def route_miss(self, bin_: str, pcn: str) -> str:
        return f"{self.prefix}:gateway:miss:{bin_}:{pcn}"

    def route_ok(self, bin_: str, pcn: str) -> str:
        return f"{self.prefix}:gateway:route:{bin_}:{pcn}"

    def route_probe(self, bin_: str, pcn: str) -> str:
        return f"{self.prefix}:gateway:probe:{bin_}:{pcn}"

    def crosswalk(self, version: str) -> str:
        return f"{self.prefix}:crosswalk:{version}"

    def crosswalk_ready(self, version: str) -> str:
        return f"{self.prefix}:crosswalk:{version}:ready"

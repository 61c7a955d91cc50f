"""A round's view of the fleet's breakers: which it reads, which probes it holds."""

from __future__ import annotations

from rxfleet.stores.breaker import Breaker


class RoundBreakers:
    """The health and auth breakers as one round sees them.

    A round that won a half-open breaker's probe sends one claim at a time
    until the probe's answer closes or reopens it; a probe never answered is
    given back when the round ends (``release``).
    """

    def __init__(self, *breakers: Breaker | None) -> None:
        self._all = [b for b in breakers if b is not None]
        self._probes: dict[str, bool] = {}  # breaker name → this round holds its probe

    def to_read(self) -> list[Breaker]:
        """The breakers whose gate a window reads (not those whose probe it holds)."""
        return [b for b in self._all if not self._probes.get(b.name)]

    def hold(self, name: str) -> None:
        self._probes[name] = True

    def probing(self) -> bool:
        return any(self._probes.values())

    def observe(self, *, ok: bool, breaker: str = "health") -> None:
        """Feed the breakers: a healthy answer to both, a failure to its own."""
        for b in self._all:
            if ok or b.name == breaker:
                b.record(ok, probe=self._probes.pop(b.name, False))

    def release(self) -> None:
        """Write the buffered counts; give back a probe that never got its answer."""
        for b in self._all:
            b.flush()
            if self._probes.pop(b.name, False):
                b.release_probe()

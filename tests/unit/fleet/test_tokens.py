from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from rxfleet.stores.tokens import Token, TokenStore


@dataclass
class Grant:
    access_token: str
    expires_in: float


class CountingSource:
    def __init__(self, lifetime: float = 60.0, delay: float = 0.0) -> None:
        self.calls = 0
        self.lifetime = lifetime
        self.delay = delay
        self._lock = threading.Lock()

    def fetch_token(self) -> Grant:
        with self._lock:
            self.calls += 1
            n = self.calls
        time.sleep(self.delay)
        return Grant(f"token-{n}", self.lifetime)


def test_ensure_fetches_once_then_reuses(tokens: TokenStore) -> None:
    source = CountingSource()
    first = tokens.ensure(source)
    second = tokens.ensure(source)
    assert first == second and source.calls == 1 and first.version == 1


def test_concurrent_rotation_is_single_flight(tokens: TokenStore) -> None:
    source = CountingSource(delay=0.05)
    got: list[Token] = []
    threads = [threading.Thread(target=lambda: got.append(tokens.ensure(source))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert source.calls == 1
    assert {t.value for t in got} == {"token-1"}


def test_invalidate_drops_only_the_token_used(tokens: TokenStore) -> None:
    source = CountingSource()
    old = tokens.ensure(source)
    assert tokens.invalidate(old.value, "REJ_001") is True
    new = tokens.rotate(source)
    assert tokens.invalidate(old.value, "REJ_004") is False  # a late 401 for the old token
    assert tokens.current() == new
    assert tokens.stats() == {"fetches": 2, "auth_REJ_001": 1, "auth_REJ_004": 1}


def test_a_stale_writer_cannot_overwrite_a_newer_token(tokens: TokenStore) -> None:
    source = CountingSource()
    tokens.ensure(source)  # version 1
    newer = Token("newer", time.time() + 60, 2)
    assert tokens._store_if_version("1", newer)
    stale = Token("stale", time.time() + 60, 2)
    assert not tokens._store_if_version("1", stale)  # it read version 1 before the rotation
    assert tokens.current() == newer


def test_rotation_after_losing_the_lock_keeps_the_newer_token(tokens: TokenStore) -> None:
    class SlowSource(CountingSource):
        def fetch_token(self) -> Grant:
            grant = super().fetch_token()
            tokens.client.delete(tokens._lock)  # our lock expired mid-fetch...
            tokens._store_if_version("0", Token("from-another", time.time() + 60, 1))
            return grant

    result = tokens.rotate(SlowSource())
    assert result.value == "from-another"
    assert tokens.stats()["stale_writes_refused"] == 1
    assert tokens.stats()["lock_lost"] == 1


def test_beat_refreshes_only_inside_the_margin(tokens: TokenStore) -> None:
    source = CountingSource(lifetime=100)
    assert tokens.refresh_if_due(source, margin=10) is True  # none yet
    assert tokens.refresh_if_due(source, margin=10) is False  # 100 s left
    tokens.client.hset(tokens.key, "expires_at", repr(time.time() + 5))
    assert tokens.refresh_if_due(source, margin=10) is True  # 5 s left
    assert source.calls == 2


def test_beat_margin_shrinks_for_short_lived_tokens(tokens: TokenStore) -> None:
    source = CountingSource(lifetime=6)
    tokens.ensure(source)
    assert tokens.refresh_if_due(source, margin=60) is False  # 6 s left > 6/3
    assert source.calls == 1


def test_the_version_counts_every_rotation_across_invalidations(tokens: TokenStore) -> None:
    source = CountingSource()
    for _ in range(3):
        token = tokens.ensure(source)
        tokens.invalidate(token.value, "REJ_001")
    assert tokens.ensure(source).version == 4 and source.calls == 4


def test_the_token_is_sealed_at_rest(tokens: TokenStore) -> None:
    import fakeredis

    from rxfleet.claims.phi import SecretSealer

    token = tokens.ensure(CountingSource())
    client = tokens.client
    assert isinstance(client, fakeredis.FakeRedis)
    stored = "".join(f"{k!s}={v!s}" for k, v in client.hgetall(tokens.key).items())
    assert token.value not in stored and "token_digest" in stored
    assert tokens.current() == token  # opened on read
    # After a vault key rotation the stored token no longer opens: it is missing.
    rotated = TokenStore(client, tokens.prefix, sealer=SecretSealer(bytes(range(50, 82))))
    assert rotated.current() is None
    assert rotated.ensure(CountingSource()).value == "token-1"
    assert rotated.invalidate("token-1", "REJ_001") is True


def test_each_rotation_leaves_an_audit_record_without_the_token(tokens: TokenStore) -> None:
    from rxfleet.stores.tokens import Rotation

    records: list[Rotation] = []
    tokens.on_rotate = records.append
    source = CountingSource(lifetime=60.0)
    first = tokens.ensure(source)  # no token yet
    tokens.rotate(source, min_ttl=120.0, why="due")  # what the beat does within its margin
    second = tokens.current()
    assert second is not None
    tokens.invalidate(second.value, "REJ_001")  # a 401
    third = tokens.ensure(source)
    assert [r.reason for r in records] == ["none", "due", "rej_001"]
    assert records[0].old_expires_at is None
    assert records[1].old_expires_at == first.expires_at
    assert records[2].old_expires_at == second.expires_at  # kept across the invalidation
    assert records[2].new_expires_at == third.expires_at
    assert all(r.rotated_by.endswith(f":{__import__('os').getpid()}") for r in records)
    assert not any("token-" in repr(r) for r in records)

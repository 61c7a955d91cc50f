"""A webhook receiver on real parts: a private Redis, a database of its own on the
session's PostgreSQL, and ``rxfleet webhooks``' aiohttp application on a free port."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis

from rxfleet.embedded.postgres_server import LocalPostgres
from rxfleet.embedded.redis_server import LocalRedis
from rxfleet.stores.database import Database
from rxfleet.stores.formulary import FormularyCache
from rxfleet.stores.metrics import MetricsStore
from rxfleet.webhooks import Publisher, Receiver, WebhookServer
from tests.integration.conftest import new_database

SECRET = b"tests-webhook-secret-0123456789abcdef"
MAX_BODY = 64 * 1024


@dataclass
class Hook:
    url: str
    db: Database
    cache: FormularyCache
    metrics: MetricsStore
    client: redis.Redis


@pytest.fixture
def hook(pg_server: LocalPostgres) -> Iterator[Hook]:
    server = LocalRedis().start()
    client = redis.Redis.from_url(server.url, decode_responses=True)
    db = Database(new_database(pg_server))
    db.upgrade()
    cache, metrics = FormularyCache(client, "t"), MetricsStore(client, "t")
    publisher = Publisher(db, cache, metrics, gap_seconds=60.0)
    try:
        with WebhookServer(Receiver(publisher, SECRET, time.time), MAX_BODY) as web:
            yield Hook(web.url, db, cache, metrics, client)
    finally:
        db.close()
        client.close()
        server.stop()

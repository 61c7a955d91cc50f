"""``rxfleet dlq replay`` with filters, against the real fleet: a dry run changes
nothing; a filtered replay replays only the letters it matches."""

from __future__ import annotations

from pathlib import Path

import psycopg

from rxfleet import context
from rxfleet.claims import synth
from rxfleet.dlq import ReplayStores, preview, replay
from rxfleet.gateway.sandbox.scenario import Scenario, Throttle
from rxfleet.lifecycle import Waiter, progress
from rxfleet.phikeys import vault
from rxfleet.stores.database import LetterFilter
from tests.integration.fleet.fleet_support import Fleet
from workers.pipeline import send_batch


def _state(url: str) -> list[tuple[object, ...]]:
    """Every dead letter's replay state and the runs: what a dry run must leave alone."""
    with psycopg.connect(url) as conn:
        letters = conn.execute(
            "SELECT run_id, seq, replayed_at, replay_run_id, sealed FROM dead_letters ORDER BY id"
        ).fetchall()
        runs = conn.execute("SELECT run_id, state FROM runs ORDER BY run_id").fetchall()
    return letters + runs


def test_a_dry_run_changes_nothing_and_a_filtered_replay_only_its_letters(
    clean_fleet: Fleet, tmp_path: Path
) -> None:
    fleet = clean_fleet
    ids = synth.write_claims(tmp_path / "c.jsonl", 6, seed=31, claim_id=lambda i: f"DQ-{i:04d}")
    stuck = frozenset(ids[1:4])  # three claims the gateway never answers: 99, replayable
    fleet.reset(
        Scenario(throttles=(Throttle(status=503, claim_ids=stuck, attempts=100, retry_after=None),))
    )
    run_id = fleet.run(tmp_path / "c.jsonl", batch_size=6).run_id
    fleet.reset()
    which = LetterFilter(run_id=run_id, claim_id=ids[2], code="99", reason="RETRIES_EXHAUSTED")
    before = _state(fleet.db.url)
    rows, others = preview(fleet.db, which)
    assert [r["claim_id"] for r in rows] == [ids[2]] and others == 0
    assert [r["claim_id"] for r in preview(fleet.db, LetterFilter(run_id=run_id))[0]] == sorted(
        stuck
    )
    assert preview(fleet.db, LetterFilter(run_id=run_id, reason="PAYER")) == ([], 0)
    assert _state(fleet.db.url) == before  # nothing marked, no run created
    stores = ReplayStores(fleet.runs, fleet.db, context.crosswalk(), vault(fleet.settings),
                          fleet.settings)  # fmt: skip
    new_run, count = replay(stores, which, send_batch)
    assert new_run and count == 1
    done = Waiter(lambda: progress(fleet.runs, fleet.db, new_run), say=lambda line: None).wait(
        60, lambda d, t: None
    )
    assert done.done == done.total == 1
    assert [(r["claim_id"], r["status"]) for r in fleet.results(new_run)] == [(ids[2], "PAID")]
    still = {r["claim_id"] for r in fleet.db.dead_letters(LetterFilter(run_id=run_id))[0]}
    assert still == stuck - {ids[2]}  # the two others wait, unreplayed

"""The crosswalk link against the live formulary (fakeredis): the formulary's entry
wins over the file's, not covered is rejected 70 by the pre-check, an unknown NDC
while an event waits is TRANSIENT until the stated time, then FATAL."""

from __future__ import annotations

import time

import fakeredis
import pytest

from config.settings import SAMPLE_CROSSWALK
from rxfleet.claims.crosswalk import CrosswalkEntry
from rxfleet.claims.work import Stage, WorkRecord
from rxfleet.links.crosswalk import Formulary, crosswalk_batch
from rxfleet.stores.crosswalk import CrosswalkCache
from rxfleet.stores.formulary import FormularyCache
from rxfleet.stores.metrics import MetricsStore
from rxfleet.stores.runs import RunStore

FILED = "00071015523"  # in the sample crosswalk
UNKNOWN = "55150012301"
GPI = "39400010100310"


def _record(seq: int, ndc: str) -> WorkRecord:
    claim = {"claim_id": f"C{seq}", "quantity_dispensed": "30", "plan_id": "PLAN-COMM"}
    return WorkRecord(seq=seq, source="f", line=seq + 1, claim_id=f"C{seq}", ndc11=ndc,
                      stage=Stage.VALIDATED, claim=claim)  # fmt: skip


@pytest.fixture
def world(fake: fakeredis.FakeRedis, runs: RunStore) -> tuple[RunStore, CrosswalkCache, Formulary]:
    cache = CrosswalkCache(fake, "t")
    runs.open("R", {"crosswalk": cache.load(SAMPLE_CROSSWALK)})
    return runs, cache, Formulary(FormularyCache(fake, "t"), 30.0, MetricsStore(fake, "t"))


def _mapped(record: WorkRecord) -> dict[str, object]:
    return next(e for e in record.events if e["stage"] == "mapped")


def test_the_formulary_overrides_the_file_and_not_covered_is_70(
    world: tuple[RunStore, CrosswalkCache, Formulary],
) -> None:
    runs, cache, formulary = world
    runs.add("R", [_record(0, FILED), _record(1, UNKNOWN)], {})
    excluded = CrosswalkEntry(ndc11=FILED, gpi14=GPI, covered=False)
    added = CrosswalkEntry(ndc11=UNKNOWN, gpi14=GPI, prior_auth=True)
    assert formulary.cache.publish(0, 2, [(1, excluded), (2, added)]) is None
    report = crosswalk_batch(runs, cache, formulary, "R", range(0, 2))
    assert report.countdown is None and report.done == 2
    first, second = runs.load("R", [0, 1])
    assert (first.stage, first.reject_codes, first.reason) == (Stage.SENT, ["70"], "FORMULARY")
    assert second.stage is Stage.MAPPED and [i.code for i in second.issues] == ["PRIOR_AUTH_FLAG"]
    assert _mapped(first)["formulary"] == _mapped(second)["formulary"] == 2


def test_an_unknown_ndc_waits_while_an_event_waits_then_maps(
    world: tuple[RunStore, CrosswalkCache, Formulary],
) -> None:
    runs, cache, formulary = world
    runs.add("R", [_record(0, UNKNOWN), _record(1, FILED)], {})
    formulary.cache.set_waiting(time.time())
    report = crosswalk_batch(runs, cache, formulary, "R", range(0, 2))
    assert (report.waiting, report.done, report.countdown) == (1, 1, 2.0)
    waiting, mapped = runs.load("R", [0, 1])
    assert waiting.stage is Stage.VALIDATED and waiting.waiting_since is not None
    assert waiting.events[-1]["codes"] == ["FORMULARY_PENDING"]
    assert waiting.events[-1]["outcome"] == "TRANSIENT"
    assert mapped.stage is Stage.MAPPED  # its batch mate is not held back
    entry = CrosswalkEntry(ndc11=UNKNOWN, gpi14=GPI)
    assert formulary.cache.publish(0, 1, [(1, entry)]) is None
    formulary.cache.set_waiting(None)
    report = crosswalk_batch(runs, cache, formulary, "R", range(0, 2))
    assert (report.waiting, report.done, report.skipped) == (0, 1, 1)
    (done,) = runs.load("R", [0])
    assert done.stage is Stage.MAPPED and done.gpi == GPI and done.waiting_since is None
    waits = MetricsStore(formulary.cache.client, "t").read().formulary_waits
    assert waits == {"waiting": 1, "mapped": 1}


def test_a_wait_past_the_stated_time_is_fatal(
    world: tuple[RunStore, CrosswalkCache, Formulary],
) -> None:
    runs, cache, formulary = world
    record = _record(0, UNKNOWN)
    record.waiting_since = time.time() - 31  # waited longer than the 30 s of the fixture
    runs.add("R", [record], {})
    formulary.cache.set_waiting(time.time() - 40)
    report = crosswalk_batch(runs, cache, formulary, "R", range(0, 1))
    assert report.countdown is None and report.quarantined == 1
    (done,) = runs.load("R", [0])
    assert done.quarantined and [i.code for i in done.issues] == ["MISSING_GPI_MAPPING"]


def test_without_a_pending_event_an_unknown_ndc_is_fatal_at_once(
    world: tuple[RunStore, CrosswalkCache, Formulary],
) -> None:
    runs, cache, formulary = world
    runs.add("R", [_record(0, UNKNOWN)], {})
    report = crosswalk_batch(runs, cache, formulary, "R", range(0, 1))
    assert report.countdown is None and report.quarantined == 1


def test_a_publish_from_a_stale_version_is_refused(fake: fakeredis.FakeRedis) -> None:
    cache = FormularyCache(fake, "t")
    entry = CrosswalkEntry(ndc11=UNKNOWN, gpi14=GPI)
    assert cache.publish(0, 2, [(2, entry)]) is None
    assert cache.publish(1, 3, [(3, entry)]) == 2  # read after 1, Redis holds 2: say so
    assert cache.publish(0, 2, [(2, entry)]) is None and cache.version() == 2  # already there

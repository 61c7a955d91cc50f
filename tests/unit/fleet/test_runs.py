"""The run store: Redis as working memory of what is in flight."""

from __future__ import annotations

from rxfleet.claims.work import Stage, WorkRecord
from rxfleet.stores.runs import RunStore


def _record(seq: int, stage: Stage = Stage.INGESTED) -> WorkRecord:
    return WorkRecord(seq=seq, source="f.jsonl", line=seq + 1, claim_id=f"C{seq}", stage=stage)


def test_first_seen_names_the_first_sequence_number_of_each_claim_id(runs: RunStore) -> None:
    assert runs.first_seen("R", [("A", 0), ("B", 1), ("A", 2)]) == [0, 1, 0]
    assert runs.first_seen("R", [("B", 7)]) == [1]
    assert runs.first_seen("R", [("A", 0)]) == [0]  # a resumed producer: the same answer


def test_records_are_added_only_where_absent(runs: RunStore) -> None:
    assert runs.add("R", [_record(0), _record(1)], {0: "sealed-0"}) == 2
    moved = _record(0, Stage.SENT)
    runs.save("R", [moved])
    again = runs.add("R", [_record(0), _record(2)], {0: "other", 2: "sealed-2"}, only_missing=True)
    assert again == 1
    assert [r.stage for r in runs.load("R", [0, 1, 2])] == [Stage.SENT, Stage.INGESTED,
                                                             Stage.INGESTED]  # fmt: skip
    pipe = runs.pipeline()
    sealed = runs.read_sealed(pipe, "R", [0, 1, 2])
    assert sealed(pipe.execute()) == ["sealed-0", None, "sealed-2"]
    assert runs.existing("R", [0, 1, 2, 3]) == {0, 1, 2}


def test_leases_keep_a_claim_with_one_holder_and_say_when_it_is_gone(runs: RunStore) -> None:
    runs.add("R", [_record(0), _record(1)], {})
    pipe = runs.pipeline()
    first = runs.lease(pipe, "R", [0, 1, 5], "a", 60_000)
    other = runs.lease(pipe, "R", [0], "b", 60_000)
    again = runs.lease(pipe, "R", [0], "a", 60_000)
    replies = pipe.execute()
    assert [int(x) for x in first(replies)] == [1, 1, 2]  # seq 5 has no record: gone
    assert [int(x) for x in other(replies)] == [0]  # held by a
    assert [int(x) for x in again(replies)] == [1]  # a renews its own
    runs.add("R", [_record(2)], {})
    pipe = runs.pipeline()
    runs.lease(pipe, "R", [2], "b", 0)
    taken = runs.lease(pipe, "R", [2], "c", 60_000)
    assert [int(x) for x in taken(pipe.execute())] == [1]  # b's lease ran out at once


def test_retire_counts_each_claim_once_however_often_it_runs(runs: RunStore) -> None:
    runs.add("R", [_record(s) for s in range(4)], {s: f"v{s}" for s in range(4)})
    runs.register_batch("R", 0, 4)
    assert runs.retire("R", 0, [0, 1, 2, 3]) == (4, 4)
    assert runs.retire("R", 0, [0, 1, 2, 3]) == (0, 4)  # a redelivered record link
    assert runs.in_flight("R") == 0 and runs.batches("R") == {}
    assert runs.existing("R", [0, 1, 2, 3]) == set()


def test_progress_knows_the_total_once_produced(runs: RunStore) -> None:
    runs.open("R", {"crosswalk": "v1"})
    assert runs.progress("R") == (None, None)
    runs.add("R", [_record(0)], {})
    runs.retire("R", 0, [0])
    runs.set_meta("R", total=1)
    assert runs.progress("R") == (1, 1)
    assert runs.active() == ["R"]
    runs.finish("R")
    assert runs.active() == []


def test_the_producer_lease_has_one_holder(runs: RunStore) -> None:
    assert runs.claim_producer("R", "one", 5)
    assert not runs.claim_producer("R", "two", 5)
    assert runs.claim_producer("R", "one", 5)  # renewal
    runs.release_producer("R", "two")  # not the holder: nothing happens
    assert runs.producing("R")
    runs.release_producer("R", "one")
    assert not runs.producing("R") and runs.claim_producer("R", "two", 5)


def test_loading_no_records_asks_redis_nothing(runs: RunStore) -> None:
    assert runs.load("R", []) == []


def test_save_never_brings_back_a_record_that_left_redis(runs: RunStore) -> None:
    runs.add("R", [_record(0), _record(1)], {})
    runs.retire("R", 0, [1])  # recorded meanwhile (or lost with a Redis restarted empty)
    runs.save("R", [_record(0, Stage.SENT), _record(1, Stage.SENT)], range(0, 2))
    assert runs.existing("R", [0, 1]) == {0}
    assert [r.stage for r in runs.load("R", [0, 1])] == [Stage.SENT]


def test_deliveries_are_counted_per_message(runs: RunStore) -> None:
    assert [runs.delivered("R", "task-1:0") for _ in range(3)] == [1, 2, 3]
    assert runs.delivered("R", "task-1:1") == 1  # a retry is a new message

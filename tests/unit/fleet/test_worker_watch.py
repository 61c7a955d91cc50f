"""The worker watch: a queue no worker consumes is named once, after its patience,
counted from the first ask that found it missing; its return is said once too."""

from __future__ import annotations

from rxfleet.report import WorkerWatch

QUEUES = ("rxfleet.cpu", "rxfleet.gateway")


def _watch(said: list[str]) -> WorkerWatch:
    return WorkerWatch(lambda: set(), QUEUES, said.append, patience=3.0)


def test_a_missing_queue_is_named_once_after_the_patience() -> None:
    said: list[str] = []
    watch = _watch(said)
    for asked in (10.0, 11.0, 12.0, 12.9):
        watch.check({"rxfleet.gateway"}, asked)
    assert said == []
    watch.check({"rxfleet.gateway"}, 13.0)
    watch.check({"rxfleet.gateway"}, 14.0)
    assert said == ["no worker consumes queue rxfleet.cpu: the run waits until one does"]


def test_a_queue_served_again_is_said_and_its_patience_starts_over() -> None:
    said: list[str] = []
    watch = _watch(said)
    watch.check(set(), 0.0)
    watch.check(set(), 3.0)
    watch.check(set(QUEUES), 4.0)
    assert said[-2:] == ["a worker consumes queue rxfleet.cpu again",
                         "a worker consumes queue rxfleet.gateway again"]  # fmt: skip
    watch.check(set(), 5.0)
    watch.check({"rxfleet.gateway"}, 7.9)
    assert len(said) == 4  # missing again since 5.0: not named before 8.0


def test_a_queue_served_between_asks_is_never_named() -> None:
    said: list[str] = []
    watch = _watch(said)
    for asked in range(20):
        watch.check(set(QUEUES) if asked % 2 else set(), float(asked))
    assert said == []

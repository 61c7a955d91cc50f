"""The operator's day, command by command, against the session's real fleet: what a
person sees on a terminal (tables that never cut an id, words instead of Python
dicts), what a script sees in a pipe, and the exits that say what happened."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery.signals import task_retry

import config.settings as config_settings
from bench.harness import wait_for
from config import configure
from rxfleet import api, cli, context
from rxfleet.gateway.sandbox.scenario import Drop, Scenario, Throttle
from tests.integration.fleet.fleet_support import SAMPLE, Fleet
from tests.integration.fleet.test_gateway_faults import clean_claims

pytestmark = pytest.mark.integration

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """rich sees an 80-column terminal (as a person's)."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "80")


def _out(capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    got = capsys.readouterr()
    return ANSI.sub("", got.out), ANSI.sub("", got.err)


@pytest.fixture(scope="module")
def finished(fleet: Fleet) -> str:
    """One finished run of the sample (quarantined claims included)."""
    fleet.reset()
    plan = api.open_plan([str(SAMPLE)], 100, new=True, say=lambda line: None)
    api.produce(plan, [str(SAMPLE)], say=lambda line: None)
    assert api.Run(plan.run_id).wait(timeout=120).finished
    return plan.run_id


def test_abort_of_no_such_run_exits_2_with_one_line(
    fleet: Fleet, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["abort", "NOPE"]) == 2
    out, err = _out(capsys)
    assert out == "" and err.strip() == "rxfleet: no run NOPE in the database"


def test_abort_of_a_finished_run_says_so(finished: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["abort", finished]) == 0
    assert "already finished: nothing to abort" in _out(capsys)[1]


def test_audit_is_a_table_on_a_terminal_and_an_unknown_claim_exits_1(
    finished: str, capsys: pytest.CaptureFixture[str], terminal: None
) -> None:
    assert cli.main(["audit", finished, "--claim", "NOPE"]) == 1
    out, err = _out(capsys)
    assert out == "" and f"no audit events for claim NOPE in run {finished}" in err
    assert cli.main(["audit", finished, "--claim", "RX00000001"]) == 0
    out, _ = _out(capsys)
    assert "stage" in out.splitlines()[0] and "RX00000001" in out and "{" not in out


def test_runs_never_cuts_a_run_id_and_runs_json(
    finished: str, capsys: pytest.CaptureFixture[str], terminal: None
) -> None:
    assert cli.main(["runs", "--limit", "50"]) == 0
    out, _ = _out(capsys)
    assert finished in out  # whole, on an 80-column terminal
    assert cli.main(["runs", "--json", "--limit", "50"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert finished in {row["run_id"] for row in listed["runs"]}


def test_dlq_list_never_cuts_a_claim_id(
    finished: str, capsys: pytest.CaptureFixture[str], terminal: None
) -> None:
    assert cli.main(["dlq", "list", "--run", finished, "--limit", "5"]) == 0
    out, _ = _out(capsys)
    ids = re.findall(r"RX\d{8}", out)
    assert len(ids) == 5, out


def test_results_to_stdout(finished: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["results", finished, "-o", "-"]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == len(SAMPLE.read_text().splitlines())
    assert "results written to stdout" in err


def test_stats_on_a_terminal_in_words(
    finished: str, capsys: pytest.CaptureFixture[str], terminal: None
) -> None:
    assert cli.main(["stats"]) == 0
    out, _ = _out(capsys)
    assert "breakers: auth closed, health closed" in out
    assert "queued messages: rxfleet.cpu " in out
    assert "{" not in out and "}" not in out  # no Python dict


def test_wait_lists_the_oldest_quarantined_claims(
    finished: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["wait", finished]) == 0
    out, _ = capsys.readouterr()
    lines = [ln.split("\t") for ln in out.splitlines() if ln.startswith("quarantined\t")]
    where = [int(fields[1].rsplit(":", 1)[1]) for fields in lines]
    assert len(where) == 10 and where == sorted(where)  # input order, from the top
    rate = next(float(ln.split("\t")[1]) for ln in out.splitlines()
                if ln.startswith("claims_per_second"))  # fmt: skip
    assert rate < 20_000  # the run's own time, not the late wait's


def test_wait_after_an_abort_says_how_to_replay_and_exits_1(
    clean_fleet: Fleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_fleet.reset(Scenario(latency_ms=150))
    clean_claims(tmp_path / "slow.jsonl", 400, seed=31)
    plan = api.open_plan([str(tmp_path / "slow.jsonl")], 50, new=True, say=lambda line: None)
    api.produce(plan, [str(tmp_path / "slow.jsonl")], say=lambda line: None)
    assert cli.main(["abort", plan.run_id]) == 0
    capsys.readouterr()
    assert cli.main(["wait", plan.run_id, "--timeout", "120"]) == 1
    out, err = capsys.readouterr()
    aborted = sum(1 for r in clean_fleet.results(plan.run_id) if r["reason"] == "ABORTED")
    assert aborted > 0, "the abort came too late to prove anything"
    assert f"{aborted} claims ended 99 unsent (reason ABORTED)" in err
    assert f"rxfleet dlq replay --run {plan.run_id} --reason ABORTED" in err
    assert "total\t400" in out
    clean_fleet.reset()


def test_an_abort_under_lost_answers_leaves_the_books_equal_to_the_payers(
    clean_fleet: Fleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A third of the first answers are lost after the gateway adjudicated them, and the
    run is aborted mid-way: a claim in doubt is asked again under its key (the stored
    answer comes back), so what the database records paid is what the payer paid, per
    claim and to the cent; only claims never sent end ``99 ABORTED``."""
    ids = clean_claims(tmp_path / "doubt.jsonl", 400, seed=37)
    lost = Drop(claim_ids=frozenset(ids[::3]), attempts=1, after_adjudication=True)
    clean_fleet.reset(Scenario(latency_ms=300, drops=(lost,)))
    plan = api.open_plan([str(tmp_path / "doubt.jsonl")], 50, new=True, say=lambda line: None)
    api.produce(plan, [str(tmp_path / "doubt.jsonl")], say=lambda line: None)
    gateway = clean_fleet.gateway
    wait_for(lambda: gateway.stats()["by_status"].get("dropped", 0) >= 20, 60, "lost answers")
    assert cli.main(["abort", plan.run_id]) == 0
    assert cli.main(["wait", plan.run_id, "--timeout", "120"]) == 1
    capsys.readouterr()
    rows = clean_fleet.results(plan.run_id)
    assert sorted(r["claim_id"] for r in rows) == sorted(ids)
    stats = gateway.stats()
    assert all(c["adjudications"] <= 1 for c in stats["claims"].values())
    aborted = [r for r in rows if r["reason"] == "ABORTED"]
    assert aborted and all(stats["claims"].get(r["claim_id"]) is None for r in aborted)
    books = gateway.books()["claims"]
    paid = {r["claim_id"]: round(float(r["amount_paid"]) * 100) for r in rows
            if r["status"] == "PAID"}  # fmt: skip
    assert paid == {b["claim_id"]: round(b["amount_paid"] * 100) for b in books}
    assert paid and len(paid) + len(aborted) <= len(ids)
    clean_fleet.reset()


@pytest.fixture
def retries() -> Iterator[list[str]]:
    seen: list[str] = []

    def record(reason: Any = None, **_: Any) -> None:
        seen.append(str(reason))

    task_retry.connect(record, weak=False)
    yield seen
    task_retry.disconnect(record)


def test_a_waiting_batch_says_why_in_its_retry(
    clean_fleet: Fleet, tmp_path: Path, retries: list[str]
) -> None:
    """What Flower shows of a retry ("Retry in 1.0s: ...") names the reason."""
    ids = clean_claims(tmp_path / "c.jsonl", 20, seed=32)
    throttle = Throttle(status=429, claim_ids=frozenset(ids[:2]), attempts=1, retry_after=1.0)
    clean_fleet.reset(Scenario(throttles=(throttle,)))
    started = time.monotonic()
    clean_fleet.run(tmp_path / "c.jsonl", batch_size=20)
    assert time.monotonic() - started < 60
    assert retries, "no retry happened: nothing to look at"
    assert all(re.fullmatch(r"Retry in \d+(\.\d\d?)?s: BatchDeferred\('[^']+'\)", r)
               for r in retries), retries  # fmt: skip
    assert any("Retry-After" in r for r in retries), retries
    clean_fleet.reset()


def test_piped_progress_says_the_rate_and_what_the_fleet_waits_on(
    clean_fleet: Fleet, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A pipe (cron) gets a progress line every RXFLEET_PROGRESS_INTERVAL seconds: claims
    terminal, the rate, and the fleet pause the gateway asked for."""
    monkeypatch.setattr(config_settings, "_current", clean_fleet.settings)
    configure(progress_interval=0.3)
    clean_claims(tmp_path / "c.jsonl", 60, seed=33)
    context.pause().lengthen(3.0)  # as a 429's Retry-After would
    plan = api.open_plan([str(tmp_path / "c.jsonl")], 20, new=True, say=lambda line: None)
    api.produce(plan, [str(tmp_path / "c.jsonl")], say=lambda line: None)
    assert cli.main(["wait", plan.run_id, "--timeout", "120"]) == 0
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "claims terminal" in ln]
    assert lines, "no progress line in a pipe"
    assert any("of 60 claims terminal" in ln and "fleet paused until" in ln for ln in lines)
    assert all(re.search(r"measuring the rate|\d+ claims/s", ln) for ln in lines), lines

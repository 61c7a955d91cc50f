"""Renamed settings: the new variable, and the former one still read."""

from __future__ import annotations

import pytest

from config.settings import Settings


@pytest.mark.parametrize(
    ("field", "new", "old"),
    [
        ("auth_breaker_threshold", "RXFLEET_AUTH_BREAKER_THRESHOLD", "RXFLEET_BREAKER_THRESHOLD"),
        (
            "auth_breaker_min_requests",
            "RXFLEET_AUTH_BREAKER_MIN_REQUESTS",
            "RXFLEET_BREAKER_MIN_REQUESTS",
        ),
    ],
)
def test_a_renamed_setting_reads_its_new_name_first_then_its_former_one(
    monkeypatch: pytest.MonkeyPatch, field: str, new: str, old: str
) -> None:
    monkeypatch.chdir("/")  # no .env of the working directory
    monkeypatch.setenv(old, "7")
    assert getattr(Settings(), field) == 7
    monkeypatch.setenv(new, "9")
    assert getattr(Settings(), field) == 9


def test_a_renamed_setting_is_given_by_its_field_name_in_code() -> None:
    settings = Settings(auth_breaker_threshold=0.25, auth_breaker_min_requests=3)
    assert (settings.auth_breaker_threshold, settings.auth_breaker_min_requests) == (0.25, 3)

"""PHI keys from settings (rotation, refusals) and the production guards."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from config import Settings
from config.processes import WORKER_SECRETS, secrets_of
from rxfleet.claims.phi import generate_key, key_id, parse_key
from rxfleet.errors import ConfigError
from rxfleet.guards import check_fleet
from rxfleet.phikeys import generated_env, require_keys, token_sealer, tokenizer, vault

PHI_KEY, OLD_VAULT, NEW_VAULT = generate_key(), generate_key(), generate_key()
CLAIM = {"cardholder_id": "ZH123456789", "date_of_birth": "1980-02-25"}


def settings(**values: Any) -> Settings:
    base: dict[str, Any] = {"phi_key": SecretStr(PHI_KEY), "vault_key": SecretStr(NEW_VAULT)}
    base.update(values)
    return Settings(**base)


def test_rotation_through_settings() -> None:
    before = vault(settings(vault_key=SecretStr(OLD_VAULT))).seal(CLAIM, context="r:1")
    switched = settings(vault_keys_old=SecretStr(f" {OLD_VAULT} ,{generate_key()}"))
    cipher = vault(switched)
    assert cipher.open(before, context="r:1") == CLAIM  # sealed under the retired key
    fresh = cipher.seal(CLAIM, context="r:1")
    assert fresh.split(".")[0] == key_id(parse_key(NEW_VAULT, "k")) != before.split(".")[0]
    with pytest.raises(ValueError, match="RXFLEET_VAULT_KEYS_OLD"):
        vault(settings()).open(before, context="r:1")


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ({"phi_key": None}, "RXFLEET_PHI_KEY must be set"),
        ({"vault_key": SecretStr("")}, "RXFLEET_VAULT_KEY must be set"),
        ({"phi_key": SecretStr("passphrase-0123456789abcdef")}, "RXFLEET_PHI_KEY must be 32"),
        ({"vault_key": SecretStr("QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=")}, "weak"),
        ({"vault_key": SecretStr(PHI_KEY)}, "must differ"),
        ({"vault_keys_old": SecretStr("short")}, "RXFLEET_VAULT_KEYS_OLD (entry 1)"),
    ],
)
def test_bad_keys_refused(values: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as caught:
        require_keys(settings(**values))
    assert needle in str(caught.value) and "rxfleet keys generate" in str(caught.value)
    assert PHI_KEY not in str(caught.value)


def test_generated_env_lines() -> None:
    lines = generated_env()
    names = [line.split("=", 1)[0] for line in lines]
    assert names == [
        "RXFLEET_PHI_KEY",
        "RXFLEET_VAULT_KEY",
        "RXFLEET_FLOWER_AUTH",
        "RXFLEET_WEBHOOK_SECRET",
    ]
    values = dict(line.split("=", 1) for line in lines)
    good = settings(
        phi_key=SecretStr(values["RXFLEET_PHI_KEY"]),
        vault_key=SecretStr(values["RXFLEET_VAULT_KEY"]),
    )
    require_keys(good)
    assert tokenizer(good).token("x") and token_sealer(good).open(token_sealer(good).seal("t"))
    assert values["RXFLEET_FLOWER_AUTH"].startswith("operator:")
    secret = SecretStr(values["RXFLEET_WEBHOOK_SECRET"])
    assert settings(webhook_secret=secret).webhook_secret_or_raise()


REAL = {
    "redis_url": "redis://redis.internal:6379/0",
    "gateway_url": "https://pbm.example.com",
    "token_url": "https://pbm.example.com/oauth2/token",
    "client_id": "acme-pharmacy",
    "client_secret": SecretStr("s3cr3t-from-the-pbm"),
}


def test_real_settings_pass() -> None:
    check_fleet(settings(**REAL))


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ({"client_id": None}, "RXFLEET_CLIENT_ID and RXFLEET_CLIENT_SECRET must be set"),
        ({"client_secret": None}, "RXFLEET_CLIENT_ID and RXFLEET_CLIENT_SECRET must be set"),
        ({"client_id": "rxfleet-sandbox"}, "sandbox's credentials"),
        ({"client_secret": SecretStr("sandbox-secret")}, "sandbox's credentials"),
        ({"gateway_url": "http://127.0.0.1:8700"}, "RXFLEET_GATEWAY_URL is plain http://"),
        ({"token_url": "http://localhost/oauth2/token"}, "RXFLEET_SANDBOX=1"),
        ({"gateway_url": "http://pbm.example.com"}, "RXFLEET_ALLOW_INSECURE_GATEWAY=1"),
        ({"token_url": None}, "RXFLEET_TOKEN_URL must be set"),
    ],
)
def test_sandbox_or_insecure_settings_refused(values: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_fleet(settings(**{**REAL, **values}))
    assert needle in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


def test_escape_hatches() -> None:
    insecure = {**REAL, "gateway_url": "http://pbm.example.com"}
    check_fleet(settings(**insecure, allow_insecure_gateway=True))
    sandbox = {
        "redis_url": REAL["redis_url"],
        "gateway_url": "http://127.0.0.1:8700",
        "token_url": "http://127.0.0.1:8700/oauth2/token",
    }
    with pytest.raises(ConfigError, match="RXFLEET_SANDBOX=1"):
        check_fleet(settings(**sandbox))
    check_fleet(settings(**sandbox, sandbox=True))
    assert settings(sandbox=True).credentials() == ("rxfleet-sandbox", "sandbox-secret")
    with pytest.raises(ConfigError, match="RXFLEET_CLIENT_ID"):
        settings().credentials()


def test_keys_are_checked_even_in_the_sandbox() -> None:
    with pytest.raises(ConfigError, match="RXFLEET_PHI_KEY"):
        check_fleet(settings(redis_url="redis://x:1/0", sandbox=True, phi_key=None))


def test_cli_keys_generate(capsys: pytest.CaptureFixture[str]) -> None:
    from rxfleet import cli

    assert cli.main(["keys", "generate"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("=", 1)[0] for line in lines[:2]] == ["RXFLEET_PHI_KEY", "RXFLEET_VAULT_KEY"]
    for line in lines[:2]:
        parse_key(line.split("=", 1)[1], "K")


def test_a_tls_sidecar_on_this_machine_is_a_real_gateway() -> None:
    """stunnel, Envoy or ghostunnel at 127.0.0.1 in front of the PBM: allowed, by what it
    is (TLS, real credentials), not refused for where it listens."""
    local = {"gateway_url": "https://127.0.0.1:8443", "token_url": "https://localhost/token"}
    check_fleet(settings(**{**REAL, **local}))
    trusted = {"gateway_url": "http://127.0.0.1:8080", "token_url": "http://127.0.0.1:8080/t"}
    check_fleet(settings(**{**REAL, **trusted}, allow_insecure_gateway=True))


@pytest.mark.parametrize(
    ("command", "needs"),
    [
        ("run", {"RXFLEET_PHI_KEY", "RXFLEET_VAULT_KEY"}),
        ("dlq replay", {"RXFLEET_PHI_KEY", "RXFLEET_VAULT_KEY"}),
        ("stats", set()),
        ("metrics", set()),
        ("runs", set()),
        ("dlq list", set()),
        ("audit", set()),
        ("token", set()),
        ("a-command-not-in-the-table", {"RXFLEET_PHI_KEY", "RXFLEET_VAULT_KEY"}),
    ],
)
def test_which_command_needs_which_key(command: str, needs: set[str]) -> None:
    assert set(secrets_of(command)) == needs
    keyless = settings(**REAL, phi_key=None, vault_key=None)
    if needs:
        with pytest.raises(ConfigError, match="must be set"):
            check_fleet(keyless, secrets_of(command))
    else:
        check_fleet(keyless, secrets_of(command), gateway=False)


def test_workers_need_the_vault_key_only() -> None:
    check_fleet(settings(**REAL, phi_key=None), WORKER_SECRETS)
    with pytest.raises(ConfigError, match="RXFLEET_VAULT_KEY must be set"):
        check_fleet(settings(**REAL, vault_key=None), WORKER_SECRETS)

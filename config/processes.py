"""Which process of a fleet needs which secret: the table the guards enforce
(``rxfleet.guards``) and docs/operations.md ("Keys") is generated from.

Only what seals or opens PHI holds a PHI key: the producer tokenizes PHI (HMAC
under ``RXFLEET_PHI_KEY``) and seals it into the vault (``RXFLEET_VAULT_KEY``);
the workers open it for the gateway request and keep the portal token sealed at
rest under a subkey of the vault key. A monitoring host (``rxfleet stats``,
``runs``, ``audit``, the ``metrics`` exporter) holds neither.
"""

from __future__ import annotations

from dataclasses import dataclass

PHI_KEY = "RXFLEET_PHI_KEY"
VAULT_KEY = "RXFLEET_VAULT_KEY"


@dataclass(frozen=True)
class Process:
    name: str
    #: The ``rxfleet`` commands it covers (``dlq replay``: command and action).
    commands: tuple[str, ...]
    secrets: tuple[str, ...]
    why: str


PROCESSES: tuple[Process, ...] = (
    Process(
        "producer: `rxfleet run`, `enqueue`, `resume`, `dlq replay`, the Python API's enqueue",
        ("run", "enqueue", "resume", "dlq replay"),
        (PHI_KEY, VAULT_KEY),
        "tokenizes PHI (`patient_token`) and seals it into the vault; a replay opens the "
        "dead letters' sealed PHI and seals it again",
    ),
    Process(
        "workers: Procfile `cpu` and `submit`",
        (),
        (VAULT_KEY,),
        "the submit link opens PHI from the vault for the one HTTP hop to the gateway; "
        "the portal token is sealed at rest under a subkey of the vault key (the token "
        "check runs on the cpu queue)",
    ),
    Process(
        "read-only commands: `wait`, `results`, `runs`, `abort`, `audit`, `claim`, "
        "`dlq list`, `stats`, `token status`, `db`",
        ("wait", "results", "runs", "abort", "audit", "claim", "dlq list", "stats", "token", "db"),
        (),
        "read the database and Redis's counters, ids and token metadata; never a vault "
        "blob, never the token",
    ),
    Process(
        "metrics exporter: Procfile `metrics` (`rxfleet metrics`)",
        ("metrics",),
        (),
        "reads counters and gauges from Redis (the token's expiry, not the token)",
    ),
    Process(
        "beat, Flower, the sandbox gateway (`rxfleet gateway`), `rxfleet keys`",
        ("gateway", "keys"),
        (),
        "schedule tasks, show task ids and counts, answer as the sandbox, print fresh keys",
    ),
)

#: The workers' secrets (their start-up guard, ``workers.signals``).
WORKER_SECRETS: tuple[str, ...] = PROCESSES[1].secrets


def secrets_of(command: str) -> tuple[str, ...]:
    """The secrets ``rxfleet COMMAND`` needs (``dlq replay``: command and action).

    A command missing from the table needs both keys: a new command is never
    let off the guard by being forgotten here.
    """
    for process in PROCESSES:
        if command in process.commands:
            return process.secrets
    return (PHI_KEY, VAULT_KEY)


def guarded_commands() -> frozenset[str]:
    """Commands that touch a fleet's credentials: the producer's (gateway rules apply)."""
    return frozenset(PROCESSES[0].commands)

"""rxfleet: pharmacy claims through a Celery worker fleet to a PBM gateway, exactly once."""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Callable, Sequence

import redis
from pydantic import ValidationError

from config import get_settings
from config.processes import guarded_commands, secrets_of
from rxfleet import __version__, commands, logs
from rxfleet.claims.rejects import Reason
from rxfleet.errors import ConfigError, InfrastructureError, InputError, RxFleetError
from rxfleet.guards import check_fleet
from rxfleet.stores.connection import check_clock, check_eviction, get_redis

log = logging.getLogger("rxfleet")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as a shell reports it


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every option's default in its help (unless the help says it, or it is a switch);
    descriptions and epilogs as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text or action.default is None or action.default is False:
            return text
        if not action.option_strings:
            return text
        return super()._get_help_string(action)


def _sub(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, text: str
) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=text, description=text, formatter_class=_Formatter)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rxfleet", description=__doc__, epilog=EPILOG, formatter_class=_Formatter
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more (INFO)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _run_parser(sub)
    enqueue = _sub(sub, "enqueue", "producer only: enqueue INPUT, print the run id")
    enqueue.add_argument("inputs", nargs="+", metavar="INPUT", help="claims files, in order")
    _batch_option(enqueue)
    enqueue.add_argument("--new", action="store_true", help="a fresh run, even of the same input")
    _follow_parsers(sub)
    _dlq_parser(sub)
    _fleet_parsers(sub)
    return parser


EPILOG = """exit codes: 0 done, 1 the fleet could not finish (timeout, Redis away, an
aborted run), 2 bad input or settings (nothing enqueued), 130 interrupted (Ctrl-C).
Every command and option: docs/cli.md.
Settings (RXFLEET_*): docs/settings.md."""


def _batch_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        metavar="N",
        help="claims per chain, 1 to 10000 (default: RXFLEET_BATCH_SIZE, 500)",
    )


def _run_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = _sub(sub, "run", "fan INPUT into the fleet, wait, write OUT, summarize")
    run.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="claims files (JSONL, CSV, Parquet, NCPDP D.0, X12 837), one run",
    )
    run.add_argument(
        "-o",
        "--output",
        default=None,
        metavar="OUT",
        help="results file: .jsonl, .csv or .parquet (none: summary only)",
    )
    _batch_option(run)
    run.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="S",
        help="seconds to wait (default: 600 plus 0.1 a claim)",
    )
    run.add_argument("--new", action="store_true", help="a fresh run, even of the same input")
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="read and validate only: what would be quarantined; nothing enqueued or sent",
    )
    run.add_argument(
        "--json",
        action="store_true",
        help="print one JSON summary on stdout (run id, counts, elapsed, output)",
    )


def _following(parser: argparse.ArgumentParser) -> None:
    """RUN_ID and how to follow it: ``wait`` and ``resume``."""
    parser.add_argument("run_id", metavar="RUN_ID")
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="S",
        help="seconds to wait (default: 600 plus 0.1 a claim)",
    )
    parser.add_argument(
        "-o", "--output", default=None, metavar="OUT", help="results file: .jsonl, .csv or .parquet"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON summary on stdout")


def _follow_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    wait = _sub(sub, "wait", "follow a run until every claim is terminal")
    _following(wait)
    results = _sub(sub, "results", "export a run's results")
    results.add_argument("run_id", metavar="RUN_ID")
    results.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="results file: .jsonl, .csv or .parquet; - for JSON lines on stdout",
    )
    runs = _sub(sub, "runs", "the runs, newest first: state, claims terminal / total, times")
    runs.add_argument("--limit", type=int, default=20, help="how many runs")
    runs.add_argument("--json", action="store_true", help="one JSON object, even on a terminal")
    resume = _sub(sub, "resume", "finish a run whose producer or chains were lost")
    _following(resume)
    abort = _sub(sub, "abort", "stop a run: its open claims end 99 (aborted)")
    abort.add_argument("run_id", metavar="RUN_ID")
    _audit_parser(sub)
    claim = _sub(sub, "claim", "one claim's every submission across runs: answers, reasons, stages")
    claim.add_argument("claim_id", metavar="CLAIM_ID")
    claim.add_argument("--json", action="store_true", help="one JSON object, even on a terminal")


def _audit_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = _sub(
        sub,
        "audit",
        "each claim's path through the stages (a table on a terminal, JSON lines in a "
        "pipe or a file); "
        "`audit verify [RUN_ID]`: check the trail's hash chain (every run by default)",
    )
    audit.add_argument("run_id", metavar="RUN_ID", help="a run, or `verify`")
    audit.add_argument(
        "verify_run",
        nargs="?",
        default=None,
        metavar="VERIFY_RUN_ID",
        help="with `verify`: the run to check (default: every run)",
    )
    audit.add_argument("--claim", default=None, help="one claim id (default: every claim)")
    audit.add_argument(
        "-o",
        "--output",
        default=None,
        metavar="FILE",
        help="write the JSON lines here (default: stdout)",
    )


def _dlq_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dlq = _sub(sub, "dlq", "dead-lettered claims: list them, replay what a replay can fix")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    listing = _sub(dlq_sub, "list", "a page of dead letters, newest first")
    _letter_filters(listing)
    listing.add_argument("--limit", type=int, default=50, help="dead letters on this page")
    listing.add_argument("--offset", type=int, default=0, help="dead letters to skip")
    replay = _sub(dlq_sub, "replay", "send the replayable dead letters again, as a new run")
    _letter_filters(replay)
    replay.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would be replayed; replay nothing",
    )


def _letter_filters(parser: argparse.ArgumentParser) -> None:
    """Which dead letters: by run, claim, code, reason; combined, every one must match."""
    parser.add_argument("--run", default=None, metavar="RUN_ID", help="one run (default: all)")
    parser.add_argument("--claim", default=None, metavar="ID", help="one claim id (default: all)")
    parser.add_argument(
        "--code",
        default=None,
        metavar="CODE",
        help="letters with this reject or validation code (default: all)",
    )
    parser.add_argument(
        "--reason",
        default=None,
        type=str.upper,
        metavar="REASON",
        choices=[r.value for r in Reason],
        help="letters ended for this reason (docs/results.md; default: all)",
    )


def _pause_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pause = _sub(sub, "pause", "hold every submit worker back (within a second) until unpaused")
    pause.add_argument(
        "--for",
        dest="duration",
        type=duration,
        default=None,
        metavar="DURATION",
        help="end the pause by itself after this long: 90, 90s, 15m, 2h (default: until "
        "`rxfleet unpause`)",
    )
    _sub(sub, "unpause", "end an operator's pause (a pause the gateway asked for runs its course)")


def _fleet_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    stats = _sub(sub, "stats", "the fleet's counters and gauges (what `rxfleet metrics` exports)")
    stats.add_argument(
        "run_id",
        nargs="?",
        default=None,
        metavar="RUN_ID",
        help="also this run's counts, from the database",
    )
    stats.add_argument("--json", action="store_true", help="one JSON object, even on a terminal")
    _pause_parsers(sub)
    metrics = _sub(sub, "metrics", "serve the fleet's metrics to Prometheus (/metrics)")
    metrics.add_argument("--port", type=int, default=9808, help="port to listen on")
    metrics.add_argument("--host", default="127.0.0.1", help="address to listen on")
    gateway = _sub(sub, "gateway", "the sandbox PBM gateway (docs/protocol.md)")
    gateway.add_argument("--port", type=int, default=8700, help="port to listen on")
    gateway.add_argument("--host", default="127.0.0.1", help="address to listen on")
    gateway.add_argument(
        "--scenario",
        default=None,
        metavar="FILE",
        help="fault-knob scenario (JSON; default: no faults)",
    )
    _payer_parsers(sub)
    token = _sub(sub, "token", "the shared portal token: state, TTL, counters (never the token)")
    token.add_argument("action", choices=["status"], help="what to do")
    keys = _sub(sub, "keys", "fresh PHI keys (and Flower auth) as RXFLEET_* lines")
    keys.add_argument("action", choices=["generate"], help="what to do")
    db = _sub(sub, "db", "the system of record: apply its migrations, or prune past retention")
    db.add_argument("action", choices=["upgrade", "prune"],
                    help="upgrade: apply pending migrations; prune: delete what is older than "
                    "RXFLEET_RETENTION_DAYS")  # fmt: skip


def _payer_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The payer's two feeds: the portal's pending claims, the formulary's events."""
    sync = _sub(sub, "sync", "pull the payer portal's pending claims into the fleet, in order; "
                "acknowledge them once recorded (RXFLEET_PORTAL_URL)")  # fmt: skip
    sync.add_argument(
        "--drain",
        action="store_true",
        help="stop once nothing is pending and every claim pulled is acknowledged",
    )
    hooks = _sub(sub, "webhooks", "receive the payer's formulary events (RXFLEET_WEBHOOK_SECRET)")
    hooks.add_argument("--port", type=int, default=8710, help="port to listen on")
    hooks.add_argument("--host", default="127.0.0.1", help="address to listen on")


UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration(text: str) -> float:
    """``--for``: seconds, or a number with ``s``, ``m`` or ``h``; more than zero."""
    number, unit = text.strip().lower(), ""
    if number[-1:] in ("s", "m", "h"):
        number, unit = number[:-1], number[-1]
    try:
        seconds = float(number) * UNITS[unit]
    except ValueError:
        seconds = math.nan
    if not seconds > 0 or math.isinf(seconds):
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 90, 90s, 15m, 2h)")
    return seconds


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        _guard(_command_name(args), bool(getattr(args, "dry_run", False)))
        return _dispatch(args)
    except (InputError, ConfigError) as exc:
        commands.say(str(exc))
        return EXIT_USAGE
    except ValidationError as exc:  # a setting that is not of its type: name it, not its value
        names = ", ".join(f"RXFLEET_{str(e['loc'][0]).upper()}" for e in exc.errors() if e["loc"])
        print(f"rxfleet: settings not valid: {names}", file=sys.stderr)
        return EXIT_USAGE
    except InfrastructureError as exc:
        commands.say(str(exc))
        return EXIT_FAILED
    except RxFleetError as exc:
        commands.say(str(exc))
        return EXIT_FAILED
    except redis.RedisError as exc:
        commands.say(f"Redis: {type(exc).__name__}: {exc}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("rxfleet: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `rxfleet ... | head`: the reader has what it wanted
        sys.stderr.close()
        return EXIT_OK


#: Commands that never touch a fleet: no production guards.
UNGUARDED = frozenset({"gateway", "keys"})


def _guard(command: str, dry_run: bool = False) -> None:
    """Log filters (scrub last) and format; with a Redis URL, the production guards: the
    secrets this command needs (``config.processes``), the gateway rules for the producer."""
    settings = get_settings()
    logs.configure(settings)
    commands.ride_outages()
    if command not in UNGUARDED and settings.redis_url and not dry_run:
        check_fleet(settings, secrets_of(command), gateway=command in guarded_commands())
        check_eviction(get_redis())
        check_clock(get_redis(), settings.clock_skew_max)


def _command_name(args: argparse.Namespace) -> str:
    """``dlq replay`` and ``dlq list`` are told apart: only a replay opens PHI."""
    if args.command == "dlq":
        return f"dlq {args.dlq_command}"
    return str(args.command)


def _dispatch(args: argparse.Namespace) -> int:
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "run": commands.run,
        "enqueue": commands.enqueue,
        "wait": commands.wait,
        "results": commands.results,
        "runs": commands.runs,
        "resume": commands.resume,
        "abort": commands.abort,
        "audit": commands.audit,
        "claim": commands.claim,
        "dlq": commands.dlq,
        "gateway": commands.gateway,
        "token": commands.token,
        "db": commands.db,
        "stats": commands.stats,
        "pause": commands.pause,
        "unpause": commands.unpause,
        "metrics": commands.metrics,
        "keys": commands.keys,
        "sync": commands.sync,
        "webhooks": commands.webhooks,
    }
    return handlers[args.command](args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

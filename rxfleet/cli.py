"""``rxfleet``: run, enqueue, wait, results, dlq, gateway, token, keys."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

import redis

from config import get_settings
from rxfleet import commands, logs
from rxfleet.errors import ConfigError, InfrastructureError, InputError, RxFleetError
from rxfleet.guards import check_fleet

log = logging.getLogger("rxfleet")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rxfleet", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)
    _run_parser(sub)
    enqueue = sub.add_parser("enqueue", help="producer only: enqueue, print the run id")
    enqueue.add_argument("inputs", nargs="+", metavar="INPUT")
    enqueue.add_argument("--batch-size", type=int, default=None)
    enqueue.add_argument("--new", action="store_true", help="a fresh run, even of the same input")
    _follow_parsers(sub)
    _dlq_parser(sub)
    gateway = sub.add_parser("gateway", help="the sandbox PBM gateway")
    gateway.add_argument("--port", type=int, default=8700)
    gateway.add_argument("--host", default="127.0.0.1")
    gateway.add_argument("--scenario", default=None, help="fault-knob scenario (JSON)")
    token = sub.add_parser("token", help="the shared portal token")
    token.add_argument("action", choices=["status"])
    keys = sub.add_parser("keys", help="fresh PHI keys (and Flower auth) as RXFLEET_* lines")
    keys.add_argument("action", choices=["generate"])
    return parser


def _run_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = sub.add_parser("run", help="fan INPUT into the fleet, wait, write OUT, summarize")
    run.add_argument("inputs", nargs="+", metavar="INPUT")
    run.add_argument("-o", "--output", default=None)
    run.add_argument("--batch-size", type=int, default=None)
    run.add_argument("--timeout", type=float, default=None,
                     help="seconds (default: 600 plus 0.1 a claim)")  # fmt: skip
    run.add_argument("--new", action="store_true", help="a fresh run, even of the same input")


def _follow_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    wait = sub.add_parser("wait", help="follow a run until every claim is terminal")
    wait.add_argument("run_id")
    wait.add_argument("--timeout", type=float, default=None)
    wait.add_argument("-o", "--output", default=None)
    results = sub.add_parser("results", help="export a run's results")
    results.add_argument("run_id")
    results.add_argument("-o", "--output", required=True)
    runs = sub.add_parser("runs", help="the runs: state, claims terminal / total, age")
    runs.add_argument("--limit", type=int, default=20)
    resume = sub.add_parser("resume", help="finish a run whose producer or chains were lost")
    resume.add_argument("run_id")
    resume.add_argument("--timeout", type=float, default=None)
    resume.add_argument("-o", "--output", default=None)
    abort = sub.add_parser("abort", help="stop a run: its open claims end 99 (aborted)")
    abort.add_argument("run_id")
    audit = sub.add_parser("audit", help="each claim's path through the stages")
    audit.add_argument("run_id")
    audit.add_argument("--claim", default=None, help="one claim id")
    audit.add_argument("-o", "--output", default=None)


def _dlq_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dlq = sub.add_parser("dlq", help="dead-lettered claims")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True)
    listing = dlq_sub.add_parser("list")
    listing.add_argument("--run", default=None)
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--offset", type=int, default=0)
    replay = dlq_sub.add_parser("replay")
    replay.add_argument("--run", default=None)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        _guard(args.command)
        return _dispatch(args)
    except (InputError, ConfigError) as exc:
        print(f"rxfleet: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except InfrastructureError as exc:
        print(f"rxfleet: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except RxFleetError as exc:
        print(f"rxfleet: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except redis.RedisError as exc:
        print(f"rxfleet: Redis: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("rxfleet: interrupted", file=sys.stderr)
        return EXIT_FAILED


#: Commands that never touch a fleet: no production guards.
UNGUARDED = frozenset({"gateway", "keys"})


def _guard(command: str) -> None:
    """Log filters (scrub last) and format; with a Redis URL, the production guards."""
    settings = get_settings()
    logs.configure(settings)
    if command not in UNGUARDED and settings.redis_url:
        check_fleet(settings)


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
        "dlq": commands.dlq,
        "gateway": commands.gateway,
        "token": commands.token,
        "keys": commands.keys,
    }
    return handlers[args.command](args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""``rxfleet gateway`` with a chosen listen backlog: ``python bench/sandbox_main.py BACKLOG ARGS``.

The sandbox's ThreadingHTTPServer keeps socketserver's default ``listen(5)``. A
client that opens ~100 connections at once (seed 003's aiohttp session) then has
SYNs dropped and retransmitted after 1, 3, 7 s, and its 10 s request timeout
fires. bench/throughput.py starts the gateway through this wrapper so that every
contender meets a gateway that accepts its connections; ``--gateway-backlog 0``
there runs the stock ``rxfleet gateway`` instead.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rxfleet.cli import main as cli_main
from rxfleet.gateway.sandbox import server


def main() -> int:
    server._Server.request_queue_size = int(sys.argv[1])
    return cli_main(["gateway", *sys.argv[2:]])


if __name__ == "__main__":
    sys.exit(main())

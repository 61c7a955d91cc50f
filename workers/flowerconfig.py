"""Flower's options, from our settings: the Procfile's ``flower`` line passes
``--conf=workers/flowerconfig.py``, and Flower runs this file at start.

Its basic auth comes from ``RXFLEET_FLOWER_AUTH`` (``user:password``) here, in
the process, never on the command line, where any local user would read it
with ``ps``. Without it, Flower does not start.
"""

from __future__ import annotations

from config import get_settings

_auth = get_settings().flower_auth
if _auth is None:
    raise SystemExit(
        "rxfleet: set RXFLEET_FLOWER_AUTH=user:password (rxfleet keys generate prints one); "
        "Flower does not start without it"
    )
#: Read by Flower (tornado's options: names that match one of its options are applied).
basic_auth = [_auth.get_secret_value()]

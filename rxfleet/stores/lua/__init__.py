"""The stores' Lua scripts: one ``*.lua`` file each, named after the store that owns
the keys it touches (``runs_lease.lua`` is ``RunStore``'s ``lease``), read from the
package with ``importlib.resources`` and registered once per client by that store.

A script that calls ``slices(list, UNPACK_SLICE)`` gets ``slices.lua`` and the size
put in front of it here: Lua's ``unpack`` pushes every value onto the C stack, which
holds about 8000 (``LUAI_MAXCSTACK``), so a batch of up to 10 000 claims (or twice
that many fields) cannot be handed to one Redis command at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from importlib.resources import files

import redis
from redis.commands.core import Script

#: Values a script unpacks into one Redis command: well under ``LUAI_MAXCSTACK`` (~8000).
UNPACK_SLICE = 1000


@cache
def source(name: str) -> str:
    """The text of ``{name}.lua``, with the ``slices`` prelude when it slices."""
    text = _read(name)
    if "slices(" not in text:
        return text
    return f"local UNPACK_SLICE = {UNPACK_SLICE}\n{_read('slices')}{text}"


def register(client: redis.Redis, store: str, names: Iterable[str]) -> dict[str, Script]:
    """``{name: script}`` for each ``{store}_{name}.lua``, registered on ``client``."""
    return {name: client.register_script(source(f"{store}_{name}")) for name in names}


def _read(name: str) -> str:
    return files(__package__).joinpath(f"{name}.lua").read_text(encoding="utf-8")

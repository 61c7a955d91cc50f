"""The stores' Lua scripts: files beside their stores, each registered by one store."""

from __future__ import annotations

from importlib.resources import files

import fakeredis

from rxfleet.stores import lua
from rxfleet.stores.beat import BeatLease
from rxfleet.stores.formulary import FormularyCache
from rxfleet.stores.inflight import FleetInflight
from rxfleet.stores.order import ClaimOrder
from rxfleet.stores.pause import FleetPause
from rxfleet.stores.portal import PortalStore
from rxfleet.stores.rate import GatewayRate
from rxfleet.stores.runs import RunStore
from rxfleet.stores.tokens import TokenStore


def test_every_script_file_is_registered_by_its_store() -> None:
    client = fakeredis.FakeRedis(decode_responses=True)
    stores = {
        "runs": RunStore(client)._scripts,
        "tokens": TokenStore(client)._scripts,
        "pause": FleetPause(client)._scripts,
        "order": ClaimOrder(client)._scripts,
        "portal": PortalStore(client)._scripts,
        "beat": BeatLease(client, "t", "me")._scripts,
        "formulary": FormularyCache(client)._scripts,
        "rate": GatewayRate(client, 10.0)._scripts,
        "inflight": FleetInflight(client, 64, 1024)._scripts,
    }
    registered = {f"{store}_{name}" for store, scripts in stores.items() for name in scripts}
    on_disk = {p.name[:-4] for p in files(lua).iterdir() if p.name.endswith(".lua")}
    assert on_disk - {"slices"} == registered


def test_a_script_that_slices_gets_the_prelude_and_the_one_slice_size() -> None:
    text = lua.source("runs_retire")
    assert text.startswith(f"local UNPACK_SLICE = {lua.UNPACK_SLICE}\n")
    assert "local function slices(list, size)" in text
    assert "slices(seqs, UNPACK_SLICE)" in text
    assert "slices(" not in lua.source("runs_lease")  # a window, never a whole batch
    assert lua.UNPACK_SLICE < 8000  # LUAI_MAXCSTACK

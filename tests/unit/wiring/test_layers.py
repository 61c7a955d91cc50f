"""Every module of the product has a place in the import-layer contract that CI checks."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _layered() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    (layers,) = [c["layers"] for c in contracts if c["type"] == "layers"]
    return {name.strip() for layer in layers for name in layer.replace(":", "|").split("|")}


def test_every_top_level_module_of_rxfleet_is_in_a_layer() -> None:
    modules = {
        f"rxfleet.{path.stem if path.is_file() else path.name}"
        for path in (ROOT / "rxfleet").iterdir()
        if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").is_file()
    }
    assert modules - _layered() == set()
    assert {"tasks", "workers", "config"} <= _layered()

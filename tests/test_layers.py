"""The folders are the architecture: imports inside ``app`` only point down.

A newcomer reads the layers bottom up (README, "Architecture"); an import that points up
(a store importing the planner, a channel importing the web app) makes the picture lie,
and usually a package cycle with it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "app"
LAYERS = [
    {"settings", "logging", "domain"},
    {"stores", "audio"},
    {"planner"},
    {"memory"},
    {"messaging"},
    {"conversation"},
    {"voice"},
    {"runtime"},
    {"channels"},
    {"web"},
    {"cli"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _top(module: str) -> str:
    """``app.memory.service`` -> ``memory``; ``app.cli`` -> ``cli``."""
    return module.split(".")[1]


def _imports(path: Path) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("app."):
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(a.name for a in node.names if a.name.startswith("app."))
    return found


def _modules() -> list[Path]:
    return sorted(p for p in APP.rglob("*.py") if p.name != "__init__.py" or p.parent != APP)


def test_every_top_level_part_of_app_has_a_layer() -> None:
    parts = {p.stem if p.parent == APP else p.relative_to(APP).parts[0] for p in _modules()}
    assert parts <= set(RANK), f"give these a layer in LAYERS: {sorted(parts - set(RANK))}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(APP)))
def test_imports_point_down(path: Path) -> None:
    here = ("app." + ".".join(path.relative_to(APP).with_suffix("").parts)).split(".")[1]
    upward = [m for m in _imports(path) if RANK[_top(m)] > RANK[here]]
    assert not upward, f"{path.relative_to(APP)} imports from a layer above it: {upward}"

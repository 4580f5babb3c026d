"""Templates for everything the agent says, loaded from ``prompts/dialogue.yaml``."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

_CLAUSE_BREAK = re.compile(r"(?<=[,;:])\s+")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _strings(node: Any) -> list[str]:
    """Every template string in the tree, in file order."""
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _strings(value)]
    return [node] if isinstance(node, str) else []


class Prompts:
    """Look up a template by dotted key and fill it in."""

    def __init__(self, templates: dict[str, Any]) -> None:
        self._templates = templates

    @classmethod
    def load(cls, prompts_dir: Path) -> Prompts:
        return cls(yaml.safe_load((prompts_dir / "dialogue.yaml").read_text()))

    def has(self, key: str) -> bool:
        try:
            self._lookup(key)
        except KeyError:
            return False
        return True

    def say(self, key: str, variant: int = 0, **fields: Any) -> str:
        """The template at ``key`` (variant ``variant`` of a list, wrapping) filled with fields."""
        template = self._lookup(key)
        if isinstance(template, list):
            template = template[variant % len(template)]
        return str(template).format(**fields)

    def literal_lines(self) -> list[str]:
        """What is said word for word to every caller: templates without placeholders, and
        the fixed opening clause of the others ("Got it:" of "Got it: {facts}.")."""
        found: list[str] = []
        for node in _strings(self._templates):
            opening = _CLAUSE_BREAK.split(node, maxsplit=1)[0]
            if "{" not in node:
                found.append(node)
            elif "{" not in opening and opening != node:
                found.append(opening)  # "Got it:" of "Got it: {facts}."
        return found

    def openings(self, fills: Mapping[str, Sequence[str]]) -> list[str]:
        """Opening clauses whose placeholders take only a few values, filled every way.

        "So that's {tour}," has six fills (two tour types, three buildings): rendered ahead,
        the confirmation starts at once instead of waiting ~0.5 s for its first clause.
        """
        found: list[str] = []
        for node in _strings(self._templates):
            opening = _CLAUSE_BREAK.split(node, maxsplit=1)[0]
            names = _PLACEHOLDER.findall(opening)
            if opening == node or not names or not set(names) <= set(fills):
                continue
            for values in itertools.product(*(fills[name] for name in names)):
                found.append(opening.format(**dict(zip(names, values, strict=True))))
        return found

    def _lookup(self, key: str) -> Any:
        node: Any = self._templates
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(f"no prompt {key!r} in prompts/dialogue.yaml")
            node = node[part]
        return node

"""Templates for everything the agent says, loaded from ``prompts/dialogue.yaml``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

_CLAUSE_BREAK = re.compile(r"(?<=[,;:])\s+")


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

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)
            elif isinstance(node, str) and "{" not in node:
                found.append(node)
            elif isinstance(node, str):
                opening = _CLAUSE_BREAK.split(node, maxsplit=1)[0]
                if "{" not in opening and opening != node:
                    found.append(opening)  # "Got it:" of "Got it: {facts}."

        walk(self._templates)
        return found

    def _lookup(self, key: str) -> Any:
        node: Any = self._templates
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(f"no prompt {key!r} in prompts/dialogue.yaml")
            node = node[part]
        return node

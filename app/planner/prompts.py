"""Templates for everything the agent says, loaded from ``prompts/dialogue.yaml``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


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

    def _lookup(self, key: str) -> Any:
        node: Any = self._templates
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(f"no prompt {key!r} in prompts/dialogue.yaml")
            node = node[part]
        return node

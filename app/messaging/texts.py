"""The words of each message, from ``prompts/messages.yaml``, filled in when it goes out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from app.domain import spoken
from app.domain.catalog import Catalog
from app.domain.state import TOUR_TYPE_WORDS
from app.stores.outbox import OutboxMessage

SMS_SEGMENT = 160
"""Characters in one GSM-7 SMS segment: every text template is kept under it."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


def short_when(dt: datetime) -> str:
    """Sat Nov 28, 11 AM: a tour time as a text shows it (the building's local time)."""
    return f"{dt:%a} {dt:%b} {dt.day}, {spoken.clock(dt)}"


class MessageTexts:
    """Renders an outbox row into the text or email the caller receives."""

    def __init__(self, templates: dict[str, Any], catalog: Catalog) -> None:
        self._templates = templates
        self._catalog = catalog

    @classmethod
    def load(cls, prompts_dir: Path, catalog: Catalog) -> MessageTexts:
        return cls(yaml.safe_load((prompts_dir / "messages.yaml").read_text()), catalog)

    def fields(self, message: OutboxMessage) -> dict[str, str]:
        prop = self._catalog.properties.get(message.property_id or "")
        start = message.tour_start.astimezone(self._catalog.tz) if message.tour_start else None
        return {
            "tour": f"{TOUR_TYPE_WORDS.get(message.tour_type or '', 'in-person')} tour",
            "building": prop.name if prop else (message.property_id or "our building"),
            "address": prop.address if prop else "",
            "when": short_when(start) if start else "",
            "code": message.booking_code or "",
            "office": str(self._templates.get("office", "")),
        }

    def render(self, message: OutboxMessage) -> Rendered:
        """Subject (email only) and body; a row queued with its own body is sent as is."""
        if message.body and message.booking_code is None:
            return Rendered(subject=str(self._templates.get("office", "")), body=message.body)
        fields = self.fields(message)
        if message.channel == "email":
            email = self._templates["email"][message.kind]
            return Rendered(
                subject=str(email["subject"]).format(**fields),
                body=str(email["body"]).format(**fields).strip() + "\n",
            )
        text = str(self._templates["text"][message.kind]).format(**fields)
        return Rendered(subject="", body=text)

"""The buildings, read from ``prompts/properties.yaml`` so staff can edit them without code."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from app.domain.state import UnitSize

_NON_WORD = re.compile(r"[^a-z0-9 ]+")
_SPACES = re.compile(r"\s+")


def normalize_words(text: str) -> str:
    """Lower-case, drop punctuation and collapse spaces, so phrases compare as words."""
    text = text.lower().replace("'", "").replace("-", " ")
    return _SPACES.sub(" ", _NON_WORD.sub(" ", text)).strip()


@dataclass(frozen=True)
class RentRange:
    rent_min: int
    rent_max: int


@dataclass(frozen=True)
class Property:
    """One building and what the agent may say about it."""

    id: str
    name: str
    address: str
    neighborhood: str
    units: dict[UnitSize, RentRange]
    pets: str
    parking: str
    amenities: list[str]
    faq: dict[str, str]
    aliases: list[str] = field(default_factory=list)

    def spoken_names(self) -> list[str]:
        """Every normalized way a caller may name this building, longest first."""
        names = {normalize_words(self.name), *(normalize_words(a) for a in self.aliases)}
        return sorted(names, key=len, reverse=True)


class Catalog:
    """All buildings, with name matching for spoken input."""

    def __init__(self, properties: list[Property], timezone: str) -> None:
        self.properties = {p.id: p for p in properties}
        self.tz = ZoneInfo(timezone)
        pairs = [(name, p.id) for p in properties for name in p.spoken_names()]
        pairs.sort(key=lambda pair: len(pair[0]), reverse=True)
        alternatives = "|".join(re.escape(name) for name, _ in pairs)
        self._name_pattern = re.compile(rf"\b(?:{alternatives})\b")
        self._id_by_name = dict(pairs)

    @classmethod
    def load(cls, path: Path) -> Catalog:
        raw = yaml.safe_load(path.read_text())
        props = [
            Property(
                id=item["id"],
                name=item["name"],
                address=item["address"],
                neighborhood=item["neighborhood"],
                units={size: RentRange(**rent) for size, rent in item["units"].items()},
                pets=item["pets"],
                parking=item["parking"],
                amenities=list(item["amenities"]),
                faq=dict(item.get("faq", {})),
                aliases=list(item.get("aliases", [])),
            )
            for item in raw["properties"]
        ]
        return cls(props, raw.get("timezone", "America/New_York"))

    def get(self, property_id: str) -> Property:
        return self.properties[property_id]

    def name_of(self, property_id: str) -> str:
        return self.properties[property_id].name

    def strip_names(self, normalized_text: str) -> str:
        """The text with building names blanked, so "21 West End" is not read as a time."""
        return self._name_pattern.sub(" ", normalized_text)

    def find_all(self, normalized_text: str) -> list[str]:
        """Property ids named in already-normalized text, in order of mention."""
        found: list[str] = []
        for match in self._name_pattern.finditer(normalized_text):
            pid = self._id_by_name[match.group(0)]
            if pid not in found:
                found.append(pid)
        return found

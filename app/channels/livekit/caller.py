"""Who is on the line in a LiveKit room, as the one caller id memory is keyed by.

Phone calls come in through LiveKit SIP: the caller's number is the SIP participant's
``sip.phoneNumber`` attribute, so a caller is the same person here and on the Twilio
server. Web and app clients have no number: their token carries the id in the
participant's metadata (JSON) or a ``tourline.caller_id`` attribute, else the participant
identity is used (a device id). Everything goes through ``normalize_caller_id``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

from livekit import rtc

from app.domain.identity import InvalidCallerId, normalize_caller_id

__all__ = ["CALLER_ATTRIBUTE", "METADATA_KEYS", "SIP_PHONE_ATTRIBUTE", "caller_id_of"]

SIP_PHONE_ATTRIBUTE = "sip.phoneNumber"
CALLER_ATTRIBUTE = "tourline.caller_id"
METADATA_KEYS = ("caller_id", "phone", "email", "device_id")
"""Keys read, in order, from a web participant's JSON metadata."""


class Participant(Protocol):
    """The parts of ``rtc.RemoteParticipant`` we read (tests pass plain objects)."""

    @property
    def identity(self) -> str: ...

    @property
    def kind(self) -> int: ...

    @property
    def attributes(self) -> Mapping[str, str]: ...

    @property
    def metadata(self) -> str: ...


def caller_id_of(participant: Participant) -> str:
    """The normalized caller id of a room participant (E.164, email or device id)."""
    for raw in _candidates(participant):
        try:
            return normalize_caller_id(raw)
        except InvalidCallerId:
            continue
    raise InvalidCallerId(f"participant {participant.identity!r} carries no caller id")


def _candidates(participant: Participant) -> list[str]:
    attributes = dict(participant.attributes or {})
    found: list[str] = []
    if participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_SIP:
        found.append(attributes.get(SIP_PHONE_ATTRIBUTE, ""))
    found.append(attributes.get(CALLER_ATTRIBUTE, ""))
    found.extend(_from_metadata(participant.metadata))
    found.append(participant.identity or "")
    return [value for value in found if value and value.strip()]


def _from_metadata(metadata: str | None) -> list[str]:
    if not metadata:
        return []
    try:
        data: Any = json.loads(metadata)
    except ValueError:
        return []
    if not isinstance(data, dict):
        return []
    return [str(data[key]) for key in METADATA_KEYS if data.get(key)]

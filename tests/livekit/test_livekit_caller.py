"""Who is calling, from a LiveKit participant: SIP number, web metadata, or identity."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from livekit import rtc

from app.channels.livekit.caller import caller_id_of

SIP = rtc.ParticipantKind.PARTICIPANT_KIND_SIP
STANDARD = rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD


def participant(
    identity: str = "user-1", kind: int = STANDARD, attributes=None, metadata: str = ""
) -> SimpleNamespace:
    return SimpleNamespace(
        identity=identity, kind=kind, attributes=attributes or {}, metadata=metadata
    )


@pytest.mark.parametrize("number", ["+14155550101", "(415) 555-0101", "+1 415 555 0101"])
def test_sip_caller_is_their_phone_number_in_e164(number: str):
    p = participant("sip_+14155550101", SIP, {"sip.phoneNumber": number})
    assert caller_id_of(p) == "+14155550101"


def test_sip_number_wins_over_identity():
    p = participant("sip-trunk-leg-7", SIP, {"sip.phoneNumber": "2125550199"})
    assert caller_id_of(p) == "+12125550199"


def test_web_client_metadata_email_is_normalized():
    p = participant("browser-tab", metadata=json.dumps({"email": "  Dana.Lee@Example.COM "}))
    assert caller_id_of(p) == "dana.lee@example.com"


def test_web_client_caller_attribute():
    p = participant("browser-tab", attributes={"tourline.caller_id": "(212) 555-0199"})
    assert caller_id_of(p) == "+12125550199"


def test_web_client_device_id_from_identity():
    p = participant(" device-8f3a ", metadata="not json")
    assert caller_id_of(p) == "device-8f3a"


def test_phone_number_attribute_of_a_non_sip_participant_is_ignored():
    p = participant("device-1", STANDARD, {"sip.phoneNumber": "+14155550101"})
    assert caller_id_of(p) == "device-1"

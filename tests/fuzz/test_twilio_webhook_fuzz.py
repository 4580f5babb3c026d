"""``POST /twilio/voice``, fuzzed on the real route (no speech models: the route needs only
settings): any form gets well-formed TwiML or a 4xx, never a 500, and the call token in the
TwiML is one the stream's ``start`` can hand back."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import example, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from app.channels.twilio.routes import router
from app.channels.twilio.twilio_http import TOKEN_PARAM, SignatureChecker, connect_twiml
from app.domain.catalog import Catalog
from app.domain.identity import MAX_CALLER_ID_LENGTH
from app.runtime import Runtime
from app.settings import Settings

TOKEN = "fuzz-token"
PUBLIC = "https://tourline.example"
FIELDS = ("From", "To", "CallSid")
# Any characters at all, control characters and NUL included (text() leaves out surrogates,
# which no form encoding can carry); lengths past the caller-id limit too.
values = st.text(max_size=40) | st.text(min_size=MAX_CALLER_ID_LENGTH - 2, max_size=1200)
ROUTE = settings(max_examples=60)
"""Each example is a whole request through the ASGI stack: fewer of them keep this quick."""
forms = st.fixed_dictionaries(
    {},
    optional={
        "From": values,
        "To": values,
        "CallSid": values,
        "AccountSid": values,
        "CallStatus": st.sampled_from(["ringing", ""]),
    },
) | st.dictionaries(st.text(max_size=12), values, max_size=5)


@cache
def client(signed: bool) -> TestClient:
    """The Twilio routes on a runtime with no memory and no models (none is needed here)."""
    settings = Settings(
        data_dir=Path("/nonexistent/tourline-fuzz"),
        twilio_auth_token=TOKEN if signed else None,
        public_url=PUBLIC,
        max_calls=1_000_000,  # every example is a new call whose stream never comes
    )
    app = FastAPI()
    app.include_router(router)
    catalog = Catalog.load(settings.prompts_dir / "properties.yaml")
    app.state.runtime = Runtime(settings, catalog, None, ready=True)
    return TestClient(app, raise_server_exceptions=False)


def stream_parameters(twiml: str) -> dict[str, str]:
    """The <Parameter>s of the TwiML's <Connect><Stream>; fails if it is not well-formed."""
    stream = ET.fromstring(twiml).find("./Connect/Stream")
    assert stream is not None, twiml
    return {str(p.get("name")): str(p.get("value")) for p in stream.findall("Parameter")}


def usable(value: str) -> bool:
    """What a stream can be handed back: XML 1.0 characters, no longer than a caller id."""
    try:
        ET.fromstring(f"<a b={_quoted(value)}/>")
    except ET.ParseError:
        return False
    return 0 < len(value) <= MAX_CALLER_ID_LENGTH


def _quoted(value: str) -> str:
    escaped = value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return '"' + escaped.replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;") + '"'


@ROUTE
@given(forms)
@example({"From": "+1415555\x000123", "CallSid": "CA1"})  # NUL: once made malformed TwiML
@example({"From": "+1415\x01", "To": "\x1f"})
@example({"From": "x" * 5000})
def test_any_unsigned_form_gets_well_formed_twiml(form: dict[str, str]) -> None:
    response = client(signed=False).post("/twilio/voice", data=form)
    assert response.status_code == 200, response.text
    params = stream_parameters(response.text)
    for name in FIELDS:
        value = form.get(name, "")
        assert params.get(name) == (value if usable(value) else None), name


@ROUTE
@given(forms)
@example({"From": "+1415555\x000123", "CallSid": "CA1"})
def test_a_signed_form_gets_a_token_its_stream_can_use(form: dict[str, str]) -> None:
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + "/twilio/voice", form)
    response = client(signed=True).post(
        "/twilio/voice", data=form, headers={"X-Twilio-Signature": signature}
    )
    assert response.status_code == 200, response.text
    params = stream_parameters(response.text)
    assert TOKEN_PARAM in params
    # Twilio's start carries these same parameters back, with the call's real sid.
    checker = SignatureChecker(TOKEN, PUBLIC)
    assert checker.start_ok(form.get("CallSid", ""), params)


@ROUTE
@given(forms)
def test_an_unsigned_form_is_refused_when_signatures_are_on(form: dict[str, str]) -> None:
    response = client(signed=True).post("/twilio/voice", data=form)
    assert response.status_code == 403
    assert "Stream" not in response.text


@ROUTE
@given(
    st.binary(max_size=2000),
    st.sampled_from(
        [
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=fuzz",
            "multipart/form-data",
            "text/plain",
        ]
    ),
)
@example(b"From=%00%ff%fe&CallSid=%", "application/x-www-form-urlencoded")
@example(
    b"--fuzz\r\nContent-Disposition: form-data\r\n\r\nx\r\n--fuzz--",
    "multipart/form-data; boundary=fuzz",
)
def test_any_body_gets_twiml_or_a_4xx(body: bytes, content_type: str) -> None:
    response = client(signed=False).post(
        "/twilio/voice", content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code < 500, response.text
    if response.status_code == 200:
        stream_parameters(response.text)
    else:
        assert 400 <= response.status_code < 500


@given(st.text(max_size=60), st.text(max_size=60))
def test_twiml_round_trips_usable_numbers(caller: str, called: str) -> None:
    params = stream_parameters(
        connect_twiml(PUBLIC, {"From": caller, "To": called, "CallSid": "CA1"}, "1.x")
    )
    assert params.get("From") == (caller if usable(caller) else None)
    assert params.get("To") == (called if usable(called) else None)

"""The call token ties a media stream's start to the signed webhook that announced it."""

from __future__ import annotations

from app.channels.twilio.twilio_http import TOKEN_PARAM, SignatureChecker

PARAMS = {"From": "+14155550101", "To": "+12125550100", "CallSid": "CA1"}


def _start_params(checker: SignatureChecker, now: float) -> dict[str, str]:
    token = checker.call_token(PARAMS, now=now)
    assert token is not None
    return PARAMS | {TOKEN_PARAM: token}


def test_a_start_within_the_window_is_accepted_once() -> None:
    checker = SignatureChecker("secret", "https://x.example", window_s=60)
    params = _start_params(checker, now=1000)
    assert checker.start_ok("CA1", params, now=1010)
    assert not checker.start_ok("CA1", params, now=1011)  # a replay


def test_a_start_after_the_window_is_refused() -> None:
    checker = SignatureChecker("secret", "https://x.example", window_s=60)
    assert not checker.start_ok("CA1", _start_params(checker, now=1000), now=1061)


def test_a_token_for_another_call_or_number_is_refused() -> None:
    checker = SignatureChecker("secret", "https://x.example", window_s=60)
    params = _start_params(checker, now=1000)
    assert not checker.start_ok("CA2", params | {"CallSid": "CA2"}, now=1001)
    assert not checker.start_ok("CA1", params | {"From": "+14155550199"}, now=1001)
    other_secret = SignatureChecker("another", "https://x.example", window_s=60)
    assert not other_secret.start_ok("CA1", params, now=1001)


def test_without_an_auth_token_every_start_passes() -> None:
    checker = SignatureChecker(None, None)
    assert checker.call_token(PARAMS) is None
    assert checker.start_ok("CA1", PARAMS)

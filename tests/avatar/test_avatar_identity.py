"""Who an avatar client is, proven rather than claimed (issue 12, item 2).

A device id needs nothing and lives in its own ``device:`` namespace; a phone number, email
or user id comes only from a token signed with ``TOURLINE_AVATAR_SECRET``. The admin key
(``TOURLINE_API_KEY``) opens the memory API and the dashboard, not anyone's memory by avatar.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.channels.avatar import protocol as avatar
from app.channels.avatar.secret import SECRET_FILE, signing_secret
from app.channels.avatar.tokens import TokenError, mint_token, verify_token
from app.domain.identity import is_phone
from sim.avatar import AvatarClient, errors_of, fresh_user, raw_session
from sim.server import RunningServer, clean_env
from tests.avatar.conftest import API_KEY, SECRET, token_for

PHONE = "+14155550177"


def hello(**fields: Any) -> str:
    return json.dumps({"type": "hello", **fields})


def identified(secret: str | None = SECRET, **fields: Any) -> str:
    event = avatar.parse(hello(**fields))
    assert isinstance(event, avatar.Hello)
    return avatar.identify(event, secret)


def refused(secret: str | None = SECRET, **fields: Any) -> avatar.ProtocolError:
    with pytest.raises(avatar.ProtocolError) as caught:
        identified(secret, **fields)
    return caught.value


def expired_token(sub: str, secret: str = SECRET) -> str:
    past = int(time.time()) - 3600
    return jwt.encode({"sub": sub, "iat": past - 60, "exp": past}, secret, algorithm="HS256")


# ---------------------------------------------------------------------- the rules, no server


def test_a_device_needs_no_token_and_gets_its_own_namespace() -> None:
    assert identified(user={"device_id": "web-3f9c2a1b"}) == "device:web-3f9c2a1b"
    assert identified(None, user={"device_id": "14155550177"}) == "device:14155550177"


@pytest.mark.parametrize(
    "user", [{"user_id": PHONE}, {"user_id": "(415) 555-0177"}, {"email": "dana@example.com"}]
)
def test_a_phone_or_email_without_a_token_is_refused(user: dict[str, str]) -> None:
    err = refused(user=user, api_key=API_KEY)  # the admin key is no avatar credential
    assert (err.code, err.close_code) == ("unauthorized", avatar.CLOSE_POLICY)
    assert "needs a signed 'token'" in err.reason and "device_id" in err.reason


def test_the_token_names_the_caller() -> None:
    token = mint_token(SECRET, "(415) 555-0177", ttl_s=60)
    assert identified(token=token) == PHONE
    assert identified(token=token, user={"user_id": "415.555.0177"}) == PHONE
    email = mint_token(SECRET, " Dana.Lee@Example.com", ttl_s=60)
    assert identified(token=email, user={"email": "dana.lee@example.com"}) == "dana.lee@example.com"


@pytest.mark.parametrize(
    "user", [{"user_id": "+14155550100"}, {"email": "dana@example.com"}, {"device_id": "web-1"}]
)
def test_a_user_that_is_not_the_tokens_subject_is_refused(user: dict[str, str]) -> None:
    err = refused(token=mint_token(SECRET, PHONE, ttl_s=60), user=user)
    assert (err.code, err.close_code) == ("bad_hello", avatar.CLOSE_INVALID)
    assert "is not the token's subject" in err.reason


@pytest.mark.parametrize(
    ("token", "why"),
    [
        (expired_token(PHONE), "the token has expired"),
        (mint_token("some-other-secret-of-at-least-32-bytes", PHONE, 3600), "signature is wrong"),
        ("not.a.jwt", "can't be read"),
        (jwt.encode({"sub": PHONE}, SECRET, algorithm="HS256"), "no 'exp' claim"),
        (jwt.encode({"exp": int(time.time()) + 3600}, SECRET, algorithm="HS256"), "no 'sub'"),
        (jwt.encode({"sub": PHONE, "exp": int(time.time()) + 3600}, None, algorithm="none"), ""),
        (mint_token(SECRET, "device:web-1", 3600), "can't be a device id"),
    ],
    # Minted at collection, an hour before they could expire (a run can take minutes).
    # Named ids: the tokens hold the time, and parallel workers must collect the same tests.
    ids=["expired", "wrong secret", "not a jwt", "no exp", "no sub", "alg none", "device sub"],
)
def test_a_bad_token_is_refused_with_a_reason(token: str, why: str) -> None:
    err = refused(token=token)
    assert (err.code, err.close_code) == ("unauthorized", avatar.CLOSE_POLICY)
    assert why in err.reason


def test_without_a_secret_the_server_takes_no_tokens() -> None:
    err = refused(None, token=mint_token(SECRET, PHONE, 60))
    assert err.code == "unauthorized"
    assert "no TOURLINE_AVATAR_SECRET" in err.reason


def test_minting_needs_a_secret_a_subject_and_a_lifetime() -> None:
    for secret, sub, ttl in (("", PHONE, 60.0), (SECRET, " ", 60.0), (SECRET, PHONE, 0.0)):
        with pytest.raises(TokenError):
            mint_token(secret, sub, ttl)
    assert verify_token(SECRET, mint_token(SECRET, PHONE, 60)) == PHONE


def tourline_token(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "token", *args],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        env=clean_env(data_dir, **env),
        timeout=60,
    )


def test_tourline_token_prints_a_token_for_the_normalized_caller(tmp_path: Path) -> None:
    made = tourline_token(tmp_path, "(415) 555-0177", "--ttl", "60", TOURLINE_AVATAR_SECRET=SECRET)
    assert made.returncode == 0, made.stderr
    assert verify_token(SECRET, made.stdout.strip()) == PHONE
    # Without the setting: signed with the data dir's own secret, which only its owner reads.
    unset = tourline_token(tmp_path, PHONE)
    assert unset.returncode == 0, unset.stderr
    kept = tmp_path / SECRET_FILE
    assert kept.stat().st_mode & 0o077 == 0
    assert verify_token(kept.read_text().strip(), unset.stdout.strip()) == PHONE
    assert signing_secret(None, tmp_path) == kept.read_text().strip()  # made once, then kept


@given(st.text(min_size=1, max_size=140))
def test_no_device_id_is_ever_a_phone_or_email_key(raw: str) -> None:
    try:
        caller_id = identified(user={"device_id": raw})
    except avatar.ProtocolError as err:
        assert err.code == "bad_hello"
        return
    assert caller_id.startswith("device:")
    assert not is_phone(caller_id) and "@" not in caller_id


# ---------------------------------------------------------------------- against the server


@pytest.mark.slow
async def test_the_api_key_alone_no_longer_grants_a_phone_identity(
    keyed_server: RunningServer,
) -> None:
    received, code, reason = await raw_session(
        keyed_server.base_url, hello(user={"user_id": PHONE}, api_key=API_KEY)
    )
    assert errors_of(received) == ["unauthorized"], received
    assert code == avatar.CLOSE_POLICY and "token" in reason
    async with AvatarClient.connect(
        keyed_server.base_url,
        {"email": "dana@example.com"},
        headers={"Authorization": f"Bearer {API_KEY}"},
        wait_ready=False,
    ) as client:
        await client.wait_closed()
    assert errors_of(client.of_kind("error")) == ["unauthorized"]
    assert client.close_code == avatar.CLOSE_POLICY and not client.of_kind("ready")


@pytest.mark.slow
async def test_a_token_opens_its_callers_memory_and_a_device_never_does(
    keyed_server: RunningServer,
) -> None:
    token = token_for("(415) 555-0177")
    # A text chat (``reader``): it goes at the agent's pace, not the audio's.
    async with AvatarClient.connect(
        keyed_server.base_url, {"user_id": "415-555-0177"}, token=token, reader=True
    ) as first:
        assert first.ready is not None and first.ready["user_id"] == PHONE
        assert first.ready["returning"] is False
        await first.listen(timeout_s=60)
        await first.type("my name is dana lee")
        assert "dana" in (await first.listen(timeout_s=60)).text.lower()

    # A device whose id is the phone's digits is someone else: it hears nothing of Dana.
    async with AvatarClient.connect(keyed_server.base_url, PHONE.lstrip("+")) as device:
        assert device.ready is not None
        assert device.ready["user_id"] == "device:14155550177"
        assert (device.ready["returning"], device.ready["name"]) == (False, None)
        await device.send_json({"type": "memory"})
        mine = await device.wait_for("memory", timeout_s=30)
    own = mine.message["caller"]  # only this very session is on its record
    assert own["caller_id"] == "device:14155550177"
    assert (own["name"], own["facts"], own["upcoming_booking"]) == (None, [], None)

    # The token alone is enough, and the page's memory panel reads its own caller's record.
    async with AvatarClient.connect(keyed_server.base_url, None, token=token) as again:
        assert again.ready is not None and again.ready["user_id"] == PHONE
        assert (again.ready["returning"], again.ready["name"]) == (True, "Dana Lee")
        await again.send_json({"type": "memory"})
        record = await again.wait_for("memory", timeout_s=30)
    assert record.message["caller"]["caller_id"] == PHONE
    assert record.message["caller"]["name"] == "Dana Lee"


@pytest.mark.slow
async def test_a_mismatched_user_or_a_bad_token_is_refused(keyed_server: RunningServer) -> None:
    cases = [
        (hello(token=token_for(PHONE), user={"email": "eve@example.com"}), "bad_hello", 1007),
        (hello(token=expired_token(PHONE)), "unauthorized", 1008),
        (hello(token=mint_token("x" * 40, PHONE, 60)), "unauthorized", 1008),
    ]
    for message, code, close in cases:
        received, got_close, reason = await raw_session(keyed_server.base_url, message)
        assert errors_of(received) == [code], received
        assert got_close == close and reason
        assert not [m for m in received if m["type"] == "ready"]
    assert "Traceback" not in keyed_server.log()


@pytest.mark.slow
async def test_a_device_needs_nothing_even_on_a_keyed_server(keyed_server: RunningServer) -> None:
    device = fresh_user()
    async with AvatarClient.connect(keyed_server.base_url, device) as client:
        assert client.ready is not None and client.ready["user_id"] == f"device:{device}"
    assert client.close_code == 1000


@pytest.mark.slow
async def test_without_the_setting_only_the_data_dirs_own_secret_signs(
    open_server: RunningServer,
) -> None:
    """No TOURLINE_AVATAR_SECRET: a token from elsewhere is refused; one signed with the
    secret kept in the server's data dir (as `tourline chat` beside it signs) is taken."""
    received, code, _ = await raw_session(open_server.base_url, hello(token=token_for(PHONE)))
    assert errors_of(received) == ["unauthorized"]
    assert code == avatar.CLOSE_POLICY
    (error,) = [m for m in received if m["type"] == "error"]
    assert "signature is wrong" in error["message"]
    own = mint_token(signing_secret(None, open_server.data_dir), PHONE, 60)
    async with AvatarClient.connect(open_server.base_url, None, token=own) as client:
        assert client.ready is not None and client.ready["user_id"] == PHONE
    assert "TOURLINE_AVATAR_SECRET is not set" in open_server.log()


@pytest.mark.slow
async def test_the_memory_api_and_caller_list_need_the_key(keyed_server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=keyed_server.base_url, timeout=30) as http:
        assert (await http.get("/callers")).status_code == 401
        listed = await http.get("/callers", headers={"Authorization": f"Bearer {API_KEY}"})
    assert listed.status_code == 200 and "callers" in listed.json()
    assert "TOURLINE_AVATAR_SECRET is not set" not in keyed_server.log()

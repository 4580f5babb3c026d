"""The browser client and the dashboard in Debian's headless Chromium, driven by Playwright.

The microphone is Chromium's fake capture device fed from a WAV that Piper spoke ("my name
is dana lee"); it starts playing when the page first opens the microphone, i.e. when the
test presses "Hold to talk". Both pages run against the server with ``TOURLINE_API_KEY`` and
``TOURLINE_AVATAR_SECRET`` set: the client page needs no key (an anonymous device by default,
or a pasted token's caller), the dashboard takes the key as a Bearer token on the memory
API. Screenshots go to a temporary folder printed at the end of the run.

Needs ``/usr/bin/chromium`` (``make browser``, part of ``make test``, installs it).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from sim.avatar import AvatarClient, fresh_user, render_speech
from sim.server import RunningServer
from sim.twilio import preload_models
from tests.avatar.conftest import API_KEY, token_for

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
WAIT_MS = 60_000
SPEAKING = re.compile(r"\bon\b")
DEVICE = re.compile(r"^device:web-[0-9a-f]{16}$")  # the page's own random id, namespaced


@pytest.fixture(scope="module")
def spoken_wav(screenshots: Path) -> Path:
    """The fake microphone: a little quiet, the line, then two seconds of quiet (16 kHz)."""
    speech = render_speech("my name is dana lee", 16000)
    quiet = np.zeros(16000 // 2, dtype="<i2").tobytes()
    path = screenshots / "microphone.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(quiet + b"".join(speech.frames) + quiet * 4)
    return path


@contextlib.asynccontextmanager
async def launch(wav: Path | None = None) -> AsyncIterator[Browser]:
    if shutil.which("chromium") is None and not Path(CHROMIUM).exists():
        pytest.fail("no /usr/bin/chromium: run `make browser` (make test does)", pytrace=False)
    args = ["--autoplay-policy=no-user-gesture-required"]
    if wav is not None:
        args += [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}%noloop",
        ]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            yield browser
        finally:
            await browser.close()


def console_of(page: Page) -> list[str]:
    """What the page logged, for failure messages."""
    lines: list[str] = []
    page.on("console", lambda message: lines.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: lines.append(f"pageerror: {error}"))
    return lines


async def test_talking_to_the_agent_in_the_browser(
    keyed_server: RunningServer, spoken_wav: Path, screenshots: Path
) -> None:
    """No key, no token: this browser is an anonymous device, and its memory panel works."""
    await preload_models(stt=False)
    async with launch(spoken_wav) as browser:
        page = await browser.new_page(viewport={"width": 1200, "height": 860})
        console = console_of(page)
        await page.goto(f"{keyed_server.base_url}/")
        await expect(page.locator("#identity")).to_contain_text("this browser, anonymously")
        await page.locator("#start").click()
        await expect(page.locator("#identity")).to_have_text(DEVICE)

        agent = page.locator("#transcript li.agent")
        speaking = page.locator("#speaking")
        await expect(agent.first).to_contain_text("May I have your name?", timeout=WAIT_MS)
        await expect(page.locator("#memory")).to_contain_text("Nothing remembered yet")
        await page.screenshot(path=screenshots / "1-greeting.png")
        await expect(speaking).not_to_have_class(SPEAKING, timeout=WAIT_MS)  # let it finish

        # Press and hold: the fake microphone starts speaking when the page opens it.
        await page.locator("#talk").hover()
        await page.mouse.down()
        said = page.locator("#transcript li.user.final")
        await expect(said.first).to_contain_text("Dana", timeout=WAIT_MS, ignore_case=True)
        await page.mouse.up()
        await expect(agent.nth(1)).to_contain_text("Nice to meet you, Dana", timeout=WAIT_MS)
        await expect(page.locator("#memory-facts")).to_contain_text(
            "Name is Dana Lee", timeout=WAIT_MS
        )
        await page.screenshot(path=screenshots / "2-spoke-name.png")
        await expect(agent.nth(1)).to_contain_text("Which building", timeout=WAIT_MS)
        await expect(speaking).not_to_have_class(SPEAKING, timeout=WAIT_MS)

        # Typing instead of talking.
        await page.locator("#typed").fill("hudson three sixty")
        await page.locator("#send").click()
        await expect(page.locator("#transcript li.user.typed")).to_contain_text("hudson")
        await expect(agent.nth(2)).to_contain_text("Hudson 360", timeout=WAIT_MS)
        await expect(page.locator("#memory-facts")).to_contain_text(
            "Interested in Hudson 360", timeout=WAIT_MS
        )
        await expect(page.locator("#memory-name")).to_have_text("Dana Lee")
        await expect(page.locator("#transcript li.cut")).to_have_count(0)  # nothing talked over
        await page.screenshot(path=screenshots / "3-typed-building.png", full_page=True)
        await page.locator("#end").click()
        await expect(page.locator("#status")).to_contain_text("Disconnected (1000", timeout=WAIT_MS)
        assert not [line for line in console if line.startswith("pageerror")], console


async def test_a_pasted_token_talks_as_its_caller(
    keyed_server: RunningServer, screenshots: Path
) -> None:
    """What a site that signed its user in does: hand the page a token for their email."""
    user = f"{fresh_user('token')}@example.com"
    async with launch() as browser:
        page = await browser.new_page(viewport={"width": 1200, "height": 860})
        console = console_of(page)
        await page.goto(f"{keyed_server.base_url}/")
        await page.locator("details.settings summary").click()
        await page.locator("#token").fill(token_for(user))
        await page.locator("#save-token").click()
        await expect(page.locator("#identity")).to_contain_text("the caller named in your token")
        await page.locator("#start").click()
        await expect(page.locator("#identity")).to_have_text(user, timeout=WAIT_MS)
        agent = page.locator("#transcript li.agent")
        await expect(agent.first).to_contain_text("May I have your name?", timeout=WAIT_MS)
        await page.locator("#typed").fill("my name is grace park")
        await page.locator("#send").click()
        await expect(agent.nth(1)).to_contain_text("Nice to meet you, Grace", timeout=WAIT_MS)
        await expect(page.locator("#memory-name")).to_have_text("Grace Park", timeout=WAIT_MS)
        await expect(page.locator("#memory")).to_contain_text(f"as {user}")
        await page.screenshot(path=screenshots / "3b-token.png")
        await page.locator("#end").click()
        await expect(page.locator("#status")).to_contain_text("Disconnected (1000", timeout=WAIT_MS)

        # A token that was tampered with is refused with a reason the page shows.
        await page.locator("#token").fill(token_for(user, ttl_s=1)[:-4] + "AAAA")
        await page.locator("#save-token").click()
        await page.locator("#start").click()
        await expect(page.locator("#status")).to_contain_text(
            "Disconnected (1008: the token's signature is wrong", timeout=WAIT_MS
        )
        assert not [line for line in console if line.startswith("pageerror")], console


async def seed_caller(server: RunningServer, user: str) -> None:
    """A typed avatar conversation, so the dashboard has someone to show. A text chat
    (``reader``): each reply counts as read when it arrives, not after it plays out."""
    token = token_for(user)
    async with AvatarClient.connect(
        server.base_url, {"email": user}, token=token, reader=True
    ) as client:
        await client.listen(timeout_s=60)
        for line in ("my name is omar khan", "riverview lofts"):
            await client.type(line)
            await client.listen(timeout_s=60)


async def test_dashboard_shows_a_caller_and_forgets_them(
    keyed_server: RunningServer, screenshots: Path
) -> None:
    user = f"{fresh_user('dash')}@example.com"
    await seed_caller(keyed_server, user)
    async with launch() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        console = console_of(page)
        await page.goto(f"{keyed_server.base_url}/dashboard")
        await expect(page.locator("#status")).to_contain_text("needs the API key")
        await page.locator("#api-key").fill(API_KEY)
        await page.locator("#use-key").click()

        row = page.locator(f'li[data-caller="{user}"]')
        await expect(row).to_contain_text("Omar Khan", timeout=WAIT_MS)
        await page.locator("#filter").fill("omar")
        await expect(row).to_be_visible()
        await row.click()
        await expect(page.locator("#caller-name")).to_have_text("Omar Khan", timeout=WAIT_MS)
        await expect(page.locator("#profile")).to_contain_text("Interested in Riverview Lofts")

        # The timeline of the call, from the FlightRecorder.
        call = page.locator("ul.calls > li").first
        await call.get_by_role("button", name="Timeline").click()
        await expect(call.locator("table")).to_contain_text("caller_said", timeout=WAIT_MS)
        await expect(call.locator("table")).to_contain_text("my name is omar khan")

        await page.locator("#search").fill("which building")
        await page.locator("#search-form button").click()
        await expect(page.locator("#memories li").first).to_be_visible(timeout=WAIT_MS)
        await page.screenshot(path=screenshots / "4-dashboard-caller.png", full_page=True)

        page.once("dialog", lambda dialog: dialog.accept())
        await page.locator("#forget").click()
        await expect(page.locator("#forgotten")).to_contain_text("was forgotten", timeout=WAIT_MS)
        await expect(row).to_have_count(0)
        await page.screenshot(path=screenshots / "5-dashboard-forgotten.png", full_page=True)
        assert not [line for line in console if line.startswith("pageerror")], console

    async with httpx.AsyncClient(base_url=keyed_server.base_url, timeout=30) as http:
        gone = await http.get(f"/callers/{user}", headers={"Authorization": f"Bearer {API_KEY}"})
    assert gone.status_code == 404

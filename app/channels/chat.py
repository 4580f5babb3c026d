"""``tourline chat``: the agent over plain text, for trying it out and for scripted tests.

At a terminal it is interactive; with piped input it reads one caller line per input
line, prints each agent reply on one line, and exits 0 at end of input or when the agent
ends the conversation.

A chat is a conversation like a phone call: the caller's memory is loaded before the first
word, every line and every PlannerState change is recorded, and the call is ended (and
consolidated) on exit. So someone who chatted by text is greeted by name on the phone.

It runs one of two ways, chosen before anything heavy is imported:

* **through a server** (:mod:`app.channels.chat_remote`) when ``--server URL`` (or
  ``TOURLINE_SERVER_URL``) names one, or when ``tourline serve`` owns the data dir (its
  owner lock says where it listens): the server's avatar socket takes the typed turns;
* **locally** otherwise: this process opens the data dir's stores itself.

Through a server, a phone or email caller is proven with a token signed with
``TOURLINE_AVATAR_SECRET`` (this process has the server's settings); without it the chat is
an anonymous device, and says so on stderr.

Exit codes: 0 done, 2 unusable caller id or URL, 3 the data dir is owned by a process that
is not a server, 4 the server can't be reached, 5 the server refused the chat's token, 1 the
server ended the conversation for a reason of its own.
"""

from __future__ import annotations

import gc
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from app.domain.identity import InvalidCallerId, normalize_caller_id
from app.memory.owner_lock import EmbeddedStoreLockedError, read_owner
from app.settings import Settings

if TYPE_CHECKING:  # imported when a local chat starts: mem0 and Qdrant take a second
    from app.conversation import Conversation

CHANNEL = "chat"
EXIT_USAGE = 2
EXIT_STORE_LOCKED = 3
# Where MemoryService keeps the embedded store's owner lock (MEMORY_SUBDIR / LOCK_FILE in
# app.memory.service and app.memory.mem0_engine; a test keeps them in step). Named
# here so finding the owner does not import them.
OWNER_LOCK = Path("memory") / "mem0.lock"
CONTEXT_TIMEOUT_S = 30.0
"""A chat waits for the caller's memory (no caller is waiting on a line)."""


async def _say(
    conversation: Conversation, stream: AsyncIterator[str], out: TextIO, prefix: str
) -> None:
    """Print one agent reply on one line, then keep it (a chat reply is always all heard)."""
    reply = " ".join([sentence async for sentence in stream])
    out.write(prefix + reply + "\n")
    out.flush()
    conversation.agent_said(reply)
    conversation.snapshot()


async def run_chat(
    settings: Settings,
    caller: str,
    inp: TextIO,
    out: TextIO,
    *,
    server: str | None = None,
    err: TextIO | None = None,
) -> int:
    """Run one text conversation; returns the process exit code.

    ``server``: the URL of a running server to talk through; by default, the server that
    owns ``settings.data_dir`` if there is one, else the stores opened here.
    """
    try:
        caller_id = normalize_caller_id(caller)
    except InvalidCallerId as exc:
        out.write(f"error: {exc}\n")
        return EXIT_USAGE
    own_server = server is None  # the server that owns our data dir: we share its secret
    if server is None:
        server, locked = _owner_server(settings)
        if locked is not None:
            return _refuse_locked(locked, out)
    if server is not None:
        return await _through_server(settings, server, caller_id, inp, out, err, own_server)
    try:
        return await _run_local(settings, caller_id, inp, out)
    except EmbeddedStoreLockedError as exc:  # a server took the data dir a moment ago
        server, _ = _owner_server(settings)
        if server is None:
            return _refuse_locked(exc, out)
    return await _through_server(settings, server, caller_id, inp, out, err, own_server=True)


def owner_lock_path(settings: Settings) -> Path:
    """The lock file of the data dir's embedded store."""
    return Path(settings.data_dir) / OWNER_LOCK


def _owner_server(settings: Settings) -> tuple[str | None, EmbeddedStoreLockedError | None]:
    """(the URL of the server that owns the data dir, or the lock error of another owner)."""
    if settings.memory_mode == "in_memory":
        return None, None  # a temporary store of our own: nothing to share
    path = owner_lock_path(settings)
    owner = read_owner(path)
    if owner is None:
        return None, None
    if owner.server_url:
        return owner.server_url, None
    return None, EmbeddedStoreLockedError(path.parent.resolve(), owner.holder)


def _refuse_locked(exc: EmbeddedStoreLockedError, out: TextIO) -> int:
    out.write(f"error: {exc}\n")
    out.flush()
    return EXIT_STORE_LOCKED


async def _through_server(
    settings: Settings,
    url: str,
    caller_id: str,
    inp: TextIO,
    out: TextIO,
    err: TextIO | None,
    own_server: bool,
) -> int:
    """Chat through the server at ``url``. Our own data dir's server takes tokens signed with
    its secret even when TOURLINE_AVATAR_SECRET is unset; another server only with it."""
    from app.channels.avatar.secret import signing_secret
    from app.channels.chat_remote import chat_with_server

    path = owner_lock_path(settings)

    def starting() -> bool:
        """``url`` is the server that owns the data dir: it locks it before it listens, so
        an unanswered connection means it is still starting."""
        owner = None if settings.memory_mode == "in_memory" else read_owner(path)
        return owner is not None and owner.server_url == url

    return await chat_with_server(
        url,
        caller_id,
        inp,
        out,
        secret=(
            signing_secret(settings.avatar_secret, settings.data_dir)
            if own_server
            else settings.avatar_secret
        ),
        err=err or sys.stderr,
        starting=starting,
    )


async def _run_local(settings: Settings, caller_id: str, inp: TextIO, out: TextIO) -> int:
    """The chat on this process's own stores; raises ``EmbeddedStoreLockedError``."""
    # Start-up (mem0, Qdrant, the planner's parsers) allocates a lot and frees little, so
    # the collector would only delay the greeting, by about a fifth; it resumes after it.
    gc.disable()
    try:
        return await _run_local_stores(settings, caller_id, inp, out)
    finally:
        _greeted()


def _greeted() -> None:
    """The first line is out: collect again, leaving what start-up built out of it."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


async def _run_local_stores(settings: Settings, caller_id: str, inp: TextIO, out: TextIO) -> int:
    from app.conversation import Conversation
    from app.runtime import Runtime

    runtime = Runtime.open(settings, voice=False, memory_optional=False)
    try:
        conversation = await Conversation.open(
            runtime.planners,
            runtime.memory,
            caller_id=caller_id,
            call_id=f"chat-{uuid.uuid4().hex[:16]}",
            channel=CHANNEL,
            context_timeout_s=CONTEXT_TIMEOUT_S,
        )
        try:
            await _talk(conversation, inp, out)
        finally:
            conversation.end()
    finally:
        runtime.close()
    return 0


async def _talk(conversation: Conversation, inp: TextIO, out: TextIO) -> None:
    interactive = inp.isatty()
    prefix = "agent> " if interactive else ""
    await _say(conversation, conversation.greet(), out, prefix)
    _greeted()
    while not conversation.ended:
        if interactive:
            out.write("you> ")
            out.flush()
        line = inp.readline()
        if not line:
            break
        text = line.strip()
        if not text:
            if interactive:
                continue
            await _say(conversation, conversation.on_silence(), out, prefix)
            continue
        conversation.caller_said(text)
        await _say(conversation, conversation.respond(text), out, prefix)

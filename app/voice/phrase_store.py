"""Rendered fixed phrases kept on disk, so a restart does not synthesize them again.

Why: the ~150 fixed phrases (greeting, questions, openings) cost about 20 CPU-seconds of
Piper at every start, minutes after a deploy on a busy two-core box, and most of the test
suite's CPU. Only fixed phrases are stored, never a sentence with a caller's words in it, so
forgetting a caller leaves nothing of theirs here.

A directory per voice: its name hashes what shapes the audio (the voice's own key and the
code that cleans each clip), so a new voice or a changed renderer starts a fresh directory
instead of playing stale audio. Files are written whole and renamed into place, so servers
sharing the directory never read half a clip.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)


class PhraseStore:
    """PCM16 clips at the voice's own rate, one file per phrase text."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def for_voice(
        cls, root: Path | None, voice_key: str | None, render_key: str
    ) -> PhraseStore | None:
        """The store for one voice under ``root``; None when either is unknown (no caching)."""
        if root is None or not voice_key:
            return None
        digest = hashlib.sha256(f"{voice_key}\n{render_key}".encode()).hexdigest()[:16]
        return cls(root / digest)

    def _path(self, text: str) -> Path:
        return self.directory / f"{hashlib.sha256(text.encode()).hexdigest()[:32]}.pcm"

    def load(self, text: str) -> bytes | None:
        try:
            return self._path(text).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:  # an unreadable cache is a slower start, not a failure
            log.warning("phrase cache unreadable (%s); rendering instead", exc)
            return None

    def save(self, text: str, pcm: bytes) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.directory, suffix=".part")
            with os.fdopen(handle, "wb") as out:
                out.write(pcm)
            os.replace(temporary, self._path(text))
        except OSError as exc:
            log.warning("phrase cache not written (%s); the next start renders again", exc)

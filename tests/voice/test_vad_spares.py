"""A call's VAD comes ready-built: building one (~100 ms of CPU) on the event loop stalls the
audio of every other call, so 30 calls starting at once would freeze the rest for seconds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from app.settings import Settings
from app.voice.voice_kit import SPARE_VADS, VoiceKit


def _kit(tmp_path: Path) -> VoiceKit:
    none: Any = None  # the models are not needed to hand out VADs
    return VoiceKit(Settings(data_dir=tmp_path), none, none, none, none)


def test_a_call_gets_a_spare_and_the_next_call_gets_it_back_reset(tmp_path: Path) -> None:
    kit = _kit(tmp_path)
    kit.prepare_vads(8000)
    vad = kit.new_vad(8000)
    vad.process(np.full(300, 3000, dtype=np.int16).tobytes())  # a window and a bit
    assert vad.pending_samples > 0

    kit.release_vad(vad)
    again = kit.new_vad(8000)
    assert again is vad  # no new session built
    assert again.pending_samples == 0  # and none of the last call's audio in it


def test_spares_are_kept_up_to_the_limit(tmp_path: Path) -> None:
    kit = _kit(tmp_path)
    kit.prepare_vads(8000)
    taken = [kit.new_vad(8000) for _ in range(2)]
    for vad in taken * 3:  # a VAD released twice must not serve two calls
        kit.release_vad(vad)
    spares = kit._spare_vads[8000]
    assert len(spares) <= SPARE_VADS
    assert len({id(vad) for vad in spares}) == len(spares)

"""Long-term caller memory: mem0 over a bundled embedder and embedded Qdrant.

mem0 reads two environment variables when it is first imported, so they are set here,
before any submodule imports it:

* ``MEM0_TELEMETRY=false``: with telemetry on, every ``Memory`` opens a second vector
  store (a local Qdrant under ``~/.mem0``) and posts events. ``build_mem0`` also switches it
  off at run time, in case mem0 was imported before this package.
* ``MEM0_DIR``: mem0 writes ``config.json`` there on import. Defaults to a temp dir rather
  than ``~/.mem0`` so a read-only home does not break the import.

Both are defaults: an explicit environment value wins.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("MEM0_TELEMETRY", "false")
os.environ.setdefault("MEM0_DIR", os.path.join(tempfile.gettempdir(), "tourline-mem0"))

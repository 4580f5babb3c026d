"""``python -m agents.worker dev|start``: the entry point the product card names.

The worker itself lives in ``app/channels/livekit/``, beside the other channels.
"""

from __future__ import annotations

from app.channels.livekit.worker import main, server

__all__ = ["main", "server"]

if __name__ == "__main__":
    main()

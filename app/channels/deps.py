"""How routes reach the process's parts: the Runtime as a FastAPI dependency.

This is the one place that reads ``app.state``; routes and sockets declare ``RuntimeDep``
(or take ``runtime_of(connection)``) and get a typed Runtime.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from app.runtime import Runtime


def runtime_of(connection: HTTPConnection) -> Runtime:
    """The Runtime ``create_app`` put on the app (a request or a WebSocket)."""
    runtime = connection.app.state.runtime
    if not isinstance(runtime, Runtime):
        raise TypeError("the app has no Runtime: build it with app.web.server.create_app")
    return runtime


RuntimeDep = Annotated[Runtime, Depends(runtime_of)]

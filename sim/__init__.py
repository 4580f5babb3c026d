"""The far ends of a call, simulated against the real server: shared by tests and benchmarks.

Why a package of its own: ``bench/`` drives the same simulated callers as the end-to-end
tests, and a benchmark must not import the test suite to do so.

- ``sim.twilio``: Twilio's side of a phone call (webhook, media stream, playback).
- ``sim.avatar``: an avatar client on ``WS /avatar``.
- ``sim.server``: the real ``tourline serve`` process on a loopback port.
"""

"""The LiveKit agent worker: Tourline's planner and caller memory in LiveKit rooms and SIP calls.

Run it with ``python -m agents.worker dev|start``; see the README section on LiveKit.
"""

"""The LiveKit worker: Tourline's planner and caller memory in LiveKit rooms and SIP calls."""

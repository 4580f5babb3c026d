"""The ways in: Twilio phone calls, avatar clients, LiveKit rooms and the text chat."""

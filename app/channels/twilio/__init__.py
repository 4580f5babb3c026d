"""Twilio phone calls: the signed webhook, the media stream and its messages."""

"""The realtime voice loop: turn taking, the compute pool and the speech renderer."""

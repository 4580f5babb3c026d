"""Avatar clients (web or mobile talking heads) over ``WS /avatar``; see docs/avatar-protocol.md."""

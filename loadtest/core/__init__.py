"""The pure measuring core: bytes and timestamps in, events and measurements out; no I/O, no clock."""

"""Traces of real usage: the format, export (Coder's PostgreSQL, the API), synth, show."""

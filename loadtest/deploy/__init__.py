"""Preparing a real Coder deployment for a load test, and cleaning up after it."""

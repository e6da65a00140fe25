"""Locust adapters: users, load shapes, the worker -> master measurement handshake."""

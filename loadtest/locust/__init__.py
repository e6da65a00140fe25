"""Locust adapters: users, load shapes, the worker -> master snapshot handshake."""

"""chatload: load testing and stream benchmarking for Coder's chat API."""

__version__ = "0.1.0"

"""One TLS context per process, for every REST client and every ``wss://`` stream.

Making a context loads the CA bundle: ~24 ms of CPU and ~845 KB each. Made per user (httpx's
default, and ``ssl.create_default_context()`` per stream), it was most of what 2,000 users
cost the generator. httpx's own rules pick the bundle (``SSL_CERT_FILE``, ``SSL_CERT_DIR``,
else certifi's), so REST calls and streams trust the same certificates.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()

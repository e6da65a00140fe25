"""``tls_context``: one context per process, and one that verifies servers."""

from __future__ import annotations

import ssl

from loadtest.client.tls import tls_context


def test_one_context_per_process_that_checks_certificates_and_names() -> None:
    context = tls_context()
    assert tls_context() is context
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0, "no CA bundle loaded"

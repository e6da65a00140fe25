"""Real PostgreSQL and NATS servers for the tests, one of each per session, stopped by handle."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from loadtest.pubsub.servers import NatsServer, PostgresServer, ServerError


def _serve(server: PostgresServer | NatsServer) -> Iterator[str]:
    try:
        server.start()
    except ServerError as exc:
        server.stop()
        if "not installed" in str(exc):  # the Makefile installs both: this is a bare pytest
            pytest.skip(str(exc))
        raise
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    yield from _serve(PostgresServer())


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    yield from _serve(NatsServer())

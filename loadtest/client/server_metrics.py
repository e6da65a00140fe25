"""``--server-metrics``: scrape a deployment's Prometheus endpoints, never failing the run.

A scrape that fails (unreachable, an HTTP error, a body that is not Prometheus text) comes
back as a ``Scrape`` with its ``error`` and a warning on stderr; the run and its report go
on. No credential is sent (Coder serves ``/metrics`` on its own, unauthenticated port) and
none is shown: a URL's user info and query are redacted wherever it is printed or reported.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families

from loadtest.core.server_delta import Samples, Scrape, labels_of

#: How long one scrape may take: Coder answers in milliseconds; a slow one must not stall.
TIMEOUT_S = 5.0
#: ``--server-metrics sim``: the embedded simulator's own ``/metrics``.
SIM = "sim"


def redacted(url: str) -> str:
    """``url`` as it may be shown: no password or token in its user info or query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    if parts.username is not None:
        host = f"REDACTED@{host}"
    query = "REDACTED" if parts.query else ""
    return urlunsplit((parts.scheme, host, parts.path, query, ""))


def parse(text: str) -> Samples:
    """Prometheus text as samples; ValueError when it is not Prometheus text."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue  # Python clients' creation stamps: no figure of ours
            samples.setdefault(sample.name, {})[labels_of(sample.labels)] = float(sample.value)
    if not samples and text.strip():
        raise ValueError("no Prometheus samples in the answer")
    return samples


class MetricsScraper:
    """The endpoints of one run (a deployment's replicas), scraped together."""

    def __init__(
        self,
        urls: list[str],
        *,
        command: str = "run",
        transport: httpx.BaseTransport | None = None,
        timeout: float = TIMEOUT_S,
    ) -> None:
        self.urls = urls
        self.command = command
        self._http = httpx.Client(timeout=timeout, transport=transport, follow_redirects=True)

    @property
    def shown(self) -> str:
        """Where the figures come from, as the report says it (credentials redacted)."""
        return ", ".join(redacted(url) for url in self.urls)

    def scrape(self) -> tuple[datetime, list[Scrape]]:
        """Every endpoint now; the time taken before the first request."""
        at = datetime.now(UTC)
        return at, [self._one(url) for url in self.urls]

    def _one(self, url: str) -> Scrape:
        shown = redacted(url)
        try:
            answer = self._http.get(url, headers={"Accept": "text/plain"})
            answer.raise_for_status()
            return Scrape(shown, parse(answer.text))
        except httpx.HTTPStatusError as exc:
            error = f"HTTP {exc.response.status_code}"
        except httpx.HTTPError as exc:
            error = f"unreachable: {type(exc).__name__}: {str(exc).replace(url, shown)[:200]}"
        except ValueError as exc:
            error = f"not Prometheus text: {str(exc)[:120]}"
        print(
            f"chatload {self.command}: warning: --server-metrics {shown}: {error}; the report "
            "goes on without it",
            file=sys.stderr,
        )
        return Scrape(shown, error=error)

    def close(self) -> None:
        self._http.close()


def endpoints(value: list[str] | None, sim_url: str | None) -> list[str]:
    """The ``--server-metrics`` values as URLs: ``sim`` is the embedded simulator's
    ``/metrics``; a comma separates the replicas' endpoints."""
    urls = []
    for item in value or ():
        for url in filter(None, (part.strip() for part in item.split(","))):
            if url == SIM:
                if sim_url is None:
                    raise ValueError(
                        "--server-metrics sim is the embedded simulator's /metrics: "
                        "give the URL of the deployment's Prometheus endpoint with --host"
                    )
                url = sim_url.rstrip("/") + "/metrics"
            urls.append(url)
    return urls

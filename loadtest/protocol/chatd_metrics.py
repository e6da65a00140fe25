"""Coder's chat daemon Prometheus metrics as data: names, labels, buckets, reasons. No I/O.

The simulator serves these (``sim/metrics.py``) and ``--server-metrics`` reads them
(``core/server_delta.py``); both take the names from here. Sources, coder/coder:
- coderd/x/chatd/chatloop/metrics.go (@007894f1): ``stage_duration_seconds{stage,scope,
  chat_kind}`` and ``model_stage_duration_seconds{stage,provider_type,chat_kind,model}`` (both
  ``stageDurationBuckets``; registered only with the ``chat-stage-metrics`` experiment; the
  model histogram observes the turn-scoped ``stream`` and ``provider_attempt`` stages of a
  known model), ``stage_anomalies_total{reason}`` (five reasons), ``ttft_seconds{provider,
  model}``, ``stream_retries_total{provider,model,kind}``. Which stages are observed changes
  between versions (``capacity_wait`` comes and goes): a reader takes whatever stages come.
- coderd/x/chatd/capacity.go: ``agents_active{pool}``, ``agents_queued_for_capacity{pool}``
  (gauges, deployment-wide: aggregate with max) and ``agent_capacity_wait_seconds`` (a
  histogram without labels, observed at admission of a chat that was refused first).
- coderd/database/pubsub/metrics.go: ``coder_pubsub_publishes_total{backend,success}`` and
  ``coder_pubsub_messages_total{backend,size}`` (note ``coder_``, not ``coderd_``; the first
  NATS pubsub used ``coder_nats_pubsub_*``).
Counters are named here without the ``_total`` the exposition adds (``*_TOTAL`` with it).
"""

from __future__ import annotations

from typing import Final

STAGE_DURATION: Final = "coderd_chatd_stage_duration_seconds"
MODEL_STAGE_DURATION: Final = "coderd_chatd_model_stage_duration_seconds"
STAGE_ANOMALIES: Final = "coderd_chatd_stage_anomalies"
STAGE_ANOMALIES_TOTAL: Final = STAGE_ANOMALIES + "_total"
TTFT: Final = "coderd_chatd_ttft_seconds"
STREAM_RETRIES: Final = "coderd_chatd_stream_retries"
STREAM_RETRIES_TOTAL: Final = STREAM_RETRIES + "_total"
AGENTS_ACTIVE: Final = "coderd_chatd_agents_active"
AGENTS_QUEUED: Final = "coderd_chatd_agents_queued_for_capacity"
CAPACITY_WAIT: Final = "coderd_chatd_agent_capacity_wait_seconds"
PUBSUB_PUBLISHES: Final = "coder_pubsub_publishes"
PUBSUB_MESSAGES: Final = "coder_pubsub_messages"
#: The first NATS pubsub's names, read too.
NATS_PUBSUB_PUBLISHES: Final = "coder_nats_pubsub_publishes"
NATS_PUBSUB_MESSAGES: Final = "coder_nats_pubsub_messages"

#: chatloop/metrics.go ``stageDurationBuckets`` (both stage histograms).
STAGE_BUCKETS: Final = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600)
#: chatloop/metrics.go ``ttft_seconds`` buckets.
TTFT_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
#: capacity.go ``agent_capacity_wait_seconds`` buckets.
CAPACITY_WAIT_BUCKETS: Final = (1, 5, 15, 60, 300, 900, 3600)
#: chatloop/metrics.go ``modelStages``: the stages that are a provider's work on a model.
MODEL_STAGES: Final = ("stream", "provider_attempt")
#: chatloop/metrics.go ``StageAnomaly`` values (the ``reason`` label).
ANOMALY_REASONS: Final = (
    "negative_elapsed",
    "inverted_window",
    "missing_timestamp",
    "future_start",
    "stale_anchor",
)
#: chatloop ``ScopeTurn``: latency a prompt is charged with (``background``: title, summary).
SCOPE_TURN: Final = "turn"
SCOPE_BACKGROUND: Final = "background"

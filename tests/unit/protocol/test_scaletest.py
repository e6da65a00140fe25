"""Coder's scaletest buckets, to the last bit: what Go's ExponentialBucketsRange prints."""

from __future__ import annotations

import math

import pytest

from loadtest.protocol.scaletest import (
    HISTOGRAMS,
    PROCESSING_BUCKETS,
    REQUEST_BUCKETS,
    exponential_buckets_range,
    go_pow,
)

# Printed (strconv.FormatFloat 'g', -1) by prometheus/client_golang's ExponentialBucketsRange
# built with Go 1.19 on amd64: (0.05, 120, 18) and (0.1, 300, 18), scaletest/chat/metrics.go.
GO_REQUEST = (
    0.05, 0.07903254362579491, 0.1249228590392635, 0.1974594261375924, 0.312114414210874,
    0.4933439211472064, 0.7798044994117462, 1.2325986623869998, 1.9483081511639402,
    3.0795949790671187, 4.86776449065802, 7.694236189360506, 12.161901146056081,
    19.223719657965646, 30.385989250364425, 48.02964042084722, 75.91809303783701,
    120.00000000000021,
)  # fmt: skip
GO_PROCESSING = (
    0.1, 0.16015354064014226, 0.25649156579573695, 0.4107803240652128, 0.6578792332434886,
    1.0536168851756667, 1.6874047463912125, 2.7024384462753397, 4.328050855330405,
    6.931526685517603, 11.101085407272741, 17.77878132923345, 28.47334778143592,
    45.60107461075101, 73.03173555907073, 116.96291028879753, 187.32024206326247,
    299.9999999999999,
)  # fmt: skip


def test_the_buckets_are_gos_to_the_last_bit() -> None:
    assert REQUEST_BUCKETS == GO_REQUEST
    assert PROCESSING_BUCKETS == GO_PROCESSING


def test_the_histograms_take_request_or_processing_buckets_as_metrics_go_does() -> None:
    by_name = {h.name.removeprefix("coderd_scaletest_"): h for h in HISTOGRAMS}
    for name in ("chat_create_latency_seconds", "chat_message_latency_seconds"):
        assert by_name[name].buckets == GO_REQUEST
    phased = {name for name, h in by_name.items() if h.phased}
    assert phased == {
        "chat_message_latency_seconds",
        "chat_time_to_running_seconds",
        "chat_time_to_first_output_seconds",
        "chat_time_to_terminal_status_seconds",
    }


@pytest.mark.parametrize(("x", "y"), [(2400.0, 1 / 17), (3.0, 5.0), (10.0, -2.5), (0.7, 0.5)])
def test_go_pow_is_a_power(x: float, y: float) -> None:
    assert math.isclose(go_pow(x, y), x**y, rel_tol=1e-14)


def test_a_range_that_cannot_be_is_refused() -> None:
    with pytest.raises(ValueError, match="0 < min < max"):
        exponential_buckets_range(1, 1, 18)
    assert exponential_buckets_range(0.5, 2, 1) == (0.5,)

"""The report's typed model: summaries of histograms, sections built from the figures'
declaration, a count no figure declares kept rather than dropped, a bad report refused."""

from __future__ import annotations

import pydantic
import pytest

from loadtest.core.figures import FIGURES
from loadtest.core.histogram import Histogram
from loadtest.report.model import Integrity, Rates, RunCounts, SeriesPoint, Summary


def test_a_summary_scales_a_histogram_to_the_reported_unit() -> None:
    hist = Histogram()
    for us in (1000, 2000, 3000, 4000):
        hist.record(us)
    summary = Summary.of(hist, 1000.0)
    assert summary.count == 4 and summary.min == pytest.approx(1.0, rel=0.01)
    assert summary.max == pytest.approx(4.0, rel=0.01)
    assert summary.p50 == pytest.approx(2.0, rel=0.05)


def test_a_signed_summary_ranks_negatives_below_positives() -> None:
    negative, positive = Histogram(), Histogram()
    for v in (5, 10):
        negative.record(v)
    for v in (1, 2):
        positive.record(v)
    summary = Summary.signed(negative, positive, 1.0)
    assert summary.count == 4
    assert summary.min == pytest.approx(-10, rel=0.01) and summary.max == pytest.approx(2, rel=0.01)


def test_every_declared_count_and_rate_is_a_field() -> None:
    for figure in FIGURES:
        model = {"counts": RunCounts, "integrity": Integrity, "rates": Rates}.get(figure.section)
        if model is not None:
            assert figure.name in model.model_fields, figure.name


def test_a_count_no_figure_declares_is_kept() -> None:
    counts = RunCounts(turns_started=3, from_a_newer_worker=7)
    assert counts.model_dump()["from_a_newer_worker"] == 7
    assert counts.model_dump()["turns_started"] == 3


def test_rates_are_all_required_and_integrity_sums_its_breaks() -> None:
    with pytest.raises(pydantic.ValidationError):
        Rates()
    integrity = Integrity(seq_gaps=2, seq_duplicates=1)
    assert integrity.errors == 3


def test_a_series_point_needs_its_second() -> None:
    with pytest.raises(pydantic.ValidationError):
        SeriesPoint()

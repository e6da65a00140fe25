"""timeseries.csv: a header of SeriesPoint's fields, one row per point, empty cells for none."""

from __future__ import annotations

import csv
import io

from loadtest.report.model import Report, SeriesPoint
from loadtest.report.timeseries_csv import render_timeseries_csv


def test_timeseries_csv(report: Report) -> None:
    text = render_timeseries_csv(report)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(SeriesPoint.model_fields)
    assert len(rows) == 1 + len(report.timeseries)
    for row, point in zip(rows[1:], report.timeseries, strict=True):
        data = dict(zip(rows[0], row, strict=True))
        assert float(data["t"]) == point.t
        assert float(data["events_per_s"]) == point.events_per_s
        assert int(data["turns_completed"]) == point.turns_completed
        p50 = point.time_to_first_output_p50
        assert data["time_to_first_output_p50"] == ("" if p50 is None else str(p50))

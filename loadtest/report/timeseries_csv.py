"""``timeseries.csv``: one row per second of the run, columns as ``SeriesPoint`` names them."""

from __future__ import annotations

import csv
import io

from loadtest.report.model import Report, SeriesPoint

COLUMNS = tuple(SeriesPoint.model_fields)


def render_timeseries_csv(report: Report) -> str:
    """The time series as CSV; a value nothing measured (a percentile) is an empty cell."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for point in report.timeseries:
        data = point.model_dump()
        writer.writerow("" if data[c] is None else data[c] for c in COLUMNS)
    return out.getvalue()

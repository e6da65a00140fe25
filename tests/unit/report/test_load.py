"""``read_report``: a report.json back as written; anything else a one-line reason naming the file."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from loadtest.report.files import write_json
from loadtest.report.load import ReportFileError, read_report
from loadtest.report.model import Report


def test_a_written_report_reads_back_equal(report: Report, tmp_path: Path) -> None:
    write_json(report, tmp_path / "report.json")
    assert read_report(tmp_path / "report.json") == report


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "no such file"),
        (b"{not json", "not JSON"),
        (b'"a string"', "not a chatload report (no schema_version)"),
        (b'{"run": {}}', "not a chatload report (no schema_version)"),
        (b'{"schema_version": 99}', "report schema_version 99 is not one this chatload reads"),
    ],
)
def test_a_file_that_is_not_a_report_says_why(
    tmp_path: Path, content: bytes | None, problem: str
) -> None:
    path = tmp_path / "report.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ReportFileError) as caught:
        read_report(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and problem in message and "\n" not in message


def test_an_invalid_report_names_the_first_bad_key_and_counts_the_rest(
    report: Report, tmp_path: Path
) -> None:
    data = report.model_dump(mode="json")
    data["counts"]["turns_started"] = "many"
    data["surprise"] = 1
    path = tmp_path / "report.json"
    path.write_bytes(orjson.dumps(data))
    with pytest.raises(ReportFileError, match=r"not a valid chatload report: .*\(and 1 more\)"):
        read_report(path)


def test_a_directory_is_a_file_it_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(ReportFileError, match="cannot read it"):
        read_report(tmp_path)

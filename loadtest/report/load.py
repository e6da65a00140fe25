"""Reading a ``report.json`` back, with a one-line reason when it is not one we can read."""

from __future__ import annotations

from pathlib import Path

import orjson
from pydantic import ValidationError

from loadtest.report.model import SCHEMA_VERSION, Report


class ReportFileError(ValueError):
    """A file that is missing, not JSON, or not a report this chatload reads."""


def read_report(path: Path) -> Report:
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise ReportFileError(f"{path}: no such file") from None
    except OSError as exc:
        raise ReportFileError(f"{path}: cannot read it ({exc.strerror})") from None
    except orjson.JSONDecodeError as exc:
        raise ReportFileError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict) or "schema_version" not in data:
        raise ReportFileError(f"{path}: not a chatload report (no schema_version)")
    if data["schema_version"] != SCHEMA_VERSION:
        raise ReportFileError(
            f"{path}: report schema_version {data['schema_version']!r} is not one this "
            f"chatload reads ({SCHEMA_VERSION})"
        )
    try:
        return Report.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ReportFileError(
            f"{path}: not a valid chatload report: {where}: {first['msg']}{more}"
        ) from None

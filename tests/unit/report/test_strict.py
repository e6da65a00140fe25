"""``Strict``: a report model refuses a key it does not know, naming it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from loadtest.report.strict import Strict


class Point(Strict):
    t: float


def test_an_unknown_key_is_an_error_naming_it() -> None:
    assert Point.model_validate({"t": 1.5}).t == 1.5
    with pytest.raises(ValidationError, match="tee"):
        Point.model_validate({"t": 1.5, "tee": 2})

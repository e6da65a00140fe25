"""The simulator's workspaces are filtered and paged as Coder's workspaces API does."""

from __future__ import annotations

import pytest

from loadtest.sim.errors import ApiError
from loadtest.sim.workspaces import made, matching, page

SPACES = made(12, "owner-id", "admin")


def test_names_are_coders_scaletest_names_with_stable_ids() -> None:
    assert [w.name for w in SPACES[:3]] == ["scaletest-0", "scaletest-1", "scaletest-2"]
    assert made(12, "owner-id", "admin") == SPACES, "the same ids every start"
    agent = SPACES[0].wire(__import__("datetime").datetime(2026, 1, 1))["latest_build"]
    assert agent["resources"][0]["agents"][0]["status"] == "connected"


def test_a_name_term_matches_partially_and_an_owner_term_exactly() -> None:
    assert len(matching(SPACES, 'name:"scaletest-"', "me")) == 12
    assert [w.name for w in matching(SPACES, 'name:"test-1"', "me")] == [
        "scaletest-1",
        "scaletest-10",
        "scaletest-11",
    ]
    assert matching(SPACES, 'owner:"someone" name:"scaletest-"', "me") == []
    assert len(matching(SPACES, 'owner:"me"', "admin")) == 12


def test_an_unknown_filter_key_is_a_400() -> None:
    with pytest.raises(ApiError) as refused:
        matching(SPACES, 'colour:"blue"', "me")
    assert refused.value.status == 400


def test_pages_of_limit_from_offset_until_one_is_empty() -> None:
    assert [w.name for w in page(SPACES, "5", "10")] == ["scaletest-10", "scaletest-11"]
    assert page(SPACES, "5", "15") == []
    assert len(page(SPACES, None, None)) == 12

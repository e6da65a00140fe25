"""Coder's error body: empty parts left out, validations by field, a bad UUID's detail."""

from __future__ import annotations

from loadtest.sim.errors import ApiError, forbidden, invalid_uuid, not_found


def test_the_body_leaves_out_what_is_empty() -> None:
    assert ApiError(400, "bad").body() == {"message": "bad"}
    full = ApiError(400, "bad", "why", [("title", "too long")]).body()
    assert full == {
        "message": "bad",
        "detail": "why",
        "validations": [{"field": "title", "detail": "too long"}],
    }


def test_the_common_answers() -> None:
    assert (not_found().status, forbidden().status) == (404, 403)
    assert invalid_uuid("abc").detail == "invalid UUID length: 3"
    assert invalid_uuid("z" * 36).detail == "invalid UUID format"
    assert invalid_uuid("abc").message == 'Invalid UUID "abc".'

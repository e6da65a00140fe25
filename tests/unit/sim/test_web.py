"""The routes' shared plumbing: bodies Coder refuses, path UUIDs, and error rendering."""

from __future__ import annotations

import asyncio

import pytest
from starlette.requests import Request

from loadtest.protocol.models import UpdateChatRequest
from loadtest.sim.errors import INVALID_JSON, ApiError
from loadtest.sim.web import error_response, parse_request, parse_uuid, read_body


def _request(body: bytes) -> Request:
    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    return Request({"type": "http", "method": "POST", "headers": []}, receive)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"", "EOF"),
        (b"[1]", "json: cannot unmarshal list into Go value of type struct"),
    ],
)
def test_a_body_that_is_no_json_object_is_coders_400(body: bytes, detail: str) -> None:
    with pytest.raises(ApiError) as caught:
        asyncio.run(read_body(_request(body)))
    assert (caught.value.status, caught.value.message, caught.value.detail) == (
        400,
        INVALID_JSON,
        detail,
    )


def test_a_field_of_the_wrong_type_is_named() -> None:
    with pytest.raises(ApiError) as caught:
        parse_request({"title": 3}, UpdateChatRequest)
    assert caught.value.status == 400 and caught.value.detail is not None
    assert "UpdateChatRequest.title" in caught.value.detail


def test_uuids_are_canonicalised_or_refused() -> None:
    assert parse_uuid("0FA1C0DEC0DE4C0D8C0D00000000D001") == "0fa1c0de-c0de-4c0d-8c0d-00000000d001"
    with pytest.raises(ApiError, match='Invalid UUID "x"'):
        parse_uuid("x")


def test_errors_render_as_json_or_plain_text() -> None:
    json = error_response(ApiError(404, "gone", headers={"X-A": "1"}))
    assert (json.status_code, json.body, json.headers["x-a"]) == (404, b'{"message":"gone"}', "1")
    plain = error_response(ApiError(428, "no bypass", plain=True))
    assert plain.body == b"no bypass\n" and plain.media_type == "text/plain"

"""The simulator's rate limit as Coder's httprate keys it: per user and URL path, a sliding
one-minute window, refused requests not counted; a non-owner's bypass is a plain-text 428."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from loadtest.sim.accounts import User
from loadtest.sim.auth import BYPASS_REFUSED, RateLimiter
from loadtest.sim.errors import ApiError
from loadtest.sim.web import error_response

USER = User("u1", "u", "u@x", "U", None, False, datetime(2026, 12, 1, tzinfo=UTC))
OWNER = User("u0", "o", "o@x", "O", None, True, datetime(2026, 12, 1, tzinfo=UTC))
MINUTE = 1_800_000_000.0  # an epoch second on a minute boundary


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def refused(limiter: RateLimiter, paths: list[str], user: User = USER) -> int:
    count = 0
    for path in paths:
        try:
            limiter.check(user, path, {})
        except ApiError as exc:
            assert exc.status == 429
            count += 1
    return count


def test_600_a_minute_over_three_chats_pass_and_on_one_path_88_are_refused() -> None:
    clock = Clock(MINUTE + 5)
    limiter = RateLimiter(lambda: 512, clock)
    spread = [f"/api/v2/chats/c{i % 3}/messages" for i in range(600)]
    assert refused(limiter, spread) == 0
    limiter.reset()
    assert refused(limiter, ["/api/v2/chats"] * 600) == 88


def test_the_window_slides_and_says_when_it_ends() -> None:
    clock = Clock(MINUTE + 30)
    limiter = RateLimiter(lambda: 10, clock)
    assert refused(limiter, ["/p"] * 10) == 0
    with pytest.raises(ApiError) as limited:
        limiter.check(USER, "/p", {})
    assert limited.value.headers is not None
    assert limited.value.headers["X-Ratelimit-Reset"] == str(int(MINUTE + 60))
    # A quarter into the next minute, three quarters of the last one still count: 7.5 -> 8.
    clock.now = MINUTE + 75
    assert refused(limiter, ["/p"] * 3) == 1
    # Two minutes on, nothing of it is left.
    clock.now = MINUTE + 185
    assert refused(limiter, ["/p"] * 10) == 0


def test_bypass_is_for_owners_and_a_refusal_is_plain_text() -> None:
    limiter = RateLimiter(lambda: 0, Clock(MINUTE))
    limiter.check(OWNER, "/p", {"x-coder-bypass-ratelimit": "true"})
    with pytest.raises(ApiError) as refused_bypass:
        limiter.check(USER, "/p", {"x-coder-bypass-ratelimit": "true"})
    assert refused_bypass.value.status == 428 and refused_bypass.value.plain
    assert refused_bypass.value.message == BYPASS_REFUSED


def test_a_plain_error_is_rendered_as_text_with_a_newline() -> None:
    response = error_response(ApiError(428, BYPASS_REFUSED, plain=True))
    assert response.status_code == 428
    assert response.headers["content-type"].startswith("text/plain")
    assert response.body == (BYPASS_REFUSED + "\n").encode()

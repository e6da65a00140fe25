"""Who is calling: Coder's three token transports, and its API rate limit per user and path."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Final

from loadtest.protocol.constants import SESSION_TOKEN_COOKIE, SESSION_TOKEN_HEADER
from loadtest.sim.accounts import Accounts, User
from loadtest.sim.errors import SIGNED_OUT, ApiError

#: Starlette's headers are looked up case-insensitively; kept lower-case as they arrive.
TOKEN_HEADER: Final = SESSION_TOKEN_HEADER.lower()
TOKEN_COOKIE: Final = SESSION_TOKEN_COOKIE
BYPASS_HEADER: Final = "x-coder-bypass-ratelimit"
_WWW_AUTHENTICATE: Final = {"WWW-Authenticate": SESSION_TOKEN_HEADER}


def session_token(
    headers: Mapping[str, str], cookies: Mapping[str, str], query: Mapping[str, str]
) -> str | None:
    """The token as httpmw's ``APITokenFromRequest`` finds it: cookie, query parameter,
    ``Coder-Session-Token`` header, then ``Authorization: Bearer``."""
    token = cookies.get(TOKEN_COOKIE) or query.get(TOKEN_COOKIE) or headers.get(TOKEN_HEADER)
    if not token:
        scheme, _, value = headers.get("authorization", "").partition(" ")
        token = value.strip() if scheme.lower() == "bearer" else ""
    return token or None


#: Coder answers a non-owner's bypass request in plain text, not JSON (httpmw.RateLimit).
BYPASS_REFUSED: Final = '"X-Coder-Bypass-Ratelimit" provided but user is not owner'
WINDOW_S: Final = 60


class RateLimiter:
    """httprate as Coder configures it (coderd/httpmw/ratelimit.go): N requests a minute per
    user *and URL path* (``KeyByEndpoint``), in a sliding window: the previous minute's count
    weighted by how much of it the window still covers, plus this minute's. A refused request
    is not counted. ``clock`` is wall time (the reset header is an epoch second)."""

    def __init__(self, limit: Callable[[], int], clock: Callable[[], float] = time.time):
        self._limit = limit
        self._clock = clock
        #: (user id, path) -> (window start, count in it, count in the window before)
        self._windows: dict[tuple[str, str], tuple[float, int, int]] = {}

    def reset(self) -> None:
        self._windows.clear()

    def check(self, user: User, path: str, headers: Mapping[str, str]) -> None:
        limit = self._limit()
        if headers.get(BYPASS_HEADER, "").lower() == "true":
            if not user.owner:
                raise ApiError(428, BYPASS_REFUSED, plain=True)
            return
        if limit < 0:
            return
        now = self._clock()
        window = now - now % WINDOW_S
        key = (user.id, path)
        start, count, previous = self._windows.get(key, (window, 0, 0))
        if start != window:
            previous = count if window - start == WINDOW_S else 0
            start, count = window, 0
        rate = previous * (WINDOW_S - (now - window)) / WINDOW_S + count
        if int(rate + 0.5) >= limit:  # Go's math.Round
            self._windows[key] = (start, count, previous)
            raise ApiError(
                429,
                f"You've been rate limited for sending more than {limit} requests in 1m0s.",
                headers={
                    "X-Ratelimit-Limit": str(limit),
                    "X-Ratelimit-Remaining": "0",
                    "X-Ratelimit-Reset": str(int(window + WINDOW_S)),
                },
            )
        self._windows[key] = (start, count + 1, previous)


class Auth:
    def __init__(self, accounts: Accounts, limiter: RateLimiter) -> None:
        self.accounts = accounts
        self.limiter = limiter

    def user(
        self,
        headers: Mapping[str, str],
        cookies: Mapping[str, str],
        query: Mapping[str, str],
        path: str = "",
    ) -> User:
        """The authenticated caller, counted against the rate limit; 401/429 otherwise."""
        token = session_token(headers, cookies, query)
        if token is None:
            raise ApiError(
                401,
                SIGNED_OUT,
                f'Cookie "{TOKEN_COOKIE}" or query parameter must be provided.',
                headers=_WWW_AUTHENTICATE,
            )
        user = self.accounts.authenticate(token)
        if user is None:
            raise ApiError(401, SIGNED_OUT, "API key is invalid.", headers=_WWW_AUTHENTICATE)
        self.limiter.check(user, path, headers)
        return user

"""Who is calling: Coder's three token transports, and its per-user API rate limit."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Final

from loadtest.sim.accounts import Accounts, User
from loadtest.sim.errors import SIGNED_OUT, ApiError

TOKEN_HEADER: Final = "coder-session-token"
TOKEN_COOKIE: Final = "coder_session_token"
BYPASS_HEADER: Final = "x-coder-bypass-ratelimit"
_WWW_AUTHENTICATE: Final = {"WWW-Authenticate": "Coder-Session-Token"}


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


class RateLimiter:
    """httprate as Coder configures it: N requests per user per one-minute window."""

    def __init__(self, limit: Callable[[], int], clock: Callable[[], float] = time.monotonic):
        self._limit = limit
        self._clock = clock
        self._windows: dict[str, tuple[float, int]] = {}

    def reset(self) -> None:
        self._windows.clear()

    def check(self, user: User, headers: Mapping[str, str]) -> None:
        limit = self._limit()
        if headers.get(BYPASS_HEADER, "").lower() == "true":
            if not user.owner:
                # Coder's httpmw.RateLimit answers 428 to a non-owner asking to bypass
                # (status from its tests; the message is ours).
                raise ApiError(428, "Only owners can bypass the rate limit.")
            return
        if limit < 0:
            return
        now = self._clock()
        start, count = self._windows.get(user.id, (now, 0))
        if now - start >= 60:
            start, count = now, 0
        count += 1
        self._windows[user.id] = (start, count)
        if count > limit:
            reset = int(start + 60 - now) + 1
            raise ApiError(
                429,
                f"You've been rate limited for sending more than {limit} requests in 1m0s.",
                headers={
                    "X-Ratelimit-Limit": str(limit),
                    "X-Ratelimit-Remaining": "0",
                    "X-Ratelimit-Reset": str(reset),
                },
            )


class Auth:
    def __init__(self, accounts: Accounts, limiter: RateLimiter) -> None:
        self.accounts = accounts
        self.limiter = limiter

    def user(
        self, headers: Mapping[str, str], cookies: Mapping[str, str], query: Mapping[str, str]
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
        self.limiter.check(user, headers)
        return user

"""Users, session tokens and the one organization: the bootstrap surface of a fresh Coder.

Pure state: the HTTP adapter parses bodies and renders what these methods return. Tokens
are ``<10-char id>-<22-char secret>`` like Coder's and are never logged.
"""

from __future__ import annotations

import re
import secrets
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from loadtest.sim.errors import VALIDATION_FAILED, ApiError, forbidden, not_found

#: The organization every user belongs to (Coder's default organization).
ORGANIZATION_ID = "0fa1c0de-c0de-4c0d-8c0d-000000000001"
#: The pre-made owner, present when the server starts with a token.
OWNER_ID = "0fa1c0de-c0de-4c0d-8c0d-00000000a001"

_USERNAME = re.compile(r"^[a-zA-Z0-9]+(?:-[a-zA-Z0-9]+)*$")
_ALPHABET = string.ascii_letters + string.digits


def new_token() -> str:
    """A Coder-shaped API key: ``<id>-<secret>``."""
    ident = "".join(secrets.choice(_ALPHABET) for _ in range(10))
    secret = "".join(secrets.choice(_ALPHABET) for _ in range(22))
    return f"{ident}-{secret}"


@dataclass(slots=True)
class User:
    id: str
    username: str
    email: str
    name: str
    password: str | None
    owner: bool
    created_at: datetime
    tokens: set[str] = field(default_factory=set)

    def wire(self) -> dict[str, Any]:
        """``codersdk.User``."""
        created = self.created_at.isoformat().replace("+00:00", "Z")
        roles = [{"name": "owner", "display_name": "Owner"}] if self.owner else []
        return {
            "id": self.id,
            "username": self.username,
            "avatar_url": "",
            "name": self.name,
            "email": self.email,
            "created_at": created,
            "updated_at": created,
            "last_seen_at": created,
            "status": "active",
            "login_type": "password",
            "theme_preference": "",
            "organization_ids": [ORGANIZATION_ID],
            "roles": roles,
        }


def check_user_fields(username: str, email: str) -> None:
    """Coder's struct validation of a new user: 400 VALIDATION_FAILED with the fields."""
    problems = []
    if not _USERNAME.match(username) or len(username) > 32:
        problems.append(
            ("username", f'Validation failed for tag "username" with value: "{username}"')
        )
    if "@" not in email:
        problems.append(("email", f'Validation failed for tag "email" with value: "{email}"'))
    if problems:
        raise ApiError(400, VALIDATION_FAILED, validations=problems)


def check_password(password: str) -> None:
    if len(password) < 8:
        raise ApiError(
            400,
            "Password not strong enough!",
            validations=[("password", "password must be at least 8 characters long")],
        )


class Accounts:
    """Users by id, and which user each session token belongs to."""

    def __init__(self, clock: Callable[[], datetime], owner_token: str | None) -> None:
        self._clock = clock
        self.users: dict[str, User] = {}
        self._tokens: dict[str, str] = {}
        if owner_token:
            owner = self._add("admin", "admin@chatload.sim", "Chatload Admin", None, True, OWNER_ID)
            self._grant(owner, owner_token)

    def _add(
        self, username: str, email: str, name: str, password: str | None, owner: bool, ident: str
    ) -> User:
        user = User(ident, username, email, name, password, owner, self._clock())
        self.users[user.id] = user
        return user

    def _grant(self, user: User, token: str) -> str:
        user.tokens.add(token)
        self._tokens[token] = user.id
        return token

    def authenticate(self, token: str) -> User | None:
        user_id = self._tokens.get(token)
        return self.users.get(user_id) if user_id else None

    def lookup(self, actor: User, ref: str) -> User:
        """``me``, a user id or a username, as Coder's ``{user}`` path parameter."""
        if ref == "me":
            return actor
        for user in self.users.values():
            if ref in (user.id, user.username):
                return user
        raise not_found()

    def create_first(self, username: str, email: str, name: str, password: str) -> User:
        if self.users:
            raise ApiError(409, "The initial user has already been created.")
        check_user_fields(username, email)
        check_password(password)
        return self._add(username, email, name, password, True, OWNER_ID)

    def login(self, email: str, password: str) -> str:
        for user in self.users.values():
            if user.email.lower() == email.lower() and user.password == password:
                return self._grant(user, new_token())
        raise ApiError(401, "Incorrect email or password.")

    def create(self, actor: User, username: str, email: str, name: str, password: str) -> User:
        if not actor.owner:
            raise forbidden()
        check_user_fields(username, email)
        if password:
            check_password(password)
        for user in self.users.values():
            if user.username == username or user.email.lower() == email.lower():
                raise ApiError(409, "User already exists.")
        return self._add(username, email, name, password or None, False, str(uuid.uuid4()))

    def mint(self, count: int) -> list[str]:
        """``count`` new members with a session token each (``load-<n>``): the accounts a
        load test's simulated users log in as, one person each, as behind real browsers."""
        taken = {user.username for user in self.users.values()}
        tokens: list[str] = []
        n = 0
        while len(tokens) < count:
            n += 1
            username = f"load-{n}"
            if username in taken:
                continue
            user = self._add(
                username, f"{username}@chatload.sim", username, None, False, str(uuid.uuid4())
            )
            tokens.append(self._grant(user, new_token()))
        return tokens

    def delete(self, actor: User, ref: str) -> User:
        user = self.lookup(actor, ref)
        if not actor.owner:
            raise forbidden()
        if user.id == actor.id:
            raise ApiError(403, "You cannot delete yourself!")
        for token in user.tokens:
            self._tokens.pop(token, None)
        del self.users[user.id]
        return user

    def new_key(self, actor: User, ref: str) -> str:
        user = self.lookup(actor, ref)
        if user.id != actor.id and not actor.owner:
            raise forbidden()
        return self._grant(user, new_token())

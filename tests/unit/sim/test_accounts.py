"""Accounts without HTTP: the owner's token, Coder's validation of new users and passwords,
minted load accounts, and who may do what."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from loadtest.sim.accounts import Accounts, User, check_password, check_user_fields
from loadtest.sim.errors import VALIDATION_FAILED, ApiError

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _accounts() -> tuple[Accounts, User]:
    accounts = Accounts(lambda: NOW, "owner-token")
    owner = accounts.authenticate("owner-token")
    assert owner is not None and owner.owner
    return accounts, owner


@pytest.mark.parametrize(
    ("username", "email", "fields"),
    [
        ("ok-name", "a@b", []),
        ("bad name", "a@b", ["username"]),
        ("x" * 33, "ab", ["username", "email"]),
    ],
)
def test_user_fields_are_checked_by_name(username: str, email: str, fields: list[str]) -> None:
    if not fields:
        check_user_fields(username, email)
        return
    with pytest.raises(ApiError) as caught:
        check_user_fields(username, email)
    assert caught.value.message == VALIDATION_FAILED
    assert [field for field, _ in caught.value.validations or []] == fields


def test_a_short_password_is_refused() -> None:
    check_password("12345678")
    with pytest.raises(ApiError, match="Password not strong enough!"):
        check_password("1234567")


def test_minted_accounts_are_distinct_members_that_sign_in() -> None:
    accounts, _ = _accounts()
    tokens = accounts.mint(3) + accounts.mint(2)
    users = [accounts.authenticate(token) for token in tokens]
    assert len({u.username for u in users if u is not None}) == 5
    assert all(u is not None and not u.owner for u in users)
    assert accounts.authenticate("unknown") is None


def test_members_cannot_manage_others() -> None:
    accounts, owner = _accounts()
    member = accounts.create(owner, "member1", "m@b.co", "", "s3cret-Passw0rd!")
    with pytest.raises(ApiError) as caught:
        accounts.create(member, "member2", "n@b.co", "", "s3cret-Passw0rd!")
    assert caught.value.status == 403
    with pytest.raises(ApiError) as deleting:
        accounts.delete(member, owner.id)
    assert deleting.value.status == 403

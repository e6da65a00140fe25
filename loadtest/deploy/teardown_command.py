"""``chatload teardown``: archive the chats a run created and remove what setup created.

Safe to run twice: what is already archived or gone counts as done.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loadtest.client.rest import ChatClient, RestError
from loadtest.deploy import admin
from loadtest.deploy.setup_command import DEFAULT_FILE
from loadtest.deploy.setup_file import SetupFile, read_setup_file
from loadtest.protocol.eras import Era

GONE = (401, 403, 404, 410)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Archive every chat the load test created (all chats of setup's load-test users; "
        "with the owner's token alone, the owner's chats created after setup) and remove "
        "the users, model and provider setup created (a provider it reused gets its base URL "
        "back). Safe to run twice."
    )
    parser.add_argument(
        "--setup", type=Path, default=DEFAULT_FILE, help=f"the setup file (default {DEFAULT_FILE})"
    )


def archive_run_chats(setup: SetupFile) -> int:
    archived = 0
    for token in dict.fromkeys(setup.tokens):
        client = ChatClient(setup.url, token, Era(setup.era))
        try:
            try:
                chats = client.list_chats()
            except RestError as exc:
                if exc.status in GONE:
                    continue  # the user was already removed
                raise
            for chat in chats:
                if chat.archived or (setup.owner_only and chat.created_at < setup.created_at):
                    continue
                admin.archive_chat(client, chat.id)
                archived += 1
        finally:
            client.close()
    return archived


def main(args: argparse.Namespace) -> int:
    try:
        setup = read_setup_file(args.setup)
    except (OSError, ValueError) as exc:
        print(f"chatload teardown: {args.setup}: {exc}", file=sys.stderr)
        return 2
    owner = ChatClient(setup.url, setup.owner_token, Era(setup.era))
    created = setup.created
    try:
        archived = archive_run_chats(setup)
        print(f"archived {archived} chats")
        organization = _organization(owner)
        if created.model_config_id and admin.delete_model(
            owner, created.model_config_id, organization
        ):
            print(f"deleted model {created.model_config_id}")
        ai = created.ai_provider
        if created.provider_id and admin.delete_provider(owner, created.provider_id, ai):
            print(f"deleted provider {created.provider_id}")
        if created.reused_provider_id and created.previous_base_url is not None:
            admin.restore_provider(owner, created.reused_provider_id, created.previous_base_url, ai)
            print(f"restored provider {created.reused_provider_id}'s base URL")
        removed = sum(
            admin.delete_quietly(owner, "delete_user", f"/api/v2/users/{user_id}")
            for user_id in created.user_ids
        )
        print(f"deleted {removed} load-test users")
    except RestError as exc:
        print(f"chatload teardown: {exc}", file=sys.stderr)
        return 3
    finally:
        owner.close()
    return 0


def _organization(client: ChatClient) -> str | None:
    try:
        orgs = client.me().get("organization_ids") or []
    except RestError:
        return None
    return str(orgs[0]) if orgs else None

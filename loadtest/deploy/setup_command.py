"""``chatload setup``: prepare a Coder deployment for a load test and write the setup file."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path

from loadtest.client.preflight import TargetError, inspect_target
from loadtest.client.rest import ChatClient, RestError
from loadtest.deploy import admin
from loadtest.deploy.setup_file import Created, SetupFile, write_setup_file

DEFAULT_FILE = Path(".chatload-setup.json")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = (
        "Prepare a Coder deployment for a load test: check it is reachable and which era it\n"
        "speaks, check chats are on, create the first user on a fresh deployment when asked,\n"
        "point an openai-compat chat provider at a mock LLM (reused on 409; an AI provider\n"
        "in era D, or when the legacy provider route answers 410 'use AI providers', as era C\n"
        "does) with a default model, and create load-test users with API keys so that\n"
        "Coder's per-user rate limit (512 requests/min) does not cap the test. Writes what\n"
        "'chatload run --setup FILE' and 'chatload teardown --setup FILE' need to FILE,\n"
        "readable only by you (0600).\n\n"
        "example:\n"
        "  chatload mock-llm --port 8080 &\n"
        "  chatload setup --host https://coder.example.com --token $CODER_SESSION_TOKEN \\\n"
        "      --llm-url http://mock-llm.internal:8080/v1 --users 20\n"
        "  chatload run --setup .chatload-setup.json -u 100 -t 10m\n"
        "  chatload teardown --setup .chatload-setup.json"
    )
    parser.add_argument("--host", help="deployment URL (or CODER_URL)")
    parser.add_argument("--token", help="an owner's session token (or CODER_SESSION_TOKEN)")
    parser.add_argument(
        "--first-user",
        metavar="EMAIL",
        help="on a fresh deployment: create the first (owner) user with this email; the "
        "password comes from CHATLOAD_FIRST_USER_PASSWORD or is generated",
    )
    parser.add_argument(
        "--llm-url",
        required=True,
        help="base URL of the OpenAI-compatible mock LLM as Coder's servers reach it, e.g. "
        "http://127.0.0.1:8080/v1 ('chatload mock-llm')",
    )
    parser.add_argument(
        "--llm-api-key", default="chatload-mock", help="API key given to the provider"
    )
    parser.add_argument("--model", default="scaletest-model", help="model name to configure")
    parser.add_argument(
        "--users",
        type=int,
        default=0,
        help="load-test users to create, each with its own API key (default 0: the owner's "
        "token alone, with X-Coder-Bypass-Ratelimit)",
    )
    parser.add_argument("--era", choices=["auto", "a", "b", "c", "d"], default="auto")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_FILE, help=f"setup file (default {DEFAULT_FILE})"
    )


def main(args: argparse.Namespace) -> int:
    host = args.host or os.environ.get("CODER_URL")
    if not host:
        print("chatload setup: --host (or CODER_URL) is required", file=sys.stderr)
        return 2
    if args.users < 0:
        print("chatload setup: --users must be >= 0", file=sys.stderr)
        return 2
    token = args.token or os.environ.get("CODER_SESSION_TOKEN") or ""
    try:
        if args.first_user:
            password = os.environ.get("CHATLOAD_FIRST_USER_PASSWORD") or secrets.token_urlsafe(24)
            bootstrap = ChatClient(host, None)
            try:
                token = admin.bootstrap_first_user(bootstrap, args.first_user, password)
            finally:
                bootstrap.close()
            print(f"created the first user {args.first_user} (owner)")
        target = inspect_target(host, [token], args.era)
    except TargetError as exc:
        print(f"chatload setup: {exc}", file=sys.stderr)
        return 3
    except RestError as exc:
        print(f"chatload setup: {exc}", file=sys.stderr)
        return 3
    if not target.owners[0]:
        print(
            "chatload setup: the token is not an owner's: configuring providers and "
            "creating users needs an owner",
            file=sys.stderr,
        )
        return 3
    client = ChatClient(target.url, token, target.era)
    organization = target.organizations[0]
    created = Created()
    try:
        provider = admin.ensure_provider(client, args.llm_url, args.llm_api_key)
        verb = "created" if provider.created else "reused (base URL updated)"
        kind = "AI provider" if provider.ai else "provider"
        print(f"{kind} {admin.PROVIDER_TYPE} {provider.id}: {verb}")
        model_id, model_created = admin.ensure_model(
            client, provider.id, args.model, organization, ai_provider=provider.ai
        )
        print(f"model {args.model} {model_id}: {'created' if model_created else 'reused'}")
        waited = admin.probe_chat(client, organization)
        print(f"probe chat answered in {waited:.1f} s: the deployment uses the provider")
        created.provider_id = provider.id if provider.created else None
        created.reused_provider_id = None if provider.created else provider.id
        created.previous_base_url = provider.previous_base_url
        created.ai_provider = provider.ai
        created.model_config_id = model_id if model_created else None
        run_id = secrets.token_hex(3)
        tokens: list[str] = []
        for index in range(args.users):
            user_id, key = admin.create_user(client, index, run_id, organization)
            created.user_ids.append(user_id)
            tokens.append(key)
        if tokens:
            print(f"created {len(tokens)} load-test users with API keys")
        else:
            print(
                "warning: no load-test users (--users 0): every chat shares the owner's token; "
                "chatload run sends X-Coder-Bypass-Ratelimit: true so the 512 requests/min "
                "limit does not cap the test"
            )
    except (RestError, admin.ProbeError) as exc:
        print(f"chatload setup: {exc}", file=sys.stderr)
        return 3
    finally:
        client.close()
    setup = SetupFile(
        url=target.url,
        era=target.era.value,
        server_version=target.server_version,
        created_at=datetime.now(UTC),
        owner_token=token,
        tokens=tokens or [token],
        owner_only=not tokens,
        llm_url=args.llm_url,
        created=created,
    )
    write_setup_file(args.out, setup)
    print(f"wrote {args.out} (mode 0600); next: chatload run --setup {args.out}")
    return 0

"""The preflight: can we reach the deployment, which era does it speak, do we get in?

Each failure is a ``TargetError`` whose message says what to do; ``chatload run`` exits 3
with it. Tokens never appear in these messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from pydantic import ValidationError

from loadtest.client.rest import ChatClient, RestError
from loadtest.protocol.eras import PATHS, Era, era_from_version


class TargetError(Exception):
    """The target cannot be load tested as asked (exit code 3)."""


@dataclass(frozen=True, slots=True)
class TargetInfo:
    url: str
    #: The era; for servers before v2.37 a first guess (A) that the first frame settles.
    era: Era
    server_version: str | None
    #: Organization per token, in the tokens' order (None where the era needs none).
    organizations: list[str | None]
    #: Per token: does it belong to an owner (who alone may bypass the rate limit)?
    owners: list[bool]
    #: True when only a stream's first frame can tell A (envelopes) from B (bare arrays).
    era_from_stream: bool = False
    #: Every replica of the deployment (``url`` first) when the run targets several.
    replicas: list[str] = field(default_factory=list)
    #: Ids of the workspaces chats are created in (``[target] workspaces``), round robin.
    workspaces: list[str] = field(default_factory=list)


def find_workspaces(url: str, token: str, prefix: str, timeout: float = 10.0) -> list[str]:
    """The ids of ``prefix``'s workspaces with a connected agent. None matching, or none
    with its agent connected, is a TargetError naming the prefix (tools would fail)."""
    client = ChatClient(url, token, timeout=timeout)
    try:
        rows = client.workspaces(prefix)
    except RestError as exc:
        raise TargetError(
            f"cannot list workspaces named {prefix!r}*: HTTP {exc.status}: {exc.message}"
        ) from None
    finally:
        client.close()
    if not rows:
        raise TargetError(
            f"no workspace is named {prefix!r}* (nor owned by a {prefix!r}* user): create them "
            "(e.g. coder exp scaletest create-workspaces), or drop [target] workspaces to run "
            "chats without one"
        )
    ready = [str(w["id"]) for w in rows if _agent_connected(w)]
    if not ready:
        names = ", ".join(str(w.get("name")) for w in rows[:5])
        raise TargetError(
            f"{len(rows)} workspaces named {prefix!r}* ({names}{', ...' if len(rows) > 5 else ''}) "
            "but none has a connected agent: start them, or tools cannot run"
        )
    return ready


def _agent_connected(workspace: dict[str, object]) -> bool:
    """Some agent of the workspace's latest build says ``connected`` (codersdk
    WorkspaceAgentStatus)."""
    build = workspace.get("latest_build")
    resources = build.get("resources") if isinstance(build, dict) else None
    for resource in resources if isinstance(resources, list) else ():
        agents = resource.get("agents") if isinstance(resource, dict) else None
        for agent in agents if isinstance(agents, list) else ():
            if isinstance(agent, dict) and agent.get("status") == "connected":
                return True
    return False


def _probe(client: ChatClient, name: str, path: str) -> object:
    """The body of ``GET path``; None when the route does not exist (404)."""
    try:
        return client.call(name, "GET", path).body
    except RestError as exc:
        if exc.status == 404:
            return None
        if exc.status == 401:
            raise TargetError(
                "the deployment refused the session token (HTTP 401): "
                f"{exc.message or 'unauthorized'}"
            ) from None
        return {}  # there, but refusing us something else: the chats check says what


def _is_chat_list(body: object) -> bool:
    """Today's chats list: every row a chat with a status. Before era A an unrelated API
    lived at ``/api/v2/chats`` (rows of messages with role and content): not that."""
    return isinstance(body, list) and all(
        isinstance(row, dict) and isinstance(row.get("status"), str) for row in body
    )


def _era_from_routes(client: ChatClient) -> Era | None:
    """C or D from the routes themselves (protocol section 8.2), for a ``-devel`` build or a
    version that does not say: ``/api/v2/chats`` serves chats in both, and only C still
    mounts ``/api/experimental/chats``. None: neither, so A or B (the first frame tells)."""
    v2 = _probe(client, "probe_v2_chats", PATHS[Era.D].chats())
    if v2 is None or (isinstance(v2, list) and not _is_chat_list(v2)):
        return None
    experimental = _probe(client, "probe_experimental_chats", PATHS[Era.A].chats())
    return Era.D if experimental is None else Era.C


def split_hosts(hosts: str) -> list[str]:
    """``--host`` values: one URL, or the replicas of one deployment, comma-separated."""
    return [h.strip() for h in hosts.split(",") if h.strip()]


def inspect_replicas(
    hosts: list[str], tokens: list[str], era: str = "auto", timeout: float = 10.0
) -> TargetInfo:
    """``inspect_target`` on every replica: each must answer, and in the same era (one set of
    routes serves the whole run). The first one's answer stands for the deployment."""
    first = inspect_target(hosts[0], tokens, era, timeout)
    if len(hosts) == 1:
        return first
    for host in hosts[1:]:
        try:
            other = inspect_target(host, tokens, era, timeout)
        except TargetError as exc:
            raise TargetError(f"replica {host}: {exc}") from None
        if other.era is not first.era:
            raise TargetError(
                f"replica {host} speaks era {other.era.value} but {hosts[0]} era "
                f"{first.era.value}: one run takes replicas that serve the same routes (name only "
                "the replicas of one version)"
            )
    return replace(first, replicas=list(hosts))


def inspect_target(
    url: str, tokens: list[str], era: str = "auto", timeout: float = 10.0
) -> TargetInfo:
    """Check reachability, the era, every token, and that chats are switched on."""
    if not tokens or not all(tokens):
        raise TargetError(
            "no session token: pass --token or set CODER_SESSION_TOKEN "
            "(or prepare users with 'chatload setup')"
        )
    client = ChatClient(url, tokens[0], timeout=timeout)
    try:
        try:
            info = client.buildinfo()
        except RestError as exc:
            raise TargetError(f"cannot reach {url}: {exc.message or exc}") from None
        version = info.version or None
        ambiguous = False
        if era != "auto":
            chosen = Era(era)
        else:
            known = era_from_version(info.version) or _era_from_routes(client)
            chosen, ambiguous = (known, False) if known else (Era.A, True)
        users = [_check_token(url, token, chosen, timeout) for token in tokens]
        organizations = [org for org, _ in users]
        owners = [owner for _, owner in users]
        client.era = chosen
        _check_chats_enabled(client)
        return TargetInfo(url.rstrip("/"), chosen, version, organizations, owners, ambiguous)
    finally:
        client.close()


def _check_token(url: str, token: str, era: Era, timeout: float) -> tuple[str | None, bool]:
    """The token's first organization, and whether its user is an owner."""
    client = ChatClient(url, token, era, timeout=timeout)
    try:
        me = client.me()
    except RestError as exc:
        if exc.status in (401, 403):
            raise TargetError(
                f"the deployment refused a session token (HTTP {exc.status}): {exc.message}"
            ) from None
        raise TargetError(f"cannot read the token's user from {url}: {exc.message}") from None
    finally:
        client.close()
    orgs = me.get("organization_ids") or []
    roles = {str(role.get("name")) for role in me.get("roles") or () if isinstance(role, dict)}
    return (str(orgs[0]) if orgs else None), "owner" in roles


def _check_chats_enabled(client: ChatClient) -> None:
    try:
        client.list_chats()
    except ValidationError as exc:
        raise TargetError(
            f"{client.paths.chats()} answered rows that are not chats "
            f"({exc.error_count()} problems): is this the era you meant? Try --era."
        ) from None
    except RestError as exc:
        if exc.status == 403 and "experiment" in exc.message:
            raise TargetError(
                f"chats are switched off: {exc.message} Start Coder with "
                "CODER_EXPERIMENTS=agents (eras before v2.37)."
            ) from None
        if exc.status == 404:
            raise TargetError(
                f"no chats API at {client.paths.chats()} (HTTP 404): is this a Coder "
                "deployment with Coder Agents? Try --era."
            ) from None
        if exc.status in (401, 403):
            raise TargetError(
                f"the chats API refused the token (HTTP {exc.status}): {exc.message}"
            ) from None
        raise TargetError(f"the chats API failed: HTTP {exc.status}: {exc.message}") from None

"""The simulated deployment's workspaces: ``scaletest-0``, ``scaletest-1``, ... each with one
connected agent, listed as ``GET /api/v2/workspaces`` lists them (a ``q`` filter, paging).

Coder's facts (cited beside each): the route and its response ``{workspaces, count}``, the
filter syntax codersdk writes (``codersdk/workspaces.go`` ``WorkspaceFilter.asRequestOption``:
``name:"scaletest-"`` and ``owner:"…"`` quoted, joined by spaces; ``name`` matches partially),
paging by ``limit``/``offset`` (codersdk ``Pagination``), and an agent's ``status``
``connected`` under ``latest_build.resources[].agents[]``.
"""

from __future__ import annotations

import re
import shlex
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from loadtest.sim.errors import VALIDATION_FAILED, ApiError

#: Coder's scaletest names its workspaces so (cli/exp_scaletest.go ``newScaleTestWorkspace``).
PREFIX = "scaletest-"
_NAMESPACE = uuid.UUID("0fa1c0de-c0de-4c0d-8c0d-0000000000a5")
_TERM = re.compile(r"^([a-z_]+):(.*)$")


@dataclass(frozen=True, slots=True)
class Workspace:
    id: str
    name: str
    owner_id: str
    owner_name: str
    agent_id: str

    def wire(self, created: datetime) -> dict[str, Any]:
        """``codersdk.Workspace``: the fields a load test reads, its latest build running."""
        at = created.isoformat().replace("+00:00", "Z")
        agent = {"id": self.agent_id, "name": "main", "status": "connected"}
        return {
            "id": self.id,
            "created_at": at,
            "updated_at": at,
            "owner_id": self.owner_id,
            "owner_name": self.owner_name,
            "name": self.name,
            "template_name": "scaletest",
            "outdated": False,
            "latest_build": {
                "id": str(uuid.uuid5(_NAMESPACE, self.name + "/build")),
                "workspace_id": self.id,
                "workspace_name": self.name,
                "build_number": 1,
                "transition": "start",
                "status": "running",
                "resources": [{"name": "dev", "type": "docker_container", "agents": [agent]}],
            },
        }


def made(count: int, owner_id: str, owner_name: str) -> list[Workspace]:
    """``count`` workspaces named ``scaletest-0`` … with stable ids (the same every start)."""
    return [
        Workspace(
            id=str(uuid.uuid5(_NAMESPACE, f"{PREFIX}{n}")),
            name=f"{PREFIX}{n}",
            owner_id=owner_id,
            owner_name=owner_name,
            agent_id=str(uuid.uuid5(_NAMESPACE, f"{PREFIX}{n}/agent")),
        )
        for n in range(count)
    ]


def matching(workspaces: list[Workspace], query: str, me: str) -> list[Workspace]:
    """The workspaces a ``q`` filter keeps: ``name:`` partial and case-insensitive,
    ``owner:`` a username or ``me``; another key is Coder's 400."""
    try:
        terms = shlex.split(query)
    except ValueError:
        raise _bad_query(query, "unbalanced quotes") from None
    kept = workspaces
    for term in terms:
        found = _TERM.match(term)
        if found is None:
            kept = [w for w in kept if term.lower() in w.name.lower()]
            continue
        key, value = found.groups()
        if key == "name":
            kept = [w for w in kept if value.lower() in w.name.lower()]
        elif key == "owner":
            owner = me if value == "me" else value
            kept = [w for w in kept if w.owner_name == owner]
        else:
            raise _bad_query(query, f'"{key}" is not a valid query param')
    return kept


def _bad_query(query: str, detail: str) -> ApiError:
    return ApiError(400, "Invalid workspace search query.", validations=[("q", detail)])


def page(rows: list[Workspace], limit: str | None, offset: str | None) -> list[Workspace]:
    """``limit``/``offset`` query parameters as codersdk's Pagination sends them."""
    try:
        start = int(offset or 0)
        size = int(limit or 0)
    except ValueError:
        raise ApiError(400, VALIDATION_FAILED, "limit and offset must be integers") from None
    if start < 0 or size < 0:
        raise ApiError(400, VALIDATION_FAILED, "limit and offset must not be negative")
    return rows[start : start + size] if size else rows[start:]

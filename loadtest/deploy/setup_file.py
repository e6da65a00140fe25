"""What ``chatload setup`` leaves for ``run`` and ``teardown``: a JSON file only its owner reads.

It holds session tokens, so it is created with mode 0600 (never wider, even for an instant)
and a file that others can read is refused.
"""

from __future__ import annotations

import os
import stat
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

MODE = 0o600


class Created(BaseModel):
    """What setup created, so teardown removes exactly that."""

    #: A provider setup created (deleted on teardown) ...
    provider_id: str | None = None
    #: ... or one it found and repointed (its base URL restored on teardown).
    reused_provider_id: str | None = None
    previous_base_url: str | None = None
    #: The provider is an AI provider (``/api/v2/ai/providers``), not the era's legacy row.
    ai_provider: bool = False
    model_config_id: str | None = None
    user_ids: list[str] = Field(default_factory=list)


class SetupFile(BaseModel):
    url: str
    era: str
    server_version: str | None = None
    created_at: datetime
    #: The owner's token (setup's own identity), used by teardown.
    owner_token: str
    #: Tokens ``run`` spreads its users over (load-test users, or the owner's alone).
    tokens: list[str]
    #: True when ``tokens`` is the owner alone: ``run`` must bypass the rate limit.
    owner_only: bool = False
    llm_url: str | None = None
    created: Created = Field(default_factory=Created)


def write_setup_file(path: Path, setup: SetupFile) -> None:
    """Write atomically, born 0600: a temporary file opened with that mode, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_EXCL, MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(setup.model_dump_json(indent=2))
        os.chmod(tmp, MODE)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_setup_file(path: Path) -> SetupFile:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ValueError(
            f"holds session tokens but is readable by others (mode {mode:o}); chmod 600 it"
        )
    try:
        return SetupFile.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        raise ValueError(f"not a chatload setup file: {exc.errors()[0]['msg']}") from None

"""Run the simulator on ``loadtest/serve.py``: its app, its shutdown, tokens kept out of logs.

On SIGINT/SIGTERM every open stream is closed with 1001 (going away) before uvicorn closes
the connections (it would say 1012); the process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import re

from uvicorn.config import WS_PROTOCOLS

from loadtest.protocol.eras import Era
from loadtest.serve import bind, serve, url_of
from loadtest.sim.app import build_app
from loadtest.sim.cluster.config import ReplicaSettings
from loadtest.sim.config import SimConfig
from loadtest.sim.state import Sim

log = logging.getLogger("chatload.sim")

#: How long shutdown waits for streams to send their 1001 close.
CLOSE_GRACE_S = 0.5
_SECRETS = re.compile(
    r"(coder_session_token=|coder-session-token:\s*|authorization:\s*\w+\s+)[^&;\s\"']+",
    re.IGNORECASE,
)


class RedactTokens(logging.Filter):
    """Hide tokens in what uvicorn logs: websocket paths with their query and, at debug
    level, the handshake's headers."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        record.msg = _SECRETS.sub(r"\1REDACTED", str(record.msg))
        return True


def _ws_implementation() -> str:
    return "websockets-sansio" if "websockets-sansio" in WS_PROTOCOLS else "websockets"


def run(
    era: Era,
    config: SimConfig,
    *,
    host: str,
    port: int,
    token: str | None,
    default_model: bool = True,
    ws_ping_interval: float = 15.0,
    log_level: str = "warning",
    replica: ReplicaSettings | None = None,
) -> int:
    """Serve until SIGINT/SIGTERM (exit 0); one ``listening`` line to stdout once ready.
    With ``replica``, as one replica of a cluster (``chatload sim --replicas``)."""
    sim = Sim(era, config, token, default_model=default_model)
    if replica is not None:
        sim.join_cluster(replica)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", log.name):
        logging.getLogger(name).addFilter(RedactTokens())
    try:
        sock = bind(host, port)
    except OSError as exc:
        log.error("cannot listen on %s port %d: %s", host, port, exc)
        return 1
    sim.external_url = url_of(sock)
    log.info("serving era %s with %s", era.value, config.model_dump_json(exclude={"llm_url"}))

    async def close_streams() -> None:
        """Every open stream gets 1001 (going away) before uvicorn would say 1012."""
        closing = sim.hub.close_all(1001)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLOSE_GRACE_S
        while any(not s.closed for s in closing) and loop.time() < deadline:
            await asyncio.sleep(0.01)
        await sim.player.close()

    return serve(
        build_app(sim),
        host=host,
        port=port,
        sock=sock,
        banner=lambda url: (
            f"chatload sim listening on {url} (era {era.value})"
            + (f" as replica {replica.index} of {replica.count}" if replica is not None else "")
        ),
        on_shutdown=close_streams,
        ws=_ws_implementation(),
        ws_per_message_deflate=False,
        ws_ping_interval=ws_ping_interval or None,
        ws_ping_timeout=15.0,
        log_level=log_level,
        access_log=False,
        lifespan="on",
    )

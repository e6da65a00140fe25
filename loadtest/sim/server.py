"""Run the simulator on uvicorn: bind, announce, serve, and shut down cleanly.

On SIGINT/SIGTERM every open stream is closed with 1001 (going away) before uvicorn closes
the connections (it would say 1012), and the process exits 0 instead of re-raising the
signal as uvicorn does by default.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import socket
import sys
from types import FrameType

import uvicorn
from uvicorn.config import WS_PROTOCOLS

from loadtest.protocol.eras import Era
from loadtest.sim.app import build_app
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


class SimServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, sim: Sim) -> None:
        super().__init__(config)
        self.sim = sim

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Unlike uvicorn's, record no signal to re-raise after shutdown: exit status 0.
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        closing = self.sim.hub.close_all(1001)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLOSE_GRACE_S
        while any(not s.closed for s in closing) and loop.time() < deadline:
            await asyncio.sleep(0.01)
        await self.sim.player.close()
        await super().shutdown(sockets)


def _ws_implementation() -> str:
    return "websockets-sansio" if "websockets-sansio" in WS_PROTOCOLS else "websockets"


async def _announce(server: SimServer, url: str, era: Era) -> None:
    while not server.started:
        if server.should_exit:
            return
        await asyncio.sleep(0.005)
    sys.stdout.write(f"chatload sim listening on {url} (era {era.value})\n")
    sys.stdout.flush()


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
) -> None:
    """Serve until SIGINT/SIGTERM; prints one ``listening`` line to stdout once ready."""
    sim = Sim(era, config, token, default_model=default_model)
    uv_config = uvicorn.Config(
        build_app(sim),
        host=host,
        port=port,
        ws=_ws_implementation(),
        ws_per_message_deflate=False,
        ws_ping_interval=ws_ping_interval or None,
        ws_ping_timeout=15.0,
        log_level=log_level,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=1,
        lifespan="on",
    )
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", log.name):
        logging.getLogger(name).addFilter(RedactTokens())
    server = SimServer(uv_config, sim)
    sock = uv_config.bind_socket()
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    sim.external_url = f"http://{shown}:{bound}"
    log.info("serving era %s with %s", era.value, config.model_dump_json(exclude={"llm_url"}))

    async def main() -> None:
        announcer = asyncio.create_task(_announce(server, sim.external_url, era))
        try:
            await server.serve(sockets=[sock])
        finally:
            announcer.cancel()

    asyncio.run(main())

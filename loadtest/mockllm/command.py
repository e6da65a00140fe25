"""``chatload mock-llm``: serve the mock LLM until SIGINT or SIGTERM (both exit 0).

Once listening it prints exactly one line to stdout, ``chatload mock-llm listening on
http://HOST:PORT/v1``, so a parent process can wait for it and read a ``--port 0`` choice;
everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Final

from loadtest.config import ConfigError, add_flags, flag_overrides, load_model
from loadtest.mockllm.config import MockConfig
from loadtest.mockllm.server import CONFIG_HEADER, create_app
from loadtest.serve import serve

ENV_API_KEY: Final = "CHATLOAD_MOCK_LLM_API_KEY"

_log = logging.getLogger("loadtest.mockllm")

_EPILOG: Final = f"""\
paths (each also without the /v1 prefix):
  POST /v1/chat/completions   OpenAI Chat Completions, streaming or not
  POST /v1/responses          OpenAI Responses, streaming or not
  POST /v1/messages           Anthropic Messages, streaming or not
  GET  /v1/models             the --models list (OpenAI and Anthropic shapes at once)

admin (no key needed):
  GET   /__mock/counts  requests (total, by API), streams_completed, input/output tokens,
                        faults by kind; of the replies sent in full: text_replies (each ends
                        a turn) and tool_calls by name (execute, spawn_agent, wait_agent),
                        wait_agent_without_chat_id
  POST  /__mock/reset   zero the counts and restart the request numbering --seed uses
  GET   /__mock/config  the running config, as JSON
  PATCH /__mock/config  JSON merge patch into it (null restores a default), e.g.
                        {{"fault_cut": 0.1, "ttft": "uniform:0.1,0.5"}}

a turn's shape (each LLM request is one step; the mock remembers nothing: it reads where the
turn is from the tool results after the last user message):
  1. --tool-calls-per-turn N: one call {{"command": --tool-call-command}} of --tool-name
     (execute) per request, while fewer than N tool results follow the last user message
     and the request offers that tool. As Coder's `coder exp scaletest llm-mock`, which does
     it for Chat Completions only; here Responses and Messages do it too, in their own
     stream formats (a function_call item; a tool_use block with one input_json_delta)
  2. --subagents-per-turn S: then S times spawn_agent {{"type": "general", "prompt", "title"}}
     and, on the request bringing its result, wait_agent {{"chat_id"}} with the chat_id read
     from that result (none in it: a text reply saying so ends the turn). Only where the
     request offers them: Coder offers them to root chats, so a sub-agent spawns nothing
  3. then text. With N=2, S=0 a turn is 3 LLM calls; with N=2, S=1 it is 5 (and the
     sub-agent's own turn is 3 more)

per request:
  header {CONFIG_HEADER}: {{json}}  merge patch for this request only
  a control block in the last user message shapes that turn (chatload's extension, in the
  shape of an unmerged Coder scaletest branch; every key optional, absent = the flag's value):
    <coder-scaletest-control>{{"v":1,"tool_calls_this_turn":N,"tool":"execute",
    "command":"echo scaletest","subagents_this_turn":S,"subagent_tool_calls":K}}
    </coder-scaletest-control>
  K: tool calls of each sub-agent's turn (put in spawn_agent's prompt as its own block).
  A malformed block or an unknown key is a 400 naming it

--config FILE is TOML with the tuning keys above, underscored (tokens_per_s = 80,
ttft = "lognormal:0.4,0.5" or ttft = {{dist = "uniform", min = 0.1, max = 0.5}}).
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = (
        "Serve a streaming mock of the OpenAI Chat Completions, OpenAI Responses and Anthropic "
        "Messages APIs, with tunable timing, agent turns (tool calls, sub-agents) and injected "
        "faults."
    )
    parser.epilog = _EPILOG
    server = parser.add_argument_group("server")
    server.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    server.add_argument(
        "--port", type=int, default=8080, help="port; 0 picks a free one (default: %(default)s)"
    )
    server.add_argument(
        "--config", type=Path, metavar="FILE", help="TOML file of tuning keys; flags override it"
    )
    server.add_argument(
        "--api-key",
        metavar="KEY",
        help=f"require this key (Bearer or x-api-key; else 401) instead of accepting any; "
        f"default ${ENV_API_KEY}. Never logged",
    )
    server.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="stderr log level (default: %(default)s)",
    )
    server.add_argument("--access-log", action="store_true", help="log each request line to stderr")
    tuning = parser.add_argument_group(
        "tuning", "Also settable in --config, by PATCH /__mock/config, or per request."
    )
    add_flags(tuning, MockConfig)


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        overrides = flag_overrides(args, split=lambda name: name == "models")
        config = load_model(MockConfig, args.config, overrides)
    except ConfigError as exc:
        _log.error("invalid config: %s", exc)
        return 2
    api_key = args.api_key or os.environ.get(ENV_API_KEY) or None
    _log.info("config %s; API key %s", config.model_dump_json(), "required" if api_key else "any")
    return serve(
        create_app(config, api_key),
        host=args.host,
        port=args.port,
        banner=lambda url: f"chatload mock-llm listening on {url}/v1",
        log_config=None,
        log_level=args.log_level,
        access_log=args.access_log,
        lifespan="off",
    )

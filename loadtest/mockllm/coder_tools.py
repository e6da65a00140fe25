"""The tools of Coder's agents that the mock calls: names and argument shapes, each cited."""

from __future__ import annotations

from typing import Final

from loadtest.protocol.agents import SPAWN_AGENT as SPAWN_AGENT
from loadtest.protocol.agents import WAIT_AGENT as WAIT_AGENT

#: Runs a shell command in the workspace: args {"command"} (coderd/x/chatd/chattool/execute.go);
#: the one tool Coder's llmmock calls (scaletest/llmmock/openai_toolcalls.go
#: ``executeToolName``).
EXECUTE: Final = "execute"
#: The sub-agent tools (coderd/x/chatd/subagent.go): ``spawn_agent`` {type, prompt, title}
#: (``spawnAgentArgs``) returns JSON {chat_id, title, status, type} at once (a child chat
#: with ``parent_chat_id``); ``wait_agent`` {chat_id, timeout_seconds?} (``waitAgentArgs``)
#: waits for that child's report.
#: (``SPAWN_AGENT`` and ``WAIT_AGENT`` are protocol/agents.py's, one name for the client,
#: the simulator, a trace and the mock.)
#: The sub-agent type the mock asks for (subagent.go ``subagentTypeGeneral``).
SUBAGENT_TYPE: Final = "general"

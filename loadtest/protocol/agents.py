"""What an agent's turn looks like on the wire: part types, the sub-agent tool, capacity pools.

Protocol §10 (coder/coder @004053e8 unless named):
- ``codersdk/chats.go`` ``ChatMessagePart``: a part's ``type`` (``tool-call``, ``tool-result``,
  ...), with ``args_delta`` on a streamed argument delta and ``args`` on the complete call
  (both ``omitempty``), ``result`` (raw JSON), ``result_delta`` and ``is_error`` (``omitempty``:
  absent when false) on a result;
- ``coderd/x/chatd/subagent.go`` ``spawnAgentToolName``: the tool that starts a child chat,
  whose result is ``{chat_id, title, status, type}`` (§10.3);
- ``coderd/x/chatd/capacity.go``: the concurrent-agent limiter's pools, ``root`` and
  ``subagent`` (the ``pool`` label of ``coderd_chatd_agents_active``; a chat with a
  ``parent_chat_id`` is a sub-agent).
"""

from __future__ import annotations

from typing import Final

#: ``ChatMessagePartType`` values a step's tool work streams as.
TOOL_CALL: Final = "tool-call"
TOOL_RESULT: Final = "tool-result"
#: The field of a streamed tool-call argument delta (absent on the complete call).
ARGS_DELTA: Final = "args_delta"
#: A tool-result part's fields: the whole result, and a streamed piece of it.
RESULT: Final = "result"
RESULT_DELTA: Final = "result_delta"
#: ``spawn_agent``: each call starts one child chat (§10.3).
SPAWN_AGENT: Final = "spawn_agent"
#: The tool that waits for a sub-agent's report (coderd/x/chatd/subagent.go ``waitAgentArgs``).
WAIT_AGENT: Final = "wait_agent"
#: The concurrent-agent limiter's pools (``capacity.go``).
POOL_ROOT: Final = "root"
POOL_SUBAGENT: Final = "subagent"
POOLS: Final = (POOL_ROOT, POOL_SUBAGENT)

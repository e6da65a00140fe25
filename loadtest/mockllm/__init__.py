"""``chatload mock-llm``: a streaming mock of the LLM APIs Coder's providers call.

Pure parts (config, fault and timing planner, the three wire dialects) do no I/O; ``server``
is the Starlette adapter that paces and writes what they build, and ``command`` the CLI.
"""

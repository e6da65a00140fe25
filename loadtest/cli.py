"""``chatload``: one entry point, one module per subcommand.

Each subcommand lives in a module with ``configure(parser)`` and ``main(args) -> int``. They
are imported only when chosen: ``run`` imports Locust (which patches the standard library with
gevent on import), and the servers must never see that.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from loadtest import __version__

#: name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": (
        "loadtest.runner.run_command",
        "run a load test (against the simulator without --host)",
    ),
    "worker": (
        "loadtest.runner.worker_command",
        "join a 'chatload run --master' on another machine as one of its workers",
    ),
    "capacity": (
        "loadtest.runner.capacity_command",
        "find the most load a deployment takes while every SLO holds",
    ),
    "sim": ("loadtest.sim.command", "serve a simulated Coder chat server"),
    "mock-llm": ("loadtest.mockllm.command", "serve a mock OpenAI/Anthropic-compatible LLM"),
    "setup": ("loadtest.deploy.setup_command", "prepare a real Coder deployment for a load test"),
    "teardown": ("loadtest.deploy.teardown_command", "remove what setup and run created"),
    "report": ("loadtest.report.report_command", "re-render report files from a report.json"),
    "compare": (
        "loadtest.report.compare_command",
        "compare two report.json files, exit 1 on regression",
    ),
    "bench": ("loadtest.bench.command", "measure chatload's own speed"),
    "trace": ("loadtest.trace.command", "export, synthesize or show a trace of real usage"),
}


def _parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatload",
        description="Load testing and stream benchmarking for Coder's chat API.",
        epilog="Run 'chatload COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"chatload {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            importlib.import_module(module_name).configure(command_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = _parser(args_list)
    args = parser.parse_args(args_list)
    module = importlib.import_module(COMMANDS[args.command][0])
    code: int = module.main(args)
    return code


if __name__ == "__main__":
    sys.exit(main())

"""``chatload worker``: one Locust worker process of a ``chatload run --master`` elsewhere.

It holds nothing of the run: scenario, settings and session tokens all come from the
master when it joins (``locust/join.py``), so the same image serves every run and keeps no
secret. It serves one run, and exits when the master ends it (a Kubernetes Deployment or a
shell loop starts the next).

Exit codes: 0 the run ended; 2 refused by the master (another chatload version, or the run
had started); 3 no master answered at the address.
"""

# Locust patches the standard library with gevent when imported: first, before httpx/ssl.
import locust  # noqa: F401, I001

import argparse
import os
import signal
import socket
import sys

import gevent
from locust.env import Environment
from locust.event import Events
from locust.log import setup_logging

from loadtest import __version__
from loadtest.locust import distributed, join
from loadtest.locust.users import ChatUser, OpenLoopUser, ReplayUser, StormUser, StreamWatcher

EXIT_DONE, EXIT_REFUSED, EXIT_UNREACHABLE = 0, 2, 3


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = (
        "Join a 'chatload run --master' as one of its Locust workers.\n\n"
        "The worker takes its scenario, settings and session tokens from the master (never\n"
        "from files or variables of its own), makes its share of the load, and sends its\n"
        "figures to the master, which writes the one merged report. Start as many as the\n"
        "master's --expect-workers, on as many machines as you like, before the run starts.\n"
        "It serves one run and exits when the master ends it. The master's port carries the\n"
        "session tokens: keep it on a private network.\n\n"
        "examples:\n"
        "  chatload run --master --expect-workers 2 --host https://coder.example.com  # host A\n"
        "  chatload worker --master-host A                                           # B and C\n\n"
        "exit codes:\n"
        "  0  the run ended\n"
        "  2  refused: the master runs another chatload version, or its run had started\n"
        "  3  no master answered at --master-host:--master-port"
    )
    add = parser.add_argument
    add("--master-host", required=True, help="the master's host name or address")
    add(
        "--master-port",
        type=int,
        default=join.MASTER_PORT,
        help=f"the master's --master-bind-port (default {join.MASTER_PORT})",
    )
    add("--loglevel", default="WARNING", help="Locust's log level (default WARNING)")
    add("--quiet", action="store_true", help="no lines of its own, only warnings and errors")


def local_address(host: str, port: int) -> str:
    """This machine's address on the way to ``host``: what the master sees it as."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((host, port))  # UDP: chooses a route, sends nothing
            address: str = probe.getsockname()[0]
            return address
    except OSError:
        return socket.gethostname()


def main(args: argparse.Namespace) -> int:
    setup_logging(args.loglevel)
    where = f"{args.master_host}:{args.master_port}"
    environment = Environment(
        user_classes=[ChatUser, StormUser, StreamWatcher, OpenLoopUser, ReplayUser],
        events=Events(),
    )
    say = (
        (lambda _: None) if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    )
    say(f"chatload worker: joining the master at {where}")
    try:
        runner = environment.create_worker_runner(args.master_host, args.master_port)
    except ConnectionError:
        print(f"chatload worker: no master answered at {where}", file=sys.stderr)
        return EXIT_UNREACHABLE
    hello = join.WorkerHello(
        version=__version__,
        hostname=socket.gethostname(),
        address=local_address(args.master_host, args.master_port),
        pid=os.getpid(),
    )
    joining = distributed.join_master(environment, runner, hello)
    # Stopped (Ctrl-C, or Kubernetes ending the pod), the worker stops its users, which
    # sends its final measurement to the master, and leaves.
    handlers = [
        gevent.signal_handler(signum, gevent.spawn, runner.quit)
        for signum in (signal.SIGINT, signal.SIGTERM)
    ]
    runner.greenlet.join()
    if joining.runtime is not None:
        say(f"chatload worker: the run at {where} ended")
    for handler in handlers:
        handler.cancel()
    # Tells the master this worker is gone (Locust's worker sends 'quit' on this event).
    environment.events.quitting.fire(environment=environment, reverse=True)
    if joining.refused is not None:
        print(
            f"chatload worker: refused by the master at {where}: {joining.refused}", file=sys.stderr
        )
        return EXIT_REFUSED
    return EXIT_DONE

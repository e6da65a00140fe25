"""The floor plan holds: no import cycle in ``loadtest`` (imports only type hints need count
too), and the pure core imports nothing with I/O or a clock. Read from the source (ast)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "loadtest"
#: What ``loadtest/core`` may import beyond itself and ``loadtest/protocol``.
CORE_ALLOWED = {
    "__future__",
    "collections",
    "dataclasses",
    "difflib",
    "zlib",
    "enum",
    "functools",
    "itertools",
    "math",
    "operator",
    "random",
    "re",
    "typing",
    "orjson",
    "pydantic",
    "xxhash",  # a pure hash, like zlib's CRC-32
}


def module_of(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (functions and TYPE_CHECKING too)."""
    module = module_of(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # ``from loadtest.sim import plan`` imports the module loadtest.sim.plan.
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_of(p): p for p in PACKAGE.rglob("*.py")}
    return {
        name: {m for m in imports(path) if m in modules and m != name}
        for name, path in modules.items()
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    sys.setrecursionlimit(10_000)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in edges:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_not_even_type_only_ones() -> None:
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_one() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


def test_the_core_imports_only_pure_parts() -> None:
    impure = []
    for path in (PACKAGE / "core").rglob("*.py"):
        for name in imports(path):
            top = name.partition(".")[0]
            inside = name.startswith(("loadtest.core", "loadtest.protocol"))
            if not inside and top not in CORE_ALLOWED:
                impure.append(f"{module_of(path)} imports {name}")
    assert impure == []


def private_imports(source: str, where: str = "<test>") -> list[str]:
    """``from loadtest.x import _name``: a module reaching into another's private names."""
    found = []
    for node in ast.walk(ast.parse(source, where)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("loadtest"):
            found += [
                f"{where} imports {node.module}.{alias.name}"
                for alias in node.names
                if alias.name.startswith("_") and not alias.name.startswith("__")
            ]
    return found


def test_no_module_imports_another_modules_private_names() -> None:
    found = [
        line
        for path in PACKAGE.rglob("*.py")
        for line in private_imports(path.read_text(), module_of(path))
    ]
    assert found == []


def test_the_private_import_finder_finds_one() -> None:
    assert private_imports("from loadtest.runner.command import _helper, public") == [
        "<test> imports loadtest.runner.command._helper"
    ]


#: Modules with no logic of their own (no function, no method): nothing to test apart.
DECLARATIONS = {
    "loadtest.protocol.agents": "wire names of an agent's parts and tools (constants)",
    "loadtest.protocol.ai_providers": "era C's provider routes and error texts (constants)",
    "loadtest.protocol.chatd_metrics": "Coder's chatd metric names and buckets (constants)",
    "loadtest.report.style": "the stylesheet pages inline (one string)",
}
#: Modules that need a real deployment, Locust's own command line or a second machine to do
#: anything, each covered end to end where named.
ELSEWHERE = {
    "loadtest.locustfile": "Locust's entry point (plain locust -f): its hooks only wire "
    "modules tested here; tests/integration/test_run.py runs it with plain locust -f",
    "loadtest.bench.scale_worker": "the scale bench's worker process (a simulator, pinned "
    "CPUs, thousands of chats): tests/integration/test_scale_bench.py",
}
TESTS = PACKAGE.parent / "tests" / "unit"


def has_logic(path: Path) -> bool:
    """A function or a method anywhere in the module (a package's ``__init__`` too)."""
    tree = ast.parse(path.read_text(), str(path))
    return any(isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) for n in ast.walk(tree))


def mirrored(path: Path) -> bool:
    """``tests/unit/<pkg path>/test_<module>.py`` or ``test_<module>_*.py`` exists."""
    relative = path.relative_to(PACKAGE).with_suffix("")
    name = relative.parent.name if relative.name == "__init__" else relative.name
    folder = TESTS / (relative.parent.parent if relative.name == "__init__" else relative.parent)
    return (folder / f"test_{name}.py").exists() or any(folder.glob(f"test_{name}_*.py"))


def test_every_module_with_logic_has_a_mirrored_test_file() -> None:
    exempt = DECLARATIONS.keys() | ELSEWHERE.keys()
    missing = [
        module_of(path)
        for path in sorted(PACKAGE.rglob("*.py"))
        if module_of(path) not in exempt and has_logic(path) and not mirrored(path)
    ]
    assert missing == [], "add tests/unit/<pkg>/test_<module>.py for each"


def test_the_exemptions_are_honest() -> None:
    paths = {module_of(p): p for p in PACKAGE.rglob("*.py")}
    assert DECLARATIONS.keys() | ELSEWHERE.keys() <= paths.keys(), "an exemption names no module"
    assert [name for name in DECLARATIONS if has_logic(paths[name])] == []
    assert [name for name in DECLARATIONS | ELSEWHERE if mirrored(paths[name])] == [], (
        "a module with its own test file needs no exemption"
    )


def test_the_layout_check_reads_logic_and_test_names() -> None:
    assert has_logic(PACKAGE / "report" / "fmt.py")
    assert not has_logic(PACKAGE / "report" / "style.py")
    assert mirrored(PACKAGE / "report" / "fmt.py")
    assert mirrored(PACKAGE / "runner" / "plan.py"), "test_plan_shape.py mirrors plan.py"


def test_every_figure_reaches_the_report_model_and_the_metrics_export() -> None:
    """Each entry of ``core.figures``: its field or key in ``report.json`` (with its formula)
    and its family on ``/metrics``, rendered from a real recorder's snapshot."""
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families
    from prometheus_client.registry import CollectorRegistry

    from loadtest.core.figures import FIGURES
    from loadtest.core.recorder import Recorder
    from loadtest.core.turn import Turn
    from loadtest.report.build import build_report
    from loadtest.runner.prometheus import LABELLED, LiveFigures, metric_name
    from tests.unit.samples import run_info

    recorder = Recorder()
    for hist in (*recorder.latency.values(), *recorder.dist.values()):
        hist.record(1000)
    recorder.part_frame(Turn(t0=0), 1, 0)  # parts_per_frame is tallied, then folded
    measured = recorder.measurement()
    report = build_report(measured, run_info()).model_dump(mode="json")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LiveFigures(lambda: measured, "run", lambda: 2.0))
    page = generate_latest(registry).decode()
    families = {f.name: f for f in text_string_to_metric_families(page)}
    kinds = {"latency_ms": "histogram", "distributions": "histogram", "rates": "gauge"}
    missing = []
    for figure in FIGURES:
        if figure.name not in report[figure.section]:
            missing.append(f"{figure.name}: not in report.json's {figure.section}")
        if figure.formula and report["formulas"].get(figure.name) != figure.formula:
            missing.append(f"{figure.name}: its formula is not in report.json's formulas")
        if figure.name in LABELLED:
            family = families.get(f"chatload_{figure.name}") or families.get(
                f"chatload_{figure.name}_seconds"
            )
            if family is None:
                missing.append(f"{figure.name}: no labelled family on /metrics")
            continue
        name = metric_name(figure)
        kind = kinds.get(figure.section, "counter" if figure.merge == "sum" else "gauge")
        family = families.get(name)
        if family is None or family.type != kind or not family.samples:
            missing.append(f"{figure.name}: no {kind} {name} on /metrics")
        elif family.documentation != (figure.formula or figure.name.replace("_", " ")):
            missing.append(f"{figure.name}: {name}'s help is not its formula")
    assert missing == []


#: Where an event kind may be spelled as a string: its registry, and the mock LLM (whose
#: ``type`` fields are the LLM providers' stream events, not Coder's).
KIND_LITERALS_ALLOWED = ("loadtest/protocol/", "loadtest/mockllm/")


def declared_kinds() -> list[str]:
    """The wire names ``protocol/events.py`` declares, in order, read from its source."""
    tree = ast.parse((PACKAGE / "protocol" / "events.py").read_text())
    return [
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "_declare"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    ]


def is_a_type(node: ast.expr) -> bool:
    """``x["type"]``, ``x.get("type")``, or a name like ``kind``: an event's kind is read."""
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant) and node.slice.value == "type"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        first = node.args[0] if node.args else None
        return node.func.attr == "get" and isinstance(first, ast.Constant) and first.value == "type"
    name = node.id if isinstance(node, ast.Name) else getattr(node, "attr", None)
    return name in ("kind", "type", "event_type")


def kind_literals(source: str, kinds: set[str], where: str = "<test>") -> list[str]:
    """Event kinds spelled as strings where a kind is meant: compared with an event's kind,
    the ``type`` of a dict, or a distinctive name (``message_part``) anywhere. A ``"message"``
    key of some other dict, or a chat status ``"error"``, is not a kind."""
    distinctive = {kind for kind in kinds if "_" in kind}
    found = []
    for node in ast.walk(ast.parse(source, where)):
        spelled: list[ast.expr] = []
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(is_a_type(side) for side in sides):
                for side in sides:
                    many = isinstance(side, ast.Tuple | ast.Set | ast.List)
                    spelled += side.elts if many else [side]
        elif isinstance(node, ast.Dict):
            spelled += [
                value
                for key, value in zip(node.keys, node.values, strict=True)
                if isinstance(key, ast.Constant) and key.value == "type"
            ]
        elif isinstance(node, ast.keyword) and node.arg == "type":
            spelled.append(node.value)
        elif isinstance(node, ast.Constant) and node.value in distinctive:
            spelled.append(node)
        found += [
            f"{where}:{value.lineno} spells {value.value!r}"
            for value in spelled
            if isinstance(value, ast.Constant) and value.value in kinds
        ]
    return sorted(set(found))


def test_every_event_kind_is_declared_once_and_the_tracker_handles_each() -> None:
    from loadtest.core.tracker import HANDLERS
    from loadtest.protocol.events import EVENT_KINDS

    names = declared_kinds()
    assert len(names) == len(set(names)), names
    assert names == list(EVENT_KINDS)
    assert set(HANDLERS) == set(EVENT_KINDS)
    for name, handling in HANDLERS.items():
        assert handling.live is not None or handling.snapshot is not None, name
        if not EVENT_KINDS[name].in_snapshot:
            assert handling.snapshot is None, f"{name} cannot come in a snapshot"


def test_no_module_outside_the_registry_spells_an_event_kind() -> None:
    kinds = set(declared_kinds())
    found = []
    for path in PACKAGE.rglob("*.py"):
        where = path.relative_to(PACKAGE.parent).as_posix()
        if not where.startswith(KIND_LITERALS_ALLOWED):
            found += kind_literals(path.read_text(), kinds, where)
    assert found == []


def test_the_kind_literal_finder_finds_them() -> None:
    kinds = {"message_part", "status", "error"}
    source = (
        'if event["type"] == "status": pass\n'
        'x = {"type": "error", "error": {"message": "m"}}\n'
        'y = event.get("message_part")\n'
        'z = payload.get("error")\n'
        'ok = kind in ("status", "other")\n'
        'fine = chat_status == "error"\n'
    )
    assert kind_literals(source, kinds) == [
        "<test>:1 spells 'status'",
        "<test>:2 spells 'error'",
        "<test>:3 spells 'message_part'",
        "<test>:5 spells 'status'",
    ]


#: Class names two modules may both define, each with why (issue 23: one name per meaning).
SHARED_CLASS_NAMES = {
    # One meaning in both (bad flags: exit 2); sharing one class is a move, not a rename.
    "UsageError": {"loadtest.runner.plan", "loadtest.trace.command"},
}


def test_no_two_modules_define_a_class_of_the_same_name() -> None:
    defined: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                defined.setdefault(node.name, set()).add(module_of(path))
    twice = {
        name: sorted(modules)
        for name, modules in defined.items()
        if len(modules) > 1 and modules != SHARED_CLASS_NAMES.get(name)
    }
    assert twice == {}, "one name per meaning: rename one, or justify it in SHARED_CLASS_NAMES"

"""The package's layout rules, read off its imports with `ast`: imports run only downwards, in no circle.

Every import counts, the ones inside functions and under TYPE_CHECKING too: a lazy import is still a
dependency.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "rag_guard"

LAYERS = {
    "errors": 0,
    "steps": 0,
    "extras": 1,
    "text": 1,
    "models": 1,
    "store": 1,
    "judging": 2,
    "reply": 3,
    "conversation": 4,
    "config": 3,
    "factory": 5,
    "pipeline": 6,
    "evaluation": 7,
    "serving": 7,
    "doctor": 7,
    "cli": 8,
    "__init__": 8,
}
"""Each part of the package (a top-level module or a subpackage) and its floor: a part imports only parts on
lower floors, and its own modules."""

ALLOWED_BELOW = {
    "text": set(),
    "models": {"errors"},
    "store": {"errors"},
    "judging": {"errors", "steps", "text", "models.failures"},
    "reply": {"errors", "steps", "text", "judging"},
    "conversation": {"errors", "text", "reply.grounding", "judging.parts"},
}
"""The strict parts: what they may import of the package besides themselves. The gate takes no configuration,
no concrete backend (only how a failed call reads to a user) and nothing of the reply; the reply takes the
gate's verdict and the shared text helpers, and no pipeline, configuration or factory; the conversation reads
turns and rewrites follow-ups with no model of its own (the pipeline makes the call), splitting a question
into its parts as the gate does."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imported(name: str) -> set[str]:
    """The package's modules that `name` imports, anywhere in its file."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("rag_guard")}
        elif isinstance(node, ast.ImportFrom):
            assert not node.level, f"{name} imports relatively; the package spells every import out"
            base = node.module or ""
            if not base.startswith("rag_guard"):
                continue
            for alias in node.names:  # `from rag_guard import factory` imports the module rag_guard.factory
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return found - {name}


def part(name: str) -> str:
    """The top-level module or subpackage a module belongs to."""
    pieces = name.split(".")
    return "__init__" if len(pieces) == 1 else pieces[1]


def test_every_part_of_the_package_has_a_floor():
    assert {part(name) for name in MODULES} == set(LAYERS)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_run_only_downwards(name):
    mine = part(name)
    upward = [target for target in imported(name) if part(target) != mine and LAYERS[part(target)] >= LAYERS[mine]]
    assert not upward, f"{name} imports {upward} from its own floor or above"


@pytest.mark.parametrize("strict", sorted(ALLOWED_BELOW))
def test_strict_parts_import_only_what_they_may(strict):
    allowed = ALLOWED_BELOW[strict]
    for name in (n for n in MODULES if part(n) == strict):
        for target in imported(name):
            outside = target.removeprefix("rag_guard.")
            if part(target) == strict:
                continue
            assert outside in allowed or part(target) in allowed, f"{name} imports {target}"


def test_the_gate_imports_nothing_of_the_reply_and_the_reply_nothing_of_the_wiring():
    for name in (n for n in MODULES if part(n) == "judging"):
        assert not {t for t in imported(name) if part(t) == "reply"}, name
    wiring = {"pipeline", "config", "factory", "evaluation", "serving", "cli"}
    for name in (n for n in MODULES if part(n) == "reply"):
        assert not {t for t in imported(name) if part(t) in wiring}, name


def test_judging_imports_no_configuration_and_no_backend():
    for name in (n for n in MODULES if part(n) == "judging"):
        targets = imported(name)
        assert "rag_guard.config" not in targets and "rag_guard.factory" not in targets, name
        assert not {t for t in targets if t.startswith(("rag_guard.models.llamacpp", "rag_guard.models.openai"))}, name


def test_no_import_circle():
    graph = {name: imported(name) & MODULES.keys() for name in MODULES}
    state: dict[str, str] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycle = [*trail[trail.index(nxt) :], nxt] if nxt in trail else [node, nxt]
                pytest.fail(f"import circle: {' -> '.join(cycle)}")
            if nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_no_module_imports_a_package_that_imports_it_back():
    """`from rag_guard.judging import X` inside judging would run judging/__init__ halfway through."""
    for name in MODULES:
        if MODULES[name].name == "__init__.py":
            continue
        package = name.rpartition(".")[0]
        assert package == "rag_guard" or package not in imported(name), f"{name} imports its own package {package}"

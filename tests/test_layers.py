"""Folders are layers: a module imports only from its own folder or from a lower layer.

The rank of each top-level part of the package is listed once here (docs/architecture.md
draws the same picture). Every `import`/`from … import` of fleetbid, including the ones
inside functions and under TYPE_CHECKING, counts: a late import is still a dependency.
Also checked: no import cycle between modules, and the fast simulator and the dispatch
policies load without SPADE.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "fleetbid"

# Lowest first. Parts of one rank do not import each other.
LAYERS: list[set[str]] = [
    {"maps", "replication", "tracing"},
    {"auction"},
    {"policies"},
    {"core"},
    {"sim", "protocol"},
    {"platform"},
    {"laws"},
    {"behaviours"},
    {"agents"},
    {"replicated"},
    {"run"},
    {"options"},
    {"bench", "service", "experiment"},
    {"cli"},
    {"__main__"},
]
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(path: Path, module: str) -> set[str]:
    """fleetbid modules that `module` imports (resolved to module names where possible)."""
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("fleetbid")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            if base.startswith("fleetbid"):
                found.add(base)
                found |= {f"{base}.{a.name}" for a in node.names}
    return found


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_part_has_a_layer() -> None:
    parts = {_part(m) for m in _modules()} - {""}
    assert parts <= set(RANK), f"add these to LAYERS: {sorted(parts - set(RANK))}"


def test_imports_only_run_down() -> None:
    modules = _modules()
    wrong = []
    for module, path in modules.items():
        mine = _part(module)
        if not mine:
            continue
        for target in _imports(path, module):
            theirs = _part(target)
            if not theirs or theirs == mine or target not in modules:
                continue
            if RANK[theirs] >= RANK[mine]:
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports that run up or sideways:\n" + "\n".join(sorted(wrong))


def test_no_import_cycles() -> None:
    modules = _modules()
    graph = {m: {t for t in _imports(p, m) if t in modules and t != m}
             for m, p in modules.items()}
    # A package's __init__ re-exporting its own modules is not a cycle of the design.
    for m in graph:
        graph[m] = {t for t in graph[m] if not (m.startswith(t + ".") and t in modules)}
    state: dict[str, int] = {}
    cycles: list[str] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt):], nxt]))
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("module", ["fleetbid.sim", "fleetbid.policies",
                                    "fleetbid.experiment.sweep"])
def test_simulator_needs_no_agent_platform(module: str) -> None:
    code = (f"import sys, {module}; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('spade', 'slixmpp')); "
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=PACKAGE.parent)
    assert out.stdout.strip() == "", f"{module} pulls in {out.stdout.strip()}"

"""The package's import graph, read with ast from dcobench/ (module-level and function-local
imports alike): no core module imports the world (a plug-in, dcobench.plugins), and no two
modules import each other, directly or around a loop."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "dcobench"
PLUGIN_PACKAGES = ("dcobench.world",)
# Cycles not yet removed, each as the sorted modules of one loop: none (the last one, config <->
# train.variants, went with the torch-free spec layer). A new entry needs a reason beside it.
ALLOWED_CYCLES: list[tuple[str, ...]] = []


def modules() -> dict[str, tuple[Path, bool]]:
    """dotted module name -> (file, is a package's __init__)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


def _owner(name: str, known: dict) -> str | None:
    """The module of ours that `name` (a module or a name in one) lives in, if any."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def _imported(node: ast.AST, module: str, is_package: bool, known: dict) -> set[str]:
    if isinstance(node, ast.Import):
        return {o for a in node.names if (o := _owner(a.name, known))}
    if not isinstance(node, ast.ImportFrom):
        return set()
    base = node.module or ""
    if node.level:
        parent = module if is_package else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            parent = parent.rpartition(".")[0]
        base = f"{parent}.{base}" if base else parent
    # `from pkg import mod` imports the module pkg.mod; `from mod import name` the module mod
    return {o for a in node.names if (o := _owner(f"{base}.{a.name}", known))}


def import_graph() -> dict[str, set[str]]:
    """module -> the modules of ours it imports anywhere in its file (self excluded)."""
    known = modules()
    graph = {}
    for module, (path, is_package) in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph[module] = set().union(*(_imported(n, module, is_package, known)
                                      for n in ast.walk(tree))) - {module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(tuple(sorted(component)))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def _is_plugin(module: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in PLUGIN_PACKAGES)


def test_the_graph_is_read():
    graph = import_graph()
    assert "dcobench.data.prompts" in graph["dcobench.config"]
    assert "dcobench.plugins" in graph["dcobench.world.plugin"]
    assert "dcobench.world.vocab" in graph["dcobench.world.prompts"]  # a relative import


def test_no_core_module_imports_a_plugin():
    upward = sorted((m, t) for m, targets in import_graph().items() if not _is_plugin(m)
                    for t in targets if _is_plugin(t))
    assert not upward, f"core modules import the world (register into a registry instead): {upward}"


def test_no_import_cycles():
    found = cycles(import_graph())
    assert [c for c in found if c not in ALLOWED_CYCLES] == [], found
    assert [c for c in ALLOWED_CYCLES if c not in found] == [], "fixed: strike it from ALLOWED_CYCLES"


def test_cycles_finds_a_loop():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [("a", "b", "c")]


def test_the_plugin_registers_without_torch():
    """`import dcobench` loads the world plug-in: its registrations, and the world's concept
    names a data.world config reads at DAG build, stay torch-free."""
    code = ("import sys, dcobench\n"
            "from dcobench.data.prompts import GENERATED_SETS\n"
            "from dcobench.modelspec import PLUGIN_PRESETS\n"
            "from dcobench.score.metrics import SCORERS\n"
            "from dcobench.stages import STAGES\n"
            "assert 'world_novel' in GENERATED_SETS and 'world-sdxl' in PLUGIN_PRESETS\n"
            "assert SCORERS['prompt_acc'].model == 'oracle' and 'world' in STAGES\n"
            "from dcobench.plugins import CONCEPT_SETS\n"
            "assert CONCEPT_SETS['world']()['vintage_style'] == ('style', 'vintage')\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'diffusers')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=PACKAGE.parent)
    assert out.stdout.strip() == "[]"


def test_without_plugins_the_core_stands_alone():
    """DCOBENCH_PLUGINS=- loads none: the core imports, and knows no world name."""
    code = ("import dcobench\n"
            "from dcobench.data.prompts import GROUP_SETS\n"
            "from dcobench.modelspec import spec_problem\n"
            "assert not any(s.startswith('world') for g in GROUP_SETS.values() for s in g)\n"
            "print(spec_problem('base', 'world-sdxl'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=PACKAGE.parent,
                         env={**os.environ, "DCOBENCH_PLUGINS": "-"})
    assert "is not a built-in preset" in out.stdout

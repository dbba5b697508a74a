"""The spec layer: config loading and schema, options, variants, the plan, guides, merge ids and
the registries' names. It imports no torch (the DAG build imports it), and at module level it
imports only itself: nothing above it, no cycle."""

import ast
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SPEC_LAYER = (
    "dcobench.spec", "dcobench.spec.options", "dcobench.spec.schema", "dcobench.spec.train",
    "dcobench.spec.sample", "dcobench.spec.priors", "dcobench.spec.merge",
    "dcobench.config", "dcobench.experiments", "dcobench.train.variants",
    "dcobench.train.options", "dcobench.train.objectives", "dcobench.sample.guides",
    "dcobench.merge.ids", "dcobench.merge.registry", "dcobench.score.metrics",
    "dcobench.registry", "dcobench.yamlio", "dcobench.precheck",
)
# torch-free leaves the layer reads concept folders, demo recipes and model specs with
LEAVES = {"dcobench.data.names", "dcobench.data.concept", "dcobench.data.demo",
          "dcobench.modelspec"}
HEAVY = ("torch", "diffusers", "transformers", "peft", "open_clip")


def _path(module: str) -> Path:
    base = REPO / Path(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def _top_level_imports(module: str) -> set[str]:
    """The dcobench modules `module` imports at module level (function bodies excluded)."""
    tree = ast.parse(_path(module).read_text(encoding="utf-8"))
    out = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dcobench"):
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("dcobench")}
    return out


def test_spec_layer_imports_no_torch_in_a_fresh_interpreter():
    code = ("import importlib, json, sys\n"
            f"for m in {list(SPEC_LAYER)!r}: importlib.import_module(m)\n"
            f"print(json.dumps(sorted(h for h in {list(HEAVY)!r} if h in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out) == []


def test_spec_layer_imports_only_itself_at_module_level():
    for module in SPEC_LAYER:
        above = _top_level_imports(module) - set(SPEC_LAYER) - LEAVES
        assert not above, f"{module} imports {sorted(above)} (above the spec layer)"


def test_spec_layer_has_no_import_cycle():
    graph = {m: _top_level_imports(m) & set(SPEC_LAYER) for m in SPEC_LAYER}
    state: dict[str, int] = {}

    def visit(m, stack):
        if state.get(m) == 1:
            raise AssertionError(f"import cycle: {' -> '.join([*stack, m])}")
        if state.get(m) == 2:
            return
        state[m] = 1
        for n in sorted(graph[m]):
            visit(n, [*stack, m])
        state[m] = 2

    for m in SPEC_LAYER:
        visit(m, [])


def test_config_and_variants_no_longer_import_each_other():
    source = _path("dcobench.train.variants").read_text(encoding="utf-8")
    assert "dcobench.config" not in source  # not even inside a function

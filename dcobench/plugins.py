"""Plug-ins: optional subsystems that register into the core's registries.

`PLUGINS` lists them in one place, like a package's entry points: each is a module whose import
registers its names (prompt sets, presets, scorers, stages, concept sets) and that no core
module imports. `load_plugins()` imports them once; `import dcobench` calls it, so a CLI job,
the Snakefile and a test see the same registries. `DCOBENCH_PLUGINS` (comma-separated module
names) adds more; `DCOBENCH_PLUGINS=-` loads none (the core alone).

Where a plug-in registers (all torch-free at import):
- presets of built weights: `dcobench.modelspec.PLUGIN_PRESETS` (+ `MODEL_FILE` for new
  `models.<key>` keys);
- prompt sets generated per concept: `dcobench.data.prompts.register_generated_set`;
- metrics: `dcobench.score.metrics.SCORERS`, with their embedder in `PLUGIN_EMBEDDERS`;
- command-line stages: `dcobench.stages.register_stage`;
- concept sets a config draws by name (`data.world`): `CONCEPT_SETS` below.
Standard library only: loaded on every DAG build.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable

from dcobench.registry import Registry

PLUGINS = ("dcobench.world.plugin",)

# name -> () -> {concept folder name: (kind, class noun)}: the concepts a plug-in draws
CONCEPT_SETS: Registry[Callable[[], dict[str, tuple[str, str]]]] = Registry("concept set")

_loaded: list[str] = []


def plugin_names() -> tuple[str, ...]:
    """PLUGINS plus $DCOBENCH_PLUGINS; none when that is `-`."""
    extra = os.environ.get("DCOBENCH_PLUGINS", "").strip()
    if extra == "-":
        return ()
    return PLUGINS + tuple(m.strip() for m in extra.split(",") if m.strip())


def load_plugins() -> list[str]:
    """Import every plug-in module once (its import registers it); the modules loaded."""
    for name in plugin_names():
        if name not in _loaded:
            _loaded.append(name)  # first: a plug-in importing dcobench does not recurse
            importlib.import_module(name)
    return list(_loaded)

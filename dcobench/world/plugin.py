"""The world as a plug-in (dcobench.plugins.PLUGINS): registers its presets, prompt sets,
oracle scorers, concept set and `world` stage into the core's registries.

Torch-free at import, as every plug-in: `import dcobench` loads it on every DAG build.
"""

from __future__ import annotations

from functools import partial

from dcobench.data.prompts import register_generated_set
from dcobench.modelspec import MODEL_FILE, PLUGIN_PRESETS, PluginPreset
from dcobench.plugins import CONCEPT_SETS
from dcobench.score.metrics import PLUGIN_EMBEDDERS, SCORERS, Scorer
from dcobench.stages import register_stage

from .presets import WORLD_PRESETS, world_root
from .prompts import WORLD_SETS, world_templates
from .vocab import concept_kinds


def register() -> None:
    """Add the world's names to the core's registries (once: a name registered twice fails)."""
    build = ("build them (`python -m dcobench world build --out {root}`) or set DCOBENCH_WORLD "
             "to a built world")
    for name in WORLD_PRESETS:
        PLUGIN_PRESETS.register(name, PluginPreset(world_root, build))
    MODEL_FILE["oracle"] = "oracle.json"
    for name, (group, _slot, _make) in WORLD_SETS.items():
        register_generated_set(name, group, partial(world_templates, name))
    # the oracle (dcobench/world/scorers.py): attribute read-back, subject and style detection
    PLUGIN_EMBEDDERS.register("oracle", "dcobench.world.scorers")
    SCORERS.register("prompt_acc", Scorer("oracle", "text", "Prompt accuracy (oracle)"))
    SCORERS.register("subject_acc", Scorer("oracle", "subject", "Subject accuracy (oracle)"))
    SCORERS.register("style_acc", Scorer("oracle", "style", "Style accuracy (oracle)"))
    CONCEPT_SETS.register("world", concept_kinds)
    register_stage("world", "dcobench.world.cli",
                   "the procedural world: build its pretrained models, concepts, figures")


register()

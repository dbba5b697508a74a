"""World fixtures: the committed world presets (resources/world) and concept folders."""

import json

import pytest


@pytest.fixture(scope="session")
def world_root():
    from dcobench.world.presets import WORLD_PRESETS, world_root

    root = world_root()
    missing = [n for n in WORLD_PRESETS if not (root / n).is_dir()]
    assert not missing, f"{root}: world presets {missing} missing; run `python -m dcobench world build`"
    return root


@pytest.fixture(scope="session")
def world_gates(world_root):
    return json.loads((world_root / "gates.json").read_text())


@pytest.fixture(scope="session")
def world_concepts(tmp_path_factory):
    from dcobench.world.concepts import write_world_concepts

    return write_world_concepts(tmp_path_factory.mktemp("world-concepts"))

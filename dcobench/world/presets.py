"""The world presets (world-sdxl, world-siglip, world-dinov2, world-oracle): committed, built
weights under ``resources/world`` (or ``$DCOBENCH_WORLD``), resolved like the tiny presets."""

from __future__ import annotations

import os
from pathlib import Path

WORLD_PRESETS = ("world-sdxl", "world-siglip", "world-dinov2", "world-oracle")
REPO_ROOT = Path(__file__).resolve().parents[2]


def world_root() -> Path:
    """``$DCOBENCH_WORLD`` or the repository's committed ``resources/world``."""
    return Path(os.environ.get("DCOBENCH_WORLD") or REPO_ROOT / "resources" / "world")


def world_preset_dir(name: str) -> Path:
    """The folder of a world preset; a clear error when the weights are not there."""
    if name not in WORLD_PRESETS:
        raise ValueError(f"unknown world preset {name!r}; known: {', '.join(WORLD_PRESETS)}")
    folder = world_root() / name
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder}: world preset {name} is missing; build it with `python -m dcobench world "
            f"build --out {world_root()}` or set DCOBENCH_WORLD to a built world")
    return folder

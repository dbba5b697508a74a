"""Model specs (config `models.<key>`): checked at DAG-build time, before any job runs.

A spec is a built-in preset name, a local folder or a hub id (`org/name`; `hf-hub:org/name`
for open_clip). `spec_problem` says what is wrong with one, by its config key, in words:
- a name that is no preset and no hub id: the closest preset names ("did you mean");
- a local folder that holds no loadable model (model_index.json for the SDXL pipeline,
  config.json for transformers models, open_clip_config.json for open_clip);
- a hub id that is not in the local cache while HF_HUB_OFFLINE is set: the command that
  downloads it.
Cheap to import (standard library only): the Snakefile calls it on every DAG build.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

# built-in presets (dcobench.models.presets.PRESETS and LARGE_PRESETS; a unit test keeps them equal)
PRESET_NAMES = ("tiny-sdxl", "tiny-dinov2", "tiny-siglip", "tiny-clip", "sdxl-shaped")
# the file a loadable model folder holds, per config key (others: config.json)
MODEL_FILE = {"base": "model_index.json", "dino": "config.json", "siglip": "config.json",
              "clip": "open_clip_config.json", "oracle": "oracle.json"}
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
TRUE = ("1", "true", "yes", "on")


def model_file(key: str) -> str:
    return MODEL_FILE.get(key, "config.json")


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in TRUE


def hub_cache() -> Path:
    """The Hugging Face hub cache (HF_HUB_CACHE, HF_HOME/hub or ~/.cache/huggingface/hub)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def in_hub_cache(repo_id: str, filename: str) -> bool:
    """Whether a snapshot of `repo_id` in the local hub cache holds `filename`."""
    snapshots = hub_cache() / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    return snapshots.is_dir() and any((s / filename).exists() for s in snapshots.iterdir())


def _presets() -> tuple[str, ...]:
    from dcobench.world.presets import WORLD_PRESETS  # world hook (issue 17)

    return PRESET_NAMES + tuple(WORLD_PRESETS)


def _looks_like_path(spec: str) -> bool:
    return spec.startswith(("/", "./", "../", "~", "local-dir:")) or spec.count("/") > 1


def spec_problem(key: str, spec: str) -> str | None:
    """What is wrong with `spec` as models.<key>, in words with the fix; None if it is usable
    (as far as can be known without loading it)."""
    where = f"models.{key}: {spec!r}"
    need = model_file(key)
    if spec in _presets():
        if spec.startswith("world-"):
            from dcobench.world.presets import world_root

            if not (world_root() / spec / need).is_file():
                return (f"{where}: the world preset's weights are not in {world_root() / spec}; "
                        f"build them (`python -m dcobench world build --out {world_root()}`) or "
                        "set DCOBENCH_WORLD to a built world")
        return None
    local = spec.removeprefix("local-dir:")
    if os.path.isdir(os.path.expanduser(local)):
        folder = Path(local).expanduser()
        if not (folder / need).is_file():
            found = sorted(p.name for p in folder.iterdir())[:8]
            return (f"{where}: the local folder holds no loadable model ({need} is missing; "
                    f"found: {', '.join(found) or 'nothing'}); point models.{key} at the folder "
                    "a save_pretrained / download wrote, or use a preset or hub id")
        return None
    if os.path.isfile(os.path.expanduser(local)):
        return _single_file_problem(key, where, local)
    if _looks_like_path(local) or os.path.exists(local):
        return (f"{where}: no such folder; fix the path, or use a preset "
                f"({', '.join(PRESET_NAMES[:4])}) or a hub id (org/name)")
    repo = spec.removeprefix("hf-hub:")
    if not HUB_ID.match(repo):
        close = difflib.get_close_matches(spec, _presets(), n=1, cutoff=0.6)
        hint = (f"did you mean {close[0]!r}?" if close else f"presets: {', '.join(_presets())}")
        return (f"{where} is not a built-in preset ({hint}), an existing local folder or a hub "
                "id (org/name)")
    if offline() and not in_hub_cache(repo, need) and not _downloaded(key, repo):
        return (f"{where}: hub model not in the local cache ({hub_cache()}) and HF_HUB_OFFLINE "
                f"is set; download it first: `hf download {repo}` (with network), or unset "
                "HF_HUB_OFFLINE")
    return None


def _downloaded(key: str, repo: str) -> bool:
    """Whether `prepare model` has downloaded hub pipeline `repo` (dcobench.weights)."""
    from dcobench.weights import is_complete, is_pipeline_key, weights_dir

    return is_pipeline_key(key) and is_complete(weights_dir(repo))


def _single_file_problem(key: str, where: str, path: str) -> str:
    """A file where a model folder is expected: a single-file checkpoint, and how to convert it."""
    from dcobench.weights import is_single_file

    if not is_single_file(path):
        return (f"{where} is a file, not a model folder; point models.{key} at a folder that "
                "save_pretrained / a download wrote, a preset or a hub id")
    if key != "base":
        return (f"{where} is a single-file checkpoint; models.{key} needs a model folder "
                f"(a save_pretrained output holding {model_file(key)}) or a hub id")
    out = str(Path(path).with_suffix("")) + "-diffusers"
    return (f"{where} is a single-file checkpoint; dcobench loads SDXL as a diffusers folder. "
            "Convert it once (on a machine with the hub reachable, for the configs): "
            "python -c \"from diffusers import StableDiffusionXLPipeline as P; "
            f"P.from_single_file('{path}').save_pretrained('{out}')\" "
            f"and set models.{key}: {out}")


def check_models(models: dict) -> list[str]:
    """Problems of every models.<key> spec (base model and every scorer), by key."""
    return [p for key, spec in models.items()
            if isinstance(spec, str) and (p := spec_problem(key, spec))]

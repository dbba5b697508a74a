"""Model specs (config `models.<key>`): checked at DAG-build time, before any job runs.

A spec is a built-in preset name, a local folder or a hub id (`org/name`; `hf-hub:org/name`
for open_clip). `spec_problem` says what is wrong with one, by its config key, in words:
- a name that is no preset and no hub id: the closest preset names ("did you mean");
- a local folder that holds no loadable model (model_index.json for the SDXL pipeline,
  config.json for transformers models, open_clip_config.json for open_clip);
- a hub id that is not in the local cache while HF_HUB_OFFLINE is set: the command that
  downloads it.
A plug-in (dcobench.plugins) adds presets of built weights (`PLUGIN_PRESETS`) and the model
file of its own config keys (`MODEL_FILE`). Where downloaded weights live (`weights_dir`,
`is_complete`) is here too, below dcobench.weights, which downloads them.
Cheap to import (standard library only): the Snakefile calls it on every DAG build.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dcobench.registry import Registry

# built-in presets (dcobench.models.presets.PRESETS and LARGE_PRESETS; a unit test keeps them equal)
PRESET_NAMES = ("tiny-sdxl", "tiny-dinov2", "tiny-siglip", "tiny-clip", "sdxl-shaped")
# the file a loadable model folder holds, per config key (others: config.json); plug-ins add keys
MODEL_FILE = {"base": "model_index.json", "dino": "config.json", "siglip": "config.json",
              "clip": "open_clip_config.json"}
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


@dataclass(frozen=True)
class PluginPreset:
    """A preset a plug-in ships as built weights: `root()` / name is its folder (not built on
    first use like the tiny presets); `how_to_build` says how to get them, `{root}` filled in."""

    root: Callable[[], Path]
    how_to_build: str


PLUGIN_PRESETS: Registry[PluginPreset] = Registry("plug-in preset")


def plugin_preset_folder(name: str) -> Path:
    return PLUGIN_PRESETS[name].root() / name


def plugin_preset_dir(name: str) -> Path:
    """The folder of a plug-in preset; FileNotFoundError with the fix when it is not there."""
    folder = plugin_preset_folder(name)
    if not folder.is_dir():
        hint = PLUGIN_PRESETS[name].how_to_build.format(root=PLUGIN_PRESETS[name].root())
        raise FileNotFoundError(f"{folder}: preset {name} is missing; {hint}")
    return folder


def _presets() -> tuple[str, ...]:
    return PRESET_NAMES + tuple(PLUGIN_PRESETS)


def _looks_like_path(spec: str) -> bool:
    return spec.startswith(("/", "./", "../", "~", "local-dir:")) or spec.count("/") > 1


def spec_problem(key: str, spec: str) -> str | None:
    """What is wrong with `spec` as models.<key>, in words with the fix; None if it is usable
    (as far as can be known without loading it)."""
    where = f"models.{key}: {spec!r}"
    need = model_file(key)
    if spec in _presets():
        if spec in PLUGIN_PRESETS and not (plugin_preset_folder(spec) / need).is_file():
            preset = PLUGIN_PRESETS[spec]
            return (f"{where}: the preset's weights are not in {plugin_preset_folder(spec)}; "
                    + preset.how_to_build.format(root=preset.root()))
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
    return is_pipeline_key(key) and is_complete(weights_dir(repo))


# --- where downloaded weights live (dcobench.weights downloads them) --------------------------

COMPLETE = ".dcobench-complete"  # written last into a weights folder: the download is whole
SINGLE_FILE_EXTS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")


def weights_root() -> Path:
    """$DCOBENCH_CACHE/weights (default resources/models/weights, next to the presets)."""
    return Path(os.environ.get("DCOBENCH_CACHE") or "resources/models") / "weights"


def weights_dir(repo: str) -> Path:
    """The plain folder a hub pipeline `repo` (org/name) is downloaded to."""
    return weights_root() / repo.replace("/", "--")


def is_complete(folder: Path) -> bool:
    return (Path(folder) / COMPLETE).is_file()


def is_single_file(spec: str) -> bool:
    """A single-file checkpoint (an existing file such as sd_xl_base_1.0.safetensors)."""
    path = os.path.expanduser(spec)
    return os.path.isfile(path) and path.lower().endswith(SINGLE_FILE_EXTS)


def is_pipeline_key(key: str) -> bool:
    """Whether models.<key> is a diffusers pipeline (a folder holding model_index.json)."""
    return model_file(key) == MODEL_FILE["base"]


def _single_file_problem(key: str, where: str, path: str) -> str:
    """A file where a model folder is expected: a single-file checkpoint, and how to convert it."""
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

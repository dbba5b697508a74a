"""Model weights fetched once, on the submit host, before any GPU job (`prepare model`).

Which files of a hub repository a configured model needs (`select_files`, a pure function of the
repository's file list), where they go, and the spec a job then loads (`job_spec`):

- a diffusers pipeline (models.base, `model_index.json`): the pipeline's components only (no
  Flax/ONNX/OpenVINO, no single-file checkpoints, no extra VAEs), each component's fp16
  `*.fp16.safetensors` where the hub has one (half the bytes), else its `*.safetensors`. They are
  written to a plain folder, `weights_dir(repo)`, with the variant suffix dropped, so
  `from_pretrained(folder)` loads them without a `variant` argument; jobs get that folder.
- a transformers or open_clip model (dino, siglip, clip): config, tokenizer/processor files and
  the safetensors weights (`.bin` only where no safetensors exist) into the Hugging Face cache;
  jobs keep the hub id and read the cache offline (the workflow sets HF_HUB_OFFLINE=1).

Standard library only at import: the Snakefile uses `job_spec` on every DAG build.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
from pathlib import Path, PurePosixPath

from dcobench.modelspec import (  # noqa: F401  (where a weights folder is: re-exported)
    COMPLETE,
    HUB_ID,
    _looks_like_path,
    _presets,
    is_complete,
    is_pipeline_key,
    is_single_file,
    weights_dir,
    weights_root,
)

PIPELINE_FILE = "model_index.json"
OPEN_CLIP_FILE = "open_clip_config.json"
VARIANT = "fp16"
WEIGHT_EXTS = (".safetensors", ".bin", ".msgpack", ".onnx", ".onnx_data", ".h5", ".ckpt", ".pt",
               ".pth", ".xml", ".gguf")
# config / tokenizer / processor files a loader reads (besides the weights)
SIDE_FILES = ("*.json", "*.txt", "*.model", "*.tiktoken", "*.py")
SKIP_SIDE = ("README.md", ".gitattributes")


def hub_repo(spec: str) -> str | None:
    """org/name of a hub spec (`org/name` or `hf-hub:org/name`), None for presets and paths."""
    if spec in _presets() or _looks_like_path(spec) or os.path.exists(os.path.expanduser(spec)):
        return None
    repo = spec.removeprefix("hf-hub:")
    return repo if HUB_ID.match(repo) else None


def job_spec(key: str, spec: str) -> str:
    """What a GPU job loads for models.<key>: the downloaded folder of a hub pipeline, else the
    spec itself (presets, local folders; hub scorers read the Hugging Face cache offline)."""
    repo = hub_repo(spec)
    return str(weights_dir(repo)) if repo and is_pipeline_key(key) else spec


# --- which files (pure) ---------------------------------------------------------------------


def _variant_of(name: str) -> str | None:
    """'fp16' for 'diffusion_pytorch_model.fp16.safetensors' (and its shards), None for plain
    weights."""
    match = re.match(r"^[^.]+\.([A-Za-z0-9_]+)(-\d+-of-\d+)?\.(safetensors|bin)$", name)
    return match[1] if match else None


def _pick_weights(names: list[str], variant: str | None) -> list[str]:
    """The weight files of one folder to download: the variant's (unsharded) safetensors if the
    folder has them, else the plain safetensors, else the plain .bin (sharded: with the index)."""
    if variant:
        chosen = [n for n in names if n.endswith(".safetensors") and _variant_of(n) == variant]
        if chosen and not any("-of-" in n for n in chosen):
            return chosen
    for ext in (".safetensors", ".bin"):
        chosen = [n for n in names if n.endswith(ext) and _variant_of(n) is None]
        if chosen:
            return chosen + [n for n in names if n.endswith(f"{ext}.index.json")]
    return []


def _side_files(names: list[str]) -> list[str]:
    return [n for n in names if n not in SKIP_SIDE and not n.endswith(".index.json")
            and any(fnmatch.fnmatch(n, p) for p in SIDE_FILES)]


def _by_folder(files: list[str]) -> dict[str, list[str]]:
    folders: dict[str, list[str]] = {}
    for f in files:
        p = PurePosixPath(f)
        folders.setdefault(str(p.parent) if str(p.parent) != "." else "", []).append(p.name)
    return folders


def select_files(files: list[str], components: list[str] | None = None,
                 variant: str | None = VARIANT) -> list[str]:
    """The files of a hub repository (its full file list) that a loader needs, sorted.

    A diffusers pipeline (`model_index.json` in `files`): `components` are the sub-folders
    model_index.json names (required then); each gets its side files and `_pick_weights`. Other
    repositories: the top folder's side files and plain weights; sub-folders are left out.
    """
    folders = _by_folder(files)
    top = folders.get("", [])
    if PIPELINE_FILE in top:
        if components is None:
            raise ValueError("a diffusers pipeline needs its components (from model_index.json)")
        chosen = [PIPELINE_FILE]
        for comp in components:
            names = folders.get(comp, [])
            chosen += [f"{comp}/{n}" for n in _side_files(names) + _pick_weights(names, variant)]
        return sorted(chosen)
    if OPEN_CLIP_FILE in top:  # open_clip reads open_clip_model.*; timm's model.* is not needed
        top = [n for n in top if n.startswith("open_clip_") or not n.endswith(WEIGHT_EXTS)]
    # no variant: transformers / open_clip load the plain names from the cache
    return sorted(_side_files(top) + _pick_weights(top, None))


def pipeline_components(model_index: dict) -> list[str]:
    """Sub-folders a diffusers model_index.json loads (entries [library, class], not null)."""
    return sorted(k for k, v in model_index.items()
                  if not k.startswith("_") and isinstance(v, list) and len(v) == 2 and v[0])


def local_name(name: str) -> str:
    """The name a downloaded file gets in a plain pipeline folder (variant suffix dropped)."""
    path = PurePosixPath(name)
    variant = _variant_of(path.name)
    if variant is None:
        return name
    plain = path.name.replace(f".{variant}.", ".")
    return str(path.with_name(plain))


# --- download (network) ---------------------------------------------------------------------


def _repo_files(api, key: str, repo: str) -> list[str]:
    """The hub repository's file list; a typo, a gated repository or no network in words."""
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    from dcobench.errors import UserError

    try:
        return api.list_repo_files(repo)
    except GatedRepoError as exc:
        raise UserError(f"models.{key}: {repo!r} is gated: accept its licence on the hub and "
                        "log in on this node (`hf auth login`)") from exc
    except RepositoryNotFoundError as exc:
        raise UserError(f"models.{key}: {repo!r} is not a repository on the hub (a typo? a "
                        "private repository needs `hf auth login`); fix models."
                        f"{key} in your config") from exc
    except (HfHubHTTPError, OSError) as exc:
        raise UserError(f"models.{key}: the hub is not reachable from this node to fetch "
                        f"{repo!r} ({type(exc).__name__}: {exc}); run on a node with network "
                        "access, or download it there and point models."
                        f"{key} at the folder") from exc
    except Exception as exc:  # httpx connection errors are not OSErrors
        if type(exc).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "httpcore2"):
            raise UserError(f"models.{key}: the hub is not reachable from this node to fetch "
                            f"{repo!r} ({type(exc).__name__}: {exc}); run on a node with "
                            "network access") from exc
        raise


def download(key: str, repo: str, log=print) -> str:
    """Fetch what models.<key> = `repo` needs; return the spec jobs load (see module doc)."""
    from huggingface_hub import HfApi, hf_hub_download, snapshot_download

    files = _repo_files(HfApi(), key, repo)
    if PIPELINE_FILE not in files:
        chosen = select_files(files)
        log(f"models.{key}: {repo}: {len(chosen)} files into the Hugging Face cache: "
            + ", ".join(chosen))
        snapshot_download(repo, allow_patterns=chosen)
        return repo
    final = weights_dir(repo)
    if is_complete(final):
        log(f"models.{key}: {repo}: already downloaded to {final}")
        return str(final)
    index = json.loads(Path(hf_hub_download(repo, PIPELINE_FILE)).read_text())
    chosen = select_files(files, pipeline_components(index))
    log(f"models.{key}: {repo}: {len(chosen)} files into {final}: " + ", ".join(chosen))
    tmp = final.with_name(final.name + ".partial")
    snapshot_download(repo, allow_patterns=chosen, local_dir=tmp)  # resumable
    for name in chosen:
        if (plain := local_name(name)) != name:
            os.replace(tmp / name, tmp / plain)
    shutil.rmtree(tmp / ".cache", ignore_errors=True)
    (tmp / COMPLETE).write_text(json.dumps({"repo": repo, "files": chosen}, indent=1) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return str(final)


# --- loadable? (the tokenizer / processor a stage builds first) -----------------------------


def check_loadable(key: str, spec: str) -> str:
    """Load models.<key>'s tokenizer(s) or processor from `spec` (a folder or a cached hub id);
    return what was loaded, raise with the library's reason when it cannot be."""
    from dcobench.modelspec import model_file

    need = model_file(key)
    if need == PIPELINE_FILE:
        from transformers import AutoTokenizer

        toks = [type(AutoTokenizer.from_pretrained(spec, subfolder=sub)).__name__
                for sub in ("tokenizer", "tokenizer_2")]
        return "tokenizers " + ", ".join(toks)
    if need == OPEN_CLIP_FILE:
        import open_clip

        name = spec if spec.startswith(("hf-hub:", "local-dir:")) else f"local-dir:{spec}"
        return "tokenizer " + type(open_clip.get_tokenizer(name)).__name__
    if need != "config.json":
        return "nothing to load (no tokenizer or processor)"
    from transformers import AutoProcessor

    return "processor " + type(AutoProcessor.from_pretrained(spec)).__name__

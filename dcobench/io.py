"""Files: images, atomic writes, manifests with checksums, derived seeds, device choice.

Every final output goes through a temp file (or a staging folder) that is fsynced and then
renamed into place (`write_text_atomic`, `save_png_atomic`, `staging_dir`, `replacing_dir`), so
a job killed mid-write or a full disk never leaves a truncated file under its final name.
`write_manifest` records the sha256 of every file of the folder it describes; readers of
LoRAs, learned embeddings, index.csv and score tables call `verify_file`, which refuses a file
changed or truncated after it was written, naming it (docs/faults.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dcobench.machine import cpu_model

PACKAGES = ("torch", "diffusers", "peft", "transformers", "open_clip_torch", "snakemake",
            "accelerate", "safetensors", "tokenizers", "sentencepiece", "numpy", "pillow",
            "scipy")
# environment variables that change a run's threads or floating-point kernels
ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "CUBLAS_WORKSPACE_CONFIG",
            "CUDA_VISIBLE_DEVICES", "PYTHONHASHSEED", "ATEN_CPU_CAPABILITY", "DNNL_MAX_CPU_ISA")


def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed that depends only on `parts` (e.g. (seed, prompt_index))."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def device() -> torch.device:
    """CUDA when present (SLURM sets CUDA_VISIBLE_DEVICES), else CPU; a job that was given a
    GPU but cannot use it stops here with a diagnosis (dcobench.gpucheck)."""
    from dcobench.gpucheck import check_gpu_usable

    available = torch.cuda.is_available()
    check_gpu_usable(available)
    return torch.device("cuda" if available else "cpu")


def load_image(path: Path, resolution: int) -> torch.Tensor:
    """Read as a person sees it (`dcobench.data.images.read_rgb`: EXIF orientation, 16-bit and
    alpha handled), center-crop to square, resize, scale to [-1, 1]: (3, R, R) float32.

    Large JPEGs (e.g. 2048² photos) are decoded at a reduced DCT scale that still keeps at least
    `resolution` pixels on the short side (PIL draft mode), so decoding stays fast.
    """
    from dcobench.data.images import read_rgb

    img = read_rgb(path, draft_side=resolution)
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    img = img.crop((left, top, left + side, top + side)).resize(
        (resolution, resolution), Image.Resampling.BICUBIC
    )
    arr = np.asarray(img, dtype=np.float32) / 127.5 - 1.0  # (R, R, 3)
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """(B, 3, H, W) in [-1, 1] -> PIL images."""
    arr = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return [Image.fromarray(a.permute(1, 2, 0).cpu().numpy()) for a in arr]


MANIFEST = "manifest.json"
UNHASHED_DIRS = ("checkpoints",)  # intermediate training snapshots: large, never read as final


class CorruptFileError(ValueError):
    """A file whose bytes differ from the sha256 its folder's manifest.json recorded."""


def fsync_path(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to disk; a no-op where that is unsupported."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            fsync_path(p)
    fsync_path(root)


def _replace_synced(tmp: Path, path: Path) -> None:
    """fsync `tmp`, rename it to `path` and fsync the folder, so the rename survives a crash."""
    fsync_path(tmp)
    os.replace(tmp, path)
    fsync_path(path.parent)


def save_png_atomic(image: Image.Image, path: Path) -> None:
    """Write through a temp file and rename, so a killed job never leaves a truncated PNG."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        image.save(tmp, format="PNG")
        _replace_synced(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` (UTF-8) through a temp file, fsync and rename: `path` is whole or absent."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        _replace_synced(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def staging_dir(final: Path) -> Iterator[Path]:
    """A sibling temp folder whose files are moved into `final` only when the block succeeds,
    manifest.json last (a manifest in `final` means its files are there)."""
    final.mkdir(parents=True, exist_ok=True)
    stage = final.with_name(f".{final.name}.partial")
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    try:
        yield stage
        _fsync_tree(stage)
        for item in sorted(stage.iterdir(), key=lambda p: (p.name == MANIFEST, p.name)):
            target = final / item.name
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(item, target)
        fsync_path(final)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


@contextlib.contextmanager
def replacing_dir(final: Path) -> Iterator[Path]:
    """A sibling temp folder that becomes `final` (whole, replacing the previous folder) only when
    the block succeeds; on any failure the previous `final` is left exactly as it was.

    Unlike `staging_dir`, no file of the previous run survives next to the new ones (a stale
    learned_embeds.safetensors or checkpoints/ from an older run).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    stage, old = final.with_name(f".{final.name}.partial"), final.with_name(f".{final.name}.old")
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        yield stage
        _fsync_tree(stage)
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            os.replace(final, old)
        os.replace(stage, final)  # the one moment `final` is absent: between two renames
        fsync_path(final.parent)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def git_hash() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    found = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def sort_safetensors_header(path: Path) -> Path:
    """Rewrite a safetensors file's JSON header with sorted keys (tensor bytes untouched).

    The Rust writer orders `__metadata__` entries by a per-process random hash (diffusers'
    LoRA files carry two: `format`, `lora_adapter_metadata`), so two saves of equal tensors
    could differ in their header bytes and so in their sha256. Sorted, equal tensors and
    metadata make equal files. Offsets in the header are relative to the data section, so a
    header of another length stays valid; it is padded with spaces to 8 bytes as the writer
    does."""
    path = Path(path)
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.dumps(json.loads(data[8 : 8 + n]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)
    out = len(header).to_bytes(8, "little") + header + data[8 + n :]
    if out != data:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(out)
        _replace_synced(tmp, path)
    return path


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def checksums(out_dir: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under `out_dir`, except manifest.json, hidden
    (temp) files and `UNHASHED_DIRS`."""
    out_dir = Path(out_dir)
    found = {}
    for p in sorted(out_dir.rglob("*")):
        rel = p.relative_to(out_dir)
        if (not p.is_file() or rel.as_posix() == MANIFEST
                or any(part.startswith(".") or part in UNHASHED_DIRS for part in rel.parts)):
            continue
        found[rel.as_posix()] = sha256_file(p)
    return found


def _manifest_entry(path: Path, levels: int) -> tuple[Path, str, str] | None:
    """(manifest, relative path, recorded sha256) of the nearest manifest.json up to `levels`
    folders above `path` that lists it."""
    folder = path.parent
    for _ in range(levels):
        manifest = folder / MANIFEST
        if manifest.is_file():
            try:
                recorded = json.loads(manifest.read_text(encoding="utf-8")).get("sha256") or {}
            except (OSError, ValueError) as exc:
                raise CorruptFileError(f"{manifest}: unreadable ({exc}); delete {manifest.parent} "
                                       "and rerun the job that writes it") from exc
            rel = path.relative_to(folder).as_posix()
            if rel in recorded:
                return manifest, rel, recorded[rel]
        folder = folder.parent
    return None


def verify_file(path: str | Path, levels: int = 2) -> Path:
    """Refuse `path` if its sha256 differs from the one recorded by the manifest.json of its
    folder (or of a folder up to `levels` above it): truncated or changed after it was written.
    A file no manifest lists (written before checksums existed) is not checked. Returns path."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; rerun the job that writes it")
    entry = _manifest_entry(path, levels)
    if entry is not None and sha256_file(path) != entry[2]:
        manifest, rel, _ = entry
        raise CorruptFileError(
            f"{path}: corrupted or truncated after it was written ({path.stat().st_size} bytes; "
            f"its sha256 differs from the one {manifest} recorded for {rel}); delete {path} and "
            "rerun: the workflow then redoes the job that writes it")
    return path


def _cuda() -> dict:
    """The CUDA device this process computes on (name, capability), or {} without CUDA."""
    if not torch.cuda.is_available():
        return {}
    index = torch.cuda.current_device()
    major, minor = torch.cuda.get_device_capability(index)
    return {"cuda_device": torch.cuda.get_device_name(index), "cuda_capability": f"{major}.{minor}",
            "cuda_version": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
            "cudnn_deterministic": torch.backends.cudnn.deterministic,
            "cudnn_benchmark": torch.backends.cudnn.benchmark}


def environment() -> dict:
    """What a run's floating-point results depend on besides code, options and seed: torch's
    thread counts, the CPU (and its vector ISA as torch dispatches it), the machine, Python,
    the CUDA device, the deterministic-algorithm flags and the relevant environment variables.
    Bit-identical outputs are guaranteed only where these match (docs/reproducibility.md)."""
    return {
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        **_cuda(),
        "env": {name: os.environ[name] for name in ENV_VARS if name in os.environ},
    }


def write_manifest(out_dir: Path, stage: str, options: dict, **extra) -> Path:
    """manifest.json, written last: the stage, its resolved options, git hash, package versions,
    the environment it ran in (`environment()`) and the sha256 of every file of `out_dir`
    (`checksums`), which `verify_file` checks."""
    manifest = {
        "stage": stage,
        "options": options,
        "git": git_hash(),
        "versions": versions(),
        "environment": environment(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **extra,
        "sha256": checksums(out_dir),
    }
    path = Path(out_dir) / MANIFEST
    write_text_atomic(path, json.dumps(manifest, indent=2, default=str) + "\n")
    return path

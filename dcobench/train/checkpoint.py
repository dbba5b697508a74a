"""A checkpoint variant's model folder, copied from its parent run (rule export_checkpoint)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from dcobench.io import write_manifest, write_text_atomic


def export_checkpoint(parent_dir: Path, step: int, out_dir: Path, variant: str) -> Path:
    """Copy the parent run's `checkpoints/step-N` into `out_dir` as a normal model folder:
    LoRA, learned embeddings, train_log.csv up to `step`, manifest.json (written last)."""
    parent_dir, out_dir = Path(parent_dir), Path(out_dir)
    src = parent_dir / "checkpoints" / f"step-{step}"
    manifest = json.loads((parent_dir / "manifest.json").read_text())
    if not (src / "pytorch_lora_weights.safetensors").is_file():
        raise FileNotFoundError(f"{src}: no checkpoint at step {step}; the parent run keeps "
                                f"{manifest['options'].get('checkpoints')}")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "manifest.json").unlink(missing_ok=True)
    for item in sorted(src.iterdir()):
        if item.is_file():
            tmp = out_dir / f".{item.name}.tmp"
            shutil.copyfile(item, tmp)
            tmp.replace(out_dir / item.name)
    lines = (parent_dir / "train_log.csv").read_text().splitlines()
    kept = [lines[0]] + [r for r in lines[1:] if r and int(r.split(",", 1)[0]) <= step]
    write_text_atomic(out_dir / "train_log.csv", "\n".join(kept) + "\n")
    options = {**manifest["options"], "steps": step, "checkpoints": [], "out_dir": str(out_dir)}
    extra = {k: v for k, v in manifest.items() if k not in ("stage", "options", "git", "versions",
                                                           "created", "seconds")}
    write_manifest(out_dir, "train", options, **extra, variant=variant,
                   checkpoint_of=str(parent_dir), checkpoint_step=step)
    return out_dir

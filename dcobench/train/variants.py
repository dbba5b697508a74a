"""Training variants: a named objective (methods.METHODS) plus TrainOptions overrides.

The paper compares more than objectives: DB with the compact caption, DB+CC early-stopped,
DB+p.p. with λ_prior 0.5, DCO at β 0.5 / 2, ... A variant names one such run, e.g.

    db_compact: {method: db, captions: compact, textual_inversion: false}
    dco_b05:    {method: dco, beta: 0.5}
    db_es:      {checkpoint_of: db, step: 1000}   # the 1000-step checkpoint of the db run

``train.variants`` in the config adds variants; every method name (dco, db, dbpp) is also a
variant of itself. Model folders are named by variant: results/{exp}/models/{kind}/{concept}/{variant}.
A checkpoint variant is not retrained: rule `export_checkpoint` copies the parent run's
checkpoint into its own folder. Importing this module must stay cheap (no torch).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

# TrainOptions fields a variant may override (tests check they are TrainOptions fields).
OVERRIDE_KEYS = (
    "steps", "rank", "alpha", "lr", "ti_lr", "textual_inversion", "captions", "beta",
    "offset_noise", "snr_gamma", "max_grad_norm", "resolution", "batch_size", "seed",
    "prior_weight", "checkpoints",
)
PER_KIND_KEYS = ("steps", "rank", "offset_noise")  # may be a value or {subject: .., style: ..}


@dataclass(frozen=True)
class Variant:
    """`method`: objective-level name in methods.METHODS; `overrides`: TrainOptions fields;
    `checkpoint_of` / `step`: a checkpoint variant (the parent variant's run at `step`)."""

    name: str
    method: str
    overrides: dict = field(default_factory=dict)
    checkpoint_of: str | None = None
    step: int | None = None

    @property
    def trained(self) -> bool:
        return self.checkpoint_of is None


def parse_variants(config: dict, errors: list[str]) -> dict[str, Variant]:
    """All variants of a config (method names + train.variants); problems go to `errors`."""
    from dcobench.registry import unknown_name_message
    from dcobench.train.methods import METHODS

    found = {m: Variant(m, m) for m in METHODS.names()}
    raw = config["train"].get("variants") or {}
    for name, spec in raw.items():
        key = f"train.variants.{name}"
        if "checkpoint_of" in spec:
            found[name] = Variant(name, "", checkpoint_of=spec["checkpoint_of"], step=spec.get("step"))
            continue
        method = spec.get("method")
        if method not in METHODS:
            errors.append(f"{key}.method: {unknown_name_message('method', str(method), METHODS.names())}")
            continue
        bad = sorted(set(spec) - {"method", *OVERRIDE_KEYS})
        if bad:
            errors.append(f"{key}: unknown override(s) {', '.join(bad)}; "
                          f"allowed: {', '.join(OVERRIDE_KEYS)}")
        found[name] = Variant(name, method, {k: v for k, v in spec.items() if k != "method"})
    for v in list(found.values()):
        if v.trained:
            continue
        parent = found.get(v.checkpoint_of)
        if parent is None or not parent.trained:
            errors.append(f"train.variants.{v.name}.checkpoint_of: {v.checkpoint_of!r} is not a "
                          f"trained variant; known: {', '.join(n for n, p in found.items() if p.trained)}")
            found.pop(v.name)
            continue
        found[v.name] = Variant(v.name, parent.method, parent.overrides, v.checkpoint_of, v.step)
    return found


def check_checkpoint(config: dict, variant: Variant, kind: str) -> str | None:
    """An error message if the parent run of a checkpoint variant does not keep `step`."""
    opts = variant_options(config, kind, variant)
    if variant.step not in opts["checkpoints"]:
        return (f"train.variants.{variant.name}: step {variant.step} is not a kept checkpoint of "
                f"{variant.checkpoint_of!r} for {kind}s (add it to train.checkpoints, below "
                f"steps = {opts['steps']})")
    return None


def _per_kind(value, kind: str):
    return value[kind] if isinstance(value, dict) else value


def variant_options(config: dict, kind: str, variant: Variant) -> dict:
    """TrainOptions fields (minus paths / method) for `variant` on a concept of `kind`."""
    t = config["train"]
    opts = {
        "steps": t["steps"][kind], "rank": t["rank"][kind], "alpha": t.get("alpha"),
        "lr": t["lr"], "ti_lr": t["ti_lr"], "textual_inversion": t.get("textual_inversion", True),
        "captions": t["captions"], "beta": t["beta"], "offset_noise": t["offset_noise"][kind],
        "snr_gamma": t.get("snr_gamma"), "max_grad_norm": t.get("max_grad_norm", 1.0),
        "resolution": t["resolution"], "batch_size": t.get("batch_size", 1),
        "mixed_precision": t.get("mixed_precision", "auto"),
        "gradient_checkpointing": t.get("gradient_checkpointing", False),
        "resume_every": t.get("resume_every", 100),
        "random_flip": t.get("random_flip", False),
        "targets": list(t.get("targets", ["to_q", "to_k", "to_v", "to_out.0"])),
        "lr_warmup_steps": t.get("lr_warmup_steps", 0),
        "seed": config["seed"], "prior_weight": t["prior"]["weight"],
        "checkpoints": list(t.get("checkpoints", [])),
    }
    for key, value in variant.overrides.items():
        opts[key] = _per_kind(value, kind) if key in PER_KIND_KEYS else value
    opts["checkpoints"] = [c for c in opts["checkpoints"] if c < opts["steps"]]
    return opts


def export_checkpoint(parent_dir: Path, step: int, out_dir: Path, variant: str) -> Path:
    """Copy the parent run's `checkpoints/step-N` into `out_dir` as a normal model folder:
    LoRA, learned embeddings, train_log.csv up to `step`, manifest.json (written last)."""
    from dcobench.io import write_manifest, write_text_atomic

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

"""Sample one model over the guidance grid × prompts × seeds into per-guide folders."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from tqdm import tqdm

from dcobench import prompts as prompt_sets
from dcobench.data.concept import load_concept
from dcobench.guidance import parse_guide
from dcobench.io import (
    derive_seed,
    device,
    save_png_atomic,
    to_pil,
    write_manifest,
    write_text_atomic,
)
from dcobench.sampling import GuideSpec, generate

INDEX_COLUMNS = ("file", "prompt_index", "seed", "prompt", "scoring_prompt", "guide", "omega")
THETA = "theta"


@dataclass(frozen=True)
class SampleOptions:
    """A sampling job. Every method and grid point gets the same noise per (seed, prompt)."""

    out_dir: Path  # results/{exp}/samples/{kind}/{concept}/{method}: one folder per guide inside
    model_dir: Path | None = None  # LoRA folder (train or merge output); None = pretrained model
    subject_dir: Path | None = None  # concept folders that fill the {subject} / {style} slots
    style_dir: Path | None = None
    base_model: str = "tiny-sdxl"
    guides: tuple[str, ...] = ("cfg", "rg2", "rg3", "rg4", "rg5")  # cfg | rg<ω>
    prompt_set: str | None = None  # None: object/live (subject), style, merge (both)
    num_prompts: int | None = None  # the first N prompts of the set; None = all
    seeds: tuple[int, ...] = (0, 1)
    steps: int = 50  # denoising steps
    w_text: float = 7.5  # ω_text
    scheduler: str = "ddim"
    resolution: int = 1024
    batch_size: int = 4  # (prompt, seed) slots per UNet batch
    captions: str = "comprehensive"  # compact: θ prompts use "sks {class}" for the subject

    def __post_init__(self) -> None:
        for g in self.guides:
            kind, _ = parse_guide(g)
            if kind == "rg" and self.model_dir is None:
                raise ValueError(f"guide {g!r} needs a fine-tuned model (model_dir)")
        if self.subject_dir is None and self.style_dir is None:
            raise ValueError("give subject_dir and/or style_dir: they fill the prompt templates")
        if self.batch_size < 1 or self.steps < 1 or not self.seeds:
            raise ValueError("batch_size and steps must be >= 1 and seeds non-empty")


def phrases(opts: SampleOptions) -> tuple[dict[str, str], dict[str, str], str]:
    """Slot values for θ and for φ/scoring, and the default prompt set name."""
    theta, base = {}, {}
    for slot, folder in (("subject", opts.subject_dir), ("style", opts.style_dir)):
        if folder is None:
            continue
        concept = load_concept(folder)
        compact = opts.captions == "compact" and slot == "subject"
        theta[slot] = f"sks {concept.class_noun}" if compact else concept.token
        base[slot] = concept.class_noun
        live = concept.live
    if len(theta) == 2:
        default = "merge"
    else:
        default = "style" if "style" in theta else ("live" if live else "object")
    return theta, base, default


def load_model(opts: SampleOptions):
    """The pretrained pipeline with the LoRA as adapter "theta" and learned tokens loaded."""
    from dcobench import adapters, text
    from dcobench.models import load_sdxl

    pipe = load_sdxl(opts.base_model, device=device(),
                     dtype=torch.bfloat16 if torch.cuda.is_available() else torch.float32)
    if opts.model_dir is not None:
        adapters.load_lora(pipe, opts.model_dir, THETA)
        for path in sorted(Path(opts.model_dir).glob("learned_embeds*.safetensors")):
            with safe_open(str(path), "pt") as f:
                token = f.metadata()["token"]
            text.load_learned_embeds(pipe, path, token)
    return pipe


def sample_grid(opts: SampleOptions) -> list[Path]:
    """Write PNGs + index.csv per guide folder; existing images are kept (resumable)."""
    theta, base, default_set = phrases(opts)
    templates = prompt_sets.select(prompt_sets.PROMPT_SETS[opts.prompt_set or default_set],
                                   opts.num_prompts)
    filled = prompt_sets.fill(templates, theta, base)
    slots = [(p, s) for p in filled for s in opts.seeds]
    pipe = load_model(opts)
    folders = []
    for guide in opts.guides:
        kind, w_rg = parse_guide(guide)
        spec = GuideSpec(kind, opts.w_text, w_rg, THETA if opts.model_dir else None)
        folder = Path(opts.out_dir) / guide
        folder.mkdir(parents=True, exist_ok=True)
        todo = [(p, s) for p, s in slots if not (folder / _name(p.index, s)).exists()]
        for start in tqdm(range(0, len(todo), opts.batch_size), desc=f"sample {guide}",
                          unit="batch", mininterval=2.0):
            chunk = todo[start : start + opts.batch_size]
            images = generate(pipe, spec, [p.theta for p, _ in chunk], [p.base for p, _ in chunk],
                              [derive_seed(s, p.index) for p, s in chunk], opts.resolution,
                              opts.steps, opts.scheduler)
            for (p, s), img in zip(chunk, to_pil(images), strict=True):
                save_png_atomic(img, folder / _name(p.index, s))
        _write_index(folder, slots, guide, w_rg if kind == "rg" else opts.w_text)
        folders.append(folder)
    write_manifest(opts.out_dir, "sample", json.loads(json.dumps(asdict(opts), default=str)),
                   prompt_set=opts.prompt_set or default_set, num_images=len(slots) * len(opts.guides))
    return folders


def _name(prompt_index: int, seed: int) -> str:
    return f"p{prompt_index:03d}_s{seed}.png"


def _write_index(folder: Path, slots, guide: str, omega: float) -> None:
    """index.csv, written last: its presence marks the folder complete."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=INDEX_COLUMNS)
    writer.writeheader()
    for p, s in slots:
        writer.writerow({"file": _name(p.index, s), "prompt_index": p.index, "seed": s,
                         "prompt": p.theta, "scoring_prompt": p.base, "guide": guide,
                         "omega": omega})
    write_text_atomic(folder / "index.csv", buf.getvalue())

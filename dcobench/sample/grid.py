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

from dcobench.data import prompts as prompt_sets
from dcobench.data.concept import load_concept
from dcobench.io import (
    derive_seed,
    device,
    save_png_atomic,
    to_pil,
    write_manifest,
    write_text_atomic,
)
from dcobench.sample.denoise import GuideSpec, generate
from dcobench.sample.guidance import parse_guide
from dcobench.signals import Interrupted, StopSignals

INDEX_COLUMNS = ("file", "prompt_index", "seed", "prompt", "scoring_prompt", "guide", "omega",
                 "prompt_set")
THETA = "theta"
PARTIAL_INDEX = "index.partial.csv"  # images written before a stop signal; never marks done


@dataclass(frozen=True)
class SampleOptions:
    """A sampling job. Every method and grid point gets the same noise per (seed, prompt)."""

    out_dir: Path  # results/{exp}/samples/{kind}/{concept}/{method}: one folder per guide inside
    model_dir: Path | None = None  # LoRA folder (train or merge output); None = pretrained model
    subject_dir: Path | None = None  # concept folders that fill the {subject} / {style} slots
    style_dir: Path | None = None
    base_model: str = "tiny-sdxl"
    guides: tuple[str, ...] = ("cfg", "rg2", "rg3", "rg4", "rg5")  # cfg | rg<ω>
    prompt_set: str | None = None  # one registered set; None = prompt_sets by group
    prompt_sets: dict | None = None  # group (subject|style|merge) -> set names; None = defaults
    num_prompts: int | None = None  # the first N prompts of each set; None = all
    seeds: tuple[int, ...] = (0, 1)
    steps: int = 50  # denoising steps
    w_text: float = 7.5  # ω_text
    scheduler: str = "ddim"
    resolution: int = 1024
    batch_size: int = 4  # (prompt, seed) slots per UNet batch
    captions: str = "comprehensive"  # compact: θ prompts use "sks {class}" for the subject
    seed: int = 0  # master seed; an image's noise depends on (seed, its seed slot, prompt index)
    mixed_precision: str = "auto"  # auto (bf16/fp16 on GPU, fp32 on CPU) | fp32 | bf16 | fp16

    def __post_init__(self) -> None:
        for g in self.guides:
            kind, _ = parse_guide(g)
            if kind == "rg" and self.model_dir is None:
                raise ValueError(f"guide {g!r} needs a fine-tuned model (model_dir)")
        if self.subject_dir is None and self.style_dir is None:
            raise ValueError("give subject_dir and/or style_dir: they fill the prompt templates")
        if self.batch_size < 1 or self.steps < 1 or not self.seeds:
            raise ValueError("batch_size and steps must be >= 1 and seeds non-empty")
        if self.mixed_precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ValueError(f"mixed_precision must be auto, fp32, bf16 or fp16, "
                             f"got {self.mixed_precision!r}")


def noise_seed(master: int, seed: int, prompt_index: int) -> int:
    """The generator seed of one image's initial noise: a function of its slot only, so every
    method, guide, batch size and device gets the same noise for the same (seed, prompt)."""
    return derive_seed(master, "sample", seed, prompt_index)


def _model_captions(opts: SampleOptions) -> str:
    """The caption mode the model was trained with (its manifest), else opts.captions."""
    manifest = Path(opts.model_dir or "") / "manifest.json"
    if opts.model_dir is not None and manifest.is_file():
        data = json.loads(manifest.read_text())
        if data.get("stage") == "train":
            return data.get("options", {}).get("captions", opts.captions)
    return opts.captions


def phrases(opts: SampleOptions) -> tuple[dict[str, str], dict[str, str], str, bool]:
    """Slot values for θ and for φ/scoring, the prompt group (subject|style|merge), live."""
    theta, base, live = {}, {}, False
    captions = _model_captions(opts)
    for slot, folder in (("subject", opts.subject_dir), ("style", opts.style_dir)):
        if folder is None:
            continue
        concept = load_concept(folder)
        compact = captions == "compact" and slot == "subject"
        theta[slot] = f"sks {concept.class_noun}" if compact else concept.token
        base[slot] = concept.class_noun
        live = live or concept.live
    group = "merge" if len(theta) == 2 else next(iter(theta))
    return theta, base, group, live


def prompt_list(opts: SampleOptions) -> list[prompt_sets.Prompt]:
    """The filled prompts of this job: `prompt_set` if given, else the group's sets."""
    theta, base, group, live = phrases(opts)
    if opts.prompt_set:
        templates = prompt_sets.select(prompt_sets.PROMPT_SETS[opts.prompt_set], opts.num_prompts)
        return prompt_sets.fill(templates, theta, base, prompt_set=opts.prompt_set)
    names = (opts.prompt_sets or {}).get(group)
    return prompt_sets.build_prompts(group, names, live, opts.num_prompts, theta, base)


def load_model(opts: SampleOptions):
    """The pretrained pipeline with the LoRA as adapter "theta" and learned tokens loaded."""
    from dcobench.models import adapters, load_sdxl, text
    from dcobench.train.trainer import autocast_dtype

    dev = device()
    pipe = load_sdxl(opts.base_model, device=dev,
                     dtype=autocast_dtype(opts.mixed_precision, dev) or torch.float32)
    if opts.model_dir is not None:
        adapters.load_lora(pipe, opts.model_dir, THETA)
        pipe.set_adapters([THETA])  # CFG rows of the fine-tuned model run the active adapter
        for path in sorted(Path(opts.model_dir).glob("learned_embeds*.safetensors")):
            with safe_open(str(path), "pt") as f:
                token = f.metadata()["token"]
            text.load_learned_embeds(pipe, path, token)
    return pipe


def sample_grid(opts: SampleOptions) -> list[Path]:
    """Write PNGs + index.csv per guide folder; existing images are kept (resumable).

    On SIGTERM/SIGUSR1 (SLURM preemption or time limit) the current batch is finished and
    flushed, `index.partial.csv` lists the images written so far, and `Interrupted` is raised
    (exit 143); a rerun skips the written images and produces the same folder as an
    uninterrupted run.
    """
    filled = prompt_list(opts)
    slots = [(p, s) for p in filled for s in opts.seeds]
    pipe = load_model(opts)
    folders = []
    with StopSignals() as stop:
        for guide in opts.guides:
            folders.append(_sample_guide(pipe, opts, guide, slots, stop))
    write_manifest(opts.out_dir, "sample", json.loads(json.dumps(asdict(opts), default=str)),
                   prompt_sets=sorted({p.prompt_set for p in filled}), num_images=len(slots) * len(opts.guides))
    return folders


def _sample_guide(pipe, opts: SampleOptions, guide: str, slots, stop: StopSignals) -> Path:
    """One guide folder: generate the missing images batch by batch, then index.csv."""
    kind, w_rg = parse_guide(guide)
    omega = w_rg if kind == "rg" else opts.w_text
    spec = GuideSpec(kind, opts.w_text, w_rg, THETA if opts.model_dir else None)
    folder = Path(opts.out_dir) / guide
    folder.mkdir(parents=True, exist_ok=True)
    todo = [(p, s) for p, s in slots if not (folder / _name(p.index, s)).exists()]
    for start in tqdm(range(0, len(todo), opts.batch_size), desc=f"sample {guide}",
                      unit="batch", mininterval=2.0):
        if stop.requested:
            done = [(p, s) for p, s in slots if (folder / _name(p.index, s)).exists()]
            _write_index(folder, done, guide, omega, spec.lora is not None, PARTIAL_INDEX)
            raise Interrupted(f"sampling stopped by {stop.name()} with {len(done)}/{len(slots)} "
                              f"images of {folder}; rerun to resume")
        chunk = todo[start : start + opts.batch_size]
        images = generate(pipe, spec, [p.theta for p, _ in chunk], [p.base for p, _ in chunk],
                          [noise_seed(opts.seed, s, p.index) for p, s in chunk], opts.resolution,
                          opts.steps, opts.scheduler)
        for (p, s), img in zip(chunk, to_pil(images), strict=True):
            save_png_atomic(img, folder / _name(p.index, s))
    _write_index(folder, slots, guide, omega, spec.lora is not None)
    (folder / PARTIAL_INDEX).unlink(missing_ok=True)
    return folder


def _name(prompt_index: int, seed: int) -> str:
    return f"p{prompt_index:03d}_s{seed}.png"


def _write_index(folder: Path, slots, guide: str, omega: float, theta: bool,
                 name: str = "index.csv") -> None:
    """index.csv, written last: its presence marks the folder complete (PARTIAL_INDEX: not).
    `prompt` is what the sampled model saw: the θ prompt, or the base prompt without a LoRA."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=INDEX_COLUMNS)
    writer.writeheader()
    for p, s in slots:
        writer.writerow({"file": _name(p.index, s), "prompt_index": p.index, "seed": s,
                         "prompt": p.theta if theta else p.base, "scoring_prompt": p.base,
                         "guide": guide, "omega": omega, "prompt_set": p.prompt_set})
    write_text_atomic(folder / name, buf.getvalue())

"""Sample one model over the guidance grid × prompts × seeds into per-guide folders."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm import tqdm

from dcobench.data import prompts as prompt_sets
from dcobench.data.captions import caption_pair
from dcobench.data.concept import Concept, load_concept
from dcobench.io import (
    derive_seed,
    save_png_atomic,
    to_pil,
    write_manifest,
    write_text_atomic,
)
from dcobench.models.finetuned import THETA, caption_mode, learned_tokens, load_finetuned
from dcobench.sample.denoise import GuideSpec, generate
from dcobench.sample.guides import Guide
from dcobench.signals import Interrupted, StopSignals
from dcobench.spec.sample import SampleOptions  # declared there; callers may import it here

INDEX_COLUMNS = ("file", "prompt_index", "seed", "prompt", "scoring_prompt", "guide", "guidance",
                 "w_rg", "w_text", "prompt_set")
PARTIAL_INDEX = "index.partial.csv"  # images written before a stop signal; never marks done


def seeds_of(opts: SampleOptions, prompt_set: str) -> tuple[int, ...]:
    """The seeds of a registered prompt set: its `set_seeds` entry (by its name or the config
    name that resolves to it, e.g. 'customization'), else `seeds`."""
    for name, seeds in (opts.set_seeds or {}).items():
        if prompt_set in prompt_sets.set_names(name):
            return tuple(seeds)
    return tuple(opts.seeds)


def noise_seed(master: int, seed: int, prompt_index: int) -> int:
    """The generator seed of one image's initial noise: a function of its slot only, so every
    variant, guide, batch size and device gets the same noise for the same (seed, prompt)."""
    return derive_seed(master, "sample", seed, prompt_index)


def concepts(opts: SampleOptions) -> dict[str, Concept]:
    """The concepts filling the prompt slots: slot (subject | style) -> Concept."""
    folders = (("subject", opts.subject_dir), ("style", opts.style_dir))
    return {slot: load_concept(folder) for slot, folder in folders if folder is not None}


def prompt_list(opts: SampleOptions) -> list[prompt_sets.Prompt]:
    """The filled prompts of this job (written with the concepts' tokens, plus the plain
    prompt for scoring): `prompt_set` if given, else the group's sets."""
    slots = concepts(opts)
    tokens = {slot: c.token for slot, c in slots.items()}
    plain = {slot: c.class_noun for slot, c in slots.items()}
    if opts.prompt_set:
        templates = prompt_sets.select(prompt_sets.PROMPT_SETS[opts.prompt_set], opts.num_prompts)
        return prompt_sets.fill(templates, tokens, plain, prompt_set=opts.prompt_set)
    group = "merge" if len(slots) == 2 else next(iter(slots))
    names = (opts.prompt_sets or {}).get(group)
    live = any(c.live for c in slots.values())
    folders = {slot: c.root for slot, c in slots.items()}
    return prompt_sets.build_prompts(group, names, live, opts.num_prompts, tokens, plain, folders)


def model_prompts(opts: SampleOptions, filled: list[prompt_sets.Prompt]) -> list[tuple[str, str]]:
    """(θ prompt, φ prompt) per filled prompt for the sampled model (data.captions); the
    pretrained model reads the plain prompt."""
    if opts.model_dir is None:
        return [(p.base, p.base) for p in filled]
    mode = caption_mode(opts.model_dir, opts.captions)
    learned = learned_tokens(opts.model_dir)
    slots = list(concepts(opts).values())
    return [caption_pair(p.theta, slots, mode, learned) for p in filled]


def load_model(opts: SampleOptions):
    """The pretrained pipeline with the LoRA as adapter "theta" and learned tokens loaded;
    the UNet in channels_last memory format when `opts.channels_last`."""
    pipe = load_finetuned(opts.base_model, opts.model_dir, opts.mixed_precision)
    if opts.channels_last:
        pipe.unet.to(memory_format=torch.channels_last)
    return pipe


def chunk_prompts(filled: list, chunk: int, chunks: int) -> list:
    """Block `chunk` (1-based) of `chunks` contiguous blocks of the prompts (sizes differ by at
    most one): a sampling job's share when a model's grid is split to fit a time limit."""
    if not 1 <= chunk <= chunks:
        raise ValueError(f"chunk {chunk} of {chunks}: want 1 <= chunk <= chunks")
    n = len(filled)
    return filled[(chunk - 1) * n // chunks : chunk * n // chunks]


def _slots(opts: SampleOptions):
    """(filled prompts, slots): a slot is (prompt, seed, θ prompt, φ prompt)."""
    filled = prompt_list(opts)
    pairs = model_prompts(opts, filled)
    slots = [(p, s, theta, phi) for p, (theta, phi) in zip(filled, pairs, strict=True)
             for s in seeds_of(opts, p.prompt_set)]
    return filled, slots


def sample_grid(opts: SampleOptions, chunk: tuple[int, int] | None = None) -> list[Path]:
    """Write PNGs + index.csv per guide folder; existing images are kept (resumable).

    On SIGTERM/SIGUSR1 (SLURM preemption or time limit) the current batch is finished and
    flushed, `index.partial.csv` lists the images written so far, and `Interrupted` is raised
    (exit 143); a rerun skips the written images and produces the same folder as an
    uninterrupted run. `chunk` = (i, n): only the images of prompt block i of n (`chunk_prompts`),
    into the same folders, without index.csv or manifest (`join_grid` writes them).
    """
    return sample_loaded(load_model(opts), opts, chunk)


def sample_loaded(pipe, opts: SampleOptions, chunk: tuple[int, int] | None = None) -> list[Path]:
    """`sample_grid` on a pipeline that already holds `opts`' model (base + LoRA + tokens):
    a grouped job (dcobench.sample.group) loads the base once and samples every member here."""
    filled, slots = _slots(opts)
    if chunk is not None:
        mine = {p.index for p in chunk_prompts(filled, *chunk)}
        slots = [slot for slot in slots if slot[0].index in mine]
    folders = []
    with StopSignals() as stop:
        for guide in opts.guides:
            folders.append(_sample_guide(pipe, opts, guide, slots, stop, index=chunk is None))
    if chunk is None:
        _write_manifest(opts, filled, len(slots))
    return folders


def join_grid(opts: SampleOptions) -> list[Path]:
    """After every chunk: check each guide folder holds all its images, then write index.csv
    per guide and the manifest (what an unchunked `sample_grid` writes; no model is loaded)."""
    filled, slots = _slots(opts)
    folders = []
    for guide in opts.guides:
        folder = Path(opts.out_dir) / guide.name
        missing = [_name(p.index, s) for p, s, *_ in slots if not (folder / _name(p.index, s)).exists()]
        if missing:
            raise ValueError(f"{len(missing)} of {len(slots)} images missing in {folder} "
                             f"(first: {missing[0]}); rerun the sample chunks")
        _write_index(folder, slots, guide, opts.w_text, opts.model_dir is not None)
        (folder / PARTIAL_INDEX).unlink(missing_ok=True)
        folders.append(folder)
    _write_manifest(opts, filled, len(slots))
    return folders


def _write_manifest(opts: SampleOptions, filled, n_slots: int) -> None:
    write_manifest(opts.out_dir, "sample", json.loads(json.dumps(asdict(opts), default=str)),
                   prompt_sets=sorted({p.prompt_set for p in filled}),
                   num_images=n_slots * len(opts.guides))


def _sample_guide(pipe, opts: SampleOptions, guide: Guide, slots, stop: StopSignals,
                  index: bool = True) -> Path:
    """One guide folder: generate the missing images batch by batch, then index.csv (`index`)."""
    spec = GuideSpec(guide, opts.w_text, THETA if opts.model_dir else None)
    folder = Path(opts.out_dir) / guide.name
    folder.mkdir(parents=True, exist_ok=True)
    todo = [slot for slot in slots if not (folder / _name(slot[0].index, slot[1])).exists()]
    for start in tqdm(range(0, len(todo), opts.batch_size), desc=f"sample {guide.name}",
                      unit="batch", mininterval=2.0):
        if stop.requested:
            done = [slot for slot in slots if (folder / _name(slot[0].index, slot[1])).exists()]
            _write_index(folder, done, guide, opts.w_text, spec.lora is not None, PARTIAL_INDEX)
            raise Interrupted(f"sampling stopped by {stop.name()} with {len(done)}/{len(slots)} "
                              f"images of {folder}; rerun to resume")
        chunk = todo[start : start + opts.batch_size]
        images = generate(pipe, spec, [theta for *_, theta, _ in chunk],
                          [phi for *_, phi in chunk],
                          [noise_seed(opts.seed, s, p.index) for p, s, *_ in chunk],
                          opts.resolution, opts.steps, opts.scheduler)
        for (p, s, *_), img in zip(chunk, to_pil(images), strict=True):
            save_png_atomic(img, folder / _name(p.index, s))
    if index:
        _write_index(folder, slots, guide, opts.w_text, spec.lora is not None)
        (folder / PARTIAL_INDEX).unlink(missing_ok=True)
    return folder


def _name(prompt_index: int, seed: int) -> str:
    return f"p{prompt_index:03d}_s{seed}.png"


def _write_index(folder: Path, slots, guide: Guide, w_text: float, theta: bool,
                 name: str = "index.csv") -> None:
    """index.csv, written last: its presence marks the folder complete (PARTIAL_INDEX: not).
    `prompt` is what the sampled model saw: the θ prompt, or the base prompt without a LoRA."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=INDEX_COLUMNS)
    writer.writeheader()
    for p, s, theta_prompt, phi_prompt in slots:
        writer.writerow({"file": _name(p.index, s), "prompt_index": p.index, "seed": s,
                         "prompt": theta_prompt if theta else phi_prompt, "scoring_prompt": p.base,
                         **guide.columns(w_text), "prompt_set": p.prompt_set})
    write_text_atomic(folder / name, buf.getvalue())

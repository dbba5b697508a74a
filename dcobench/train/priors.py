"""Class-prior images for DreamBooth + prior preservation, generated once by the base model.

The output folder is keyed by everything that determines the images (model, prompt, count,
seed, steps, cfg, resolution), so a changed setting never reuses stale priors.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm import tqdm

from dcobench.io import (
    derive_seed,
    device,
    save_png_atomic,
    to_pil,
    write_manifest,
    write_text_atomic,
)
from dcobench.sample.denoise import GuideSpec, generate
from dcobench.spec.priors import PriorOptions  # declared there; callers may import it here


def prior_dtype(precision: str, dev) -> torch.dtype:
    """The dtype the class priors are generated in (see PriorOptions.precision)."""
    from dcobench.models.finetuned import autocast_dtype

    return autocast_dtype(precision, dev) or torch.float32


def generate_priors(opts: PriorOptions) -> Path:
    """Write `count` PNGs and index.csv (file, prompt, seed); existing images are kept."""
    from dcobench.models import load_sdxl

    out = Path(opts.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dev = device()
    pipe = load_sdxl(opts.base_model, device=dev, dtype=prior_dtype(opts.precision, dev))
    spec = GuideSpec("cfg", opts.cfg)
    names = [f"{i:04d}.png" for i in range(opts.count)]
    todo = [i for i, n in enumerate(names) if not (out / n).exists()]
    for start in tqdm(range(0, len(todo), opts.batch_size), desc="priors", unit="batch"):
        chunk = todo[start : start + opts.batch_size]
        seeds = [derive_seed(opts.seed, "prior", i) for i in chunk]
        images = generate(pipe, spec, [opts.text] * len(chunk), [opts.text] * len(chunk), seeds,
                          opts.resolution, opts.steps, opts.scheduler)
        for i, img in zip(chunk, to_pil(images), strict=True):
            save_png_atomic(img, out / names[i])
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["file", "prompt", "seed"])
    writer.writerows([n, opts.text, opts.seed] for n in names)
    write_text_atomic(out / "index.csv", buf.getvalue())
    write_manifest(out, "priors", json.loads(json.dumps(asdict(opts), default=str)))
    return out

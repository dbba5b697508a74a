"""Cached training inputs: VAE latents per image and augmentation, fixed text embeddings.

Latents are encoded once per run, indexed by (image, flip) — never by step — and text
embeddings are encoded once for every caption that does not change during training (the base
captions of the reference pass, θ's captions when no token is learned, the class-prior prompts).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dcobench.data.captions import image_captions
from dcobench.data.concept import Concept
from dcobench.io import load_image
from dcobench.models import text


@dataclass
class Batch:
    """latents (N images, A augmentations, 4, h, w); θ captions; φ (base) captions; cached text."""

    latents: torch.Tensor
    captions: list[str]
    base_captions: list[str]
    cond: dict[str, torch.Tensor] = field(default_factory=dict)


@torch.no_grad()
def encode_latents(pipe, paths: list[Path], resolution: int, flips: bool = False) -> torch.Tensor:
    """VAE latent means × scaling factor: (N, 2 if flips else 1, 4, R/8, R/8)."""
    pixels = torch.stack([load_image(p, resolution) for p in paths]).to(pipe.vae.device)
    views = [pixels, pixels.flip(-1)] if flips else [pixels]
    out = []
    for view in views:
        dist = pipe.vae.encode(view.to(pipe.vae.dtype)).latent_dist
        out.append(dist.mean.float() * pipe.vae.config.scaling_factor)
    return torch.stack(out, dim=1)


def reference_latents(pipe, paths: list[Path], resolution: int) -> torch.Tensor:
    """Unflipped latents of reference images in the UNet's dtype: (N, 4, R/8, R/8)."""
    return encode_latents(pipe, paths, resolution)[:, 0].to(pipe.unet.dtype)


@torch.no_grad()
def encode_fixed(pipe, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    return text.encode_prompts(pipe, prompts)


def reference_batch(pipe, concept: Concept, opts) -> Batch:
    """The concept's images with their θ and φ captions; fixed embeddings encoded once."""
    caps, base = image_captions(concept, opts.captions, opts.learns_token)
    batch = Batch(encode_latents(pipe, concept.images, opts.resolution, opts.random_flip), caps, base)
    batch.cond["base_embeds"], batch.cond["base_pooled"] = encode_fixed(pipe, base)
    if not opts.learns_token:
        batch.cond["embeds"], batch.cond["pooled"] = encode_fixed(pipe, caps)
    return batch


def prior_batch(pipe, prior_dir: Path, opts) -> Batch:
    """Class-prior images (index.csv: file, prompt) with their prompts' embeddings."""
    index = Path(prior_dir) / "index.csv"
    if not index.exists():
        raise FileNotFoundError(f"{index} is missing: generate the class priors first "
                                "(python -m dcobench priors)")
    with open(index, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{index} lists no class-prior images")
    paths = [Path(prior_dir) / r["file"] for r in rows]
    prompts = [r["prompt"] for r in rows]
    batch = Batch(encode_latents(pipe, paths, opts.resolution), prompts, prompts)
    batch.cond["embeds"], batch.cond["pooled"] = encode_fixed(pipe, prompts)
    return batch

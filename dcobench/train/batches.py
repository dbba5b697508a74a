"""Cached training inputs: VAE latents per image and augmentation, fixed text embeddings.

Latents are encoded once per run, indexed by (image, flip) — never by step — and text
embeddings are encoded once for every caption that does not change during training (the base
captions of the reference pass, θ's captions when no token is learned, the class-prior prompts).
"""

from __future__ import annotations

import contextlib
import csv
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dcobench.data.captions import image_captions
from dcobench.data.concept import Concept
from dcobench.io import load_image
from dcobench.models import text
from dcobench.models.finetuned import autocast_dtype

# Images per VAE encoder call. SDXL's VAE encoder at 1024² holds ≈ 2.5 GiB of fp32 activations
# per image, so the 100 class-prior images of DB+p.p. in one call need ≈ 250 GiB; 4 per call
# keeps the encode near 10 GiB, below the UNet's own training peak (see docs/gpu.md). The latents
# do not depend on it: each image is encoded on its own rows (the VAE has no batch statistics).
VAE_ENCODE_CHUNK = 4


@dataclass
class Batch:
    """latents (N images, A augmentations, 4, h, w); θ captions; φ (base) captions; cached text."""

    latents: torch.Tensor
    captions: list[str]
    base_captions: list[str]
    cond: dict[str, torch.Tensor] = field(default_factory=dict)


@torch.no_grad()
def encode_latents(pipe, paths: list[Path], resolution: int, flips: bool = False,
                   chunk: int = VAE_ENCODE_CHUNK) -> torch.Tensor:
    """VAE latent means × scaling factor: (N, 2 if flips else 1, 4, R/8, R/8), fp32.

    Images are read and encoded `chunk` at a time (peak memory bounded whatever N is). The
    latents are kept in fp32 — exact cached targets, and small: 100 images at 1024² are 26 MB."""
    if chunk < 1:
        raise ValueError(f"VAE encode chunk must be >= 1, got {chunk}")
    parts = [_encode_chunk(pipe, paths[i : i + chunk], resolution, flips)
             for i in range(0, len(paths), chunk)]
    return torch.cat(parts, dim=0)


def _encode_chunk(pipe, paths: list[Path], resolution: int, flips: bool) -> torch.Tensor:
    """One VAE call per view for a few images: (n, views, 4, R/8, R/8) fp32."""
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
def encode_fixed(pipe, prompts: list[str],
                 precision: str = "fp32") -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings of captions that never change, computed at the training step's precision:
    the step encodes learned-token captions under autocast at `precision` (trainer), so the
    cached ones (base captions, class-prior prompts) go through the same autocast — otherwise
    the reference pass would see fp32 embeddings beside bf16 ones for the same words."""
    amp = autocast_dtype(precision, pipe.text_encoder_2.device)
    ctx = (torch.autocast(device_type=pipe.text_encoder_2.device.type, dtype=amp)
           if amp is not None else contextlib.nullcontext())
    with ctx:
        return text.encode_prompts(pipe, prompts)


def trains_token(opts) -> bool:
    """Whether a run steps its learned token: it has one (`textual_inversion`) and a token lr
    above 0. At `ti_lr: 0` the token is the official code's in effect (its fp16 text encoders
    hand the optimizer fp32 copies that never get a gradient): it keeps its initial embedding
    (the class words' mean), its captions are encoded once like fixed text, no gradient flows
    into the text encoders, and the clipping norm counts the LoRA alone, as there."""
    return bool(opts.learns_token and opts.ti_lr > 0)


def reference_batch(pipe, concept: Concept, opts) -> Batch:
    """The concept's images with their θ and φ captions; fixed embeddings encoded once (θ's
    too when its token is not trained: `trains_token`)."""
    caps, base = image_captions(concept, opts.captions, opts.learns_token)
    batch = Batch(encode_latents(pipe, concept.images, opts.resolution, opts.random_flip), caps, base)
    prec = opts.mixed_precision
    batch.cond["base_embeds"], batch.cond["base_pooled"] = encode_fixed(pipe, base, prec)
    if not trains_token(opts):
        batch.cond["embeds"], batch.cond["pooled"] = encode_fixed(pipe, caps, prec)
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
    batch.cond["embeds"], batch.cond["pooled"] = encode_fixed(pipe, prompts, opts.mixed_precision)
    return batch

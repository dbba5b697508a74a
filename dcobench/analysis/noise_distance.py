"""Analyses: noise distance ‖ε_θ − ε_φ‖² per timestep on the reference images (paper Fig 8c)
and the per-layer cosine between subject and style LoRA columns (paper Fig 10)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from dcobench.data.concept import Concept, load_concept
from dcobench.io import derive_seed
from dcobench.models import text
from dcobench.models.adapters import adapters_disabled


@dataclass(frozen=True)
class NoiseDistanceOptions:
    """Distance of the fine-tuned from the pretrained prediction on the concept's own data."""

    timesteps: int = 10  # evenly spaced over [0, T)
    noises: int = 100  # noise draws per timestep, cycling over the reference images (paper: 100)
    resolution: int = 1024
    seed: int = 0
    batch_size: int = 16

    def __post_init__(self) -> None:
        if min(self.timesteps, self.noises, self.batch_size, self.resolution) < 1:
            raise ValueError("timesteps, noises, batch_size and resolution must be >= 1")


def timestep_grid(num_train_timesteps: int, count: int) -> list[int]:
    """`count` evenly spaced integer timesteps in [0, T − 1], ascending."""
    return torch.linspace(0, num_train_timesteps - 1, count).round().long().tolist()


def model_captions(concept: Concept, model_dir: Path | None) -> tuple[list[str], list[str]]:
    """(θ captions, φ captions) per reference image as the model was trained: compact-caption
    runs (manifest options.captions) use "a photo of sks {class}" for both."""
    manifest = Path(model_dir) / "manifest.json" if model_dir else None
    if manifest is not None and manifest.exists():
        captions = json.loads(manifest.read_text()).get("options", {}).get("captions")
        if captions == "compact":
            caps = [concept.compact_caption] * len(concept.images)
            return caps, caps
    caps = [concept.caption_for(p) for p in concept.images]
    return caps, [concept.base_caption(c) for c in caps]


@torch.no_grad()
def noise_distance(pipe, concept_dir: Path, opts: NoiseDistanceOptions,
                   model_dir: Path | None = None) -> list[dict]:
    """Rows (timestep, distance, std, n): mean over `noises` draws of the per-element squared
    difference between ε_θ(x_t; c_ti) (LoRA on) and ε_φ(x_t; c) (LoRA off)."""
    concept = load_concept(concept_dir)
    latents = encode_latents(pipe, concept.images, opts.resolution)  # (N, 4, h, w)
    theta_caps, base_caps = model_captions(concept, model_dir)
    theta_embeds, theta_pooled = text.encode_prompts(pipe, theta_caps)
    base_embeds, base_pooled = text.encode_prompts(pipe, base_caps)
    scheduler = _scheduler(pipe)
    n_img, rows = latents.shape[0], []
    grid = timestep_grid(scheduler.config.num_train_timesteps, opts.timesteps)
    for t in tqdm(grid, desc=f"noise distance {concept.name}", unit="t", mininterval=2.0):
        dists = []
        for start in range(0, opts.noises, opts.batch_size):
            idx = torch.arange(start, min(start + opts.batch_size, opts.noises)) % n_img
            g = torch.Generator().manual_seed(derive_seed(opts.seed, "noise", t, start))
            noise = torch.randn(latents[idx].shape, generator=g).to(latents.device, latents.dtype)
            tt = torch.full((len(idx),), t, device=latents.device)
            x_t = scheduler.add_noise(latents[idx], noise, tt)
            eps_theta = _unet(pipe, x_t, tt, theta_embeds[idx], theta_pooled[idx], opts.resolution)
            with adapters_disabled(pipe.unet):
                eps_phi = _unet(pipe, x_t, tt, base_embeds[idx], base_pooled[idx], opts.resolution)
            diff = (eps_theta.float() - eps_phi.float()) ** 2
            dists.append(diff.reshape(len(idx), -1).mean(dim=1))  # (b,)
        d = torch.cat(dists)
        std = d.std().item() if len(d) > 1 else 0.0
        rows.append({"timestep": t, "distance": d.mean().item(), "std": std, "n": len(d)})
    return rows


def encode_latents(pipe, paths: list[Path], resolution: int) -> torch.Tensor:
    """The training code's VAE latents of reference images: (N, 4, R/8, R/8)."""
    try:
        from dcobench.train.batches import encode_latents as encode
    except ImportError:  # older layout: train.py held it
        from dcobench.train.trainer import encode_latents as encode
    latents = encode(pipe, paths, resolution)
    latents = latents[:, 0] if latents.ndim == 5 else latents  # (N, views, 4, h, w) -> first view
    return latents.to(pipe.unet.dtype)


def _unet(pipe, x_t, t, embeds, pooled, resolution):
    ids = text.time_ids(resolution, resolution, x_t.shape[0], x_t.device, x_t.dtype)
    return pipe.unet(x_t, t, encoder_hidden_states=embeds,
                     added_cond_kwargs={"text_embeds": pooled, "time_ids": ids}).sample


def _scheduler(pipe):
    from diffusers import DDPMScheduler

    return DDPMScheduler.from_config(pipe.scheduler.config)


def column_cosine(a1, b1, s1, a2, b2, s2) -> torch.Tensor:
    """Cosine between column j of ΔW₁ = s₁B₁A₁ and column j of ΔW₂, for every input column j,
    from the factors alone: ⟨B₁a₁ⱼ, B₂a₂ⱼ⟩ = a₁ⱼᵀ(B₁ᵀB₂)a₂ⱼ. Zero columns give 0. (in,)"""
    a1, b1, a2, b2 = (t.double() for t in (a1, b1, a2, b2))
    dot = ((b1.T @ b2) @ a2 * a1).sum(dim=0) * s1 * s2  # (in,)
    n1 = ((b1.T @ b1) @ a1 * a1).sum(dim=0).clamp(min=0).sqrt() * abs(s1)
    n2 = ((b2.T @ b2) @ a2 * a2).sum(dim=0).clamp(min=0).sqrt() * abs(s2)
    denom = n1 * n2
    return torch.where(denom > 0, dot / denom.clamp(min=1e-300), torch.zeros_like(dot)).float()


def lora_cosine(subject, style) -> list[dict]:
    """Per shared layer: mean cosine and mean |cosine| between the subject's and the style's
    ΔW columns (paper Fig 10). `subject`, `style`: dcobench.merge.lora.Lora."""
    rows = []
    for layer in sorted(set(subject.A) & set(style.A)):
        cos = column_cosine(subject.A[layer], subject.B[layer], subject.scale,
                            style.A[layer], style.B[layer], style.scale)
        rows.append({"layer": layer, "block": layer.split(".", 1)[0],
                     "mean_cos": cos.mean().item(), "mean_abs_cos": cos.abs().mean().item(),
                     "columns": cos.numel()})
    return rows

"""Analyses: noise distance ‖ε_θ − ε_φ‖² per timestep on the reference images (paper Fig 8c)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from dcobench import text
from dcobench.adapters import adapters_disabled
from dcobench.data.concept import load_concept
from dcobench.io import derive_seed


@dataclass(frozen=True)
class NoiseDistanceOptions:
    """Distance of the fine-tuned from the pretrained prediction on the concept's own data."""

    timesteps: int = 10  # evenly spaced over [0, T)
    noises: int = 100  # noise draws per (image, timestep) — the paper uses 100
    resolution: int = 1024
    seed: int = 0
    batch_size: int = 16


def timestep_grid(num_train_timesteps: int, count: int) -> list[int]:
    """`count` evenly spaced integer timesteps in [0, T − 1], ascending."""
    return torch.linspace(0, num_train_timesteps - 1, count).round().long().tolist()


@torch.no_grad()
def noise_distance(pipe, concept_dir: Path, opts: NoiseDistanceOptions) -> list[dict]:
    """Rows (timestep, distance, std, n): mean over images × noises of the per-element
    squared difference between ε_θ(x_t; c_ti) (LoRA on) and ε_φ(x_t; c) (LoRA off)."""
    from dcobench.train import encode_latents

    concept = load_concept(concept_dir)
    latents = encode_latents(pipe, concept.images, opts.resolution)  # (N, 4, h, w)
    captions = [concept.caption_for(p) for p in concept.images]
    theta_embeds, theta_pooled = text.encode_prompts(pipe, captions)
    base_embeds, base_pooled = text.encode_prompts(pipe, [concept.base_caption(c) for c in captions])
    scheduler = _scheduler(pipe)
    n_img, rows = latents.shape[0], []
    for t in timestep_grid(scheduler.config.num_train_timesteps, opts.timesteps):
        dists = []
        for start in range(0, opts.noises * n_img, opts.batch_size):
            idx = torch.arange(start, min(start + opts.batch_size, opts.noises * n_img)) % n_img
            g = torch.Generator().manual_seed(derive_seed(opts.seed, "noise", t, start))
            noise = torch.randn(latents[idx].shape, generator=g).to(latents.device)
            tt = torch.full((len(idx),), t, device=latents.device)
            x_t = scheduler.add_noise(latents[idx], noise, tt)
            eps_theta = _unet(pipe, x_t, tt, theta_embeds[idx], theta_pooled[idx], opts.resolution)
            with adapters_disabled(pipe.unet):
                eps_phi = _unet(pipe, x_t, tt, base_embeds[idx], base_pooled[idx], opts.resolution)
            diff = (eps_theta.float() - eps_phi.float()) ** 2
            dists.append(diff.reshape(len(idx), -1).mean(dim=1))  # (b,)
        d = torch.cat(dists)
        rows.append({"timestep": t, "distance": d.mean().item(), "std": d.std().item(), "n": len(d)})
    return rows


def _unet(pipe, x_t, t, embeds, pooled, resolution):
    ids = text.time_ids(resolution, resolution, x_t.shape[0], x_t.device, x_t.dtype)
    return pipe.unet(x_t, t, encoder_hidden_states=embeds,
                     added_cond_kwargs={"text_embeds": pooled, "time_ids": ids}).sample


def _scheduler(pipe):
    from diffusers import DDPMScheduler

    return DDPMScheduler.from_config(pipe.scheduler.config)

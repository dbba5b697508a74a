"""Noise distance ‖ε_θ − ε_φ‖² per timestep on a concept's reference images (paper Fig 8c)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from dcobench.data.concept import load_concept
from dcobench.io import derive_seed
from dcobench.models import text
from dcobench.models.adapters import adapters_disabled
from dcobench.models.finetuned import model_captions, unet_eps
from dcobench.train.batches import reference_latents


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


@torch.no_grad()
def noise_distance(pipe, concept_dir: Path, opts: NoiseDistanceOptions,
                   model_dir: Path | None = None) -> list[dict]:
    """Rows (timestep, distance, std, n, distance_sum, elements) over `noises` draws of the
    squared difference between ε_θ(x_t; c_ti) (LoRA on) and ε_φ(x_t; c) (LoRA off):
    `distance` = mean over draws of the per-element mean (std: its std over draws),
    `distance_sum` = mean over draws of ‖ε_θ − ε_φ‖², the sum over the `elements` = C·h·w latent
    elements that §5.4 names (= distance × elements).

    Everything runs in fp32 (a bf16 pipeline is upcast in place; load it at fp32 to keep its
    weights exact): Fig 8c is a difference of two small predictions, and bf16 encoding and
    noising moved the tiny model's distance by +18 % at t = 0 and +9 % at t = 999."""
    concept = load_concept(concept_dir)
    to_fp32(pipe)
    latents = reference_latents(pipe, concept.images, opts.resolution)  # (N, 4, h, w)
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
            eps_theta = unet_eps(pipe.unet, x_t, tt, theta_embeds[idx], theta_pooled[idx], opts.resolution)
            with adapters_disabled(pipe.unet):
                eps_phi = unet_eps(pipe.unet, x_t, tt, base_embeds[idx], base_pooled[idx], opts.resolution)
            diff = (eps_theta.float() - eps_phi.float()) ** 2
            dists.append(diff.reshape(len(idx), -1).mean(dim=1))  # (b,)
        d = torch.cat(dists).double()
        std = d.std().item() if len(d) > 1 else 0.0
        elements = latents[0].numel()  # C·h·w
        rows.append({"timestep": t, "distance": d.mean().item(), "std": std, "n": len(d),
                     "distance_sum": d.mean().item() * elements, "elements": elements})
    return rows


def to_fp32(pipe) -> None:
    """UNet (with its LoRA), VAE and both text encoders in fp32, in place."""
    for module in (pipe.unet, pipe.vae, pipe.text_encoder, pipe.text_encoder_2):
        module.to(torch.float32)


def _scheduler(pipe):
    from diffusers import DDPMScheduler

    return DDPMScheduler.from_config(pipe.scheduler.config)

"""Denoising with CFG or reward guidance; RG runs its three rows in one batched UNet call.

Row layout per step (B images): CFG [∅ ×B, c ×B] with the model's own adapter; RG
[φ∅ ×B, φc ×B, θc_ti ×B] with "__base__" adapters on the first 2B rows.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from dcobench import guidance, text
from dcobench.adapters import BASE, per_row_adapters


@dataclass(frozen=True)
class GuideSpec:
    """`kind` is 'cfg' or 'rg'; `w_rg` is ω_rg for RG; `lora` the θ adapter (None: base model)."""

    kind: str
    w_text: float = 7.5
    w_rg: float | None = None
    lora: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("cfg", "rg"):
            raise ValueError(f"guide kind must be cfg or rg, got {self.kind!r}")
        if self.kind == "rg" and (self.w_rg is None or self.lora is None):
            raise ValueError("reward guidance needs w_rg and a LoRA adapter name")


def make_scheduler(pipe, name: str):
    """A fresh inference scheduler from the pipeline's config ('ddim', 'euler', 'dpm')."""
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler

    classes = {"ddim": DDIMScheduler, "euler": EulerDiscreteScheduler, "dpm": DPMSolverMultistepScheduler}
    if name not in classes:
        raise ValueError(f"unknown scheduler {name!r}; known: {', '.join(classes)}")
    return classes[name].from_config(pipe.scheduler.config)


def initial_noise(seeds: list[int], shape: tuple[int, int, int]) -> torch.Tensor:
    """One (C, h, w) Gaussian per seed, each from its own generator: (B, C, h, w)."""
    return torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(s)) for s in seeds])


@torch.no_grad()
def conditioning(pipe, spec: GuideSpec, theta_prompts: list[str], base_prompts: list[str]):
    """Stacked prompt embeddings, pooled embeddings and per-row adapter names."""
    b = len(theta_prompts)
    uncond, uncond_pooled = text.empty_conditioning(pipe, b)
    if spec.kind == "cfg":
        cond, pooled = text.encode_prompts(pipe, theta_prompts if spec.lora else base_prompts)
        return torch.cat([uncond, cond]), torch.cat([uncond_pooled, pooled]), None
    base, base_pooled = text.encode_prompts(pipe, base_prompts)
    theta, theta_pooled = text.encode_prompts(pipe, theta_prompts)
    names = [BASE] * (2 * b) + [spec.lora] * b
    return (torch.cat([uncond, base, theta]), torch.cat([uncond_pooled, base_pooled, theta_pooled]), names)


def combine(spec: GuideSpec, eps: torch.Tensor) -> torch.Tensor:
    """Split the stacked rows and apply the guidance formula."""
    if spec.kind == "cfg":
        eps_u, eps_c = eps.chunk(2)
        return guidance.cfg(eps_u, eps_c, spec.w_text)
    eps_u, eps_c, eps_t = eps.chunk(3)
    return guidance.reward_guidance(eps_u, eps_c, eps_t, spec.w_text, spec.w_rg)


@torch.no_grad()
def generate(pipe, spec: GuideSpec, theta_prompts: list[str], base_prompts: list[str],
             seeds: list[int], resolution: int, steps: int, scheduler: str = "ddim") -> torch.Tensor:
    """Images (B, 3, H, W) in [-1, 1], one per (prompt, seed) row."""
    unet, dev = pipe.unet, pipe.unet.device
    sched = make_scheduler(pipe, scheduler)
    sched.set_timesteps(steps, device=dev)
    embeds, pooled, names = conditioning(pipe, spec, theta_prompts, base_prompts)
    rows = embeds.shape[0] // len(seeds)
    h = resolution // pipe.vae_scale_factor
    latents = initial_noise(seeds, (unet.config.in_channels, h, h)).to(dev) * sched.init_noise_sigma
    ids = text.time_ids(resolution, resolution, embeds.shape[0], dev, embeds.dtype)
    cond = {"text_embeds": pooled.to(unet.dtype), "time_ids": ids.to(unet.dtype)}
    embeds = embeds.to(unet.dtype)
    if spec.lora is not None:
        pipe.set_adapters([spec.lora])
    hooks = per_row_adapters(unet, names) if names else contextlib.nullcontext()
    with hooks:
        for t in sched.timesteps:
            x = sched.scale_model_input(latents, t).repeat(rows, 1, 1, 1)  # (rows·B, C, h, w)
            eps = unet(x.to(unet.dtype), t, encoder_hidden_states=embeds, added_cond_kwargs=cond).sample
            latents = sched.step(combine(spec, eps.float()), t, latents).prev_sample
    return decode(pipe, latents)


@torch.no_grad()
def decode(pipe, latents: torch.Tensor) -> torch.Tensor:
    vae = pipe.vae
    return vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor).sample.float()

"""Denoising with CFG or reward guidance; RG runs its three rows in one batched UNet call.

Row layout per step (B images): CFG [∅ ×B, c ×B] with the model's own adapter; RG
[φ∅ ×B, φc ×B, θc_ti ×B] with "__base__" adapters on the first 2B rows (peft's per-row adapter
mechanism, `adapters.per_row_adapters`). `arrangement="split"` is the official code's
arrangement instead: one LoRA call on the θ rows, then one 2B-row call of the base model. It
gives the same ε̂ (tested) and is kept for the benchmark and as an oracle.

The initial noise of a row depends only on its seed (one generator per row, drawn on the CPU),
so batch composition, batch size and device never change which noise an image gets.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch

from dcobench.models import text
from dcobench.models.adapters import BASE, adapters_disabled, lora_layers, per_row_adapters
from dcobench.sample import guidance
from dcobench.sample.guides import Guide
from dcobench.spec.sample import SCHEDULERS

ARRANGEMENTS = ("batched", "split")


@dataclass(frozen=True)
class GuideSpec:
    """A guide as the sampler runs it: the guide (`sample.guides.Guide`, the one guide type; a
    name such as "cfg" or "rg3" is parsed by `Guide.parse`), ω_text and the θ adapter `lora`
    (None: the base model)."""

    guide: Guide | str
    w_text: float = 7.5
    lora: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.guide, str):
            object.__setattr__(self, "guide", Guide.parse(self.guide))
        if self.guide.kind == "rg" and self.lora is None:
            raise ValueError("reward guidance needs a LoRA adapter name")

    @property
    def kind(self) -> str:
        return self.guide.kind

    @property
    def w_rg(self) -> float | None:
        return self.guide.w_rg


def make_scheduler(pipe, name: str):
    """A fresh inference scheduler from the pipeline's config ('ddim', 'euler', 'dpm')."""
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler

    classes = dict(zip(SCHEDULERS, (DDIMScheduler, EulerDiscreteScheduler,
                                    DPMSolverMultistepScheduler), strict=True))
    if name not in classes:
        raise ValueError(f"unknown scheduler {name!r}; known: {', '.join(classes)}")
    config = dict(pipe.scheduler.config)
    # DDIM's own default clips the predicted x0 to [-1, 1], a pixel-space range; latents are
    # not in it (unit variance after the VAE's scaling). SDXL's scheduler config says
    # clip_sample: false explicitly; a config that does not say (an Euler config saved by
    # diffusers, as the tiny and world presets were) means the same.
    config.setdefault("clip_sample", False)
    config.setdefault("set_alpha_to_one", False)
    return classes[name].from_config(config)


def initial_noise(seeds: list[int], shape: tuple[int, int, int]) -> torch.Tensor:
    """One (C, h, w) Gaussian per seed, each from its own CPU generator: (B, C, h, w)."""
    return torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(s)) for s in seeds])


def device_dtype(model: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    """Device and dtype of a model's first parameter. diffusers' `ModelMixin.device` / `.dtype`
    walk every submodule on each access (its group-offloading check): 3-8 ms a call on the
    tiny UNet, measured, paid several times per batch."""
    param = next(model.parameters())
    return param.device, param.dtype


@dataclass
class Conditioning:
    """Stacked rows of one batch: prompt embeddings, pooled embeddings, SDXL time ids, and the
    per-row adapter names (None when every row runs the pipeline's active adapters)."""

    embeds: torch.Tensor  # (rows·B, 77, d), in the UNet's dtype (the model input's dtype too)
    pooled: torch.Tensor  # (rows·B, d_pool)
    time_ids: torch.Tensor  # (rows·B, 6)
    names: list[str] | None

    def rows(self, sl: slice) -> tuple[torch.Tensor, dict]:
        return self.embeds[sl], {"text_embeds": self.pooled[sl], "time_ids": self.time_ids[sl]}


@torch.no_grad()
def conditioning(pipe, spec: GuideSpec, theta_prompts: list[str], base_prompts: list[str],
                 height: int = 1024, width: int | None = None) -> Conditioning:
    """The rows of `spec` for B prompts, in the UNet's dtype and device.

    Size/crop conditioning is (height, width, 0, 0, height, width), as in training.
    """
    b, unet = len(theta_prompts), pipe.unet
    uncond, uncond_pooled = text.empty_conditioning(pipe, b)
    if spec.kind == "cfg":
        cond, pooled = text.encode_prompts(pipe, theta_prompts if spec.lora else base_prompts)
        embeds, pooled, names = torch.cat([uncond, cond]), torch.cat([uncond_pooled, pooled]), None
    else:
        base, base_pooled = text.encode_prompts(pipe, base_prompts)
        theta, theta_pooled = text.encode_prompts(pipe, theta_prompts)
        embeds = torch.cat([uncond, base, theta])
        pooled = torch.cat([uncond_pooled, base_pooled, theta_pooled])
        names = [BASE] * (2 * b) + [spec.lora] * b
    ids = text.time_ids(height, width or height, embeds.shape[0])
    dev, dtype = device_dtype(unet)
    return Conditioning(embeds.to(dev, dtype), pooled.to(dev, dtype), ids.to(dev, dtype), names)


def combine(spec: GuideSpec, eps: torch.Tensor) -> torch.Tensor:
    """Split the stacked rows and apply the guidance formula."""
    kind = guidance.GUIDANCE[spec.kind]
    return kind.combine(eps.chunk(kind.rows), spec.w_text, spec.w_rg)


def predict_batched(unet, cond: Conditioning, x: torch.Tensor, t) -> torch.Tensor:
    """All rows in one UNet call: x (B, C, h, w) repeated per row group -> ε (rows·B, ...)."""
    rows = cond.embeds.shape[0] // x.shape[0]
    embeds, added = cond.rows(slice(None))
    return unet(x.repeat(rows, 1, 1, 1).to(embeds.dtype), t, encoder_hidden_states=embeds,
                added_cond_kwargs=added).sample


def predict_split(unet, cond: Conditioning, x: torch.Tensor, t) -> torch.Tensor:
    """The official code's RG arrangement: θ rows with the LoRA, then the 2B base rows in one
    call with every adapter off. Same output layout as `predict_batched`."""
    b = x.shape[0]
    x = x.to(cond.embeds.dtype)
    embeds, added = cond.rows(slice(2 * b, 3 * b))
    eps_theta = unet(x, t, encoder_hidden_states=embeds, added_cond_kwargs=added).sample
    embeds, added = cond.rows(slice(0, 2 * b))
    with adapters_disabled(unet):
        eps_base = unet(x.repeat(2, 1, 1, 1), t, encoder_hidden_states=embeds,
                        added_cond_kwargs=added).sample
    return torch.cat([eps_base, eps_theta])


StepCallback = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], None]


@torch.no_grad()
def denoise(pipe, spec: GuideSpec, cond: Conditioning, noise: torch.Tensor, steps: int,
            scheduler: str = "ddim", arrangement: str = "batched",
            on_step: StepCallback | None = None) -> torch.Tensor:
    """Final latents from `noise` (B, C, h, w). `on_step(i, t, x_in, eps_hat)` sees every step's
    scaled model input and guided prediction (tests compare them with separate forwards).

    The θ adapter `spec.lora` must be the pipeline's active adapter (as after
    `load_lora_weights`); CFG rows run the active adapters, RG's θ rows name it explicitly.
    The loop runs under `torch.inference_mode` (the same kernels as `no_grad`, less
    per-op bookkeeping); the returned latents are an ordinary tensor.
    """
    if arrangement not in ARRANGEMENTS:
        raise ValueError(f"unknown arrangement {arrangement!r}; known: {', '.join(ARRANGEMENTS)}")
    if arrangement == "split" and spec.kind != "rg":
        raise ValueError("the split arrangement is reward guidance only")
    with torch.inference_mode():
        latents = _loop(pipe, spec, cond, noise, steps, scheduler, arrangement, on_step)
    return latents.clone()  # outside inference mode: a normal tensor


def _loop(pipe, spec, cond, noise, steps, scheduler, arrangement, on_step) -> torch.Tensor:
    unet = pipe.unet
    dev, _ = device_dtype(unet)
    sched = make_scheduler(pipe, scheduler)
    sched.set_timesteps(steps, device=dev)
    latents = noise.to(dev) * sched.init_noise_sigma
    predict = predict_split if arrangement == "split" else predict_batched
    per_row = cond.names is not None and arrangement == "batched"
    layers = lora_layers(unet) if per_row else None

    def rows():
        return per_row_adapters(unet, cond.names, layers) if per_row else contextlib.nullcontext()

    def guided(x, t):
        return combine(spec, predict(unet, cond, x, t).float())

    if on_step is None:  # the row hooks stay on for the whole loop
        with rows():
            for t in sched.timesteps:
                eps = guided(sched.scale_model_input(latents, t), t)
                latents = sched.step(eps, t, latents).prev_sample
        return latents
    for i, t in enumerate(sched.timesteps):  # on_step's own forwards run without the row hooks
        x = sched.scale_model_input(latents, t)
        with rows():
            eps = guided(x, t)
        on_step(i, t, x, eps)
        latents = sched.step(eps, t, latents).prev_sample
    return latents


@torch.no_grad()
def generate(pipe, spec: GuideSpec, theta_prompts: list[str], base_prompts: list[str],
             seeds: list[int], resolution: int, steps: int, scheduler: str = "ddim",
             arrangement: str = "batched", on_step: StepCallback | None = None) -> torch.Tensor:
    """Images (B, 3, H, W) in [-1, 1], one per (prompt, seed) row."""
    if not (len(theta_prompts) == len(base_prompts) == len(seeds)):
        raise ValueError("generate: theta_prompts, base_prompts and seeds must have equal length")
    h = resolution // pipe.vae_scale_factor
    noise = initial_noise(seeds, (pipe.unet.config.in_channels, h, h))
    cond = conditioning(pipe, spec, theta_prompts, base_prompts, resolution)
    latents = denoise(pipe, spec, cond, noise, steps, scheduler, arrangement, on_step)
    return decode(pipe, latents)


@torch.no_grad()
def decode(pipe, latents: torch.Tensor) -> torch.Tensor:
    """VAE decode. An fp16 VAE with `force_upcast` (SDXL's overflows in fp16) is moved to fp32
    once and stays there (+160 MB), instead of being cast up and back on every batch."""
    vae = pipe.vae
    _, dtype = device_dtype(vae)
    if dtype == torch.float16 and vae.config.get("force_upcast", False):
        vae.to(torch.float32)  # outside inference mode: the weights stay ordinary tensors
        dtype = torch.float32
    with torch.inference_mode():
        images = vae.decode(latents.to(dtype) / vae.config.scaling_factor).sample
    return images.to(torch.float32, copy=True)  # outside inference mode: a normal tensor

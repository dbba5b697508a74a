"""ZipLoRA's inputs: the base pipeline with both learned tokens, and a per-step batch sampler
that draws (image, caption, t, ε) for the subject rows and the style rows."""

from __future__ import annotations

from pathlib import Path

import torch

from dcobench.data.concept import load_concept
from dcobench.io import derive_seed
from dcobench.merge.lora import MergeOptions
from dcobench.models import text
from dcobench.models.finetuned import load_finetuned, load_tokens, model_captions
from dcobench.train.batches import reference_latents


def load_pipeline(opts: MergeOptions):
    """The pretrained SDXL pipeline (no adapters) with the learned tokens of either model (styles
    usually have none);
    frozen. bf16 on GPU, fp32 on CPU."""
    pipe = load_finetuned(opts.base_model, precision="bf16" if torch.cuda.is_available() else "fp32")
    for folder in (opts.subject_model, opts.style_model):
        load_tokens(pipe, folder)
    return pipe


def _concept_data(pipe, concept_dir: Path, model_dir: Path | None, resolution: int) -> dict:
    concept = load_concept(concept_dir)
    captions, _ = model_captions(concept, model_dir)
    with torch.no_grad():
        latents = reference_latents(pipe, concept.images, resolution)  # (N, 4, h, w)
        embeds, pooled = text.encode_prompts(pipe, captions)  # (N, 77, d), (N, d_pool)
    return {"latents": latents, "embeds": embeds, "pooled": pooled}


def make_sampler(pipe, opts: MergeOptions, zopts):
    """step -> batch dict for ziplora_step: `batch_size` subject rows, then as many style rows;
    image choice, timestep and noise derive from (seed, step)."""
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    T = scheduler.config.num_train_timesteps
    data = [_concept_data(pipe, opts.subject_dir, opts.subject_model, zopts.resolution),
            _concept_data(pipe, opts.style_dir, opts.style_model, zopts.resolution)]

    def sample(step: int) -> dict:
        parts = {"x_t": [], "t": [], "embeds": [], "pooled": []}
        for role, d in zip(("subject", "style"), data, strict=True):
            g = torch.Generator().manual_seed(derive_seed(zopts.seed, "ziplora", role, step))
            idx = torch.randint(len(d["latents"]), (zopts.batch_size,), generator=g)
            t = torch.randint(T, (zopts.batch_size,), generator=g)
            noise = torch.randn(d["latents"][idx].shape, generator=g)
            lat = d["latents"][idx]
            t = t.to(lat.device)
            parts["x_t"].append(scheduler.add_noise(lat, noise.to(lat.device, lat.dtype), t))
            parts["t"].append(t)
            parts["embeds"].append(d["embeds"][idx])
            parts["pooled"].append(d["pooled"][idx])
        batch = {k: torch.cat(v) for k, v in parts.items()}
        n = batch["x_t"].shape[0]
        batch["time_ids"] = text.time_ids(zopts.resolution, zopts.resolution, n,
                                          batch["x_t"].device, batch["x_t"].dtype)
        batch["n_subject"] = zopts.batch_size
        return batch

    return sample

"""A fine-tuned SDXL: base pipeline + LoRA + learned tokens at a precision, and the UNet call
with SDXL's added conditioning (pooled text embeddings, size/crop time ids)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open

from dcobench.data.captions import image_captions
from dcobench.data.concept import Concept
from dcobench.io import verify_file
from dcobench.models import text

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
THETA = "theta"  # adapter name of the loaded LoRA


def autocast_dtype(name: str, dev: torch.device) -> torch.dtype | None:
    """The low-precision dtype of the frozen weights, or None for fp32 (auto: fp32 on CPU)."""
    if name == "auto":
        if dev.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if name == "fp16" and dev.type != "cuda":
        raise ValueError("mixed_precision fp16 needs a CUDA GPU (use bf16 or fp32 on CPU)")
    return PRECISIONS[name]


def learned_tokens(model_dir: Path | None) -> dict[str, Path]:
    """token -> learned_embeds*.safetensors file in a model folder (train or merge output)."""
    found: dict[str, Path] = {}
    for path in sorted(Path(model_dir).glob("learned_embeds*.safetensors")) if model_dir else []:
        verify_file(path)  # refuses a corrupted or truncated file, naming it
        with safe_open(str(path), "pt") as f:
            found[f.metadata()["token"]] = path
    return found


def caption_mode(model_dir: Path | None, default: str) -> str:
    """The caption mode a model was trained with (its train manifest), else `default`."""
    manifest = Path(model_dir) / "manifest.json" if model_dir else None
    if manifest is not None and manifest.is_file():
        data = json.loads(manifest.read_text())
        if data.get("stage") == "train":
            return data.get("options", {}).get("captions", default)
    return default


def model_captions(concept: Concept, model_dir: Path | None) -> tuple[list[str], list[str]]:
    """(θ captions, φ captions) per reference image as the model in `model_dir` was trained:
    its caption mode (manifest) and whether it learned the concept's token (its embeddings)."""
    mode = caption_mode(model_dir, "comprehensive")
    return image_captions(concept, mode, concept.token in learned_tokens(model_dir))


def load_tokens(pipe, model_dir: Path | None) -> list[str]:
    """Load every learned token of `model_dir` into both text encoders; returns the tokens."""
    tokens = learned_tokens(model_dir)
    for token, path in tokens.items():
        text.load_learned_embeds(pipe, path, token)
    return list(tokens)


def load_finetuned(base_model: str, model_dir: Path | None = None, precision: str = "auto",
                   device: torch.device | None = None):
    """The pretrained pipeline at `precision` (auto: bf16/fp16 on GPU, fp32 on CPU) with the
    LoRA of `model_dir` as the active adapter "theta" and its learned tokens; frozen."""
    from dcobench.io import device as default_device
    from dcobench.models import load_sdxl

    dev = device or default_device()
    pipe = load_sdxl(base_model, device=dev, dtype=autocast_dtype(precision, dev) or torch.float32)
    if model_dir is not None:
        attach_model(pipe, model_dir)
    freeze(pipe)
    return pipe


def attach_model(pipe, model_dir: Path) -> list[str]:
    """Put the LoRA of `model_dir` on a loaded base pipeline as the active adapter "theta" and
    load its learned tokens; returns the tokens. `load_finetuned` and a grouped sampling job
    (dcobench.sample.group, which takes them off again) load a model by these same calls."""
    from dcobench.models import adapters

    adapters.load_lora(pipe, model_dir, THETA)
    pipe.set_adapters([THETA])  # CFG rows of the fine-tuned model run the active adapter
    tokens = load_tokens(pipe, model_dir)
    freeze(pipe)
    return tokens


def freeze(pipe) -> None:
    """No gradients anywhere: sampling and scoring only read the weights."""
    for module in (pipe.unet, pipe.text_encoder, pipe.text_encoder_2, pipe.vae):
        module.requires_grad_(False)


def unet_eps(unet, x_t: torch.Tensor, t: torch.Tensor, embeds: torch.Tensor,
             pooled: torch.Tensor, resolution: int) -> torch.Tensor:
    """ε (or v) prediction of SDXL's UNet at square `resolution` (crop 0, 0), as in training."""
    ids = text.time_ids(resolution, resolution, x_t.shape[0], x_t.device, x_t.dtype)
    cond = {"text_embeds": pooled, "time_ids": ids}
    return unet(x_t, t, encoder_hidden_states=embeds, added_cond_kwargs=cond).sample

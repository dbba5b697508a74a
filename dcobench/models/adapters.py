"""LoRA plumbing on a diffusers UNet: add, switch off, per-row adapters, save, load.

Facts this relies on (measured with diffusers 0.42 / peft 0.21): `disable_adapters()` is the exact pretrained
model (the `scale=0` trick resets adapter weights, so it is never used); diffusers' UNet has no
per-row adapter argument, so peft's adapter-names pre-forward hook is registered on every LoRA
layer for the duration of a call ("__base__" rows run without LoRA).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from peft import LoraConfig
from peft.tuners.lora import LoraLayer
from peft.utils import get_peft_model_state_dict

BASE = "__base__"
LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
LORA_WEIGHT_NAME = "pytorch_lora_weights.safetensors"


def add_lora(unet, rank: int, alpha: float | None, name: str = "default",
             targets: Sequence[str] = LORA_TARGETS) -> LoraConfig:
    """Attach a fresh LoRA (B = 0, so ΔW = 0 at init) to the UNet's attention projections."""
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha if alpha is not None else rank,
        init_lora_weights="gaussian",
        target_modules=list(targets),
    )
    unet.add_adapter(config, adapter_name=name)
    return config


@contextlib.contextmanager
def adapters_disabled(unet) -> Iterator[None]:
    """Run the pretrained model φ: every LoRA off, restored (and trainable again) afterwards."""
    unet.disable_adapters()
    try:
        yield
    finally:
        unet.enable_adapters()


def _adapter_names_hook(module, args, kwargs, adapter_names):
    kwargs["adapter_names"] = adapter_names
    return args, kwargs


def lora_layers(model: torch.nn.Module) -> list[LoraLayer]:
    """Every peft LoRA layer of `model` (walk once, reuse across steps)."""
    return [module for module in model.modules() if isinstance(module, LoraLayer)]


@contextlib.contextmanager
def per_row_adapters(model: torch.nn.Module, adapter_names: Sequence[str],
                     layers: Sequence[LoraLayer] | None = None) -> Iterator[None]:
    """Within the context, row i of every batch runs LoRA `adapter_names[i]` (or none for BASE).

    Rows must match the batch the UNet sees; backward (with gradient checkpointing) must run
    inside the context too. `layers`: `lora_layers(model)`, when the caller has it already.
    """
    hook = functools.partial(_adapter_names_hook, adapter_names=list(adapter_names))
    handles = [module.register_forward_pre_hook(hook, with_kwargs=True)
               for module in (lora_layers(model) if layers is None else layers)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def randomize_lora_b(model: torch.nn.Module, scale: float, seed: int = 0) -> None:
    """Fill every LoRA B factor with `scale`·N(0, 1) (a stand-in for a trained LoRA in
    benchmarks and tests; peft's init leaves B = 0, i.e. ΔW = 0)."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if "lora_B" in name:
            p.copy_(scale * torch.randn(p.shape, generator=g))


def lora_state_dict(unet, name: str = "default") -> dict[str, torch.Tensor]:
    """The adapter's weights in diffusers' key format, fp32, on CPU."""
    from diffusers.utils import convert_state_dict_to_diffusers

    state = get_peft_model_state_dict(unet, adapter_name=name)
    return {k: v.detach().float().cpu().contiguous() for k, v in
            convert_state_dict_to_diffusers(state).items()}


def save_lora(out_dir: Path, state: dict[str, torch.Tensor], config: LoraConfig | dict) -> Path:
    """Write a diffusers-format LoRA (with adapter metadata, so alpha round-trips)."""
    from diffusers import StableDiffusionXLPipeline

    metadata = config if isinstance(config, dict) else config.to_dict()
    metadata = {k: (sorted(v) if isinstance(v, set) else v) for k, v in metadata.items()}
    StableDiffusionXLPipeline.save_lora_weights(
        out_dir, unet_lora_layers=state, unet_lora_adapter_metadata=metadata,
        weight_name=LORA_WEIGHT_NAME,
    )
    return Path(out_dir) / LORA_WEIGHT_NAME


def load_lora(pipe, lora_dir: Path, name: str) -> None:
    """Load a saved LoRA into the pipeline's UNet under adapter `name` (stock diffusers path)."""
    pipe.load_lora_weights(str(lora_dir), weight_name=LORA_WEIGHT_NAME, adapter_name=name)

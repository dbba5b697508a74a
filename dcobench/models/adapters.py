"""LoRA plumbing on a diffusers UNet: add, switch off, per-row adapters, save, load.

Facts this relies on (measured with diffusers 0.42 / peft 0.21): `disable_adapters()` is the exact pretrained
model (the `scale=0` trick resets adapter weights, so it is never used); diffusers' UNet has no
per-row adapter argument, so per-row adapters are hooks on every LoRA layer for the duration
of a call ("__base__" rows run without LoRA): 0/1 row masks on the LoRA outputs, or peft's
adapter-names pre-forward hook (`per_row_adapters`).
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

from dcobench.io import sort_safetensors_header, verify_file
from dcobench.spec.train import LORA_TARGETS  # the TrainOptions default

BASE = "__base__"
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


PER_ROW_METHODS = ("auto", "mask", "peft")


@contextlib.contextmanager
def per_row_adapters(model: torch.nn.Module, adapter_names: Sequence[str],
                     layers: Sequence[LoraLayer] | None = None, method: str = "auto") -> Iterator[None]:
    """Within the context, row i of every batch runs LoRA `adapter_names[i]` (or none for BASE).

    Rows must match the batch the UNet sees; backward (with gradient checkpointing) must run
    inside the context too. `layers`: `lora_layers(model)`, when the caller has it already.

    `method`: "peft" passes `adapter_names` to every LoRA layer (peft's mixed-batch forward:
    per layer and call, a gather of each adapter's rows and a scatter back); "mask" runs every
    active adapter on all rows and multiplies each adapter's LoRA output by its 0/1 row mask
    (a hook on lora_B; rows of other adapters get exactly + 0). "mask" needs every named
    adapter active and plain LoRA (no DoRA or other variant); "auto" picks it when it applies.
    The two agree up to the rounding of a LoRA matmul on a sub-batch vs the full batch
    (fp32: ~1e-7 relative; tested).
    """
    if method not in PER_ROW_METHODS:
        raise ValueError(f"unknown per-row method {method!r}; known: {', '.join(PER_ROW_METHODS)}")
    layers = lora_layers(model) if layers is None else layers
    names = list(adapter_names)
    maskable = _maskable(layers, names)
    if method == "mask" and not maskable:
        raise ValueError("per-row masks need every named adapter active and plain LoRA layers")
    if method == "peft" or not maskable:
        hook = functools.partial(_adapter_names_hook, adapter_names=names)
        handles = [module.register_forward_pre_hook(hook, with_kwargs=True) for module in layers]
    else:
        handles = [layer.lora_B[a].register_forward_hook(_row_mask_hook(names, a))
                   for layer in layers for a in layer.active_adapters if a in layer.lora_B]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _maskable(layers: Sequence[LoraLayer], names: list[str]) -> bool:
    """Whether row masks reproduce `names`: every named adapter is active wherever it exists,
    and no layer is merged, disabled or a LoRA variant (DoRA etc.)."""
    named = set(names) - {BASE}
    for layer in layers:
        active = set(layer.active_adapters)
        if layer.merged or layer.disable_adapters or active & set(layer.lora_variant):
            return False
        if not (named & set(layer.lora_B)) <= active:
            return False
    return True


def _row_mask_hook(names: list[str], adapter: str):
    """A forward hook scaling the rows of a lora_B output (N, ...) by [names[i] == adapter]."""
    rows = torch.tensor([name == adapter for name in names], dtype=torch.float32)
    cache: dict = {}

    def hook(module, args, output):
        if output.shape[0] != len(names):
            raise ValueError(f"per-row adapters name {len(names)} rows; a LoRA layer saw {output.shape[0]}")
        key = (output.dtype, output.device, output.ndim)
        mask = cache.get(key)
        if mask is None:  # (N, 1, ..., 1): broadcast over tokens and channels
            mask = cache[key] = rows.to(output.device, output.dtype).view(-1, *[1] * (output.ndim - 1))
        return output * mask

    return hook


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
    return sort_safetensors_header(Path(out_dir) / LORA_WEIGHT_NAME)  # equal tensors, equal bytes


def load_lora(pipe, lora_dir: Path, name: str) -> None:
    """Load a saved LoRA into the pipeline's UNet under adapter `name` (stock diffusers path)."""
    verify_file(Path(lora_dir) / LORA_WEIGHT_NAME)  # refuses a corrupted or truncated file
    pipe.load_lora_weights(str(lora_dir), weight_name=LORA_WEIGHT_NAME, adapter_name=name)

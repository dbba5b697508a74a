"""Merging a subject LoRA and a style LoRA (paper §5.3): LoRA files, options and the registry.

A LoRA layer is (A: (r, in), B: (out, r), scale = alpha / r), ΔW = scale · B A. The arithmetic
merge λ1ΔW1 + λ2ΔW2 is stored exactly as one rank r1+r2 LoRA: A = [A1; A2],
B = [λ1 s1 B1, λ2 s2 B2], alpha = r1+r2 — a standard diffusers LoRA, no dense ΔW.
Every merger takes (loras, MergeOptions) and returns a Lora (registry: dcobench.merge.registry);
the ΔW-based ones (svd, ties_svd, dare) live in dcobench.merge.dense, ZipLoRA (which trains
merger vectors) in dcobench.merge.ziplora.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from dcobench.io import verify_file
from dcobench.spec.merge import MergeOptions  # declared there; callers may import it here

LORA_FILE = "pytorch_lora_weights.safetensors"
# diffusers writes lora.down / lora.up (kohya-like); peft writes lora_A / lora_B
_SUFFIXES = {".lora.down.weight": "A", ".lora_A.weight": "A", ".lora.up.weight": "B",
             ".lora_B.weight": "B"}


@dataclass
class Lora:
    """Per-layer factors keyed by module path (without the .lora_A/.lora_B suffix)."""

    A: dict[str, torch.Tensor]  # (r, in)
    B: dict[str, torch.Tensor]  # (out, r)
    scale: float  # alpha / r
    config: dict
    extras: dict = field(default_factory=dict)  # side results of a merger (ziplora's log)

    @property
    def rank(self) -> int:
        return max(a.shape[0] for a in self.A.values())

    def delta(self, layer: str) -> torch.Tensor:
        """Dense ΔW of one layer in fp32: (out, in)."""
        return self.scale * self.B[layer].float() @ self.A[layer].float()


def read_lora(folder: Path) -> Lora:
    """Load a diffusers-format LoRA folder with its adapter metadata (rank, alpha, targets)."""
    path = Path(folder) / LORA_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: not a trained or merged LoRA folder")
    verify_file(path)  # sha256 of the folder's manifest: refuses a corrupted or truncated file
    with safe_open(str(path), "pt") as f:
        meta = json.loads((f.metadata() or {}).get("lora_adapter_metadata", "{}"))
    config = {k.split(".", 1)[-1] if k.startswith("unet.") else k: v for k, v in meta.items()}
    A, B = {}, {}
    for key, value in load_file(str(path)).items():
        key = key.removeprefix("unet.")
        for suffix, factors in _SUFFIXES.items():
            if key.endswith(suffix):
                (A if factors == "A" else B)[key.removesuffix(suffix)] = value
    if set(A) != set(B) or not A:
        raise ValueError(f"{path}: lora_A / lora_B keys do not pair up")
    rank = next(iter(A.values())).shape[0]
    alpha = config.get("lora_alpha", rank)
    return Lora(A, B, alpha / rank, config)


def layer_factors(lo: Lora, layer: str, out_dim: int, in_dim: int):
    """(A, B) of `layer` in fp32, zeros of the LoRA's rank when the layer is missing."""
    if layer in lo.A:
        return lo.A[layer].float(), lo.B[layer].float()
    return torch.zeros(lo.rank, in_dim), torch.zeros(out_dim, lo.rank)


def layer_shapes(loras: list[Lora]) -> dict[str, tuple[int, int]]:
    """layer -> (out, in) over the union of the LoRAs' layers, sorted by name."""
    shapes = {}
    for lo in loras:
        for layer in lo.A:
            shapes.setdefault(layer, (lo.B[layer].shape[0], lo.A[layer].shape[1]))
    return dict(sorted(shapes.items()))


def arithmetic(loras: list[Lora], weights: list[float]) -> Lora:
    """Σ wᵢ ΔWᵢ as one exact LoRA of rank Σ rᵢ (layers missing from a LoRA count as zero)."""
    if len(loras) != len(weights):
        raise ValueError(f"{len(loras)} LoRAs but {len(weights)} weights")
    A, B = {}, {}
    for layer, (out_dim, in_dim) in layer_shapes(loras).items():
        parts = [layer_factors(lo, layer, out_dim, in_dim) for lo in loras]
        A[layer] = torch.cat([a for a, _ in parts], dim=0)
        B[layer] = torch.cat([w * lo.scale * b for (_, b), lo, w in
                              zip(parts, loras, weights, strict=True)], dim=1)
    return from_factors(A, B, loras[0].config)


def cat(loras: list[Lora], weights: list[float]) -> Lora:
    """peft's `cat`: the same exact Σ wᵢΔWᵢ, with √|wᵢ sᵢ| put on both factors (balanced)."""
    if len(loras) != len(weights):
        raise ValueError(f"{len(loras)} LoRAs but {len(weights)} weights")
    A, B = {}, {}
    for layer, (out_dim, in_dim) in layer_shapes(loras).items():
        a_parts, b_parts = [], []
        for lo, w in zip(loras, weights, strict=True):
            a, b = layer_factors(lo, layer, out_dim, in_dim)
            root = math.sqrt(abs(w * lo.scale))
            a_parts.append(root * a)
            b_parts.append(math.copysign(root, w * lo.scale) * b)
        A[layer], B[layer] = torch.cat(a_parts, dim=0), torch.cat(b_parts, dim=1)
    return from_factors(A, B, loras[0].config)


def from_factors(A: dict[str, torch.Tensor], B: dict[str, torch.Tensor], config: dict) -> Lora:
    """A Lora with scale 1 (alpha = r) from per-layer factors, all layers at the same rank."""
    ranks = {a.shape[0] for a in A.values()}
    if len(ranks) != 1:
        raise ValueError(f"merged layers have different ranks {sorted(ranks)}")
    rank = ranks.pop()
    return Lora(A, B, 1.0, {**config, "r": rank, "lora_alpha": rank})


def merge_arithmetic(loras: list[Lora], opts: MergeOptions) -> Lora:
    """The `arithmetic` merger: λ_subject ΔW_subject + λ_style ΔW_style, exact."""
    return arithmetic(loras, list(opts.weights))


def merge_cat(loras: list[Lora], opts: MergeOptions) -> Lora:
    """The `cat` merger: the same sum with balanced factors."""
    return cat(loras, list(opts.weights))


def write_lora(folder: Path, lora: Lora) -> Path:
    """Save as a standard diffusers LoRA (`unet.<layer>.lora.down/up.weight` + adapter metadata)."""
    from dcobench.models.adapters import save_lora

    state = {}
    for layer in lora.A:
        state[f"{layer}.lora.down.weight"] = lora.A[layer].contiguous()
        state[f"{layer}.lora.up.weight"] = lora.B[layer].contiguous()
    folder.mkdir(parents=True, exist_ok=True)
    return save_lora(folder, state, lora.config)

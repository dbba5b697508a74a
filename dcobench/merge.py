"""Merging a subject LoRA and a style LoRA (paper §5.3) on exact low-rank factors.

A LoRA layer is (A: (r, in), B: (out, r), scale = alpha / r), ΔW = scale · B A. The arithmetic
merge λ1ΔW1 + λ2ΔW2 is stored exactly as one rank r1+r2 LoRA: A = [A1; A2],
B = [λ1 s1 B1, λ2 s2 B2], alpha = r1+r2 — a standard diffusers LoRA, no dense ΔW.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from dcobench.registry import Registry

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

    @property
    def rank(self) -> int:
        return next(iter(self.A.values())).shape[0]

    def delta(self, layer: str) -> torch.Tensor:
        """Dense ΔW of one layer in fp32: (out, in)."""
        return self.scale * self.B[layer].float() @ self.A[layer].float()


def read_lora(folder: Path) -> Lora:
    """Load a diffusers-format LoRA folder with its adapter metadata (rank, alpha, targets)."""
    path = Path(folder) / LORA_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: not a trained or merged LoRA folder")
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


def arithmetic(loras: list[Lora], weights: list[float]) -> Lora:
    """Σ wᵢ ΔWᵢ as one exact LoRA of rank Σ rᵢ (layers missing from a LoRA count as zero)."""
    if len(loras) != len(weights):
        raise ValueError(f"{len(loras)} LoRAs but {len(weights)} weights")
    layers = sorted(set().union(*(lo.A for lo in loras)))
    A, B = {}, {}
    for layer in layers:
        ref = next(lo for lo in loras if layer in lo.A)
        out_dim, in_dim = ref.B[layer].shape[0], ref.A[layer].shape[1]
        a_parts, b_parts = [], []
        for lo, w in zip(loras, weights, strict=True):
            a = lo.A.get(layer, torch.zeros(lo.rank, in_dim))
            b = lo.B.get(layer, torch.zeros(out_dim, lo.rank))
            a_parts.append(a.float())
            b_parts.append(w * lo.scale * b.float())
        A[layer], B[layer] = torch.cat(a_parts, dim=0), torch.cat(b_parts, dim=1)
    rank = sum(lo.rank for lo in loras)
    config = {**loras[0].config, "r": rank, "lora_alpha": rank}
    return Lora(A, B, 1.0, config)


MERGERS: Registry = Registry("merger")
MERGERS.register("arithmetic", arithmetic)


def write_lora(folder: Path, lora: Lora) -> Path:
    """Save as a standard diffusers LoRA (`unet.<layer>.lora.down/up.weight` + adapter metadata)."""
    from dcobench.adapters import save_lora

    state = {}
    for layer in lora.A:
        state[f"{layer}.lora.down.weight"] = lora.A[layer].contiguous()
        state[f"{layer}.lora.up.weight"] = lora.B[layer].contiguous()
    folder.mkdir(parents=True, exist_ok=True)
    return save_lora(folder, state, lora.config)

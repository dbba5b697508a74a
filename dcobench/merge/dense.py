"""Mergers that go through the dense fp32 ΔW of each layer: svd, ties_svd, dare.

The subject (rank 32) and style (rank 64) LoRAs have different ranks, so peft's factor-wise
`linear` / `ties` / `dare` (which merge A and B separately) do not apply; these work on
ΔWᵢ = sᵢ BᵢAᵢ instead and return a rank-k LoRA from the truncated SVD of the merged ΔW.
Pure functions of tensors; the registry wrappers at the bottom take (loras, MergeOptions).
"""

from __future__ import annotations

import torch

from dcobench.merge.lora import Lora, MergeOptions, from_factors, layer_shapes


def svd_factors(delta: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(A: (k, in), B: (out, k)) with B A the best rank-k approximation of `delta` (fp32),
    √σ on both sides; k = min(rank, out, in), zero-padded to `rank` rows."""
    U, S, Vh = torch.linalg.svd(delta.float(), full_matrices=False)  # (out,q) (q,) (q,in)
    k = min(rank, S.shape[0])
    root = S[:k].sqrt()
    A = root[:, None] * Vh[:k]  # (k, in)
    B = U[:, :k] * root[None, :]  # (out, k)
    if k < rank:
        A = torch.cat([A, A.new_zeros(rank - k, A.shape[1])])
        B = torch.cat([B, B.new_zeros(B.shape[0], rank - k)], dim=1)
    return A, B


def trim(delta: torch.Tensor, density: float) -> torch.Tensor:
    """TIES trim: keep the `density` fraction of entries with the largest magnitude."""
    k = max(1, round(density * delta.numel()))
    if k >= delta.numel():
        return delta.clone()
    threshold = delta.abs().flatten().kthvalue(delta.numel() - k + 1).values
    return delta * (delta.abs() >= threshold)


def ties(deltas: list[torch.Tensor], weights: list[float], density: float) -> torch.Tensor:
    """TIES-merging (Yadav et al. 2023) of weighted task deltas: trim each to `density`,
    elect the sign of the summed trimmed deltas per entry, average the agreeing entries."""
    trimmed = torch.stack([w * trim(d.float(), density) for d, w in
                           zip(deltas, weights, strict=True)])  # (n, out, in)
    sign = torch.sign(trimmed.sum(dim=0))  # elected sign per entry
    agree = (torch.sign(trimmed) == sign) & (trimmed != 0)
    total = (trimmed * agree).sum(dim=0)
    count = agree.sum(dim=0).clamp(min=1)
    return total / count


def dare(deltas: list[torch.Tensor], weights: list[float], density: float,
         generator: torch.Generator) -> torch.Tensor:
    """DARE (Yu et al. 2023), linear: drop each entry with prob 1 − density, rescale the kept
    ones by 1 / density, then Σ wᵢ ΔWᵢ."""
    out = torch.zeros_like(deltas[0], dtype=torch.float32)
    for d, w in zip(deltas, weights, strict=True):
        keep = torch.rand(d.shape, generator=generator) < density
        out += w * d.float() * keep / density
    return out


def _dense_merge(loras: list[Lora], opts: MergeOptions, combine) -> Lora:
    """Apply `combine(layer, [ΔWᵢ]) -> ΔW` per layer and store the rank-k SVD of the result."""
    rank = opts.rank or sum(lo.rank for lo in loras)
    A, B = {}, {}
    for layer, (out_dim, in_dim) in layer_shapes(loras).items():
        deltas = [lo.delta(layer) if layer in lo.A else torch.zeros(out_dim, in_dim)
                  for lo in loras]
        A[layer], B[layer] = svd_factors(combine(layer, deltas), rank)
    return from_factors(A, B, loras[0].config)


def merge_svd(loras: list[Lora], opts: MergeOptions) -> Lora:
    """Rank-k SVD of Σ wᵢΔWᵢ (exact when k ≥ Σ rᵢ)."""
    weights = list(opts.weights)
    return _dense_merge(loras, opts, lambda _, ds: sum(w * d for w, d in zip(weights, ds,
                                                                               strict=True)))


def merge_ties_svd(loras: list[Lora], opts: MergeOptions) -> Lora:
    """TIES on the weighted ΔWᵢ at `density`, then rank-k SVD."""
    return _dense_merge(loras, opts, lambda _, ds: ties(ds, list(opts.weights), opts.density))


def merge_dare(loras: list[Lora], opts: MergeOptions) -> Lora:
    """DARE-linear at `density` with a mask seeded per (seed, layer), then rank-k SVD."""
    from dcobench.io import derive_seed

    def combine(layer, deltas):
        g = torch.Generator().manual_seed(derive_seed(opts.seed, "dare", layer))
        return dare(deltas, list(opts.weights), opts.density, g)

    return _dense_merge(loras, opts, combine)

"""Per-layer cosine between subject and style LoRA columns (paper Fig 10), from the factors."""

from __future__ import annotations

import torch


def column_cosine(a1, b1, s1, a2, b2, s2) -> torch.Tensor:
    """Cosine between column j of ΔW₁ = s₁B₁A₁ and column j of ΔW₂, for every input column j,
    from the factors alone: ⟨B₁a₁ⱼ, B₂a₂ⱼ⟩ = a₁ⱼᵀ(B₁ᵀB₂)a₂ⱼ. Zero columns give 0. (in,)"""
    a1, b1, a2, b2 = (t.double() for t in (a1, b1, a2, b2))
    dot = ((b1.T @ b2) @ a2 * a1).sum(dim=0) * s1 * s2  # (in,)
    n1 = ((b1.T @ b1) @ a1 * a1).sum(dim=0).clamp(min=0).sqrt() * abs(s1)
    n2 = ((b2.T @ b2) @ a2 * a2).sum(dim=0).clamp(min=0).sqrt() * abs(s2)
    denom = n1 * n2
    return torch.where(denom > 0, dot / denom.clamp(min=1e-300), torch.zeros_like(dot)).float()


def lora_cosine(subject, style) -> list[dict]:
    """Per shared layer: mean cosine and mean |cosine| between the subject's and the style's
    ΔW columns (paper Fig 10). `subject`, `style`: dcobench.merge.lora.Lora."""
    rows = []
    for layer in sorted(set(subject.A) & set(style.A)):
        cos = column_cosine(subject.A[layer], subject.B[layer], subject.scale,
                            style.A[layer], style.B[layer], style.scale)
        rows.append({"layer": layer, "block": layer.split(".", 1)[0],
                     "mean_cos": cos.mean().item(), "mean_abs_cos": cos.abs().mean().item(),
                     "columns": cos.numel()})
    return rows

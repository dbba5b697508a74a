"""Guidance arithmetic as pure functions (paper §4.2); the samplers only orchestrate.

All inputs are noise predictions of equal shape (B, C, H, W).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from dcobench.registry import Registry


def cfg(eps_uncond: torch.Tensor, eps_cond: torch.Tensor, w_text: float) -> torch.Tensor:
    """Classifier-free guidance ε̂ = ε_u + ω_text (ε_c − ε_u)."""
    return eps_uncond + w_text * (eps_cond - eps_uncond)


def reward_guidance(
    eps_base_uncond: torch.Tensor,
    eps_base_cond: torch.Tensor,
    eps_theta_cond: torch.Tensor,
    w_text: float,
    w_rg: float,
) -> torch.Tensor:
    """Reward guidance ε̂ = ω_rg(ε_θ(c_ti) − ε_φ(c)) + ω_text(ε_φ(c) − ε_φ(∅)) + ε_φ(∅)."""
    return (
        w_rg * (eps_theta_cond - eps_base_cond)
        + w_text * (eps_base_cond - eps_base_uncond)
        + eps_base_uncond
    )


@dataclass(frozen=True)
class Guidance:
    """A guidance kind: `rows` noise predictions per image in the UNet batch, and `combine`
    (the row predictions, ω_text, ω_rg) -> ε̂."""

    rows: int
    combine: Callable[[tuple[torch.Tensor, ...], float, float | None], torch.Tensor]


GUIDANCE: Registry[Guidance] = Registry("guidance")
GUIDANCE.register("cfg", Guidance(2, lambda eps, w_text, w_rg: cfg(*eps, w_text)))  # [∅, c]
GUIDANCE.register("rg", Guidance(3, lambda eps, w_text, w_rg: reward_guidance(*eps, w_text, w_rg)))
# rg rows: [φ∅, φc, θc_ti]


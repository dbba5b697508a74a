"""Guidance arithmetic as pure functions (paper §4.2); the samplers only orchestrate.

All inputs are noise predictions of equal shape (B, C, H, W).
"""

from __future__ import annotations

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


GUIDANCE: Registry = Registry("guidance")
GUIDANCE.register("cfg", cfg)
GUIDANCE.register("rg", reward_guidance)


def parse_guide(name: str) -> tuple[str, float | None]:
    """'cfg' -> ('cfg', None); 'rg3' / 'rg2.5' -> ('rg', 3.0 / 2.5)."""
    if name == "cfg":
        return "cfg", None
    if name.startswith("rg"):
        try:
            return "rg", float(name[2:])
        except ValueError:
            pass
    raise ValueError(f"bad guide name {name!r}: use 'cfg' or 'rg<ω>' such as 'rg3'")


def guide_name(kind: str, omega: float | None) -> str:
    """Inverse of parse_guide: ('rg', 3.0) -> 'rg3'."""
    if kind == "cfg":
        return "cfg"
    return f"rg{omega:g}"

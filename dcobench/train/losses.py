"""Training objectives as pure functions of tensors (paper Eq. 11, Alg. 1).

Shapes: predictions and targets are (B, C, H, W) latents; per-sample losses are (B,).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def per_sample_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over every non-batch element: ℓ_i = mean((pred_i − target_i)²)."""
    err = (pred.float() - target.float()) ** 2
    return err.reshape(err.shape[0], -1).mean(dim=1)  # (B,)


def db_loss(err_theta: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """DreamBooth loss: batch mean of the per-sample errors (optionally SNR-weighted)."""
    if weights is not None:
        err_theta = err_theta * weights
    return err_theta.mean()


def dco_loss(
    err_theta: torch.Tensor,
    err_phi: torch.Tensor,
    beta: float,
    num_train_timesteps: int,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """DCO loss: mean over the batch of −log σ(−β·T·(ℓ(θ) − ℓ(φ))).

    `beta` is the paper's β; β·T = 1000 for β = 1 on SDXL matches the official
    `dcoloss_beta=1000`. `err_phi` is the reference (LoRA off) error and carries no gradient.
    Optional SNR weights multiply both terms alike.
    """
    if weights is not None:
        err_theta, err_phi = err_theta * weights, err_phi * weights
    d = err_theta - err_phi.detach()
    return -F.logsigmoid(-beta * num_train_timesteps * d).mean()


def prior_preservation_loss(
    loss: torch.Tensor, err_prior: torch.Tensor, prior_weight: float
) -> torch.Tensor:
    """Prior preservation: the objective's loss on the reference rows + λ_prior · DB loss on
    the class-prior rows (DB + p.p. when the objective is DB)."""
    return loss + prior_weight * err_prior.mean()


def snr_weights(snr: torch.Tensor, gamma: float | None, prediction_type: str) -> torch.Tensor:
    """Min-SNR-γ weights min(SNR, γ)/SNR (ε-prediction) or min(SNR, γ)/(SNR+1) (v)."""
    if gamma is None:
        return torch.ones_like(snr)
    clipped = torch.clamp(snr, max=gamma)
    return clipped / (snr + 1) if prediction_type == "v_prediction" else clipped / snr


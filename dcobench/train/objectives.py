"""Training objectives (paper Eq. 11, Alg. 1): the registry the trainer calls each step.

An objective turns one step's per-sample errors into a loss and the values it logs, and
declares whether it needs the reference pass ε_φ (same x_t, t, ε; every LoRA off; base
captions). Class-prior rows (DB+p.p.) are not an objective but a variant option
(`prior: true`) that the trainer adds to any objective. Adding an objective = one function
+ one `OBJECTIVES.register` line. Importing this module stays cheap (no torch at import).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dcobench.registry import Registry

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Terms:
    """One step's per-sample quantities of the reference-image rows, all (B,)."""

    err_theta: torch.Tensor  # ℓ(θ): mean squared error of the fine-tuned prediction
    err_phi: torch.Tensor | None  # ℓ(φ) without grad (objectives with `reference`), else None
    weights: torch.Tensor | None  # Min-SNR-γ weights; None = off
    beta: float  # the paper's β (DCO)
    num_train_timesteps: int  # T


@dataclass(frozen=True)
class Objective:
    """`loss(terms)` -> (scalar loss, logged values); `logs` names those values' columns."""

    label: str
    loss: Callable[[Terms], tuple[torch.Tensor, dict[str, float]]]
    reference: bool = False  # needs ε_φ: a no-grad UNet pass with every LoRA off
    logs: tuple[str, ...] = ()


def db(terms: Terms):
    """DreamBooth: the (SNR-weighted) mean of ℓ(θ)."""
    from dcobench.train.losses import db_loss

    err = terms.err_theta if terms.weights is None else terms.err_theta * terms.weights
    return db_loss(err), {}


def dco(terms: Terms):
    """DCO: −log σ(−β·T·(ℓ(θ) − ℓ(φ))); logs its operating point (`dco_logs`)."""
    from dcobench.train.losses import dco_loss

    w = terms.weights
    loss = dco_loss(terms.err_theta, terms.err_phi, terms.beta, terms.num_train_timesteps, w)
    d = terms.err_theta.detach() - terms.err_phi
    if w is not None:
        d = d * w
    return loss, dco_logs(d, terms.err_phi, terms.beta * terms.num_train_timesteps)


def dco_logs(d: torch.Tensor, err_phi: torch.Tensor, beta_t: float) -> dict[str, float]:
    """DCO's operating point, batch means: ℓ(φ); d = ℓ(θ) − ℓ(φ); σ = σ(−β·T·d), the
    probability the loss assigns to θ beating φ; 1 − σ = σ(β·T·d), the factor of the
    gradient (∂loss/∂ℓ(θ) = β·T·(1 − σ)), computed as its own sigmoid because 1 − σ in fp32
    loses every digit once σ rounds to 1 (β·T·d < −17); β·T·d, the sigmoid's argument.
    With σ near 1 the gradient vanishes and DCO stops learning: these columns show it."""
    import torch

    logit = beta_t * d
    return {"loss_phi": err_phi.mean().item(), "d": d.mean().item(),
            "sigma": torch.sigmoid(-logit).mean().item(),
            "one_minus_sigma": torch.sigmoid(logit).mean().item(),
            "beta_T_d": logit.mean().item()}


OBJECTIVES: Registry[Objective] = Registry("objective")
OBJECTIVES.register("db", Objective("DreamBooth", db))
OBJECTIVES.register("dco", Objective("DCO", dco, reference=True,
                                      logs=("loss_phi", "d", "sigma", "one_minus_sigma", "beta_T_d")))

PRIOR_LOGS = ("loss_prior",)  # logged when class-prior rows join the batch
# logged by every objective: the mean timestep of the step's reference rows (the t of the one
# row at batch size 1, the paper's), the gradient norm before clipping (LoRA + the embedding
# matrices' gradient when the token is trained: the norm `max_grad_norm` is compared with) and
# whether the step was clipped (1) or not (0)
STEP_LOGS = ("t", "grad_norm", "clipped")


def log_columns() -> tuple[str, ...]:
    """train_log.csv columns: one schema for every objective (absent values are NaN); `time`
    stays last (tests compare logs without it)."""
    logs = [c for name in OBJECTIVES for c in OBJECTIVES[name].logs]
    return ("step", "loss", "loss_theta", *dict.fromkeys(logs), *PRIOR_LOGS, *STEP_LOGS, "lr",
            "time")

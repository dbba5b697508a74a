"""ZipLoRA (Shah et al. 2023), kept low-rank: per-layer merger vectors over input columns.

Merged layer: ΔW_m x = s_s B_s A_s (m_s ⊙ x) + s_t B_t A_t (m_t ⊙ x), i.e. each LoRA's ΔW with
its input columns scaled by a merger vector — no dense ΔW is ever formed. Loss (each LoRA on
its own images and captions, same x_t, t, ε), normalised as the public implementation
(mkshing/ziplora-pytorch, train_dreambooth_ziplora_sdxl.py) does:
  mse(merged(x_s; p_s), subject(x_s; p_s)) + mse(merged(x_t; p_t), style(x_t; p_t))
  + λ Σ_layers sim(m_s, m_t),
mse = mean over the batch's latent elements (F.mse_loss, reduction "mean"); sim = mean_i
|m_s,i · m_t,i| (the public code's default, "mean_abs"), or |m_s · m_t| (Shah et al.'s formula,
"dot") or |cos(m_s, m_t)| ("cosine"). With a sum over latent elements instead of the mean, the
same λ would weigh the penalty C·h·w times less against reconstruction.
The result is a standard rank r_s + r_t LoRA: A = [A_s diag(m_s); A_t diag(m_t)],
B = [s_s B_s, s_t B_t], whose forward equals the merged forward.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm import tqdm

from dcobench.merge.lora import Lora, MergeOptions, from_factors, layer_factors, layer_shapes
from dcobench.spec.merge import SIMILARITIES, ZipLoraOptions  # noqa: F401 (declared there)

log = logging.getLogger(__name__)


class ZipLora(torch.nn.Module):
    """Merger vectors m_s, m_t per layer (init 1) plus the two LoRAs' frozen factors; while
    attached to a UNet, forward hooks add the merged (or a per-row single-LoRA) delta."""

    def __init__(self, subject: Lora, style: Lora, device=None) -> None:
        super().__init__()
        self.layers = list(layer_shapes([subject, style]))
        shapes = layer_shapes([subject, style])
        self.factors = []  # per layer: (A_s, s_s B_s, A_t, s_t B_t), fp32
        for layer in self.layers:
            a_s, b_s = layer_factors(subject, layer, *shapes[layer])
            a_t, b_t = layer_factors(style, layer, *shapes[layer])
            self.factors.append(tuple(t.to(device) for t in
                                      (a_s, subject.scale * b_s, a_t, style.scale * b_t)))
        ones = [torch.ones(shapes[layer][1], device=device) for layer in self.layers]
        self.m_subject = torch.nn.ParameterList([torch.nn.Parameter(o.clone()) for o in ones])
        self.m_style = torch.nn.ParameterList([torch.nn.Parameter(o.clone()) for o in ones])
        self.config = subject.config
        self._state: tuple[str, torch.Tensor | None] | None = None

    def _hook(self, i: int):
        def hook(module, args, output):
            if self._state is None:
                return output
            return output + self._delta(i, args[0]).to(output.dtype)

        return hook

    def _delta(self, i: int, x: torch.Tensor) -> torch.Tensor:
        a_s, b_s, a_t, b_t = self.factors[i]
        kind, coef = self._state
        xs = xt = x.float()  # (b, ..., in)
        if kind == "merged":
            xs, xt = xs * self.m_subject[i], xt * self.m_style[i]
        ds, dt = (xs @ a_s.T) @ b_s.T, (xt @ a_t.T) @ b_t.T  # (b, ..., out)
        if kind == "rows":
            shape = (-1,) + (1,) * (x.ndim - 1)
            ds, dt = ds * coef[:, 0].view(shape), dt * coef[:, 1].view(shape)
        return ds + dt

    @contextlib.contextmanager
    def attached(self, unet):
        """Hooks on the UNet's target linears (base weights untouched; removed on exit)."""
        handles = [unet.get_submodule(layer).register_forward_hook(self._hook(i))
                   for i, layer in enumerate(self.layers)]
        try:
            yield self
        finally:
            for h in handles:
                h.remove()

    @contextlib.contextmanager
    def mode(self, kind: str | None, coef: torch.Tensor | None = None):
        """kind "merged" (mergers on), "rows" (row i: coef[i,0]·subject + coef[i,1]·style,
        coef (b, 2)), or None (the pretrained model)."""
        self._state = None if kind is None else (kind, coef)
        try:
            yield
        finally:
            self._state = None

    def penalty(self, similarity: str = "mean_abs") -> torch.Tensor:
        """Σ_layers sim(m_s, m_t): mean |m_s ⊙ m_t|, |m_s · m_t| or |cos(m_s, m_t)|."""
        terms = []
        for ms, mt in zip(self.m_subject, self.m_style, strict=True):
            if similarity == "mean_abs":
                terms.append((ms * mt).abs().mean())
            elif similarity == "dot":
                terms.append((ms @ mt).abs())
            else:
                terms.append(torch.cosine_similarity(ms, mt, dim=0).abs())
        return torch.stack(terms).sum()

    @torch.no_grad()
    def movement(self) -> dict[str, float]:
        """How far the mergers moved from 1: mean / max |m − 1| and the fraction > 0.01."""
        dev = torch.cat([(m - 1).abs().flatten() for m in [*self.m_subject, *self.m_style]])
        return {"mean_abs_change": dev.mean().item(), "max_abs_change": dev.max().item(),
                "frac_changed_1pct": (dev > 0.01).float().mean().item()}

    @torch.no_grad()
    def export(self) -> Lora:
        """The standard rank r_s + r_t LoRA whose forward equals the merged forward."""
        A, B = {}, {}
        for i, layer in enumerate(self.layers):
            a_s, b_s, a_t, b_t = self.factors[i]
            A[layer] = torch.cat([a_s * self.m_subject[i][None, :],
                                  a_t * self.m_style[i][None, :]]).cpu()  # (r_s + r_t, in)
            B[layer] = torch.cat([b_s, b_t], dim=1).cpu()  # (out, r_s + r_t)
        return from_factors(A, B, self.config)


def ziplora_step(unet, zl: ZipLora, batch: dict, opts: ZipLoraOptions) -> dict[str, float]:
    """One merger loss evaluation (+ backward). `batch`: x_t, t, embeds, pooled, time_ids with
    subject rows first, then style rows; n_subject = number of subject rows."""
    n = batch["x_t"].shape[0]
    n_s = batch["n_subject"]
    coef = torch.zeros(n, 2, device=batch["x_t"].device)
    coef[:n_s, 0], coef[n_s:, 1] = 1.0, 1.0
    cond = {"encoder_hidden_states": batch["embeds"],
            "added_cond_kwargs": {"text_embeds": batch["pooled"], "time_ids": batch["time_ids"]}}
    with torch.no_grad(), zl.mode("rows", coef):
        target = unet(batch["x_t"], batch["t"], **cond).sample.float()
    with zl.mode("merged"):
        pred = unet(batch["x_t"], batch["t"], **cond).sample.float()
    # mean-reduced MSE per concept (rows of one concept share a shape): F.mse_loss's "mean"
    loss_s = torch.nn.functional.mse_loss(pred[:n_s], target[:n_s])
    loss_t = torch.nn.functional.mse_loss(pred[n_s:], target[n_s:])
    penalty = zl.penalty(opts.similarity)
    loss = loss_s + loss_t + opts.penalty * penalty
    loss.backward()
    return {"loss": loss.item(), "loss_subject": loss_s.item(), "loss_style": loss_t.item(),
            "penalty": penalty.item()}


def train_mergers(unet, zl: ZipLora, sampler, opts: ZipLoraOptions) -> list[dict]:
    """Adam on the merger vectors for opts.steps; returns one log row per step."""
    optim = torch.optim.Adam(zl.parameters(), lr=opts.lr)
    rows = []
    with zl.attached(unet):
        for step in tqdm(range(opts.steps), desc="ziplora", unit="step", mininterval=2.0):
            optim.zero_grad(set_to_none=True)
            stats = ziplora_step(unet, zl, sampler(step), opts)
            optim.step()
            rows.append({"step": step, **stats, **zl.movement()})
    return rows


def merge_ziplora(loras: list[Lora], opts: MergeOptions) -> Lora:
    """Registry entry: train mergers on the tiny or real base model, return the exported LoRA;
    the training log and movement stats are kept for `cli/merge` (attribute `log`)."""
    from dcobench.merge.ziplora_data import load_pipeline, make_sampler

    if len(loras) != 2 or opts.subject_dir is None or opts.style_dir is None:
        raise ValueError("ziplora merges exactly (subject, style) and needs both concept folders")
    zopts = ZipLoraOptions(**{"seed": opts.seed, **(opts.ziplora or {})})
    pipe = load_pipeline(opts)
    device = pipe.unet.device
    zl = ZipLora(loras[0], loras[1], device=device)
    sampler = make_sampler(pipe, opts, zopts)
    rows = train_mergers(pipe.unet, zl, sampler, zopts)
    merged = zl.export()
    merged.extras.update(ziplora_log=rows, ziplora_options=asdict(zopts))
    log.info("ziplora: %s", json.dumps(rows[-1]))
    return merged


def write_extras(folder: Path, lora: Lora) -> None:
    """ziplora_log.csv + ziplora.json (options, first/last losses, merger movement)."""
    extras = lora.extras
    if "ziplora_log" not in extras:
        return
    import pandas as pd

    rows = extras["ziplora_log"]
    pd.DataFrame(rows).to_csv(folder / "ziplora_log.csv", index=False)
    summary = {"options": extras["ziplora_options"], "first": rows[0], "last": rows[-1]}
    (folder / "ziplora.json").write_text(json.dumps(summary, indent=2) + "\n")

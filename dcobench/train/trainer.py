"""LoRA (+ textual embedding) training: one step calls its objective from the registry.

The trainer only orchestrates: the objective is `dcobench.train.objectives` (its losses
`dcobench.train.losses`), class-prior rows are the variant option `prior_dir`, the reference pass is
`adapters.adapters_disabled`, the text conditioning is `dcobench.models.text`, the cached inputs are
`dcobench.train.batches`, the resume state is `dcobench.train.resume`.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from dcobench.data.concept import validate_concept
from dcobench.io import derive_seed, device, replacing_dir, write_manifest
from dcobench.models import adapters, text
from dcobench.models.finetuned import autocast_dtype, unet_eps
from dcobench.signals import Interrupted, StopSignals
from dcobench.train import losses, resume
from dcobench.train.batches import prior_batch, reference_batch, trains_token
from dcobench.train.objectives import OBJECTIVES, Terms, log_columns
from dcobench.train.operating_point import saturation
from dcobench.train.options import TrainOptions

log = logging.getLogger("dcobench")


class StepMath:
    """A run's per-step arithmetic, shared by `Trainer` and the fused trainer's members: the
    draws from the run's own generator (image, flip, noise, timestep), Min-SNR weights and the
    objective's loss. Needs `opts`, `objective`, `generator`, `noise_scheduler`, `T`, `prior`."""

    def _noisy(self, latents: torch.Tensor):
        g = self.generator
        noise = torch.randn(latents.shape, generator=g)
        if self.opts.offset_noise:
            noise = noise + self.opts.offset_noise * torch.randn(latents.shape[:2] + (1, 1), generator=g)
        t = torch.randint(0, self.T, (latents.shape[0],), generator=g)
        noise, t = noise.to(latents.device), t.to(latents.device)
        x_t = self.noise_scheduler.add_noise(latents, noise, t)
        if self.noise_scheduler.config.prediction_type == "v_prediction":
            target = self.noise_scheduler.get_velocity(latents, noise, t)
        else:
            target = noise
        return x_t, t, target

    def _weights(self, t: torch.Tensor) -> torch.Tensor | None:
        if self.opts.snr_gamma is None:
            return None
        alphas = self.noise_scheduler.alphas_cumprod.to(t.device)[t]
        pred = self.noise_scheduler.config.prediction_type
        return losses.snr_weights(alphas / (1 - alphas), self.opts.snr_gamma, pred)

    def _draw(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Image indices and their cached latents (a random flip when augmentation is on)."""
        n = self.opts.batch_size
        idx = torch.randint(0, batch.latents.shape[0], (n,), generator=self.generator)
        flip = (torch.randint(0, batch.latents.shape[1], (n,), generator=self.generator)
                if batch.latents.shape[1] > 1 else torch.zeros(n, dtype=torch.long))
        return idx, batch.latents[idx, flip]

    def _loss(self, err, ref, t, target, n) -> tuple[torch.Tensor, dict]:
        """The objective on the n reference rows (+ λ_prior · DB loss on the prior rows)."""
        weights = self._weights(t)
        err_phi = losses.per_sample_mse(ref, target) if ref is not None else None
        terms = Terms(err[:n], err_phi, None if weights is None else weights[:n], self.opts.beta,
                      self.T)
        loss, logged = self.objective.loss(terms)
        row = {"loss_theta": err[:n].mean().item(), "t": t[:n].float().mean().item(), **logged}
        if self.prior is not None:
            err_prior = err[n:] if weights is None else err[n:] * weights[n:]
            row.update(loss_prior=err_prior.mean().item())
            loss = losses.prior_preservation_loss(loss, err_prior, self.opts.prior_weight)
        return loss, row


class Trainer(StepMath):
    """Holds the pipeline, the LoRA, the learned token and the optimiser for one run."""

    def __init__(self, opts: TrainOptions) -> None:
        from dcobench.models import load_sdxl

        self.opts = opts
        self.objective = OBJECTIVES[opts.objective]
        self.device = device()
        self.amp = autocast_dtype(opts.mixed_precision, self.device)
        self.pipe = pipe = load_sdxl(opts.base_model, device=self.device)
        for module in (pipe.unet, pipe.vae, pipe.text_encoder, pipe.text_encoder_2):
            module.requires_grad_(False)
        self.noise_scheduler = _training_scheduler(pipe)
        self.T = self.noise_scheduler.config.num_train_timesteps
        with torch.random.fork_rng(devices=[]):  # LoRA init depends on the seed only
            torch.manual_seed(derive_seed(opts.seed, "lora-init"))
            self.lora_config = adapters.add_lora(pipe.unet, opts.rank, opts.alpha, targets=opts.targets)
        self.concept = validate_concept(opts.concept_dir, opts.resolution)
        self.tokens = (text.add_learned_token(pipe, self.concept.token, self.concept.class_noun)
                       if opts.learns_token else None)
        self.trains_token = trains_token(opts)  # False at ti_lr 0: the token keeps its init
        self._lower_precision()  # first: fixed captions are then encoded as the step encodes them
        self.data = reference_batch(pipe, self.concept, opts)  # latents + fixed text embeddings
        self.prior = prior_batch(pipe, opts.prior_dir, opts) if opts.prior_dir else None
        if self.amp is not None:
            pipe.vae.to("cpu")  # latents are cached: the VAE is not needed on the GPU any more
        if opts.gradient_checkpointing:
            pipe.unet.enable_gradient_checkpointing()
        self.optimizer = self._optimizer()
        self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: min(1.0, (s + 1) / opts.lr_warmup_steps) if opts.lr_warmup_steps else 1.0)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp == torch.float16)
        self.generator = torch.Generator().manual_seed(derive_seed(opts.seed, "train"))

    def _lower_precision(self) -> None:
        """Frozen weights to the autocast dtype; LoRA and token-embedding matrices stay fp32."""
        if self.amp is None:
            return
        pipe = self.pipe
        embeddings = [enc.get_input_embeddings() for _, enc in text.encoders(pipe)]
        masters = {p: p.data for p in self.lora_parameters()}  # exact fp32 copies, kept as-is
        masters.update({emb.weight: emb.weight.data for emb in embeddings})
        for module in (pipe.unet, pipe.text_encoder, pipe.text_encoder_2):
            module.to(self.amp)
        for param, data in masters.items():
            param.data = data
        for emb in embeddings:  # fp32 master rows, looked up then cast to the encoder's dtype
            emb.register_forward_hook(lambda module, args, out, dtype=self.amp: out.to(dtype))

    def autocast(self):
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp)

    def _optimizer(self) -> torch.optim.Optimizer:
        groups = [{"params": self.lora_parameters(), "lr": self.opts.lr,
                   "weight_decay": self.opts.weight_decay}]
        self.token_rows: list[torch.nn.Parameter] = []
        if self.trains_token:
            for w in self.tokens.tables(self.pipe):  # gradients flow into the whole matrices ...
                w.requires_grad_(True)
            self.token_rows = self.tokens.rows(self.pipe)  # ... but only the learned rows step
            groups.append({"params": self.token_rows, "lr": self.opts.ti_lr, "weight_decay": 0.0})
        return torch.optim.AdamW(groups, weight_decay=0.0)

    def lora_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.pipe.unet.parameters() if p.requires_grad]

    def _conditioning(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.trains_token:  # token rows change every step: re-encode with grad
            return text.encode_prompts(self.pipe, [self.data.captions[i] for i in idx])
        return self.data.cond["embeds"][idx], self.data.cond["pooled"][idx]

    def _unet(self, x_t, t, embeds, pooled) -> torch.Tensor:
        return unet_eps(self.pipe.unet, x_t, t, embeds, pooled, self.opts.resolution)

    def step(self) -> dict[str, float]:
        """One optimisation step; returns the logged quantities."""
        opts, data = self.opts, self.data
        idx, latents = self._draw(data)
        x_t, t, target = self._noisy(latents)
        n = x_t.shape[0]
        with self.autocast():
            embeds, pooled = self._conditioning(idx)
            if self.prior is not None:  # DB+p.p.: prior rows join the same UNet call
                pidx, platents = self._draw(self.prior)
                px_t, pt, ptarget = self._noisy(platents)
                x_t, t, target = torch.cat([x_t, px_t]), torch.cat([t, pt]), torch.cat([target, ptarget])
                embeds = torch.cat([embeds, self.prior.cond["embeds"][pidx].to(embeds)])
                pooled = torch.cat([pooled, self.prior.cond["pooled"][pidx].to(pooled)])
            err = losses.per_sample_mse(self._unet(x_t, t, embeds, pooled), target)
            ref = self._reference(x_t[:n], t[:n], idx) if self.objective.reference else None
        loss, row = self._loss(err, ref, t, target[:n], n)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"non-finite loss {loss.item()} at a step of {opts.out_dir}: lower lr ({opts.lr}) or "
                "check the data; no LoRA was written")
        row.update(self._update(loss), loss=loss.item(), lr=self.optimizer.param_groups[0]["lr"])
        return row

    @torch.no_grad()
    def _reference(self, x_t, t, idx) -> torch.Tensor:
        """ε_φ: the same x_t, t with every LoRA off and the base (class-word) captions."""
        with adapters.adapters_disabled(self.pipe.unet):
            return self._unet(x_t, t, self.data.cond["base_embeds"][idx], self.data.cond["base_pooled"][idx])

    def _update(self, loss: torch.Tensor) -> dict[str, float]:
        """Backward, clip, step; returns the gradient norm before clipping and whether it
        clipped (`clip_logged`). With a learned token the clipping norm counts the gradient of
        every row of the embedding matrices (the prompt's other tokens too), as when the whole
        matrices were optimised and their other rows restored after each step (the diffusers
        pivotal-tuning recipe); only the learned rows are stepped, which gives the same weights
        without Adam and a restore over the ~49k-row matrices (about 40 % of a world step)."""
        self.optimizer.zero_grad(set_to_none=True)
        matrices = self._token_rows()  # (embedding matrix, learned row) per encoder
        for w, _ in matrices:
            w.grad = None
        self.scaler.scale(loss).backward()
        for (w, i), row in zip(matrices, self.token_rows, strict=True):
            row.grad = w.grad[i : i + 1].clone()
            if self.scaler.is_enabled() and not torch.isfinite(w.grad).all():
                row.grad.fill_(float("inf"))  # an inf anywhere in the matrix skips the step, as before
        self.scaler.unscale_(self.optimizer)
        matrix_grads = [w.grad for w, _ in matrices]
        if matrix_grads and self.scaler.is_enabled():  # the matrices are not in the optimizer
            torch._foreach_mul_(matrix_grads, self.scaler.get_scale() ** -1)
        lora = self.optimizer.param_groups[0]["params"]
        total_norm = torch.nn.utils.get_total_norm(
            [p.grad for p in lora if p.grad is not None] + matrix_grads)
        logged = clip_logged(lora + self.token_rows, self.opts.max_grad_norm, total_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.lr_scheduler.step()
        if self.trains_token:
            self.tokens.write(self.pipe, self.token_rows)
        return logged

    def _token_rows(self) -> list[tuple[torch.Tensor, int]]:
        """(token-embedding matrix, learned row) per text encoder; [] without a trained token."""
        if not self.trains_token:
            return []
        return list(zip(self.tokens.tables(self.pipe), self.tokens.ids, strict=True))

    def state_dict(self) -> dict:
        """Everything a freshly built Trainer with the same options needs to continue this run
        bit-exactly: LoRA, learned-token rows, optimizer (its token parameters are the learned
        rows alone), LR scheduler, grad scaler, RNG states."""
        state = {
            "lora": {n: p.detach().float().cpu().clone()
                     for n, p in self.pipe.unet.named_parameters() if p.requires_grad},
            "tokens": [w[i].detach().float().cpu().clone() for w, i in self._token_rows()],
            "optimizer": self.optimizer.state_dict(),
            "lr_scheduler": self.lr_scheduler.state_dict(),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
        }
        if self.scaler.is_enabled():
            state["scaler"] = self.scaler.state_dict()
        if torch.cuda.is_available():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        return state

    @torch.no_grad()
    def load_state_dict(self, state: dict) -> None:
        """Inverse of `state_dict` on a freshly built Trainer with the same options."""
        params = dict(self.pipe.unet.named_parameters())
        for name, value in state["lora"].items():
            params[name].copy_(value)
        for (w, i), row, value in zip(self._token_rows(), self.token_rows, state["tokens"], strict=True):
            w[i] = value.to(w)
            row.copy_(value.reshape(row.shape))
        self.optimizer.load_state_dict(state["optimizer"])
        self.lr_scheduler.load_state_dict(state["lr_scheduler"])
        if "scaler" in state and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])

    def save(self, out_dir: Path) -> None:
        """LoRA (diffusers format, with metadata) and learned token rows."""
        out_dir.mkdir(parents=True, exist_ok=True)
        adapters.save_lora(out_dir, adapters.lora_state_dict(self.pipe.unet), self.lora_config)
        if self.tokens is not None:
            text.save_learned_embeds(out_dir / text.EMBEDS_NAME, self.pipe, self.tokens)


def clip_logged(params: list[torch.Tensor], max_norm: float,
                total_norm: torch.Tensor) -> dict[str, float]:
    """Clip `params`' gradients to `max_norm` given their `total_norm`, and return what
    train_log.csv keeps of it: the norm before clipping and whether the step was clipped, by
    torch's own test (`clip_grads_with_norm_` scales when max_norm / (norm + 1e-6) < 1), so the
    flag says what the optimizer saw. A run that clips at every step trains with a normalised
    gradient, and its lr is then the step size itself."""
    torch.nn.utils.clip_grads_with_norm_(params, max_norm, total_norm)
    return logged_clip(total_norm, max_norm)


def logged_clip(total_norm: torch.Tensor, max_norm: float) -> dict[str, float]:
    """train_log.csv's grad_norm and clipped for a step clipped with `total_norm`: the test is
    torch's own, in the norm's dtype (`clip_grads_with_norm_`: max_norm / (norm + 1e-6) < 1),
    shared by the separate and the fused trainer so a group of one logs the same flag."""
    clipped = bool(max_norm / (total_norm + 1e-6) < 1.0)
    return {"grad_norm": float(total_norm), "clipped": int(clipped)}


def _training_scheduler(pipe):
    from diffusers import DDPMScheduler

    return DDPMScheduler.from_config(pipe.scheduler.config)


def _options_json(opts: TrainOptions) -> dict:
    return json.loads(json.dumps(asdict(opts), default=str))


def train(opts: TrainOptions) -> Path:
    """Run (or resume) training; write LoRA, embeddings, train_log.csv and manifest.json into a
    staging folder that replaces `opts.out_dir` whole only once everything is written (a failed
    run leaves the previous model as it was).

    SIGTERM / SIGUSR1 (SLURM preemption or time limit) stop the run after the current step with
    a resume state saved and `Interrupted` raised; rerunning the same command continues it.
    """
    out, work = Path(opts.out_dir), resume.resume_dir(opts.out_dir)
    trainer = Trainer(opts)
    key = resume.fingerprint(_options_json(opts))
    state = resume.load_state(work, key)
    start, rows, elapsed = 0, [], 0.0
    if state is None:
        shutil.rmtree(work, ignore_errors=True)
    else:
        trainer.load_state_dict(state)
        trainer.resumed_across = state.get("resumed_across")
        start, rows, elapsed = state["step"], list(state["log"]), state["elapsed"]
        log.info("resuming %s from step %d/%d (%s)", out, start, opts.steps, work)
    begin = time.time() - elapsed
    with StopSignals() as stop:
        bar = tqdm(range(start + 1, opts.steps + 1), initial=start, total=opts.steps,
                   desc=f"train {opts.objective}", unit="step", mininterval=2.0, dynamic_ncols=True)
        for step in bar:
            row = trainer.step()
            row.update(step=step, time=round(time.time() - begin, 3))
            if step % opts.log_every == 0 or step == opts.steps:
                rows.append(row)
            bar.set_postfix(loss=f"{row['loss']:.4f}")
            if step in opts.checkpoints:
                resume.save_dir_atomic(work / "checkpoints" / f"step-{step}", trainer.save)
            if step < opts.steps and (stop.requested or step % opts.resume_every == 0):
                resume.save_state(work, {**trainer.state_dict(), "step": step, "log": rows,
                                         "elapsed": time.time() - begin, "fingerprint": key})
            if stop.requested and step < opts.steps:
                raise Interrupted(f"{stop.name()} at step {step}/{opts.steps}: resume state saved in "
                                  f"{work}; rerun the same command to continue")
    _finish(trainer, opts, work, rows, time.time() - begin)
    return out


def _finish(trainer: Trainer, opts: TrainOptions, work: Path, rows: list[dict], seconds: float,
            keep_work: bool = False) -> None:
    """Write the model folder (whole, swapped in); drop the resume folder unless `keep_work`."""
    with replacing_dir(Path(opts.out_dir)) as stage:
        trainer.save(stage)
        if (work / "checkpoints").is_dir():
            shutil.copytree(work / "checkpoints", stage / "checkpoints")
        _write_log(stage / "train_log.csv", rows)
        concept = trainer.concept
        write_manifest(stage, "train", _options_json(opts), concept=concept.name, kind=concept.kind,
                       token=concept.token, learned_token=opts.learns_token,
                       lora_config=trainer.lora_config.to_dict(),
                       precision=str(trainer.amp or torch.float32), seconds=round(seconds, 2),
                       **_resumed_across(trainer))
    if not keep_work:
        shutil.rmtree(work, ignore_errors=True)
    _warn_if_saturated(rows, opts.out_dir)


def _warn_if_saturated(rows: list[dict], out_dir) -> None:
    """The report's saturation warning (train.operating_point), already in the training
    job's log: a DCO run whose σ saturated early while ℓ(θ) stayed flat."""
    rule = saturation(pd.DataFrame(rows)) if rows else None
    if rule is not None and rule.warn:
        log.warning("%s", rule.message(str(out_dir)))


def _resumed_across(trainer) -> dict:
    """The manifest entry of a run resumed in another environment (resume.load_state), if any."""
    across = getattr(trainer, "resumed_across", None)
    return {"resumed_across": across} if across else {}


def _write_log(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        columns = log_columns()
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, math.nan) for k in columns})

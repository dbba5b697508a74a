"""LoRA (+ textual embedding) training with the DB, DB+p.p. and DCO objectives.

The trainer only orchestrates: the losses are `dcobench.losses`, the reference pass is
`adapters.adapters_disabled`, the text conditioning is `dcobench.text`.
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from dcobench import adapters, losses, text
from dcobench.data.concept import Concept, validate_concept
from dcobench.io import derive_seed, device, load_image, staging_dir, write_manifest
from dcobench.methods import METHODS

LOG_COLUMNS = ("step", "loss", "loss_theta", "loss_phi", "d", "sigma", "lr", "time")


@dataclass(frozen=True)
class TrainOptions:
    """One training run. Steps, ranks and learning rates follow the paper unless overridden."""

    concept_dir: Path  # folder with images + concept.yaml
    out_dir: Path  # results/{exp}/models/{kind}/{concept}/{method}
    method: str  # a name in methods.METHODS: dco | db | dbpp
    base_model: str = "tiny-sdxl"  # preset, local dir or hub id
    steps: int = 2000
    rank: int = 32
    alpha: float | None = None  # lora_alpha; None = rank (scale 1)
    lr: float = 5e-5  # LoRA learning rate (Adam)
    ti_lr: float = 5e-4  # learned-token learning rate
    textual_inversion: bool = True  # learn the concept token (comprehensive captions only)
    captions: str = "comprehensive"  # comprehensive | compact ("a photo of sks {class}")
    beta: float = 1.0  # the paper's β; the loss uses β·T
    offset_noise: float = 0.0  # 0.1 for styles in the paper
    snr_gamma: float | None = None  # Min-SNR-γ weighting, None = off
    max_grad_norm: float = 1.0
    resolution: int = 1024
    batch_size: int = 1
    seed: int = 0
    prior_dir: Path | None = None  # class-prior images (required for dbpp)
    prior_weight: float = 1.0  # λ_prior
    checkpoints: tuple[int, ...] = ()  # steps at which a copy of the weights is kept
    log_every: int = 1

    def __post_init__(self) -> None:
        method = METHODS[self.method]  # raises with suggestions
        if self.captions not in ("comprehensive", "compact"):
            raise ValueError(f"captions must be comprehensive or compact, got {self.captions!r}")
        if method.prior and self.prior_dir is None:
            raise ValueError(f"method {self.method!r} needs prior_dir (class-prior images)")
        for name in ("steps", "rank", "resolution", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.resolution % 8:
            raise ValueError(f"resolution must be a multiple of 8, got {self.resolution}")
        if any(s < 1 or s > self.steps for s in self.checkpoints):
            raise ValueError(f"checkpoints {self.checkpoints} must lie in [1, steps={self.steps}]")

    @property
    def learns_token(self) -> bool:
        return self.textual_inversion and self.captions == "comprehensive"


@dataclass
class Batch:
    """Cached inputs: latents (N, 4, h, w), θ captions, φ captions."""

    latents: torch.Tensor
    captions: list[str]
    base_captions: list[str]
    cond: dict[str, torch.Tensor] = field(default_factory=dict)


def _captions(concept: Concept, opts: TrainOptions) -> tuple[list[str], list[str]]:
    if opts.captions == "compact":
        caps = [concept.compact_caption] * len(concept.images)
        return caps, caps  # no learned token: the reference sees the same prompt
    caps = [concept.caption_for(p) for p in concept.images]
    base = [concept.base_caption(c) for c in caps]
    return caps, (base if opts.learns_token else caps)


@torch.no_grad()
def encode_latents(pipe, paths: list[Path], resolution: int) -> torch.Tensor:
    """VAE latent means × scaling factor, computed once per run: (N, 4, R/8, R/8)."""
    pixels = torch.stack([load_image(p, resolution) for p in paths]).to(pipe.vae.device)
    dist = pipe.vae.encode(pixels.to(pipe.vae.dtype)).latent_dist
    return dist.mean.float() * pipe.vae.config.scaling_factor


@torch.no_grad()
def _cache_text(pipe, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    return text.encode_prompts(pipe, prompts)


def _prior_batch(pipe, prior_dir: Path, resolution: int) -> Batch:
    rows = list(csv.DictReader(open(Path(prior_dir) / "index.csv")))
    if not rows:
        raise ValueError(f"{prior_dir}/index.csv lists no class-prior images")
    paths = [Path(prior_dir) / r["file"] for r in rows]
    prompts = [r["prompt"] for r in rows]
    batch = Batch(encode_latents(pipe, paths, resolution), prompts, prompts)
    batch.cond["embeds"], batch.cond["pooled"] = _cache_text(pipe, prompts)
    return batch


class Trainer:
    """Holds the pipeline, the LoRA, the learned token and the optimiser for one run."""

    def __init__(self, opts: TrainOptions) -> None:
        from dcobench.models import load_sdxl

        self.opts = opts
        self.method = METHODS[opts.method]
        self.concept = validate_concept(opts.concept_dir)
        self.device = device()
        self.pipe = load_sdxl(opts.base_model, device=self.device)
        pipe = self.pipe
        for module in (pipe.unet, pipe.vae, pipe.text_encoder, pipe.text_encoder_2):
            module.requires_grad_(False)
        self.noise_scheduler = _training_scheduler(pipe)
        self.T = self.noise_scheduler.config.num_train_timesteps
        self.lora_config = adapters.add_lora(pipe.unet, opts.rank, opts.alpha)
        self.tokens = None
        if opts.learns_token:
            self.tokens = text.add_learned_token(pipe, self.concept.token, self.concept.class_noun)
        caps, base = _captions(self.concept, opts)
        self.data = Batch(encode_latents(pipe, self.concept.images, opts.resolution), caps, base)
        self.data.cond["base_embeds"], self.data.cond["base_pooled"] = _cache_text(pipe, base)
        if self.tokens is None:
            self.data.cond["embeds"], self.data.cond["pooled"] = _cache_text(pipe, caps)
        self.prior = _prior_batch(pipe, opts.prior_dir, opts.resolution) if self.method.prior else None
        self.optimizer = self._optimizer()
        self.generator = torch.Generator().manual_seed(derive_seed(opts.seed, "train"))

    def _optimizer(self) -> torch.optim.Optimizer:
        lora = [p for p in self.pipe.unet.parameters() if p.requires_grad]
        groups = [{"params": lora, "lr": self.opts.lr}]
        if self.tokens is not None:
            embeds = self.tokens.parameters(self.pipe)
            for p in embeds:
                p.requires_grad_(True)
            groups.append({"params": embeds, "lr": self.opts.ti_lr, "weight_decay": 0.0})
        return torch.optim.AdamW(groups, weight_decay=0.0)

    def _conditioning(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.tokens is not None:  # token rows change every step: re-encode with grad
            embeds, pooled = text.encode_prompts(self.pipe, [self.data.captions[i] for i in idx])
            return embeds, pooled
        return self.data.cond["embeds"][idx], self.data.cond["pooled"][idx]

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

    def _unet(self, x_t, t, embeds, pooled) -> torch.Tensor:
        ids = text.time_ids(self.opts.resolution, self.opts.resolution, x_t.shape[0], x_t.device, x_t.dtype)
        cond = {"text_embeds": pooled, "time_ids": ids}
        return self.pipe.unet(x_t, t, encoder_hidden_states=embeds, added_cond_kwargs=cond).sample

    def _weights(self, t: torch.Tensor) -> torch.Tensor | None:
        if self.opts.snr_gamma is None:
            return None
        alphas = self.noise_scheduler.alphas_cumprod.to(t.device)[t]
        snr = alphas / (1 - alphas)
        pred = self.noise_scheduler.config.prediction_type
        return losses.snr_weights(snr, self.opts.snr_gamma, pred)

    def step(self) -> dict[str, float]:
        """One optimisation step; returns the logged quantities."""
        opts, data = self.opts, self.data
        idx = torch.randint(0, data.latents.shape[0], (opts.batch_size,), generator=self.generator)
        x_t, t, target = self._noisy(data.latents[idx])
        embeds, pooled = self._conditioning(idx)
        n = x_t.shape[0]
        if self.prior is not None:  # DB+p.p.: prior rows join the same UNet call
            pidx = torch.randint(0, self.prior.latents.shape[0], (opts.batch_size,), generator=self.generator)
            px_t, pt, ptarget = self._noisy(self.prior.latents[pidx])
            x_t, t, target = torch.cat([x_t, px_t]), torch.cat([t, pt]), torch.cat([target, ptarget])
            embeds = torch.cat([embeds, self.prior.cond["embeds"][pidx]])
            pooled = torch.cat([pooled, self.prior.cond["pooled"][pidx]])
        err = losses.per_sample_mse(self._unet(x_t, t, embeds, pooled), target)
        weights = self._weights(t[:n])
        row = {"loss_theta": err[:n].mean().item()}
        if self.method.objective == "dco":
            with torch.no_grad(), adapters.adapters_disabled(self.pipe.unet):
                ref = self._unet(x_t[:n], t[:n], data.cond["base_embeds"][idx], data.cond["base_pooled"][idx])
            err_phi = losses.per_sample_mse(ref, target[:n])
            loss = losses.dco_loss(err[:n], err_phi, opts.beta, self.T, weights)
            d = (err[:n] - err_phi).mean().item()
            row.update(loss_phi=err_phi.mean().item(), d=d,
                       sigma=torch.sigmoid(torch.tensor(-opts.beta * self.T * d)).item())
        elif self.prior is not None:
            loss = losses.prior_preservation_loss(err[:n] * (weights if weights is not None else 1),
                                                  err[n:], opts.prior_weight)
            row.update(loss_phi=err[n:].mean().item())
        else:
            loss = losses.db_loss(err, weights)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"non-finite loss {loss.item()} in {opts.out_dir}: lower lr ({opts.lr}) or check the "
                "data; no LoRA was written")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        torch.nn.utils.clip_grad_norm_(params, opts.max_grad_norm)
        self.optimizer.step()
        if self.tokens is not None:
            self.tokens.restore(self.pipe)
        row.update(loss=loss.item(), lr=opts.lr)
        return row

    def save(self, out_dir: Path) -> None:
        """LoRA (diffusers format, with metadata) and learned token rows."""
        out_dir.mkdir(parents=True, exist_ok=True)
        adapters.save_lora(out_dir, adapters.lora_state_dict(self.pipe.unet), self.lora_config)
        if self.tokens is not None:
            text.save_learned_embeds(out_dir / text.EMBEDS_NAME, self.pipe, self.tokens)


def _training_scheduler(pipe):
    from diffusers import DDPMScheduler

    return DDPMScheduler.from_config(pipe.scheduler.config)


def train(opts: TrainOptions) -> Path:
    """Run training; write the LoRA, embeddings, train_log.csv and manifest.json atomically."""
    torch.manual_seed(derive_seed(opts.seed, "init"))
    trainer = Trainer(opts)
    log_rows, start = [], time.time()
    with staging_dir(Path(opts.out_dir)) as stage:
        bar = tqdm(range(1, opts.steps + 1), desc=f"train {opts.method}", unit="step",
                   mininterval=2.0, dynamic_ncols=True)
        for step in bar:
            row = trainer.step()
            row.update(step=step, time=round(time.time() - start, 3))
            if step % opts.log_every == 0 or step == opts.steps:
                log_rows.append(row)
            bar.set_postfix(loss=f"{row['loss']:.4f}")
            if step in opts.checkpoints:
                trainer.save(stage / "checkpoints" / f"step-{step}")
        trainer.save(stage)
        _write_log(stage / "train_log.csv", log_rows)
        options = json.loads(json.dumps(asdict(opts), default=str))
        write_manifest(stage, "train", options, concept=trainer.concept.name,
                       kind=trainer.concept.kind, token=trainer.concept.token,
                       learned_token=opts.learns_token, lora_config=trainer.lora_config.to_dict(),
                       seconds=round(time.time() - start, 2))
    return Path(opts.out_dir)


def _write_log(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=LOG_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, math.nan) for k in LOG_COLUMNS})

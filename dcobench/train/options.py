"""TrainOptions: one training run's settings, checked when built (the `train` stage's edge)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path

from dcobench.data.captions import CAPTION_MODES
from dcobench.models import adapters
from dcobench.models.finetuned import PRECISIONS
from dcobench.train.objectives import OBJECTIVES


@dataclass(frozen=True)
class TrainOptions:
    """One training run. Steps, ranks and learning rates follow the paper unless overridden. The
    defaults serve library callers; pipeline runs pass every field from the config, whose
    defaults are workflow/schemas/config.schema.yaml's (a unit test keeps both equal)."""

    concept_dir: Path  # folder with images + concept.yaml
    out_dir: Path  # results/{exp}/models/{kind}/{concept}/{variant}
    objective: str  # a name in objectives.OBJECTIVES: dco | db
    base_model: str = "tiny-sdxl"  # preset, local dir or hub id
    steps: int = 2000
    rank: int = 32
    alpha: float | None = None  # lora_alpha; None = rank (scale 1)
    targets: tuple[str, ...] = adapters.LORA_TARGETS  # UNet modules that get a LoRA
    lr: float = 5e-5  # LoRA learning rate (Adam)
    ti_lr: float = 5e-4  # learned-token learning rate
    lr_warmup_steps: int = 0  # linear LR warm-up; 0 = constant (the paper)
    textual_inversion: bool = True  # learn the concept token (config default: subjects only)
    captions: str = "comprehensive"  # comprehensive | compact | rare_token (data/captions.py)
    beta: float = 1.0  # the paper's β; the loss uses β·T
    offset_noise: float = 0.0  # 0.1 for styles in the paper
    snr_gamma: float | None = None  # Min-SNR-γ weighting, None = off
    max_grad_norm: float = 1.0
    resolution: int = 1024
    batch_size: int = 1
    random_flip: bool = False  # horizontal-flip augmentation (latents cached for both flips)
    seed: int = 0
    prior_dir: Path | None = None  # class-prior images: their rows join every step (DB+p.p.)
    prior_weight: float = 1.0  # λ_prior
    checkpoints: tuple[int, ...] = ()  # steps at which a copy of the weights is kept
    log_every: int = 1
    mixed_precision: str = "auto"  # auto | fp32 | bf16 | fp16 (frozen weights; trainables fp32)
    gradient_checkpointing: bool = False
    resume_every: int = 100  # steps between resume states

    def __post_init__(self) -> None:
        OBJECTIVES[self.objective]  # raises with suggestions
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{f.name} is {value}; set a finite number")
        if self.lr <= 0 or self.ti_lr < 0:  # ti_lr 0: the token is not trained (batches.trains_token)
            raise ValueError(f"lr must be > 0 and ti_lr >= 0, got {self.lr} and {self.ti_lr}")
        if self.captions not in CAPTION_MODES:
            raise ValueError(f"captions must be one of {', '.join(CAPTION_MODES)}, "
                             f"got {self.captions!r}")
        if self.captions == "rare_token" and self.textual_inversion:
            raise ValueError("captions rare_token ('a photo of sks {class}') learns no token; "
                             "set textual_inversion: false for this run")
        for name in ("steps", "rank", "resolution", "batch_size", "log_every", "resume_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.resolution % 8:
            raise ValueError(f"resolution must be a multiple of 8, got {self.resolution}")
        if not self.targets:
            raise ValueError("targets must name at least one UNet module (e.g. to_q)")
        if any(s < 1 or s > self.steps for s in self.checkpoints):
            raise ValueError(f"checkpoints {self.checkpoints} must lie in [1, steps={self.steps}]")
        if self.mixed_precision not in ("auto", *PRECISIONS):
            raise ValueError(f"mixed_precision must be auto, fp32, bf16 or fp16, "
                             f"got {self.mixed_precision!r}")

    @property
    def learns_token(self) -> bool:
        return self.textual_inversion

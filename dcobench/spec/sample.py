"""SampleOptions: one sampling job's settings, each declared once with its spec (see
`dcobench.spec.train` for the field spec). From these fields come the `sample` section of the
config schema (guides and chunks, not options of one job, stay in the schema file), the values
the sampling rules pass (`dcobench.config.sample_options`), the bounds a library caller gets
checked and `python -m dcobench sample --help`. No torch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from dcobench.sample.guides import Guide
from dcobench.spec.options import UNSET, check, option
from dcobench.spec.train import CAPTION_MODES, PRECISION_NAMES

SCHEDULERS = ("ddim", "euler", "dpm")  # dcobench.sample.denoise.make_scheduler builds them
NAMES = {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True}
SEEDS = {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 0},
         "uniqueItems": True}
INT1 = {"type": "integer", "minimum": 1}


@dataclass(frozen=True)
class SampleOptions:
    """A sampling job. Every variant and grid point gets the same noise per (seed, prompt). The
    defaults serve library callers; pipeline runs pass the config's values."""

    SECTION: ClassVar[str] = "sample"

    out_dir: Path = option(config=None, help="results/{exp}/samples/{kind}/{concept}/{variant}: "
                                             "one folder per guide inside")
    model_dir: Path | None = option(None, config=None, help="LoRA folder (train or merge "
                                                            "output); None = pretrained model")
    subject_dir: Path | None = option(None, config=None, help="the concept folder that fills "
                                                              "the {subject} slots")
    style_dir: Path | None = option(None, config=None, help="the concept folder that fills the "
                                                            "{style} slots")
    base_model: str = option("tiny-sdxl", config=None, help="preset, local dir or hub id "
                                                            "(models.base)")
    guides: tuple[Guide, ...] = option(("cfg", "rg2", "rg3", "rg4", "rg5"), config=None,
                                       help="guides: names cfg | rg<ω> (sample.guides or "
                                            "merge.guides), parsed by Guide.parse")
    prompt_set: str | None = option(None, config=None,
                                    help="one registered set; None = prompt_sets by group")
    prompt_sets: dict | None = option(
        None, config_default=UNSET, omit_default=True,
        schema={"type": "object", "additionalProperties": False,
                "properties": {"subject": NAMES, "style": NAMES, "merge": NAMES}},
        help="group (subject | style | merge) -> prompt set names; unset = the defaults")
    num_prompts: int | None = option(None, schema={"type": ["integer", "null"], "minimum": 1},
                                     required=True,
                                     help="the first N prompts of each set; null = all")
    seeds: tuple[int, ...] = option((0, 1), schema=SEEDS, required=True,
                                    help="noise seeds per prompt")
    set_seeds: dict | None = option(
        None, omit_default=True,
        schema={"type": ["object", "null"], "additionalProperties": SEEDS},
        help="prompt set -> its own seeds, replacing `seeds` for that set")
    steps: int = option(50, schema=INT1, required=True, help="denoising steps")
    w_text: float = option(7.5, schema={"type": "number", "minimum": 0}, required=True,
                           help="ω_text (text guidance scale)")
    scheduler: str = option("ddim", schema={"enum": list(SCHEDULERS)}, required=True,
                            help="inference scheduler")
    resolution: int = option(1024, schema={"type": "integer", "minimum": 8, "multipleOf": 8},
                             required=True, help="image size (px)")
    batch_size: int = option(4, schema=INT1, required=True,
                             help="(prompt, seed) slots per UNet batch")
    captions: str = option("comprehensive", schema={"enum": list(CAPTION_MODES)},
                           config="train.captions",
                           help="caption mode when the model folder has no train manifest")
    seed: int = option(0, schema={"type": "integer", "minimum": 0}, config="seed",
                       help="master seed; an image's noise depends on (seed, its seed slot, "
                            "prompt index)")
    mixed_precision: str = option("auto", schema={"enum": ["auto", *PRECISION_NAMES]},
                                  help="the UNet's dtype; auto = bf16/fp16 on GPU, fp32 on CPU")
    channels_last: bool = option(False, schema={"type": "boolean"}, omit_default=True,
                                 help="UNet weights in channels_last memory format (not "
                                      "bit-exact)")

    def __post_init__(self) -> None:
        guides = tuple(Guide.parse(g) if isinstance(g, str) else g for g in self.guides)
        object.__setattr__(self, "guides", guides)
        for g in guides:
            if g.kind == "rg" and self.model_dir is None:
                raise ValueError(f"guide {g.name!r} needs a fine-tuned model (model_dir)")
        if self.subject_dir is None and self.style_dir is None:
            raise ValueError("give subject_dir and/or style_dir: they fill the prompt templates")
        check(self)  # every field's bounds, from its spec
        for name, seeds in (self.set_seeds or {}).items():
            if not seeds or len(set(seeds)) != len(seeds) or any(int(x) < 0 for x in seeds):
                raise ValueError(f"set_seeds[{name!r}] must be distinct seeds >= 0, got {seeds!r}")

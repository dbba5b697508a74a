"""`python -m dcobench analyze`: noise distance ‖ε_θ − ε_φ‖² per timestep (Fig 8c) and the
per-layer cosine between subject and style LoRA columns (Fig 10)."""

from __future__ import annotations

import json
from pathlib import Path

from dcobench.cli import add_options_argument, build_options


def add_arguments(parser) -> None:
    parser.add_argument("analysis", choices=["noise-distance", "lora-cosine", "join"],
                        help="which analysis; join: concatenate per-model tables (--part)")
    parser.add_argument("--run", nargs="+", metavar="CONCEPT_DIR:VARIANT:MODEL_DIR",
                        help="noise-distance: one entry per trained model")
    parser.add_argument("--pair", nargs="+", metavar="VARIANT:SUBJECT_MODEL:STYLE_MODEL",
                        help="lora-cosine: one entry per (subject, style) LoRA pair")
    parser.add_argument("--part", nargs="+", metavar="CSV",
                        help="join: per-model analysis tables, concatenated in the given order")
    parser.add_argument("--out", required=True, help="output csv")
    parser.add_argument("--base-model", default="tiny-sdxl")
    add_options_argument(parser)


def run(args) -> None:
    from dcobench.io import write_manifest, write_text_atomic

    if args.analysis == "join":
        _join(args.part, Path(args.out))
        return
    if args.analysis == "noise-distance":
        if not args.run:
            raise SystemExit("analyze noise-distance: give --run CONCEPT_DIR:VARIANT:MODEL_DIR ...")
        rows, options = _noise_distance(args), json.loads(args.options)
    else:
        if not args.pair:
            raise SystemExit("analyze lora-cosine: give --pair VARIANT:SUBJECT_MODEL:STYLE_MODEL ...")
        rows, options = _lora_cosine(args.pair), {}
    import pandas as pd

    out = Path(args.out)
    write_text_atomic(out, pd.DataFrame(rows).to_csv(index=False))
    write_manifest(out.parent, f"analyze-{args.analysis}", options, runs=args.run or args.pair)


def _join(parts: list[str] | None, out: Path) -> None:
    """One table from per-model tables with the same columns (e.g. one noise-distance job per
    (concept, variant)); a part with other columns is refused, naming it."""
    import pandas as pd

    from dcobench.io import write_text_atomic

    if not parts:
        raise SystemExit("analyze join: give --part CSV ...")
    frames = [pd.read_csv(p) for p in parts]
    for path, frame in zip(parts, frames, strict=True):
        if list(frame.columns) != list(frames[0].columns):
            raise SystemExit(f"analyze join: {path} has columns {list(frame.columns)}, "
                             f"{parts[0]} has {list(frames[0].columns)}")
    write_text_atomic(out, pd.concat(frames, ignore_index=True).to_csv(index=False))


def _noise_distance(args) -> list[dict]:
    import torch

    from dcobench.analysis.noise_distance import NoiseDistanceOptions, noise_distance
    from dcobench.models.finetuned import load_finetuned

    opts = build_options(NoiseDistanceOptions, args.options)
    rows = []
    for entry in args.run:
        concept_dir, variant, model_dir = entry.split(":", 2)
        torch.manual_seed(0)
        pipe = load_finetuned(args.base_model, Path(model_dir), precision="fp32")  # Fig 8c: fp32
        for row in noise_distance(pipe, Path(concept_dir), opts, Path(model_dir)):
            rows.append({"concept": Path(concept_dir).name, "variant": variant, **row})
    return rows


def _lora_cosine(pairs: list[str]) -> list[dict]:
    from dcobench.analysis.lora_cosine import lora_cosine
    from dcobench.merge.lora import read_lora

    rows = []
    for entry in pairs:
        variant, subject_model, style_model = entry.split(":", 2)
        subject, style = Path(subject_model), Path(style_model)
        for row in lora_cosine(read_lora(subject), read_lora(style)):
            rows.append({"subject": subject.parent.name, "style": style.parent.name,
                         "variant": variant, **row})
    return rows

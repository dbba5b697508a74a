"""`python -m dcobench sample`: one model over the guidance grid × prompts × seeds."""

from __future__ import annotations

from dcobench.cli import add_options_argument, build_options


def add_arguments(parser) -> None:
    parser.add_argument("--model", help="LoRA folder (train or merge output); omit for the base model")
    parser.add_argument("--subject", help="subject concept folder (fills {subject})")
    parser.add_argument("--style", help="style concept folder (fills {style})")
    parser.add_argument("--out", required=True, help="output folder; one sub-folder per guide")
    parser.add_argument("--base-model", help="SDXL preset, local folder or hub id")
    add_options_argument(parser)


def run(args) -> None:
    from dcobench.sample.grid import SampleOptions, sample_grid

    opts = build_options(SampleOptions, args.options, out_dir=args.out, model_dir=args.model,
                         subject_dir=args.subject, style_dir=args.style, base_model=args.base_model)
    sample_grid(opts)

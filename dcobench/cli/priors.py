"""`python -m dcobench priors`: class-prior images for DB + prior preservation."""

from __future__ import annotations

from dcobench.cli import add_options_argument, build_options
from dcobench.spec.priors import PriorOptions


def add_arguments(parser) -> None:
    parser.add_argument("--class-noun", required=True, help='class noun, e.g. "dog"')
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--base-model", help="SDXL preset, local folder or hub id")
    add_options_argument(parser, PriorOptions)


def run(args) -> None:
    from dcobench.train.priors import generate_priors

    opts = build_options(PriorOptions, args.options, class_noun=args.class_noun,
                         out_dir=args.out, base_model=args.base_model)
    generate_priors(opts)

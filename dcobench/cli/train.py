"""`python -m dcobench train`: one LoRA for one concept, objective and (optional) class priors."""

from __future__ import annotations

from dcobench.cli import add_options_argument, build_options


def add_arguments(parser) -> None:
    parser.add_argument("--concept", required=True, help="concept folder (images + concept.yaml)")
    parser.add_argument("--objective", required=True, help="dco | db (dcobench.train.objectives)")
    parser.add_argument("--out", required=True, help="output folder for the LoRA and logs")
    parser.add_argument("--base-model", help="SDXL preset, local folder or hub id")
    parser.add_argument("--prior", help="class-prior folder: its rows join every step (DB + p.p.)")
    add_options_argument(parser)


def run(args) -> None:
    from dcobench.train.options import TrainOptions
    from dcobench.train.trainer import train

    opts = build_options(TrainOptions, args.options, concept_dir=args.concept, out_dir=args.out,
                         objective=args.objective, base_model=args.base_model, prior_dir=args.prior)
    train(opts)

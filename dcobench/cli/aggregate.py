"""`python -m dcobench aggregate`: per-concept means, means over concepts with bootstrap CIs,
paired differences against DCO — rendered later by `report`, never from raw scores."""

from __future__ import annotations

from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("--scores", nargs="+", required=True, help="long score tables (csv)")
    parser.add_argument("--out-dir", required=True, help="writes summary/per_concept/paired.csv")
    parser.add_argument("--reference", default="dco", help="method the paired differences use")


def run(args) -> None:
    from dcobench.io import write_manifest
    from dcobench.report import write_aggregates

    paths = write_aggregates([Path(p) for p in args.scores], Path(args.out_dir), args.reference)
    write_manifest(Path(args.out_dir), "aggregate", {"reference": args.reference},
                   inputs=len(args.scores), outputs={k: str(v) for k, v in paths.items()})

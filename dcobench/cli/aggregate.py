"""`python -m dcobench aggregate`: per-concept means, means over concepts with bootstrap CIs,
paired differences against DCO, per experiment and prompt set — rendered later by `report`,
never from raw scores."""

from __future__ import annotations

from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("--scores", nargs="+", required=True, help="long score tables (csv)")
    parser.add_argument("--out-dir", required=True, help="writes summary/per_concept/paired.csv")
    parser.add_argument("--reference", default="dco", help="variant the paired differences use")
    parser.add_argument("--experiments", default=None, metavar="JSON|FILE",
                        help="experiment membership {name: {evaluated: [[kind, concept, variant]], "
                        "pretrained: [[kind, concept]], merges: [[subject, style, merge]]}} (the "
                        "plan's; report.smk passes it); "
                        "absent: every row belongs to its exp column")


def run(args) -> None:
    from dcobench.io import write_manifest
    from dcobench.report import load_membership, write_aggregates

    membership = load_membership(args.experiments)
    paths = write_aggregates([Path(p) for p in args.scores], Path(args.out_dir), args.reference,
                             membership)
    write_manifest(Path(args.out_dir), "aggregate",
                   {"reference": args.reference,
                    "experiments": sorted(membership) if membership else None},
                   inputs=len(args.scores), outputs={k: str(v) for k, v in paths.items()})

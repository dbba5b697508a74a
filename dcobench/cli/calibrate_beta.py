"""`python -m dcobench calibrate-beta --logs <train_log.csv ...>`: choose DCO's β for a base
model from a short β sweep (docs/beta.md).

Reads the train logs of DCO runs at several β (any number of concepts or seeds each; β is
read back from each log's own β·T·d / d, and from the manifest.json beside it when there is
one), and prints per β·T how many logs saturated (trailing rolling mean σ > 0.9), the first
saturation step, the largest rolling mean σ and the median β·T·d, then recommends the largest
β·T that saturated in none of its logs, nor did any smaller one. With --planned-steps S only
the first 10 % of S steps count (a calibration run of that length is enough).
"""

from __future__ import annotations

from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("--logs", nargs="+", required=True, type=Path,
                        help="train_log.csv of DCO runs of the sweep (several β; results/<exp>/"
                        "models/<kind>/<concept>/<variant>/train_log.csv)")
    parser.add_argument("--planned-steps", type=int, default=None,
                        help="the steps the real runs will train: only the first 10%% of them "
                        "are read (default: each log whole)")
    parser.add_argument("--out", type=Path, default=None, help="also write the table as csv")


def run(args) -> int:
    from dcobench.errors import UserError
    from dcobench.train import operating_point as op

    until = None if args.planned_steps is None else op.EARLY_FRACTION * args.planned_steps
    missing = [str(p) for p in args.logs if not p.exists()]
    if missing:
        raise UserError(f"calibrate-beta: no such train log: {', '.join(missing)}")
    try:
        table, best = op.calibrate(op.read_sweep(args.logs, until))
    except ValueError as exc:
        raise UserError(f"calibrate-beta: {exc}") from exc
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out, index=False)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(recommendation(table, best))
    return 0


def recommendation(table, best: float | None) -> str:
    """One line: the β·T (and β where the manifests gave it) to use, or why there is none."""
    if best is None:
        return ("no β of the sweep stays unsaturated: even the smallest saturates early; "
                "sweep smaller β (docs/beta.md)")
    row = table[table["recommended"]].iloc[0]
    beta = "" if row["beta"] != row["beta"] else f" (β = {row['beta']:g})"  # NaN: no manifest
    edge = (" — the largest of the sweep: its edge lies higher, sweep larger β to find it"
            if best == table["beta_T"].max() else "")
    return f"recommended β·T = {best:g}{beta}{edge}"

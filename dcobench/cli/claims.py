"""`python -m dcobench claims`: evaluate pre-registered claims (config/world_claims.yaml) on a
results folder: per test the paired effect, its bootstrap CI and the verdict, written as csv,
with the commit that last changed the claims file (the pre-registration)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("--claims", default="config/world_claims.yaml", help="pre-registered claims file")
    parser.add_argument("--results", default="results/world",
                        help="results folder (scores/, merges/, analysis/noise_distance.csv)")
    parser.add_argument("--out", help="claims table csv (default: print only)")


def registration_commit(path: Path) -> str:
    """The commit that last changed the claims file, or "uncommitted" (git absent or file new)."""
    try:
        out = subprocess.run(["git", "log", "-1", "--format=%H", "--", str(path)], capture_output=True,
                             text=True, check=True, cwd=path.parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "uncommitted"
    return out or "uncommitted"


def run(args) -> None:
    import pandas as pd

    from dcobench.analysis.claims import claims_table, evaluate, load_protocol, read_world_scores
    from dcobench.io import write_text_atomic

    protocol = load_protocol(args.claims)
    results = Path(args.results)
    noise_csv = results / "analysis" / "noise_distance.csv"
    noise = pd.read_csv(noise_csv) if noise_csv.is_file() else None
    table = claims_table(evaluate(protocol, read_world_scores(results), noise))
    table.insert(0, "registered", registration_commit(Path(args.claims).resolve()))
    print(table[["claim", "test", "effect", "ci_low", "ci_high", "verdict", "claim_verdict"]]
          .to_string(index=False, float_format=lambda x: f"{x:+.4f}"))
    if args.out:
        write_text_atomic(Path(args.out), table.to_csv(index=False))

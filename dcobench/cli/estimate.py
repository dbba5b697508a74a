"""`python -m dcobench estimate --configfile config/paper.yaml`: GPU-hours per rule.

Counts the UNet rows each GPU rule runs for the experiments the config selects (see
dcobench/estimate.py) and prices them with `bench gpu`'s measured per-row costs
(results/bench/gpu.json) or the one documented fallback. Jobs longer than the profile's time
limit for their rule are flagged.
"""

from __future__ import annotations

from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("--configfile", required=True, help="config (merged over config.yaml)")
    parser.add_argument("--bench", default="results/bench/gpu.json",
                        help="bench gpu's JSON with ms_per_unet_row (default: %(default)s)")
    parser.add_argument("--profile", default="slurm", help="SLURM profile folder (time limits)")


def run(args) -> None:
    from dcobench.estimate import estimate, load_config, load_costs, profile_limits, report_lines

    costs = load_costs(Path(args.bench))
    rules = estimate(load_config(Path(args.configfile)), costs)
    print("\n".join(report_lines(rules, costs, profile_limits(Path(args.profile)))))

"""`python -m dcobench launch`: submit one stage (or a sweep of it) outside the DAG.

    python -m dcobench launch [--cluster slurm|local] [--profile slurm] [--time 60] ... \\
        -- train --concept data/dreambooth/dog --objective dco --out results/adhoc/dog \\
           --options '{"steps": 500}'

Resources default to what `snakemake --profile slurm` gives the stage's rule; flags override.
`--sweep sweep.yaml` (a YAML list of {flag: value}) submits one SLURM array task per entry.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dcobench.errors import UserError


def add_arguments(parser) -> None:
    parser.add_argument("--cluster", choices=("slurm", "local"), default="slurm",
                        help="slurm: sbatch through submitit; local: a process on this machine")
    parser.add_argument("--profile", default="slurm",
                        help="Snakemake profile folder whose resources to use (default: slurm)")
    parser.add_argument("--rule", help="profile rule to take resources from (default: the stage's)")
    parser.add_argument("--time", type=int, dest="runtime", help="minutes (sbatch -t)")
    parser.add_argument("--mem", type=int, dest="mem_mb", help="MB (sbatch --mem)")
    parser.add_argument("--cpus", type=int, dest="cpus_per_task", help="sbatch --cpus-per-task")
    parser.add_argument("--gpus", type=int, dest="gpu", help="GPUs per job (0 = CPU-only)")
    parser.add_argument("--gpu-model", dest="gpu_model", help="GPU type, e.g. a100")
    parser.add_argument("--partition", dest="slurm_partition", help="sbatch -p")
    parser.add_argument("--account", dest="slurm_account", help="sbatch -A")
    parser.add_argument("--sbatch-extra", dest="slurm_extra",
                        help="extra sbatch flags, e.g. '--qos=high --signal=TERM@300'")
    parser.add_argument("--sweep", type=Path, help="YAML list of {stage flag: value}: a job array")
    parser.add_argument("--log-dir", type=Path, default=Path("results/launch"),
                        help="submitit folder: job pickles and stdout/stderr per job id")
    parser.add_argument("--max-requeues", type=int, default=3,
                        help="times an interrupted (preempted, timed-out) job requeues itself")
    parser.add_argument("--no-wait", action="store_true", help="print job ids and return")
    parser.add_argument("stage_argv", nargs=argparse.REMAINDER, metavar="-- STAGE ARGS",
                        help="the stage command line, after --")


def run(args) -> None:
    from dcobench import launch

    argv = args.stage_argv[1:] if args.stage_argv[:1] == ["--"] else args.stage_argv
    if not argv or argv[0] not in launch.STAGE_RULES:
        raise UserError(f"give the stage to run after --, one of: {', '.join(launch.STAGE_RULES)}")
    res = launch.profile_resources(Path(args.profile), args.rule or launch.STAGE_RULES[argv[0]])
    for name in ("runtime", "mem_mb", "cpus_per_task", "gpu", "gpu_model", "slurm_partition",
                 "slurm_account", "slurm_extra"):
        if getattr(args, name) is not None:
            setattr(res, name, getattr(args, name))
    argvs = ([launch.sweep_argv(argv, e) for e in launch.read_sweep(args.sweep)]
             if args.sweep else [argv])
    jobs = launch.submit(argvs, res, args.cluster, args.log_dir, args.max_requeues)
    print(f"submitted {len(jobs)} {args.cluster} job(s): {' '.join(j.job_id for j in jobs)} "
          f"(logs: {args.log_dir})", flush=True)
    if args.no_wait:
        return
    failed = 0
    for job in jobs:
        try:
            job.result()
            print(f"job {job.job_id}: done", flush=True)
        except Exception as exc:  # noqa: BLE001 - submitit re-raises the job's error
            failed += 1
            print(f"job {job.job_id}: FAILED ({str(exc).strip().splitlines()[-1]}); "
                  f"see {job.paths.stderr}", file=sys.stderr, flush=True)
    if failed:
        raise UserError(f"{failed} of {len(jobs)} launched job(s) failed")

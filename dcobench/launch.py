"""Run one dcobench stage outside the DAG: on SLURM through submitit, or locally.

The SLURM resources come from the Snakemake profile (slurm/config.yaml: default-resources plus
the stage's rule under set-resources), so an ad-hoc training run gets what `snakemake --profile
slurm` would give it. A sweep file turns one launch into a SLURM job array (one task per entry).

Preemption: the job runs `python -m dcobench <stage> ...` in the submitit process. submitit's
warning signal (USR2, `signal_delay_s` before the time limit) and SLURM's SIGTERM both reach the
stage's stop handler (dcobench.signals): train/sample save their progress and return 143; then
the job requeues itself (up to `max_requeues` times) and the rerun resumes.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import re
import shlex
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from dcobench.signals import EXIT_INTERRUPTED
from dcobench.yamlio import load_yaml

log = logging.getLogger("dcobench")

# stage -> Snakemake rule whose profile resources it uses
STAGE_RULES = {"prepare": "prepare", "priors": "priors", "train": "train", "sample": "sample",
               "score": "score", "merge": "merge", "analyze": "noise_distance_run",
               "aggregate": "aggregate", "report": "report", "bench": "train"}


@dataclass
class Resources:
    """What one job asks SLURM for (snakemake resource names)."""

    runtime: int = 30  # minutes
    mem_mb: int = 4000
    cpus_per_task: int = 1
    gpu: int = 0
    gpu_model: str | None = None
    gres: str | None = None  # e.g. "gpu:1": sbatch --gres, for clusters without cons_tres
    slurm_partition: str | None = None
    slurm_account: str | None = None
    slurm_extra: str = ""  # extra sbatch flags, e.g. "--signal=TERM@300 --qos=high"
    extra: dict = field(default_factory=dict)  # other profile keys, ignored by the launcher

    @property
    def gpus(self) -> int:
        """GPUs per job, asked for as `gpu` (--gpus) or as `gres` (gpu[:type]:N)."""
        if self.gpu:
            return int(self.gpu)
        parts = (self.gres or "").split(":")
        if parts[0] != "gpu":
            return 0
        return int(parts[-1]) if len(parts) > 1 and parts[-1].isdigit() else 1


def _value(raw):
    """A profile resource value: snakemake evaluates strings as Python expressions."""
    if isinstance(raw, str):
        try:
            return ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            return raw
    return raw


def profile_resources(profile: Path, rule: str) -> Resources:
    """default-resources overlaid with set-resources[rule] from a Snakemake profile."""
    path = Path(profile) / "config.yaml" if Path(profile).is_dir() else Path(profile)
    if not path.is_file():
        raise FileNotFoundError(f"SLURM profile {path} does not exist")
    data = load_yaml(path) or {}  # strict: a key given twice is refused
    merged = {**(data.get("default-resources") or {}),
              **((data.get("set-resources") or {}).get(rule) or {})}
    known = set(Resources.__dataclass_fields__) - {"extra"}
    res = Resources(**{k: _value(v) for k, v in merged.items() if k in known})
    res.extra = {k: _value(v) for k, v in merged.items() if k not in known}
    return res


def signal_delay(extra: str, default: int = 300) -> int:
    """Seconds of warning before the time limit, read from a `--signal=[B:]SIG@N` flag."""
    match = re.search(r"--signal[= ](?:\w+:)?\w+@(\d+)", extra or "")
    return int(match.group(1)) if match else default


def sbatch_parameters(res: Resources) -> dict:
    """submitit SlurmExecutor parameters for these resources."""
    params: dict = {"time": int(res.runtime), "mem": f"{int(res.mem_mb)}M",
                    "cpus_per_task": int(res.cpus_per_task)}
    if res.slurm_partition:
        params["partition"] = res.slurm_partition
    if res.slurm_account:
        params["account"] = res.slurm_account
    if res.gres:
        params["gres"] = res.gres
    elif res.gpu:
        params["gres"] = f"gpu:{res.gpu_model}:{res.gpu}" if res.gpu_model else f"gpu:{res.gpu}"
    extra, delay = {}, signal_delay(res.slurm_extra)
    for flag in shlex.split(res.slurm_extra or ""):
        name, _, value = flag.lstrip("-").partition("=")
        if name != "signal":  # submitit sets --signal itself (USR2@signal_delay_s)
            extra[name.replace("-", "_")] = value or True
    params["signal_delay_s"] = delay
    if extra:
        params["additional_parameters"] = extra
    return params


class StageJob:
    """A submitit callable: `python -m dcobench <argv>`, requeued when it stops on a signal."""

    def __init__(self, argv: list[str], workdir: str, max_requeues: int = 3) -> None:
        self.argv, self.workdir, self.max_requeues = list(argv), workdir, max_requeues

    def __call__(self) -> int:
        from dcobench.__main__ import main

        os.chdir(self.workdir)
        # submitit's own warning signal (USR2) becomes the stage's graceful stop (SIGTERM)
        signal.signal(signal.SIGUSR2, lambda *_: os.kill(os.getpid(), signal.SIGTERM))
        status = main(self.argv)
        if status == EXIT_INTERRUPTED and self._requeue():
            raise SystemExit(status)  # no result file: submitit waits for the requeued run
        if status != 0:
            raise RuntimeError(f"python -m dcobench {shlex.join(self.argv)} exited with {status}")
        return status

    def _requeue(self) -> bool:
        """On SLURM, put this job back in the queue so the stage resumes; False if not."""
        job = os.environ.get("SLURM_JOB_ID")
        restarts = int(os.environ.get("SLURM_RESTART_COUNT", "0"))
        if not job or restarts >= self.max_requeues:
            return False
        array_job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
        target = f"{array_job}_{task}" if array_job and task else job
        log.warning("stage interrupted: requeueing SLURM job %s (restart %d)", target, restarts + 1)
        subprocess.run(["scontrol", "requeue", target], check=True)
        return True


def read_sweep(path: Path) -> list[dict]:
    """A sweep file: a YAML list of mappings {stage flag: value}, one array task each."""
    entries = load_yaml(path)  # strict: a key given twice is refused
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise ValueError(f"sweep file {path}: expected a non-empty YAML list of mappings "
                         "(e.g. - {out: results/sweep/a, options: {beta: 0.5}})")
    return entries


def sweep_argv(argv: list[str], entry: dict) -> list[str]:
    """argv with each entry appended as `--flag value` (argparse: the last value wins)."""
    extra = []
    for key, value in entry.items():
        text = value if isinstance(value, str) else json.dumps(value)
        extra += [f"--{key.replace('_', '-')}", text]
    return [*argv, *extra]


def submit(argvs: list[list[str]], res: Resources, cluster: str, folder: Path,
           max_requeues: int = 3) -> list:
    """Submit one job per argv (a job array when several) and return the submitit jobs."""
    import submitit

    folder.mkdir(parents=True, exist_ok=True)
    if cluster == "slurm":
        executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=max_requeues)
        executor.update_parameters(**sbatch_parameters(res), job_name="dcobench-" + argvs[0][0])
    elif cluster == "local":
        executor = submitit.LocalExecutor(folder=folder)
        executor.update_parameters(timeout_min=int(res.runtime))
    else:
        raise ValueError(f"unknown cluster {cluster!r}: use slurm or local")
    jobs_in = [StageJob(argv, os.getcwd(), max_requeues) for argv in argvs]
    if len(jobs_in) == 1:
        return [executor.submit(jobs_in[0])]
    with executor.batch():
        return [executor.submit(job) for job in jobs_in]

"""`python -m dcobench doctor --configfile config/paper.yaml`: checks before submitting.

Run on the login node, from the repo root, before `snakemake --profile slurm ...`. Prints one
PASS / FAIL / SKIP line per check, then the GPU-hour estimate and the predicted peak memory
per rule; exits non-zero when a check fails:
- models: each models.<key> downloaded (or a preset / local folder) with its tokenizer or
  processor loadable, or else reachable on the hub for `prepare_model` to fetch;
- cuda: torch's CUDA build against the NVIDIA driver (`nvidia-smi`) and torch.cuda here;
- slurm: the profile's partitions and GPU types against `sinfo`, and --gpus against the
  cluster's SelectType (`scontrol show config`) — skipped without SLURM;
- disk: free space where results/ and the weights go against a rough need;
- estimate: GPU-hours per rule, every job within its rule's time limit;
- memory: predicted peak memory per GPU rule (dcobench.memory, where available).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from dcobench.errors import UserError

GB = 1e9
# rough bytes on disk: a 1024² sample PNG, a trained LoRA folder (+ resume state), the weights
# (SDXL fp16 ≈ 7 GB + DINOv2 + SigLIP so400m + CLIP ≈ 4.5 GB)
PNG_BYTES, MODEL_BYTES, WEIGHTS_BYTES = 1.6e6, 0.3e9, 12e9


@dataclass(frozen=True)
class Check:
    status: str  # PASS | FAIL | SKIP
    name: str
    detail: str

    def line(self) -> str:
        return f"{self.status:<4}  {self.name:<16} {self.detail}"


def add_arguments(parser) -> None:
    parser.add_argument("--configfile", required=True, help="config (merged over config.yaml)")
    parser.add_argument("--profile", default="slurm", help="SLURM profile folder")
    parser.add_argument("--bench", default="results/bench/gpu.json",
                        help="bench gpu's JSON (per-row costs for the estimate)")


def run(args) -> None:
    from dcobench.estimate import load_config

    config = load_config(Path(args.configfile))
    profile = Path(args.profile)
    checks: list[Check] = []
    for part in (model_checks(config), [cuda_check()], slurm_checks(profile),
                 [disk_check(config)]):
        for check in part:
            print(check.line(), flush=True)
            checks.append(check)
    for check in (estimate_check(config, profile, Path(args.bench)), memory_check(config)):
        print(check.line(), flush=True)
        checks.append(check)
    failed = [c.name for c in checks if c.status == "FAIL"]
    print(f"doctor: {len(checks) - len(failed)} passed or skipped, {len(failed)} failed")
    if failed:
        raise UserError(f"doctor: failed: {', '.join(failed)}")


# --- models ---------------------------------------------------------------------------------


def model_checks(config: dict) -> list[Check]:
    return [model_check(key, spec) for key, spec in (config.get("models") or {}).items()
            if isinstance(spec, str)]


def model_check(key: str, spec: str) -> Check:
    """Present and loadable, or downloadable; FAIL with the reason otherwise."""
    from dcobench.modelspec import _presets, in_hub_cache, model_file, offline, spec_problem
    from dcobench.weights import (
        hub_repo,
        is_complete,
        is_pipeline_key,
        job_spec,
        weights_dir,
    )

    name = f"models.{key}"
    if spec in _presets():
        problem = spec_problem(key, spec)
        return Check("FAIL", name, problem) if problem else Check("PASS", name, f"preset {spec}")
    repo = hub_repo(spec)
    if repo is None:
        if problem := spec_problem(key, spec):
            return Check("FAIL", name, problem)
        return _loadable(name, key, spec, f"local folder {spec}")
    present = (is_complete(weights_dir(repo)) if is_pipeline_key(key)
               else in_hub_cache(repo, model_file(key)))
    if present:
        return _loadable(name, key, job_spec(key, spec), f"{repo} downloaded")
    if offline():
        return Check("FAIL", name, f"{repo} not downloaded and HF_HUB_OFFLINE is set: unset it "
                     "on this (login) node so prepare_model can fetch it, or download it here")
    try:
        from huggingface_hub import HfApi

        HfApi().model_info(repo, timeout=15)
    except Exception as exc:  # noqa: BLE001 - any hub failure is the finding
        return Check("FAIL", name, f"{repo} not downloaded and the hub is not reachable from "
                     f"here ({type(exc).__name__}: {str(exc)[:160]})")
    return Check("PASS", name, f"{repo} on the hub; prepare_model (a local rule) downloads it "
                 "once before any GPU job")


def _loadable(name: str, key: str, spec: str, what: str) -> Check:
    from dcobench.weights import check_loadable

    try:
        return Check("PASS", name, f"{what}; {check_loadable(key, spec)} loads")
    except Exception as exc:  # noqa: BLE001 - the library's reason is the finding
        return Check("FAIL", name, f"{what} but its tokenizer/processor does not load: "
                     f"{type(exc).__name__}: {str(exc)[:200]}")


# --- CUDA -----------------------------------------------------------------------------------


def cuda_check() -> Check:
    """torch's CUDA build vs the driver; torch.cuda usable here."""
    import torch

    from dcobench.gpucheck import _older, driver_version, min_driver

    cuda, need, driver = torch.version.cuda, min_driver(torch.version.cuda), driver_version()
    build = f"torch {torch.__version__} (CUDA {cuda or 'none: CPU build'}"
    build += f", needs driver >= {need})" if need else ")"
    if cuda is None:
        return Check("FAIL", "cuda", f"{build}: install a CUDA build of torch (requirements/)")
    if driver is None:
        return Check("FAIL", "cuda", f"{build}; no NVIDIA driver here (nvidia-smi not found): "
                     "GPU jobs cannot be checked from this node; run this command on a GPU node "
                     "(srun -p <gpu partition> --gpus=1 python -m dcobench doctor ...)")
    if need and _older(driver, need):
        return Check("FAIL", "cuda", f"{build}; driver {driver} is older: GPU jobs would stop "
                     f"at once; install torch for the driver's CUDA or ask for driver >= {need}")
    if not torch.cuda.is_available():
        return Check("FAIL", "cuda", f"{build}; driver {driver}, but torch.cuda is not available")
    return Check("PASS", "cuda", f"{build}; driver {driver}; {torch.cuda.get_device_name()}")


# --- SLURM ----------------------------------------------------------------------------------


def profile_requests(profile: Path) -> dict[str, dict]:
    """Partition -> {"gpu": bool, "types": set of GPU types asked for, "rules": [...]}, and
    the key "--gpus" -> whether any rule asks with --gpus (needs cons_tres)."""
    from dcobench.launch import profile_resources
    from dcobench.yamlio import load_yaml

    path = profile / "config.yaml"
    rules = (load_yaml(path) or {}).get("set-resources") or {}
    out: dict[str, dict] = {}
    for rule in rules:
        res = profile_resources(path, rule)
        part = out.setdefault(res.slurm_partition or "(default)",
                              {"gpu": False, "types": set(), "rules": [], "gpus_flag": False})
        part["rules"].append(rule)
        if res.gpus:
            part["gpu"] = True
            part["gpus_flag"] |= bool(res.gpu)
            kind = res.gpu_model or (res.gres.split(":")[1] if res.gres and
                                     res.gres.count(":") == 2 else None)
            if kind:
                part["types"].add(kind)
    return out


def slurm_checks(profile: Path) -> list[Check]:
    """The profile's partitions (and GPU types) against `sinfo`; --gpus against SelectType."""
    if not (profile / "config.yaml").is_file():
        return [Check("FAIL", "slurm", f"no profile {profile / 'config.yaml'}")]
    requests = profile_requests(profile)
    asked = ", ".join(f"{p} ({'GPU' if r['gpu'] else 'CPU'}: {len(r['rules'])} rules)"
                      for p, r in sorted(requests.items()))
    if shutil.which("sinfo") is None:
        return [Check("SKIP", "slurm", f"sinfo not found (not a SLURM login node); the profile "
                      f"asks for {asked}")]
    out = subprocess.run(["sinfo", "-h", "-o", "%P %G"], capture_output=True, text=True,
                         timeout=60)
    if out.returncode != 0:
        return [Check("FAIL", "slurm", f"sinfo failed: {out.stderr.strip()[:200]}")]
    gres: dict[str, str] = {}
    default = None
    for line in out.stdout.splitlines():
        part, _, g = line.strip().partition(" ")
        if part.endswith("*"):
            part = default = part[:-1]
        gres[part] = (gres.get(part, "") + "," + g).strip(",")
    checks = []
    for part, req in sorted(requests.items()):
        name = part if part != "(default)" else default or "(default)"
        label = f"partition {name}"
        if name not in gres:
            checks.append(Check("FAIL", "slurm", f"{label}: not in sinfo (partitions: "
                                f"{', '.join(sorted(gres))}); set slurm_partition in "
                                f"{profile / 'config.yaml'}"))
        elif req["gpu"] and "gpu" not in gres[name]:
            checks.append(Check("FAIL", "slurm", f"{label} has no GPUs (gres {gres[name]!r}) "
                                f"but the GPU rules go there; set x-gpu's slurm_partition"))
        elif missing := [t for t in req["types"] if f"gpu:{t}" not in gres[name]]:
            checks.append(Check("FAIL", "slurm", f"{label}: GPU type(s) {missing} not in its "
                                f"gres {gres[name]!r}"))
        else:
            checks.append(Check("PASS", "slurm", f"{label} ({'GPU ' + gres[name] if req['gpu'] else 'CPU'}) "
                                f"for {len(req['rules'])} rules"))
    if any(r["gpus_flag"] for r in requests.values()):
        checks.append(_select_type_check())
    return checks


def _select_type_check() -> Check:
    out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True,
                         timeout=60) if shutil.which("scontrol") else None
    if out is None or out.returncode != 0:
        return Check("SKIP", "slurm", "scontrol show config unavailable: cannot check --gpus")
    line = next((x for x in out.stdout.splitlines() if x.startswith("SelectType ")), "")
    if "cons_tres" in line:
        return Check("PASS", "slurm", "sbatch --gpus accepted (SelectType=select/cons_tres)")
    return Check("FAIL", "slurm", f"{line.split('=')[-1].strip() or 'SelectType unknown'}: "
                 "sbatch --gpus needs cons_tres; switch x-gpu to `<<: *gres` in the profile")


# --- disk, estimate, memory -----------------------------------------------------------------


def disk_check(config: dict) -> Check:
    """Free space where results/ go against samples + models + weights (rough)."""
    from dcobench.estimate import estimate, load_costs

    rules = estimate(config, load_costs(Path("/nonexistent")))
    n_images = _images(config)
    n_models = rules["train"].jobs if "train" in rules else 0
    need = n_images * PNG_BYTES + n_models * MODEL_BYTES + WEIGHTS_BYTES
    where = Path("results")
    while not where.exists():
        where = where.parent if where.parent != where else Path(".")
        if where == Path("."):
            break
    free = shutil.disk_usage(where).free
    detail = (f"{free / GB:.0f} GB free at {where.resolve()}; need ≈ {need / GB:.0f} GB "
              f"({n_images:,} images, {n_models} models, weights)")
    return Check("PASS" if free >= need else "FAIL", "disk", detail)


def _images(config: dict) -> int:
    """Images the selected experiments sample."""
    from dcobench.config import load_setup
    from dcobench.estimate import images_per_guide

    setup = load_setup({**config, "models": {}}, decode=False)
    plan, s = setup.plan, config["sample"]
    n = sum(images_per_guide(config, k, setup.concepts[c].live) * len(s["guides"])
            for k, c, _ in plan.evaluated)
    n += sum(images_per_guide(config, k, setup.concepts[c].live) for k, c in plan.pretrained)
    n += len(plan.merges) * images_per_guide(config, "merge", False) * len(config["merge"]["guides"])
    return n


def estimate_check(config: dict, profile: Path, bench: Path) -> Check:
    from dcobench.estimate import estimate, load_costs, profile_limits, report_lines

    costs = load_costs(bench)
    rules = estimate(config, costs)
    limits = profile_limits(profile)
    for line in report_lines(rules, costs, limits):
        print(f"      {line}")
    over = [f"{r.rule} ({r.max_job_hours:.1f} h > {limits[r.rule]:.1f} h)"
            for r in rules.values() if r.rule in limits and r.max_job_hours > limits[r.rule]]
    total = sum(r.hours for r in rules.values())
    if over:
        return Check("FAIL", "estimate", f"jobs over their time limit: {', '.join(over)}; raise "
                     "sample.chunks or the rule's runtime in the profile")
    return Check("PASS", "estimate", f"≈ {total:.0f} GPU-h in {sum(r.jobs for r in rules.values())} "
                 "GPU jobs, each within its rule's time limit")


def memory_check(config: dict) -> Check:
    """Predicted peak memory per GPU rule (dcobench.memory.predict_peaks, where available)."""
    try:
        from dcobench.memory import predict_peaks
    except ImportError:
        return Check("SKIP", "memory", "peak memory per rule: not available (dcobench.memory "
                     "is not in this checkout)")
    peaks = predict_peaks(config)
    for rule, peak in sorted(peaks.items()):
        print(f"      {rule:<20} {peak / 2**30:8.1f} GiB predicted peak")
    return Check("PASS", "memory", f"predicted peaks for {len(peaks)} rules (above)")

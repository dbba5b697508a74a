# Config validation, target lists and path helpers only; no ML logic here.
import json
import shlex
import sys

from dcobench import config as dcfg
from dcobench.train.methods import METHODS as METHODS_REGISTRY
from dcobench.train.priors import prior_key

try:
    SETUP = dcfg.load_setup(config)
except dcfg.ConfigError as exc:
    sys.exit(f"dcobench: {exc}")
CONCEPTS = SETUP.concepts  # name -> ConceptRef
VARIANTS = SETUP.variants  # name -> Variant (objective method + TrainOptions overrides)
PLAN = SETUP.plan  # what the selected experiments need (dcobench/experiments.py)

PY = shlex.quote(sys.executable)  # the interpreter running snakemake (the project venv)
EXP = config["experiment"]
R = f"results/{EXP}"
DATA = config["data"]["root"]
METHODS = config["train"]["methods"]
GUIDES = config["sample"]["guides"]
MERGE_GUIDES = config["merge"]["guides"]
SUBJECTS = list(dict.fromkeys(c for k, c, _ in PLAN.models if k == "subject"))
STYLES = list(dict.fromkeys(c for k, c, _ in PLAN.models if k == "style"))
PAIRS = list(dict.fromkeys(f"{s}__{t}" for s, t, _ in PLAN.merges))
TRAINED = [v for v in VARIANTS if VARIANTS[v].trained]
EXPORTED = [v for v in VARIANTS if not VARIANTS[v].trained]  # checkpoint variants


wildcard_constraints:
    kind="subject|style",
    concept="[A-Za-z0-9][A-Za-z0-9_.-]*",
    method="[a-z0-9_]+",
    subject="[A-Za-z0-9][A-Za-z0-9_.-]*",
    style="[A-Za-z0-9][A-Za-z0-9_.-]*",
    merge="[a-z0-9_]+-[a-z0-9_]+",


def opts(options):
    """A stage's options as one shell-quoted JSON argument (params changes trigger reruns)."""
    return shlex.quote(json.dumps(options, sort_keys=True))


def concept_dir(name):
    """The concept folder jobs read: fetched copy for a source concept, else the folder itself."""
    ref = CONCEPTS[name]
    return f"{R}/data/concepts/{name}" if ref.source else str(ref.path)


def concept_yaml(name):
    return f"{concept_dir(name)}/concept.yaml"


# Every listed concept is fetched and validated (prepared.json, an input of every training job,
# must not change when another experiment is selected).
SOURCED = [n for n, ref in CONCEPTS.items() if ref.source]


def class_noun(name):
    return CONCEPTS[name].class_noun


DEMO = [n for n, ref in CONCEPTS.items() if ref.demo]


def prior_settings():
    return {"model": config["models"]["base"], **dcfg.prior_options(config)}


def prior_dir(name):
    return f"{R}/priors/{prior_key(class_noun(name), prior_settings())}"


def uses_prior(variant):
    return METHODS_REGISTRY[VARIANTS[variant].method].prior


def prior_classes():
    """Prior folder name -> class noun, for every subject trained with a prior method."""
    return {
        prior_dir(c).rsplit("/", 1)[1]: class_noun(c)
        for k, c, v in PLAN.models
        if k == "subject" and uses_prior(v)
    }


def model_dir(kind, concept, method):
    """A model folder; `method` is a variant name (dco, db_compact, db_es, ...)."""
    return f"{R}/models/{kind}/{concept}/{method}"


def trained_models():
    """(kind, concept, variant) of every model the selected experiments need."""
    return list(PLAN.models)


def variant_regex(names):
    return "|".join(sorted(names, key=len, reverse=True)) or "^$"


def score_files():
    files = [f"{R}/scores/{k}/{c}/{m}/{g}.csv" for k, c, m in PLAN.evaluated for g in GUIDES]
    files += [f"{R}/scores/{k}/{c}/pretrained/cfg.csv" for k, c in PLAN.pretrained]  # base model, CFG
    files += [
        f"{R}/merges/{s}__{t}/{mg}/scores/{g}.csv"
        for s, t, mg in PLAN.merges
        for g in MERGE_GUIDES
    ]
    return files


def noise_distance_runs():
    """(subject, variant) pairs of the noise-distance analysis (Fig 8c)."""
    return list(PLAN.noise_distance)


def lora_cosine_runs():
    """(subject, style, variant) triples of the LoRA column-cosine analysis (Fig 10)."""
    return list(PLAN.lora_cosine)


def noise_distance_files():
    return [f"{R}/analysis/noise_distance.csv"] if PLAN.noise_distance else []


def all_targets():
    """The report (which pulls every score table and analysis) + the LoRA-cosine analysis."""
    return [f"{R}/report.html"] + lora_cosine_files()  # lora_cosine_files: analysis.smk

# Config validation, target lists and path helpers only; no ML logic here.
import json
import shlex
import sys

from dcobench import config as dcfg
from dcobench.priors import prior_key

try:
    CONCEPTS = dcfg.check_config(config)
except dcfg.ConfigError as exc:
    sys.exit(f"dcobench: {exc}")

PY = shlex.quote(sys.executable)  # the interpreter running snakemake (the project venv)
EXP = config["experiment"]
R = f"results/{EXP}"
DATA = config["data"]["root"]
METHODS = config["train"]["methods"]
GUIDES = config["sample"]["guides"]
MERGE_GUIDES = config["merge"]["guides"]
SUBJECTS = config["data"]["subjects"]
STYLES = config["data"]["styles"]
MERGES = [f"{m}-{g}" for m in config["merge"]["methods"] for g in config["merge"]["mergers"]]
PAIRS = [f"{s}__{t}" for s in SUBJECTS for t in STYLES]


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
    return f"{DATA}/{name}"


def concept_yaml(name):
    return f"{DATA}/{name}/concept.yaml"


def class_noun(name):
    return CONCEPTS[name].class_noun


DEMO = [n for n, ref in CONCEPTS.items() if ref.demo]


def prior_settings():
    return {"model": config["models"]["base"], **dcfg.prior_options(config)}


def prior_dir(name):
    return f"{R}/priors/{prior_key(class_noun(name), prior_settings())}"


def prior_classes():
    """Prior folder name -> class noun, for every subject trained with a prior method."""
    if not any(m == "dbpp" for m in METHODS["subject"]):
        return {}
    return {prior_dir(s).rsplit("/", 1)[1]: class_noun(s) for s in SUBJECTS}


def model_dir(kind, concept, method):
    return f"{R}/models/{kind}/{concept}/{method}"


def trained_models():
    return [
        (kind, c, m)
        for kind, names in (("subject", SUBJECTS), ("style", STYLES))
        for c in names
        for m in METHODS[kind]
    ]


def score_files():
    files = [
        f"{R}/scores/{k}/{c}/{m}/{g}.csv" for k, c, m in trained_models() for g in GUIDES
    ]
    files += [
        f"{R}/merges/{p}/{mg}/scores/{g}.csv"
        for p in PAIRS
        for mg in MERGES
        for g in MERGE_GUIDES
    ]
    return files


def report_groups():
    return [g for g, ok in (("subject", SUBJECTS), ("style", STYLES), ("merge", PAIRS)) if ok]


def all_targets():
    return [f"{R}/report.html"]

# Config checks, target lists, path helpers and the rules' named input/param functions; no ML
# logic here. Resources (GPUs, memory, runtime) are declared once, per rule, in the profile
# (slurm/config.yaml set-resources); local `--cores` runs need none.
import hashlib
import json
import re
import shlex
import sys
from pathlib import Path

from dcobench import config as dcfg
from dcobench.data.concept import IMAGE_EXTS
from dcobench.layout import Layout, bench_dir, chunk_file, chunk_files, pair, results_dir
from dcobench.merge.ids import pair_variants, parse_merge_id
from dcobench.train.variants import GROUP_SEP, group_of, train_groups
from dcobench.weights import job_spec

try:  # a job's own snakemake process (SLURM) skips decoding the images again
    SETUP = dcfg.load_setup(config, decode=not workflow.remote_exec)
except dcfg.ConfigError as exc:
    sys.exit(f"dcobench: {exc}")
CONCEPTS = SETUP.concepts  # name -> ConceptRef
VARIANTS = SETUP.variants  # name -> Variant (objective, prior, TrainOptions overrides)
PLAN = SETUP.plan  # what the selected experiments need (dcobench/experiments.py)

PY_ONLINE = shlex.quote(sys.executable)  # the interpreter running snakemake (the project venv)
# Every job runs offline: prepare_model (a local rule, on the submit host) downloads each
# configured model once, before any job that uses it; a stray hub call then fails in seconds.
PY = f"env HF_HUB_OFFLINE=1 {PY_ONLINE}"
EXP = config["experiment"]
R = results_dir(EXP)
L = Layout(R)  # every path under results/<exp> (dcobench/layout.py)
DATA = config["data"]["root"]
GUIDES = config["sample"]["guides"]
MERGE_GUIDES = config["merge"]["guides"]
TRAINED = [v for v in VARIANTS if VARIANTS[v].trained]
EXPORTED = [v for v in VARIANTS if not VARIANTS[v].trained]  # checkpoint variants
# Every listed concept is fetched and validated, one job each (prepared/<concept>.json).
SOURCED = [n for n, ref in CONCEPTS.items() if ref.source]
DEMO = [n for n, ref in CONCEPTS.items() if ref.demo]
WORLD = [n for n, ref in CONCEPTS.items() if ref.world]
LORA = "pytorch_lora_weights.safetensors"


wildcard_constraints:
    kind="subject|style",
    concept="[A-Za-z0-9][A-Za-z0-9_.-]*",
    variant="[a-z0-9_]+",
    subject="[A-Za-z0-9][A-Za-z0-9_.-]*",
    style="[A-Za-z0-9][A-Za-z0-9_.-]*",
    merge="[a-z0-9_]+(?:\\+[a-z0-9_]+)?-[a-z0-9_]+",
    chunk="[0-9]+of[0-9]+",


def opts(options):
    """A stage's options as one shell-quoted JSON argument (params changes trigger reruns)."""
    return shlex.quote(json.dumps(options, sort_keys=True))


def folder(path):
    """The folder holding `path` (a rule's output file -> the folder its stage writes)."""
    return path.rsplit("/", 1)[0]


# --- paths --------------------------------------------------------------------------------


def concept_dir(name):
    """The concept folder jobs read: fetched copy for a source concept, else the folder itself."""
    ref = CONCEPTS[name]
    return L.fetched_concept(name) if ref.source else str(ref.path)


def concept_yaml(name):
    return f"{concept_dir(name)}/concept.yaml"


def prepared(name):
    """The record that concept `name` validated (every image decoded): input of its chain."""
    return L.prepared(name)


def model_json(key):
    """The record that models.<key> resolved to a loadable model: input of what uses it."""
    return L.prepared_model(key)


def job_model(key):
    """What jobs load for models.<key>: a hub pipeline's downloaded folder, else the spec."""
    return job_spec(key, config["models"][key])


def file_digest(paths):
    """sha256 (16 hex digits) over the named files' paths and bytes, in sorted order."""
    h = hashlib.sha256()
    for p in sorted(Path(p) for p in paths):
        for part in (p.name.encode(), b"\0", p.read_bytes()):
            h.update(part)
    return h.hexdigest()[:16]


def name_regex(names):
    """A wildcard constraint matching exactly `names`."""
    return "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)) or "^$"


def model_dir(kind, concept, variant, *files):
    """A trained (or exported) model folder; `variant` is a variant name (dco, db_es, ...)."""
    return L.model_dir(kind, concept, variant, *files)


def merge_dir(subject, style, merge, *files):
    return L.merge_dir(subject, style, merge, *files)


def prior_settings():
    return {"model": config["models"]["base"], **dcfg.prior_options(config)}


def prior_dir(name, *files):
    return L.prior_dir(dcfg.prior_key(CONCEPTS[name].class_noun, prior_settings()), *files)


def prior_classes():
    """Prior folder name -> class noun, for every subject trained with class-prior rows."""
    return {
        prior_dir(c).rsplit("/", 1)[1]: CONCEPTS[c].class_noun
        for k, c, v in PLAN.models
        if k == "subject" and VARIANTS[v].prior
    }


def variant_regex(names):
    return "|".join(sorted(names, key=len, reverse=True)) or "^$"


# --- named input / param functions (w: the job's wildcards; input, output: its files) ------


def concept_yaml_of(w):
    return concept_yaml(w.concept)


def concept_files_of(w):
    """concept.yaml + every image in a concept folder the user owns (mtime and input-set rerun
    triggers: a replaced, added or removed image reruns that concept's chain; notes beside the
    images do not). Demo, world and fetched folders are written by their own rule: concept.yaml
    (written last) stands for them."""
    ref = CONCEPTS[w.concept]
    if ref.demo or ref.source or ref.world:
        return [concept_yaml(w.concept)]
    images = sorted(
        str(p)
        for p in Path(concept_dir(w.concept)).iterdir()
        if not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTS and p.is_file()
    )
    return [concept_yaml(w.concept)] + images


def source_files_of(w):
    """A source concept's concept.yaml + its images in data.sources' local copy (if there)."""
    ref = CONCEPTS[w.concept]
    return [f"{ref.path}/concept.yaml"] + dcfg.local_source_files(ref.path, config["data"])


def prepared_of(w):
    return prepared(w.concept)


def scorer_models(metrics):
    """models.<key> of the embedders `metrics` use (config key -> spec), in metric order."""
    from dcobench.score.metrics import SCORERS

    keys = dict.fromkeys(SCORERS[m].model for m in metrics)
    return {k: config["models"][k] for k in keys if k in config["models"]}


def concept_flag_of(w):
    """--subject DIR or --style DIR: the concept filling the prompt slots."""
    return f"--{w.kind} {concept_dir(w.concept)}"


def pair_flags_of(w):
    return f"--subject {concept_dir(w.subject)} --style {concept_dir(w.style)}"


def pair_yamls_of(w):
    return [concept_yaml(w.subject), concept_yaml(w.style)]


def model_dir_of(w):
    return model_dir(w.kind, w.concept, w.variant)


def metrics_of(w):
    return ",".join(config["score"]["metrics"][w.kind])


def concept_dir_of(w):
    return concept_dir(w.concept)


def quoted_concept_dir_of(w):
    return shlex.quote(concept_dir(w.concept))


def source_concept_of(w):
    """The source concept's own folder (its concept.yaml names the files to fetch), quoted."""
    return shlex.quote(str(CONCEPTS[w.concept].path))


def output_folder_of(w, output):
    """The folder holding the job's first output: the --out of a stage writing a folder."""
    return folder(output[0])


def input_folder_of(w, input):
    """The folder holding the job's first input."""
    return folder(input[0])


# used by sample.smk: a model's grid runs as sample.chunks[group] jobs, then a join


def n_chunks(group):
    """Sampling jobs per model folder of `group` (subject | style | merge): config sample.chunks."""
    return int((config["sample"].get("chunks") or {}).get(group, 1))


def chunk_markers(root, group):
    return chunk_files(root, n_chunks(group))


def sample_dir_of(w):
    return L.samples_dir(w.kind, w.concept, w.variant)


def pretrained_dir_of(w):
    return L.samples_dir(w.kind, w.concept, "pretrained")


def merge_samples_dir_of(w):
    return L.merge_samples_dir(w.subject, w.style, w.merge)


def sample_chunks_of(w):
    return chunk_markers(L.sample_chunks(w.kind, w.concept, w.variant), w.kind)


def pretrained_chunks_of(w):
    return chunk_markers(L.sample_chunks(w.kind, w.concept, "pretrained"), w.kind)


def merge_chunks_of(w):
    return chunk_markers(L.merge_chunks(w.subject, w.style, w.merge), "merge")


def model_flag_of(w, input):
    """--model DIR: the folder of the LoRA the job samples."""
    return f"--model {folder(input.lora)}"


# used by sample.smk and score.smk: a concept's models sampled / scored in one job
# (sample.group_size / score.group_size: concept; see sample.smk)

SAMPLE_GROUPED = config["sample"].get("group_size", 1) != 1
SCORE_GROUPED = config["score"].get("group_size", 1) != 1
# (kind, concept) -> its group's name: the sampled variants (+ "pretrained"), "+"-joined
SAMPLE_GROUPS = {key: GROUP_SEP.join(names) for key, names in PLAN.sample_groups().items()}
SAMPLED = sorted({v for names in PLAN.sample_groups().values() for v in names})


def sample_group_of(kind, concept):
    """The group name holding (kind, concept)'s sampled models."""
    try:
        return SAMPLE_GROUPS[(kind, concept)]
    except KeyError:
        raise ValueError(
            f"{kind} {concept} is sampled by no group of the selected experiments"
        ) from None


def group_members(w):
    """The variants of the job's group (its {group} wildcard)."""
    return w.group.split(GROUP_SEP)


def member_guides(variant):
    return ["cfg"] if variant == "pretrained" else GUIDES


def sample_group_inputs(w):
    """What every member's own sampling job reads: the concept, and each trained member's LoRA
    and manifest (the pretrained member: the base model's record and the prepared concept)."""
    inputs = {
        "concept": concept_yaml(w.concept),
        "prepared": prepared(w.concept),
        "base": model_json("base"),
    }
    for v in group_members(w):
        if v != "pretrained":
            inputs[f"lora_{v}"] = model_dir(w.kind, w.concept, v, LORA)
            inputs[f"manifest_{v}"] = model_dir(w.kind, w.concept, v, "manifest.json")
    return inputs


def sample_members_of(w):
    """--members: each member's LoRA folder (none: the pretrained model), sample folder and
    options, as its own `sample` / `sample_pretrained` job passes them."""
    members = [
        {
            "model": None if v == "pretrained" else model_dir(w.kind, w.concept, v),
            "out": L.samples_dir(w.kind, w.concept, v),
            "options": dcfg.sample_options(config, member_guides(v), w.kind),
        }
        for v in group_members(w)
    ]
    return opts(members)


def sample_group_marker_of(w):
    group = sample_group_of(w.kind, w.concept)
    return L.sample_group_chunks(w.kind, w.concept, group, chunk_file(w.chunk))


# used by train.smk: fused training groups (train.group_size; see train.smk)

GROUP_SIZE = config["train"].get("group_size", 1)
GROUPED = GROUP_SIZE != 1
GROUPS = train_groups(PLAN.models, VARIANTS, GROUP_SIZE) if GROUPED else {}


def staged_dir(kind, concept, group, variant):
    """Where a fused group job writes a member's model folder (published by train_member)."""
    return L.group_dir(kind, concept, group, variant)


def group_marker(kind, concept, group):
    return L.group_dir(kind, concept, group, "done.json")


def train_group_inputs(w):
    inputs = {
        "concept": concept_yaml(w.concept),
        "prepared": prepared(w.concept),
        "base": model_json("base"),
    }
    if any(VARIANTS[v].prior for v in w.group.split(GROUP_SEP)):
        inputs["prior"] = prior_dir(w.concept, "index.csv")
    return inputs


def train_members_of(w):
    """--members: every member's objective, staged folder, class priors and TrainOptions."""
    members = [
        {
            "objective": VARIANTS[v].objective,
            "out": staged_dir(w.kind, w.concept, w.group, v),
            "prior": prior_dir(w.concept) if VARIANTS[v].prior else None,
            "options": dcfg.train_options(config, w.kind, v),
        }
        for v in w.group.split(GROUP_SEP)
    ]
    return opts(members)


def group_marker_of(w):
    return group_marker(w.kind, w.concept, group_of(GROUPS, w.kind, w.concept, w.variant))


def staged_dir_of(w):
    group = group_of(GROUPS, w.kind, w.concept, w.variant)
    return staged_dir(w.kind, w.concept, group, w.variant)


# used by train.smk


def prior_noun_of(w):
    return shlex.quote(prior_classes()[w.prior])


def prior_options_of(w):
    """The prior stage's options; a function, not a string, because its prompt holds {class},
    which Snakemake would read as a wildcard."""
    return opts(dcfg.prior_options(config))


def train_inputs(w):
    inputs = {
        "concept": concept_yaml(w.concept),
        "prepared": prepared(w.concept),
        "base": model_json("base"),
    }
    if VARIANTS[w.variant].prior:
        inputs["prior"] = prior_dir(w.concept, "index.csv")
    return inputs


def prior_flag_of(w):
    return f"--prior {prior_dir(w.concept)}" if VARIANTS[w.variant].prior else ""


def objective_of(w):
    return VARIANTS[w.variant].objective


def train_options_of(w):
    return opts(dcfg.train_options(config, w.kind, w.variant))


def parent_manifest_of(w):
    """A checkpoint variant's parent run (its manifest: the run has finished)."""
    return model_dir(w.kind, w.concept, VARIANTS[w.variant].checkpoint_of, "manifest.json")


def checkpoint_step_of(w):
    return VARIANTS[w.variant].step


# used by merge.smk


def merge_loras(w):
    """The subject's and the style's LoRA of the merge's variant(s)."""
    subject, style = pair_variants(parse_merge_id(w.merge)[0])
    return {
        "subject": model_dir("subject", w.subject, subject, LORA),
        "style": model_dir("style", w.style, style, LORA),
    }


def subject_model_of(w, input):
    return folder(input.subject)


def style_model_of(w, input):
    return folder(input.style)


def merger_of(w):
    return parse_merge_id(w.merge)[1]


def merge_weights_of(w):
    return ",".join(str(x) for x in parse_merge_id(w.merge)[2])


def merge_options():
    """MergeOptions' config keys (dcobench/spec/merge.py) that the config sets, and the seed."""
    return dcfg.merge_options(config)


# used by score.smk


def scorer_jsons(metrics):
    """The model records of the embedders `metrics` use: a changed models.<key> reruns only the
    score jobs whose metrics use it."""
    return [model_json(k) for k in scorer_models(metrics)]


def group_metrics(w):
    return config["score"]["metrics"][w.kind]


def scorer_jsons_of(w):
    return scorer_jsons(group_metrics(w))


def scorer_models_of(w):
    return opts(scorer_models(group_metrics(w)))


def sample_folders(w, input):
    return " ".join(folder(p) for p in input.samples)


def score_columns(group, concept, variant):
    """Columns copied into every score row: the run a sample folder belongs to."""
    return {"exp": EXP, "group": group, "concept": concept, "variant": variant}


def score_meta(group, concept, variant):
    return opts(score_columns(group, concept, variant))


def score_meta_of(w):
    return score_meta(w.kind, w.concept, w.variant)


def pretrained_meta_of(w):
    return score_meta(w.kind, w.concept, "pretrained")


def score_group_inputs(w):
    """Every member's index.csv (its guides), the concept, the scorers' records."""
    samples = [
        L.samples_index(w.kind, w.concept, v, g) for v in group_members(w) for g in member_guides(v)
    ]
    return {
        "samples": samples,
        "concept": concept_yaml(w.concept),
        "models": scorer_jsons_of(w),
    }


def score_members_of(w):
    """--members: each member's sample folders, staged table folder and meta columns."""
    members = [
        {
            "samples": [folder(L.samples_index(w.kind, w.concept, v, g)) for g in member_guides(v)],
            "out": L.score_group_dir(w.kind, w.concept, w.group, v),
            "meta": score_columns(w.kind, w.concept, v),
        }
        for v in group_members(w)
    ]
    return opts(members)


def score_group_marker_of(w):
    group = sample_group_of(w.kind, w.concept)
    return L.score_group_dir(w.kind, w.concept, group, "done.json")


def score_staged_of(w):
    group = sample_group_of(w.kind, w.concept)
    return L.score_group_dir(w.kind, w.concept, group, w.variant)


def score_staged_pretrained_of(w):
    group = sample_group_of(w.kind, w.concept)
    return L.score_group_dir(w.kind, w.concept, group, "pretrained")


def merge_meta_of(w):
    return score_meta("merge", pair(w.subject, w.style), w.merge)


# used by analysis.smk and report.smk


def subject_lora_of(w):
    return model_dir("subject", w.concept, w.variant, LORA)


def noise_run_of(w):
    """--run CONCEPT_DIR:VARIANT:MODEL_DIR of one noise-distance job."""
    return f"{concept_dir(w.concept)}:{w.variant}:{model_dir('subject', w.concept, w.variant)}"


def noise_flag_of(w, input):
    return f"--noise-distance {input.noise[0]}" if input.noise else ""


def claims_caveat_flag():
    """--claims-caveat '<report.claims_caveat>', or "" (the report's command is unchanged)."""
    caveat = config["report"].get("claims_caveat")
    return f" --claims-caveat {shlex.quote(caveat)}" if caveat else ""


def analysis_flags_of(w, input):
    """The report's --noise-distance / --lora-cosine / --claims flags, for the inputs present."""
    flags = (
        ("noise", "noise-distance"),
        ("cosine", "lora-cosine"),
        ("claims", "claims"),
    )
    return " ".join(f"--{flag} {input[name][0]}" for name, flag in flags if input[name])

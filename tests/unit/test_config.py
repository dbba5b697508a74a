"""Semantic config checks: names against registries, concept folders on disk."""

import copy
from pathlib import Path

import pytest
import yaml

from dcobench.config import ConfigError, check_config

BASE = yaml.safe_load((Path(__file__).resolve().parents[2] / "config" / "tiny.yaml").read_text())


@pytest.fixture(autouse=True)
def _online(monkeypatch):
    """config/paper.yaml names hub models; offline, a DAG build would ask for them in the cache."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


def _user_concept(root: Path, captions: dict) -> Path:
    folder = root / "my_cat"
    folder.mkdir(parents=True)
    from PIL import Image

    Image.new("RGB", (64, 64), "red").save(folder / "00.png")
    (folder / "concept.yaml").write_text(yaml.safe_dump(
        {"kind": "subject", "class": "cat", "live": True, "token": "<my_cat>", "captions": captions}))
    return folder


def test_demo_config_is_valid():
    concepts = check_config(copy.deepcopy(BASE))
    assert set(concepts) == {"toy_robot", "spotted_mug", "mosaic_style"}
    assert concepts["toy_robot"].class_noun == "robot" and concepts["toy_robot"].demo


def test_world_demo_config_is_valid(monkeypatch):
    """config.yaml (`make demo`): world concepts, every subject method, the oracle's metrics,
    the committed claims file."""
    from dcobench.config import load_setup

    monkeypatch.chdir(Path(__file__).resolve().parents[2])  # report.claims is relative to the repo
    demo = yaml.safe_load(Path("config.yaml").read_text())
    setup = load_setup(demo, decode=False)
    assert all(ref.world for ref in setup.concepts.values())
    assert {v for k, _, v in setup.plan.models if k == "subject"} == {"db", "dbpp", "dco"}
    assert demo["report"]["claims"] == "config/world_claims.yaml"
    assert {"prompt_acc", "subject_acc"} <= set(demo["score"]["metrics"]["subject"])


def test_caption_mismatch_names_the_file(tmp_path):
    _user_concept(tmp_path, {"01.png": "a photo of a <my_cat>"})
    cfg = copy.deepcopy(BASE)
    cfg["data"].update(root=str(tmp_path), demo=False, subjects=["my_cat"], styles=[])
    with pytest.raises(ConfigError, match=r"concept.yaml|00.png|01.png"):
        check_config(cfg)


def test_user_concept_listed_under_wrong_kind(tmp_path):
    _user_concept(tmp_path, {"00.png": "a photo of a <my_cat> on a sofa"})
    cfg = copy.deepcopy(BASE)
    cfg["data"].update(root=str(tmp_path), demo=False, subjects=[], styles=["my_cat"])
    cfg["merge"]["variants"] = []
    with pytest.raises(ConfigError, match="kind: subject"):
        check_config(cfg)


def test_merge_variant_must_be_trained():
    cfg = copy.deepcopy(BASE)
    cfg["train"]["variants"]["style"] = ["dco"]
    with pytest.raises(ConfigError, match="'db' is not trained for styles"):
        check_config(cfg)
    cfg["merge"]["variants"] = ["db+dco"]  # each side from its own variant: db subjects, dco styles
    check_config(cfg)
    cfg["merge"]["variants"] = ["dco+db"]
    with pytest.raises(ConfigError, match="'db' is not trained for styles"):
        check_config(cfg)


def test_a_pair_merge_plans_each_side_from_its_own_variant():
    from dcobench.config import load_setup

    cfg = copy.deepcopy(PAPER)
    cfg["experiments"] = ["table1"]
    cfg["experiment_defs"]["table1"]["merges"] = ["dco+db-ziplora"]
    plan = load_setup(cfg).plan
    spec = cfg["experiment_defs"]["table1"]
    assert sorted(plan.models) == sorted([("subject", s, "dco") for s in spec["subjects"]]
                                         + [("style", t, "db") for t in spec["styles"]])
    assert {m for _, _, m in plan.merges} == {"dco+db-ziplora"}


def test_claims_file_must_exist_and_parse(tmp_path):
    cfg = copy.deepcopy(BASE)
    cfg["report"]["claims"] = str(tmp_path / "claims.yaml")
    with pytest.raises(ConfigError, match=r"report.claims: claims file .*claims.yaml does not exist"):
        check_config(cfg)
    (tmp_path / "claims.yaml").write_text("delta: {}\nclaims: []\n")
    with pytest.raises(ConfigError, match=r"report.claims: .*claims.yaml: no claims"):
        check_config(cfg)
    cfg["report"]["claims"] = str(Path(__file__).resolve().parents[2] / "config" / "world_claims.yaml")
    check_config(cfg)


# --- paper presets: variants, experiments, real concept files -----------------------------

PAPER = yaml.safe_load((Path(__file__).resolve().parents[2] / "config" / "paper.yaml").read_text())


def _schema_validate(cfg):
    from dcobench.spec.schema import validate_config

    validate_config(cfg)


def test_paper_config_plan_shares_models_and_counts():
    from dcobench.config import load_setup

    cfg = copy.deepcopy(PAPER)
    _schema_validate(cfg)
    setup = load_setup(cfg)
    assert len([c for c in setup.concepts.values() if c.kind == "subject"]) == 27 + 5
    assert len([c for c in setup.concepts.values() if c.kind == "style"]) == 10
    plan = setup.plan
    assert len(plan.models) == len(set(plan.models))  # shared models appear once
    for exp in ("fig1", "fig8a", "fig8b"):
        assert ("subject", "dog", "dco") in plan.experiments[exp]["models"]
    assert len(plan.experiments["fig1"]["evaluated"]) == 27 * 6
    assert len(plan.experiments["table1"]["merges"]) == 5 * 5 * 3
    assert ("dog", "dbpp") in plan.noise_distance and not plan.experiments["fig8c"]["evaluated"]
    assert setup.variants["db_es"].checkpoint_of == "db" and setup.variants["db_es"].objective == "db"


def test_experiment_selection_by_name():
    from dcobench.config import load_setup

    cfg = copy.deepcopy(PAPER)
    cfg["experiments"] = ["fig8b"]
    plan = load_setup(cfg).plan
    assert {v for _, _, v in plan.models} == {"dco_b05", "dco", "dco_b2"}
    assert len(plan.models) == 30 and not plan.merges and not plan.noise_distance
    cfg["experiments"] = ["fig8z"]
    with pytest.raises(ConfigError, match=r"unknown experiment 'fig8z' \(did you mean .*'fig8a'"):
        load_setup(cfg)


def test_variant_options_override_and_per_kind():
    from dcobench.config import train_options

    cfg = copy.deepcopy(PAPER)
    base, compact = train_options(cfg, "subject", "dco"), train_options(cfg, "subject", "db_compact")
    assert (base["captions"], base["textual_inversion"], base["steps"]) == ("comprehensive", True, 2000)
    # Fig 8a compact captions learn the token (rebuttal); the Fig 1 "DB" uses the rare token
    assert (compact["captions"], compact["textual_inversion"]) == ("compact", True)
    rare = train_options(cfg, "subject", "db_rare")
    assert (rare["captions"], rare["textual_inversion"]) == ("rare_token", False)
    # styles learn no token (§5.2), whatever the variant
    for variant in ("db", "dco"):
        assert train_options(cfg, "style", variant)["textual_inversion"] is False
    assert train_options(cfg, "subject", "dco_b05")["beta"] == 0.5
    assert train_options(cfg, "subject", "dbpp_l05")["prior_weight"] == 0.5
    one = train_options(cfg, "subject", "oneshot_dco")
    assert one["steps"] == 1000 and one["checkpoints"] == []  # 1000 is not < 1000
    assert train_options(cfg, "style", "dco")["offset_noise"] == 0.1
    assert base["mixed_precision"] == "auto" and "resume_every" in base
    cfg["train"]["variant_defs"]["db_convs"] = {"objective": "db", "targets": ["to_q", "conv1"]}
    _schema_validate(cfg)
    assert train_options(cfg, "subject", "db_convs")["targets"] == ["to_q", "conv1"]
    assert train_options(cfg, "subject", "db")["targets"] == ["to_q", "to_k", "to_v", "to_out.0"]


@pytest.mark.parametrize("change,message", [
    (lambda c: c["train"]["variant_defs"].update(bad={"objective": "dcoo"}), "did you mean 'dco'"),
    (lambda c: c["train"]["variant_defs"].update(bad={"objective": "dco", "betta": 2}), "unknown override"),
    (lambda c: c["train"]["variant_defs"]["db_es"].update(step=1500), "step 1500 is not a kept checkpoint"),
    (lambda c: c["train"]["variant_defs"].update(es2={"checkpoint_of": "db_es", "step": 1000}),
     "is not a trained variant"),
    (lambda c: c["experiment_defs"]["fig1"].update(variants=["dco", "dcco"]), "unknown variant 'dcco'"),
    (lambda c: c["experiment_defs"]["fig5"].update(styles=["watercolor_bayy"]), "did you mean 'watercolor_bay'"),
    (lambda c: c["experiment_defs"]["table1"].update(merges=["db-zip"]), r"must be <variant>\[\+<style variant>\]-<merger>"),
    (lambda c: c["experiment_defs"]["table1"].update(merges=["dco+dbb-arithmetic"]), r"'dco\+dbb-arithmetic' must be"),
    (lambda c: c["sample"]["prompt_sets"].update(subject=["custom"]), "unknown prompt set 'custom'"),
    (lambda c: c["data"]["sources"].pop("dreambooth"), "source dataset 'dreambooth' is not in data.sources"),
])
def test_paper_config_mistakes_are_named(change, message):
    from dcobench.config import load_setup

    cfg = copy.deepcopy(PAPER)
    change(cfg)
    with pytest.raises(ConfigError, match=message):
        load_setup(cfg)


def test_demo_config_plan_is_unchanged():
    from dcobench.config import load_setup

    plan = load_setup(copy.deepcopy(BASE)).plan
    assert sorted(plan.models) == sorted([("subject", s, m) for s in ("toy_robot", "spotted_mug")
                                          for m in ("dco", "db", "dbpp")]
                                         + [("style", "mosaic_style", m) for m in ("dco", "db")])
    assert plan.evaluated == plan.models
    assert sorted(plan.merges) == sorted((s, "mosaic_style", f"{m}-arithmetic")
                                         for s in ("toy_robot", "spotted_mug") for m in ("dco", "db"))
    assert len(plan.noise_distance) == 6


def test_paper_values_file_names_known_experiments_and_metrics():
    import pandas as pd

    from dcobench.score.scorers import SCORERS

    table = pd.read_csv(Path(__file__).resolve().parents[2] / "data" / "paper_values.csv")
    from dcobench.report.paper import PAPER_COLUMNS

    assert list(table.columns) == PAPER_COLUMNS
    assert table["source"].str.len().min() > 3 and table["value"].notna().all()
    assert set(table["experiment"]) <= set(PAPER["experiment_defs"]) | {"timing"}
    scored = table[table["experiment"] != "timing"]
    assert set(scored["metric"]) <= set(SCORERS.names())
    merges = set(PAPER["experiment_defs"]["table1"]["merges"])
    assert set(table.loc[table["experiment"] == "table1", "variant"]) == merges
    dco = table[(table["variant"] == "dco-arithmetic") & (table["metric"] == "siglip_text")]
    assert dco["value"].item() == 0.773
    # every compared variant is one the paper config trains in that experiment
    for exp in ("fig1", "table1"):
        spec = PAPER["experiment_defs"][exp]
        named = set(spec.get("variants", [])) | set(spec.get("merges", [])) | {"pretrained"}
        assert set(table.loc[table["experiment"] == exp, "variant"]) <= named, exp


def test_dag_build_imports_no_torch():
    """What the Snakefile imports and runs at DAG-build time (config checks, plan, merge ids,
    prior keys) stays free of torch, so `snakemake -n` is quick."""
    import os
    import subprocess
    import sys

    code = ("import sys, yaml\n"
            "from dcobench import config\n"
            "from dcobench.merge.ids import parse_merge_id\n"
            "cfg = yaml.safe_load(open('config/paper.yaml'))\n"
            "setup = config.load_setup(cfg)\n"
            "config.prior_key('dog', config.prior_options(cfg))\n"
            "[parse_merge_id(m) for _, _, m in setup.plan.merges]\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'diffusers')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2], timeout=300,
                         env={k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_local_source_files_are_the_fetch_inputs(tmp_path):
    """A source concept's images in data.sources' local copy: inputs of its fetch job, so a
    replaced source image reruns that concept."""
    from dcobench.config import local_source_files

    concept = tmp_path / "repo" / "dog"
    concept.mkdir(parents=True)
    (concept / "concept.yaml").write_text(yaml.safe_dump(
        {"kind": "subject", "class": "dog", "token": "<dog>",
         "source": {"dataset": "db", "path": "dog", "files": ["00.jpg", "01.jpg"]},
         "captions": {"00.jpg": "a <dog>", "01.jpg": "a <dog> here"}}))
    local = tmp_path / "mirror" / "dog"
    local.mkdir(parents=True)
    (local / "00.jpg").write_bytes(b"x")
    data = {"sources": {"db": {"local": str(tmp_path / "mirror")}}}
    assert local_source_files(concept, data) == [str(local / "00.jpg")]  # 01.jpg: not there yet
    assert local_source_files(concept, {"sources": {"db": {"url": "https://x"}}}) == []


def test_sample_channels_last_is_passed_only_when_on():
    """The default leaves the sample rules' params (and so their Snakemake rerun triggers) as
    they were; on, it reaches SampleOptions."""
    from dcobench.config import sample_options

    cfg = copy.deepcopy(BASE)
    assert "channels_last" not in sample_options(cfg, ["cfg"])
    cfg["sample"]["channels_last"] = True
    check_config(cfg)
    assert sample_options(cfg, ["cfg"])["channels_last"] is True


def test_sample_set_seeds_is_passed_only_when_set_and_names_a_sampled_set():
    from dcobench.config import sample_options

    cfg = copy.deepcopy(BASE)
    assert "set_seeds" not in sample_options(cfg, ["cfg"])
    name = (BASE["sample"].get("prompt_sets") or {"subject": ["dreambooth"]})["subject"][0]
    cfg["sample"]["set_seeds"] = {name: [0, 1, 2, 3]}
    check_config(cfg)
    assert sample_options(cfg, ["cfg"])["set_seeds"] == {name: [0, 1, 2, 3]}
    cfg["sample"]["set_seeds"] = {"no_such_set": [0]}
    with pytest.raises(ConfigError, match="sample.set_seeds: 'no_such_set'"):
        check_config(cfg)


def test_option_dataclass_defaults_agree_with_the_schema():
    """Where an options dataclass not yet declared with `spec.options.option` (report) also has
    a default for a key the schema defaults, the two are equal (library calls = pipeline runs).
    TrainOptions', SampleOptions' and PriorOptions' defaults are the schema's by construction;
    MergeOptions' config keys have none (dcobench/spec/merge.py)."""
    import dataclasses

    from dcobench.config import schema_defaults
    from dcobench.report.build import ReportOptions

    checked = 0
    options = {"report": ReportOptions}
    for name, cls in options.items():
        schema = schema_defaults(name)
        for f in dataclasses.fields(cls):
            # report.claims names the claims file; ReportOptions.claims is the tested table
            if f.name not in schema or f.name == "claims":
                continue
            ours, theirs = f.default, schema[f.name]
            if isinstance(theirs, dict):  # per kind (train.textual_inversion): a run is one kind
                theirs = theirs["subject"]
            assert (list(ours) if isinstance(ours, tuple) else ours) == theirs, (name, f.name)
            checked += 1
    assert checked >= 4


def test_sample_options_per_group_hold_only_that_groups_sets():
    """A sample job's params carry its group's prompt sets and set_seeds only, so a change to one
    group's sets reruns only that group's jobs."""
    from dcobench.config import sample_options

    cfg = copy.deepcopy(BASE)
    cfg["sample"]["prompt_sets"] = {"subject": ["customization"], "style": ["style"],
                                    "merge": ["merge"]}
    cfg["sample"]["set_seeds"] = {"style": [0, 1, 2], "customization": [0, 5]}
    check_config(cfg)
    subject = sample_options(cfg, ["cfg"], "subject")
    style = sample_options(cfg, ["cfg"], "style")
    merge = sample_options(cfg, ["cfg"], "merge")
    assert subject["prompt_sets"] == {"subject": ["customization"]}
    assert subject["set_seeds"] == {"customization": [0, 5]}
    assert style["prompt_sets"] == {"style": ["style"]} and style["set_seeds"] == {"style": [0, 1, 2]}
    assert merge["prompt_sets"] == {"merge": ["merge"]} and "set_seeds" not in merge
    changed = copy.deepcopy(cfg)
    changed["sample"]["prompt_sets"]["style"] = ["parti190"]
    assert sample_options(changed, ["cfg"], "subject") == subject
    assert sample_options(changed, ["cfg"], "style") != style


def test_set_seeds_by_a_group_name_reach_the_sets_it_resolves_to():
    """set_seeds: {customization: ...} (the config's name) applies to object_customization and
    live_customization, the sets the samples carry."""
    from dcobench.sample.grid import SampleOptions, seeds_of

    opts = SampleOptions(out_dir=Path("x"), subject_dir=Path("x"), guides=("cfg",), seeds=(0, 1),
                         set_seeds={"customization": (0, 5)})
    assert seeds_of(opts, "object_customization") == (0, 5)
    assert seeds_of(opts, "live_customization") == (0, 5)
    assert seeds_of(opts, "object_stylization") == (0, 1)

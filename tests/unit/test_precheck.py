"""The raw-config checks that run before the schema: every mistake by key, in words; and the
concept.yaml mistakes PyYAML or a file system would otherwise hide."""

import copy
from pathlib import Path

import pytest
import yaml
from PIL import Image

from dcobench.data import ConceptError, load_concept
from dcobench.data.names import MAX_NAME_BYTES, name_problem, suggest_name
from dcobench.precheck import PrecheckError, precheck

REPO = Path(__file__).resolve().parents[2]
BASE = yaml.safe_load((REPO / "config" / "tiny.yaml").read_text())
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def _with(path: str, value):
    cfg = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    node = cfg
    for p in parents:
        node = node[p]
    node[last] = value
    return cfg


def test_the_shipped_configs_pass():
    for path in (REPO / "config.yaml", REPO / "config" / "tiny.yaml", REPO / "config" / "paper.yaml",
                 REPO / "config" / "smoke-real.yaml", REPO / "config" / "world.yaml"):
        precheck(yaml.safe_load(path.read_text()), SCHEMA)


WORLD_OVERLAYS = sorted(p.parent.name for p in (REPO / "experiments").glob("world_*/overlay.yaml"))


def test_every_world_run_overlay_is_checked():
    assert {"world_first_dco", "world_second_run", "world_eighth_run"} <= set(WORLD_OVERLAYS)
    assert not list((REPO / "config").glob("world_*_run.yaml"))  # config/ holds product configs


@pytest.mark.parametrize("overlay", WORLD_OVERLAYS)
def test_the_world_overlays_pass_on_world_yaml(overlay):
    """The world run overlays (experiments/<run>/overlay.yaml) are given after config/world.yaml
    (later files update earlier ones key by key, as Snakemake merges --configfile)."""
    from snakemake.utils import update_config

    cfg = yaml.safe_load((REPO / "config" / "world.yaml").read_text())
    update_config(cfg, yaml.safe_load((REPO / "experiments" / overlay / "overlay.yaml").read_text()))
    assert "db_rare" in cfg["train"]["variant_defs"] and "dco_b01" in cfg["train"]["variant_defs"]
    assert set(cfg["experiments"]) <= set(cfg["experiment_defs"])
    precheck(cfg, SCHEMA)


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("train.lr", float("nan"), r"train.lr: nan is not a finite number"),
    ("train.lr", float("inf"), r"train.lr: inf is not a finite number"),
    ("train.beta", float("-inf"), r"train.beta: -inf is not a finite number"),
    ("sample.w_text", float("nan"), r"sample.w_text: nan"),
    ("train.prior.weight", float("nan"), r"train.prior.weight: nan"),
    ("train.lr", "1e-4", r"train.lr: '1e-4' is text.*write 1.0e-4"),
    ("train.ti_lr", "5E-3", r"train.ti_lr: '5E-3' is text.*write 5.0e-3"),
    ("sample.w_text", "7.5", r"sample.w_text: '7.5' is text, but a number belongs here"),
    ("train.resolution", "64", r"train.resolution: '64' is text"),
    ("seed", "0", r"seed: '0' is text"),
    ("train.lr", "nan", r"train.lr: 'nan' is text, but a finite number belongs here"),
    ("experiment", "my run", r"experiment: the name 'my run' is not path-safe.*'my_run'"),
    ("data.subjects", ["ok", "my dog"], r"data.subjects: 'my dog'.*letters, digits.*'my_dog'"),
    ("data.styles", ["x" * 250], r"data.styles: .*is 250 bytes long"),
    ("data.subjects", ["dreambooth/bad name"], r"'dreambooth/bad name'.*'bad_name'"),
])
def test_mistakes_are_named_by_key(key, value, expected):
    with pytest.raises(PrecheckError, match=expected):
        precheck(_with(key, value), SCHEMA)


def test_every_mistake_is_listed_at_once():
    cfg = _with("train.lr", "1e-4")
    cfg["sample"]["w_text"] = float("nan")
    with pytest.raises(PrecheckError) as info:
        precheck(cfg, SCHEMA)
    assert "train.lr" in str(info.value) and "sample.w_text" in str(info.value)


def test_text_fields_are_left_alone():
    precheck(_with("report.title", "1e-4"), SCHEMA)  # a title may be any text


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("sample.scheduler", "ddimm", r"sample.scheduler: 'ddimm' is not allowed; use one of: ddim"),
    ("train.lr", "abc", r"train.lr: 'abc' is not of type number; write a number"),
    ("train.resolution", -8, r"train.resolution: -8 is out of range; use a value ≥ 8"),
    ("train.resolution", 60, r"train.resolution: 60 is not a multiple of 8; use one \(e.g. 64\)"),
    ("sample.stepz", 3, r"sample: unknown key 'stepz' \(did you mean 'steps'\?\); remove it"),
    ("train.prior.prompt", "a photo", r"train.prior.prompt: .*does not match"),
    # a guide name is explained in words, not as the schema's regex; rg0 (no ε_θ) is refused
    ("sample.guides", ["cfg", "rg"], r"sample.guides\[1\]: 'rg' is not a guidance setting: 'cfg', "
                                     r"or 'rg<ω>' with ω_rg > 0"),
    ("sample.guides", ["rg0"], r"sample.guides\[0\]: 'rg0' is not a guidance setting.*pretrained"),
    ("merge.guides", ["rg0.0"], r"merge.guides\[0\]: 'rg0.0' is not a guidance setting"),
])
def test_schema_violations_are_named_by_key_with_the_fix(key, value, expected):
    with pytest.raises(PrecheckError, match=expected):
        precheck(_with(key, value), SCHEMA)


def test_experiment_merge_ids_same_variant_and_pair_pass_the_schema_malformed_do_not():
    """experiment_defs.*.merges takes "<variant>-<merger>" and the pair form "<subject variant>+
    <style variant>-<merger>" (dcobench.merge.ids); anything else is named by key."""
    defs = {"pairs": {"subjects": "all", "styles": "all",
                      "merges": ["db-arithmetic", "dco_b01+dcosv_b01-ties_svd"]}}
    precheck({**copy.deepcopy(BASE), "experiment_defs": defs}, SCHEMA)
    for bad in ("db+-arithmetic", "db+dco+x-ziplora", "db arithmetic"):
        defs = {"pairs": {"subjects": "all", "styles": "all", "merges": [bad]}}
        with pytest.raises(PrecheckError, match=r"experiment_defs.pairs.merges\[0\]: .*does not match"):
            precheck({**copy.deepcopy(BASE), "experiment_defs": defs}, SCHEMA)


def test_name_rule_and_suggestion():
    assert name_problem("my_dog-2.v1") is None
    assert suggest_name("  my dog!! ") == "my_dog"
    assert suggest_name("ü") == "concept"
    assert "bytes long" in name_problem("a" * (MAX_NAME_BYTES + 1))
    assert name_problem("a" * MAX_NAME_BYTES) is None


def _folder(tmp_path, yaml_text: str | bytes, images=("00.png",), name="cat"):
    root = tmp_path / name
    root.mkdir()
    for img in images:
        Image.new("RGB", (16, 16)).save(root / img)
    data = yaml_text.encode() if isinstance(yaml_text, str) else yaml_text
    (root / "concept.yaml").write_bytes(data)
    return root


HEAD = 'kind: subject\nclass: cat\ntoken: "<c>"\ncaptions:\n'


def test_duplicate_caption_key_is_refused(tmp_path):
    root = _folder(tmp_path, HEAD + '  00.png: "a <c> on a sofa"\n  00.png: "a <c> on grass"\n')
    with pytest.raises(ConceptError, match=r"key '00.png' appears twice"):
        load_concept(root)


def test_caption_key_differing_only_by_case(tmp_path):
    root = _folder(tmp_path, HEAD + '  00.PNG: "a <c> on a sofa"\n')
    with pytest.raises(ConceptError, match=r"'00.PNG' differs from the file 00.png only by case"):
        load_concept(root)


def test_latin1_concept_yaml_is_told_to_save_as_utf8(tmp_path):
    root = _folder(tmp_path, (HEAD + '  00.png: "a <c> in a caf\xe9"\n').encode("latin-1"))
    with pytest.raises(ConceptError, match=r"not UTF-8 text \(byte 0xe9.*save it as UTF-8"):
        load_concept(root)


def test_unsafe_folder_name_in_words(tmp_path):
    root = _folder(tmp_path, HEAD + '  00.png: "a <c>"\n', name="my cat")
    with pytest.raises(ConceptError, match=r"name 'my cat' is not path-safe.*'my_cat'"):
        load_concept(root)

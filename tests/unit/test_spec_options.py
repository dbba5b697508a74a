"""Options declared once as dataclass fields (dcobench.spec.options): the config schema, the
variant override keys, the values a rule passes, the bounds check and the CLI help all come
from a field's spec."""

import copy
import dataclasses
import re
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import jsonschema
import pytest
import yaml

from dcobench.precheck import PrecheckError, precheck
from dcobench.spec import options as spec_options
from dcobench.spec.options import option
from dcobench.spec.schema import SCHEMA, config_schema, validate_config
from dcobench.spec.train import OVERRIDE_KEYS, TrainOptions

REPO = Path(__file__).resolve().parents[2]
TINY = yaml.safe_load((REPO / "config" / "tiny.yaml").read_text())


def _train_props(schema):
    return schema["properties"]["train"]["properties"]


def _override_props(schema):
    branches = _train_props(schema)["variant_defs"]["additionalProperties"]["oneOf"]
    return next(b for b in branches if "objective" in b["properties"])["properties"]


def test_a_fields_bounds_default_and_help_reach_the_schema():
    schema = config_schema()
    beta = _train_props(schema)["beta"]
    assert beta["exclusiveMinimum"] == 0 and beta["type"] == "number"
    assert "β" in beta["description"] and "default" not in beta  # required: the config sets it
    assert "beta" in schema["properties"]["train"]["required"]
    assert _train_props(schema)["max_grad_norm"]["default"] == 1.0  # = TrainOptions' default
    assert _train_props(schema)["targets"]["default"] == ["to_q", "to_k", "to_v", "to_out.0"]
    ti = _train_props(schema)["textual_inversion"]
    assert ti["default"] == {"subject": True, "style": False}  # its config_default
    assert [b.get("type") for b in ti["oneOf"]] == ["boolean", "object"]  # a value or per kind
    prior = schema["properties"]["train"]["properties"]["prior"]  # key train.prior.weight
    assert prior["properties"]["weight"]["minimum"] == 0 and "weight" in prior["required"]
    assert "seed" not in _train_props(schema)  # the global seed is written where it lives


def test_override_keys_and_their_schema_are_the_variant_fields():
    variant = {f.name for f in dataclasses.fields(TrainOptions)
               if spec_options.spec(f).get("variant")}
    assert set(OVERRIDE_KEYS) == variant and {"beta", "steps", "seed"} <= variant
    assert "mixed_precision" not in variant  # a machine setting, not a run's
    props = _override_props(config_schema())
    assert set(props) == {"objective", "prior", *OVERRIDE_KEYS}
    assert props["beta"]["exclusiveMinimum"] == 0


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("train.beta", 0, r"train.beta \(in .*bad.yaml\): 0 is out of range; use a value > 0"),
    ("train.variant_defs.dco_bad", {"objective": "dco", "beta": -1},
     r"train.variant_defs.dco_bad.beta \(in .*bad.yaml\): -1 is out of range; use a value > 0"),
    ("train.variant_defs.dco_bad", {"objective": "dco", "steps": {"subject": 0, "style": 3}},
     r"train.variant_defs.dco_bad.steps.subject \(in .*bad.yaml\): 0 is out of range; use a "
     r"value ≥ 1"),
    ("train.prior.weight", -0.5, r"train.prior.weight \(in .*bad.yaml\): -0.5 is out of range"),
])
def test_a_bad_value_is_refused_naming_the_file_and_key(tmp_path, key, value, expected):
    cfg = copy.deepcopy(TINY)
    overlay: dict = {}
    *parents, leaf = key.split(".")
    node, target = cfg, overlay
    for part in parents:
        node, target = node.setdefault(part, {}), target.setdefault(part, {})
    node[leaf] = target[leaf] = value
    (tmp_path / "good.yaml").write_text(yaml.safe_dump(TINY))
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(overlay))
    with pytest.raises(PrecheckError, match=expected):
        precheck(cfg, SCHEMA, [tmp_path / "good.yaml", tmp_path / "bad.yaml"])


def test_validate_config_fills_the_fields_defaults():
    cfg = copy.deepcopy(TINY)
    for key in ("max_grad_norm", "targets", "textual_inversion", "checkpoints"):
        cfg["train"].pop(key, None)
    validate_config(cfg)
    assert cfg["train"]["max_grad_norm"] == 1.0 and cfg["train"]["checkpoints"] == []
    assert cfg["train"]["textual_inversion"] == {"subject": True, "style": False}


def test_library_callers_get_the_same_bounds():
    with pytest.raises(ValueError, match="beta must be > 0, got 0"):
        TrainOptions(concept_dir="c", out_dir="o", objective="dco", beta=0)
    with pytest.raises(ValueError, match="resolution must be a multiple of 8, got 60"):
        TrainOptions(concept_dir="c", out_dir="o", objective="dco", resolution=60)
    with pytest.raises(ValueError, match="mixed_precision must be one of auto, fp32"):
        TrainOptions(concept_dir="c", out_dir="o", objective="dco", mixed_precision="fp8")
    with pytest.raises(ValueError, match="targets must have at least 1 item"):
        TrainOptions(concept_dir="c", out_dir="o", objective="dco", targets=())


@dataclasses.dataclass(frozen=True)
class _Toy:
    """A stage's options: adding one is adding one field."""

    SECTION: ClassVar[str] = "train"
    out_dir: str = option(help="where", config=None)
    steps: int = option(10, schema={"type": "integer", "minimum": 1}, per_kind=True,
                        variant=True, required=True, help="steps")
    ema_decay: float = option(0.0, schema={"type": "number", "minimum": 0, "maximum": 1},
                              variant=True, omit_default=True,
                              help="EMA of the LoRA weights; 0 = off")


def test_one_new_field_reaches_schema_overrides_values_and_help():
    schema = {"properties": {"train": {"type": "object", "properties": {}}}}
    spec_options.inject(schema, _Toy)
    train = schema["properties"]["train"]
    assert train["properties"]["ema_decay"]["maximum"] == 1
    assert train["properties"]["ema_decay"]["default"] == 0.0 and train["required"] == ["steps"]
    assert spec_options.override_keys(_Toy) == ("steps", "ema_decay")
    config = {"train": {"steps": {"subject": 5, "style": 7}}}
    # at its default a new option is left out of the rule's params: no finished job reruns
    assert spec_options.from_config(_Toy, config, "style") == {"steps": 7}
    assert spec_options.from_config(_Toy, {"train": {**config["train"], "ema_decay": 0.5}},
                                    "style") == {"steps": 7, "ema_decay": 0.5}
    over = spec_options.from_config(_Toy, config, "subject", {"ema_decay": 0.9, "steps": 3})
    assert over == {"steps": 3, "ema_decay": 0.9}
    assert "ema_decay (default 0.0; >= 0, <= 1): EMA" in spec_options.help_text(_Toy)


def test_train_cli_help_lists_every_option_from_its_spec():
    out = subprocess.run([sys.executable, "-m", "dcobench", "train", "--help"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    assert "--options fields (TrainOptions)" in out
    for f in spec_options.options(TrainOptions):
        assert f"  {f.name} (" in out
    assert "beta (default 1.0; > 0): the paper's β" in out


def test_weight_decay_is_one_field_plus_its_use():
    """The acceptance example: TrainOptions.weight_decay, declared once, reaches the schema, the
    variant overrides, a rule's params (only when set) and library callers' bounds."""
    from dcobench.config import train_options

    cfg = copy.deepcopy(TINY)
    cfg["train"]["variant_defs"] = {"db_wd": {"objective": "db", "weight_decay": 0.01}}
    validate_config(cfg)
    assert cfg["train"]["weight_decay"] == 0.0  # the field's default, filled in
    assert "weight_decay" not in train_options(cfg, "subject", "db")  # params as before
    assert train_options(cfg, "subject", "db_wd")["weight_decay"] == 0.01
    assert TrainOptions(concept_dir="c", out_dir="o", objective="db").weight_decay == 0.0
    with pytest.raises(ValueError, match="weight_decay must be >= 0, got -0.1"):
        TrainOptions(concept_dir="c", out_dir="o", objective="db", weight_decay=-0.1)


def test_sample_options_come_from_their_fields():
    """SampleOptions declared the same way: its bounds reach the sample section, prompt_sets
    gets no default, and a library caller gets the same bounds."""
    from dcobench.config import sample_options
    from dcobench.spec.sample import SampleOptions

    sample = config_schema()["properties"]["sample"]
    assert sample["properties"]["steps"]["minimum"] == 1 and "steps" in sample["required"]
    assert sample["properties"]["channels_last"]["default"] is False
    assert "default" not in sample["properties"]["prompt_sets"]  # unset = the default sets
    assert {"guides", "chunks"} <= set(sample["properties"])  # the file's own keys
    cfg = copy.deepcopy(TINY)
    for key in ("prompt_sets", "set_seeds", "channels_last"):
        cfg["sample"].pop(key, None)
    validate_config(cfg)
    assert "prompt_sets" not in cfg["sample"]
    opts = sample_options(cfg, ["cfg"])
    assert "channels_last" not in opts and "set_seeds" not in opts  # only when set
    assert opts["captions"] == cfg["train"]["captions"] and opts["seed"] == cfg["seed"]
    with pytest.raises(ValueError, match="w_text must be >= 0, got -1"):
        SampleOptions(out_dir="o", subject_dir="s", guides=("cfg",), w_text=-1)
    with pytest.raises(ValueError, match="scheduler must be one of ddim, euler, dpm"):
        SampleOptions(out_dir="o", subject_dir="s", guides=("cfg",), scheduler="pndm")


def test_prior_options_come_from_their_fields():
    """PriorOptions declared the same way: its own keys land in train.prior beside TrainOptions'
    weight; its values (whose hash names the prior folder) read the training's resolution and
    the sampling stage's scheduler, batch size and precision."""
    from dcobench.config import prior_options
    from dcobench.spec.priors import PriorOptions

    prior = config_schema()["properties"]["train"]["properties"]["prior"]
    assert set(prior["properties"]) == {"prompt", "count", "steps", "cfg", "weight"}
    assert set(prior["required"]) == set(prior["properties"])
    assert "resolution" not in prior["properties"]  # train.resolution: TrainOptions'
    cfg = copy.deepcopy(TINY)
    validate_config(cfg)
    opts = prior_options(cfg)
    assert opts["resolution"] == cfg["train"]["resolution"]
    assert opts["precision"] == cfg["sample"]["mixed_precision"]
    assert set(opts) == {"prompt", "count", "seed", "steps", "cfg", "resolution", "batch_size",
                         "scheduler", "precision"}
    with pytest.raises(ValueError, match="count must be >= 1, got 0"):
        PriorOptions("dog", "o", count=0)


def test_merge_options_come_from_their_fields():
    """MergeOptions and ZipLoraOptions declared the same way: merge.rank, merge.density and
    merge.ziplora.* are written in from their fields (the plan's variants, mergers, weights and
    guides stay in the schema file), without a default, so rule merge passes what the config
    sets, as before; a library caller gets the same bounds, naming the field."""
    from dcobench.config import merge_options
    from dcobench.merge.lora import MergeOptions as FromLora
    from dcobench.merge.ziplora import ZipLoraOptions as FromZiplora
    from dcobench.spec.merge import MergeOptions, ZipLoraOptions

    assert FromLora is MergeOptions and FromZiplora is ZipLoraOptions  # the old paths re-export
    merge = config_schema()["properties"]["merge"]
    assert set(merge["properties"]) == {"variants", "mergers", "weights", "guides", "rank",
                                        "density", "ziplora"}
    assert merge["properties"]["density"] == {
        "type": "number", "exclusiveMinimum": 0, "maximum": 1,
        "description": spec_options.spec(dataclasses.fields(MergeOptions)[2])["help"]}
    assert merge["properties"]["rank"]["type"] == ["integer", "null"]
    ziplora = merge["properties"]["ziplora"]
    assert ziplora["additionalProperties"] is False
    assert set(ziplora["properties"]) == {"steps", "lr", "penalty", "similarity", "resolution",
                                          "batch_size"}  # seed: the global one
    assert ziplora["properties"]["similarity"]["enum"] == ["mean_abs", "dot", "cosine"]
    assert ziplora["properties"]["resolution"]["multipleOf"] == 8
    for f in spec_options.options(ZipLoraOptions):  # each key's bounds are its field's
        if f.name in ziplora["properties"]:
            assert {k: v for k, v in ziplora["properties"][f.name].items()
                    if k != "description"} == spec_options.spec(f)["schema"]
    assert not any("default" in p for p in [*merge["properties"].values(),
                                            *ziplora["properties"].values()])

    cfg = copy.deepcopy(TINY)
    validate_config(cfg)
    m = cfg["merge"]
    assert merge_options(cfg) == {"rank": m["rank"], "density": m["density"],
                                  "ziplora": m["ziplora"], "seed": cfg["seed"]}
    for key in ("rank", "density", "ziplora"):
        del cfg["merge"][key]
    validate_config(cfg)
    assert "density" not in cfg["merge"]  # no default filled in: the library's applies
    assert merge_options(cfg) == {"seed": cfg["seed"]}  # params as the config gives them
    cfg["merge"]["ziplora"] = {"steps": 0}
    with pytest.raises(jsonschema.ValidationError, match="0 is less than the minimum of 1"):
        validate_config(cfg)

    with pytest.raises(ValueError, match=r"density must be > 0, got 0"):
        MergeOptions(density=0)
    with pytest.raises(ValueError, match=r"density must be <= 1, got 1.5"):
        MergeOptions(density=1.5)
    with pytest.raises(ValueError, match=r"rank must be >= 1, got 0"):
        MergeOptions(rank=0)
    assert MergeOptions(rank=None).rank is None
    with pytest.raises(ValueError, match=r"weights must have at most 2 item\(s\)"):
        MergeOptions(weights=(1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match=r"weights must have at least 2 item\(s\)"):
        MergeOptions(weights=(1.0,))
    with pytest.raises(ValueError, match=r"ziplora.lr must be > 0, got 0"):
        MergeOptions(ziplora={"lr": 0})
    with pytest.raises(ValueError, match=r"unknown ziplora option\(s\): stepz"):
        MergeOptions(ziplora={"stepz": 5})
    for field, bad, message in (("steps", 0, "steps must be >= 1, got 0"),
                                ("lr", -1e-3, "lr must be > 0, got -0.001"),
                                ("penalty", -1, "penalty must be >= 0, got -1"),
                                ("batch_size", 0, "batch_size must be >= 1, got 0"),
                                ("resolution", 60, "resolution must be a multiple of 8, got 60"),
                                ("similarity", "l2", "similarity must be one of mean_abs, dot, "
                                                     "cosine, got 'l2'")):
        with pytest.raises(ValueError, match=re.escape(message)):
            ZipLoraOptions(**{field: bad})


def test_merge_cli_help_lists_the_options_from_their_spec():
    from dcobench.spec.merge import MergeOptions, ZipLoraOptions

    out = subprocess.run([sys.executable, "-m", "dcobench", "merge", "--help"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    assert "--options fields (MergeOptions)" in out
    assert "options.ziplora fields (ZipLoraOptions)" in out
    for cls in (MergeOptions, ZipLoraOptions):
        for f in spec_options.options(cls):
            assert f"  {f.name} (" in out
    assert "density (default 0.5; > 0, <= 1): ties_svd / dare" in out

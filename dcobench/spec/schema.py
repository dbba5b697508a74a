"""The config's JSON schema: workflow/schemas/config.schema.yaml (shapes of the sections that have
no options dataclass yet) with every option declared by an options dataclass written in at its
key (`spec.options.inject`): the `train` section and the keys a training variant may override
come from `TrainOptions`, the `sample` options from `SampleOptions`, `train.prior` from
`PriorOptions`, `merge.rank`, `merge.density` and `merge.ziplora` from `MergeOptions` and
`ZipLoraOptions`. `validate_config` checks a config against it and fills in the
defaults, as Snakemake's `validate` does with a schema file. Cheap to import (yaml, jsonschema
on use)."""

from __future__ import annotations

import copy
import functools
from pathlib import Path

from dcobench.sample.guides import NAME_PATTERN
from dcobench.spec.merge import MergeOptions, ZipLoraOptions
from dcobench.spec.options import inject, override_schema
from dcobench.spec.priors import PriorOptions
from dcobench.spec.sample import SampleOptions
from dcobench.spec.train import TrainOptions
from dcobench.yamlio import load_yaml

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"
# one per stage whose options are declared as fields; a nested section (merge.ziplora) after
# the class that declares its key (MergeOptions.ziplora)
OPTION_CLASSES = (TrainOptions, SampleOptions, PriorOptions, MergeOptions, ZipLoraOptions)


@functools.cache
def _composed(path: str) -> dict:
    schema = load_yaml(path)
    for cls in OPTION_CLASSES:
        inject(schema, cls)
    branches = schema["properties"]["train"]["properties"]["variant_defs"]["additionalProperties"]
    variant = next(b for b in branches["oneOf"] if "objective" in b.get("properties", {}))
    variant["properties"].update(override_schema(TrainOptions))
    schema["definitions"]["guide"]["pattern"] = NAME_PATTERN  # Guide.parse's names
    return schema


def config_schema(path: str | Path = SCHEMA) -> dict:
    """The whole config schema (a fresh copy: callers may change it)."""
    return copy.deepcopy(_composed(str(path)))


@functools.cache
def schema_defaults(name: str) -> dict:
    """The `default:` of every key of config section `name`: the one place defaults live
    (validate_config fills them into the workflow's config)."""
    props = _composed(str(SCHEMA))["properties"][name]["properties"]
    return {k: copy.deepcopy(v["default"]) for k, v in props.items()
            if isinstance(v, dict) and "default" in v}


def section(config: dict, name: str) -> dict:
    """config[name] with the schema's defaults for the keys it leaves out (library callers that
    pass a config Snakemake has not validated get the same values)."""
    return {**schema_defaults(name), **config[name]}


def validate_config(config: dict, path: str | Path = SCHEMA) -> dict:
    """Check `config` against the schema, filling in defaults (in place, as Snakemake's
    `validate(config, schema)` does: every `properties` key with a `default` is set where the
    config leaves it out). Raises jsonschema.ValidationError."""
    from jsonschema import Draft202012Validator, validators

    props = Draft202012Validator.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub:
                    instance.setdefault(key, copy.deepcopy(sub["default"]))
        yield from props(validator, properties, instance, schema)

    schema = _composed(str(path))
    validators.extend(Draft202012Validator, {"properties": set_defaults})(schema).validate(config)
    return config

"""Options as dataclass fields that carry their own spec (peft's `LoraConfig` is the model).

A stage's options dataclass declares each option once, with `option(...)`: its name and type
(the field), its default, its bounds (a JSON-schema fragment of one value), its help, the config
key it is read from, whether it may be given per concept kind and whether a training variant may
override it. Everything else is generated from those fields:

- the config schema's entries (`inject`, used by `dcobench.spec.schema`),
- the variant override keys and their schema (`override_keys`, `override_schema`),
- the values a rule passes for one job (`from_config`),
- the bounds check a library caller gets (`check`),
- the CLI help (`help_text`).

Standard library only.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import MISSING
from pathlib import Path

KINDS = ("subject", "style")
SECTION = "<section>"  # config key of an option: "<the class's SECTION>.<field name>"


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()  # config_default: the config may leave the key out, and gets no default


def option(default=MISSING, *, help: str, schema: dict | None = None, config: str | None = SECTION,
           per_kind: bool = False, variant: bool = False, required: bool = False,
           config_default=MISSING, omit_default: bool = False, default_factory=MISSING):
    """A dataclass field with its spec.

    `schema`: JSON schema of one value (type, minimum, enum, ...); `config`: the dotted config
    key it is read from (default: the class's SECTION + its name; None: not a config key, e.g. a
    path the rule fills in); `per_kind`: the config (and a variant) may give {subject: .., style:
    ..}; `variant`: a training variant may override it; `required`: the config must set it (the
    field's default serves library callers only); `config_default`: the config's default where it
    differs from the library's (e.g. per kind), or UNSET: the config may leave it out, the
    schema fills nothing in and a rule passes nothing (the library's default applies);
    `omit_default`: a rule passes it only when its value differs from the default, so adding an
    option leaves every finished job's params, and so the job, as they were (Snakemake reruns a
    job whose params change)."""
    meta = {"help": help, "schema": dict(schema or {}), "config": config, "per_kind": per_kind,
            "variant": variant, "required": required, "config_default": config_default,
            "omit_default": omit_default}
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={"option": meta})


def spec(f: dataclasses.Field) -> dict:
    """The `option(...)` metadata of field `f` ({} for a plain field)."""
    return f.metadata.get("option") or {}


def options(cls) -> list[dataclasses.Field]:
    """The fields of `cls` declared with `option(...)`."""
    return [f for f in dataclasses.fields(cls) if spec(f)]


def config_key(cls, f: dataclasses.Field) -> str | None:
    key = spec(f).get("config")
    return f"{cls.SECTION}.{f.name}" if key == SECTION else key


def config_fields(cls) -> list[tuple[dataclasses.Field, str]]:
    """(field, dotted config key) of every option read from the config, in field order."""
    return [(f, key) for f in options(cls) if (key := config_key(cls, f)) is not None]


def to_json(value):
    """A default as the config writes it: tuples as lists, paths as text."""
    if isinstance(value, tuple | list):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return str(value) if isinstance(value, Path) else value


def library_default(f: dataclasses.Field):
    if f.default is not MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not MISSING else MISSING


def config_default(f: dataclasses.Field):
    """The default the config gets (MISSING for a required option, UNSET for none)."""
    meta = spec(f)
    if meta["required"]:
        return MISSING
    value = meta["config_default"]
    if value is UNSET:
        return UNSET
    return to_json(library_default(f) if value is MISSING else value)


def value_schema(f: dataclasses.Field) -> dict:
    """JSON schema of the option's config value: one value, or per kind {subject, style}."""
    base = dict(spec(f)["schema"])
    if not spec(f)["per_kind"]:
        return base
    by_kind = {"type": "object", "additionalProperties": False, "required": list(KINDS),
               "properties": {k: dict(base) for k in KINDS}}
    return {"oneOf": [base, by_kind]}


def config_schema(f: dataclasses.Field) -> dict:
    """The schema entry of the option's config key: its value schema, help and default."""
    out = value_schema(f)
    if "pattern" not in out:  # a pattern's description is what precheck says a value must be
        out.setdefault("description", spec(f)["help"])
    if (default := config_default(f)) is not MISSING and default is not UNSET:
        out["default"] = copy.deepcopy(default)
    return out


def inject(schema: dict, cls) -> None:
    """Write every config option of `cls` under its SECTION into `schema` (a JSON schema of the
    whole config) at its key; a required option joins its parent's `required`."""
    for f, key in config_fields(cls):
        if not key.startswith(f"{cls.SECTION}."):
            continue  # a key of another section (the global seed): written there
        *parents, leaf = key.split(".")
        node = schema
        for part in parents:
            node = node["properties"][part]
        node.setdefault("properties", {})[leaf] = config_schema(f)
        if spec(f)["required"] and leaf not in node.setdefault("required", []):
            node["required"].append(leaf)


def override_keys(cls) -> tuple[str, ...]:
    """The options a training variant may override."""
    return tuple(f.name for f in options(cls) if spec(f)["variant"])


def override_schema(cls) -> dict:
    """JSON schema properties of a variant's overrides: each overridable option's value schema."""
    return {f.name: {**value_schema(f), "description": spec(f)["help"]}
            for f in options(cls) if spec(f)["variant"]}


def per_kind(value, kind: str):
    """A per-kind value ({subject: .., style: ..}) for `kind`; any other value as it is."""
    return value[kind] if isinstance(value, dict) and set(value) == set(KINDS) else value


def _lookup(config: dict, key: str, default):
    node = config
    *parents, leaf = key.split(".")
    for part in parents:
        if part not in node and default is UNSET:
            return UNSET  # a section the config leaves out: none of its UNSET options is set
        node = node[part]
    if leaf in node:
        return node[leaf]
    if default is UNSET:
        return UNSET
    if default is MISSING:
        raise KeyError(f"config key {key} is not set (and has no default)")
    return default


def from_config(cls, config: dict, kind: str | None = None, overrides: dict | None = None) -> dict:
    """The option values a rule passes for one job on a concept of `kind`: each config option's
    value (its default where the config leaves it out, nothing for an UNSET one; per-kind
    values for `kind`), then the variant's `overrides`."""
    opts = {}
    for f, key in config_fields(cls):
        value = _lookup(config, key, config_default(f))
        if value is UNSET:
            continue  # left out, no config default: the dataclass fills in the library's
        value = copy.deepcopy(value)
        opts[f.name] = per_kind(value, kind) if spec(f)["per_kind"] else value
    per = {f.name for f in options(cls) if spec(f)["per_kind"]}
    for name, value in (overrides or {}).items():
        opts[name] = per_kind(value, kind) if name in per else copy.deepcopy(value)
    for f in options(cls):
        if spec(f)["omit_default"] and f.name in opts and _unset(opts[f.name], library_default(f)):
            del opts[f.name]  # the dataclass fills it in: the job's params stay as they were
    return opts


def _unset(value, default) -> bool:
    """`value` is the option's default (for a None default: None or empty)."""
    return value == to_json(default) or (default is None and value in ({}, [], ""))


_OPS = {"minimum": (">=", lambda v, b: v >= b), "exclusiveMinimum": (">", lambda v, b: v > b),
        "maximum": ("<=", lambda v, b: v <= b), "exclusiveMaximum": ("<", lambda v, b: v < b)}


def value_problem(schema: dict, value) -> str | None:
    """What is wrong with `value` against the bounds of `schema` (None: nothing). Checks what a
    library caller can get wrong beyond types: null, finiteness, bounds, enum, multipleOf, item
    count (min and max) and items."""
    if value is None:
        types = schema.get("type")
        if types is None and "enum" not in schema:
            return None  # a spec that says nothing of its type (a path the rule fills in)
        allowed = types == "null" or (isinstance(types, list) and "null" in types) \
            or None in schema.get("enum", ())
        return None if allowed else "must be set, got None"
    if isinstance(value, float) and not math.isfinite(value):
        return f"is {value}; set a finite number"
    if "enum" in schema and value not in schema["enum"]:
        return f"must be one of {', '.join(map(str, schema['enum']))}, got {value!r}"
    if isinstance(value, int | float) and not isinstance(value, bool):
        for key, (op, ok) in _OPS.items():
            if key in schema and not ok(value, schema[key]):
                return f"must be {op} {schema[key]}, got {value}"
        if "multipleOf" in schema and value % schema["multipleOf"]:
            return f"must be a multiple of {schema['multipleOf']}, got {value}"
    if isinstance(value, tuple | list):
        if len(value) < schema.get("minItems", 0):
            return f"must have at least {schema['minItems']} item(s), got {list(value)}"
        if len(value) > schema.get("maxItems", len(value)):
            return f"must have at most {schema['maxItems']} item(s), got {list(value)}"
        for item in value:
            if problem := value_problem(schema.get("items") or {}, item):
                return f"item {problem}"
    return None


def check(obj) -> None:
    """Raise ValueError naming the first option of `obj` outside its bounds."""
    for f in options(type(obj)):
        value = getattr(obj, f.name)
        if value is None and library_default(f) is None:
            continue  # None is the library's own default (e.g. "unset: the defaults")
        if problem := value_problem(spec(f)["schema"], value):
            raise ValueError(f"{f.name} {problem}")


def _bounds(schema: dict) -> str:
    parts = [f"{_OPS[k][0]} {schema[k]}" for k in _OPS if k in schema]
    if "multipleOf" in schema:
        parts.append(f"multiple of {schema['multipleOf']}")
    if "enum" in schema:
        parts.append(" | ".join(map(str, schema["enum"])))
    return ", ".join(parts)


def check_shared(members: list, fields: tuple[str, ...], group: str) -> None:
    """Raise ValueError unless the options `members` of one process (a fused training group, a
    sampling group) are non-empty, agree on `fields` (what the one loaded model fixes) and write
    distinct out_dir folders; `group` names the kind of group in the message."""
    if not members:
        raise ValueError(f"{group} needs at least one member")
    for name in fields:
        values = {str(getattr(m, name)) for m in members}
        if len(values) > 1:
            raise ValueError(f"{group}'s members must share {name}; got {sorted(values)}")
    outs = [str(m.out_dir) for m in members]
    if len(set(outs)) != len(outs):
        raise ValueError(f"{group}'s members need distinct out_dir; got {outs}")


def help_text(cls) -> str:
    """One line per option: name, default, bounds and help (a stage's CLI help)."""
    lines = []
    for f in options(cls):
        default = library_default(f)
        shown = "required" if default is MISSING else f"default {to_json(default)!r}"
        bounds = _bounds(spec(f)["schema"])
        lines.append(f"  {f.name} ({shown}{'; ' + bounds if bounds else ''}): {spec(f)['help']}")
    return "\n".join(lines)

"""Checks of the raw config that come before the JSON schema, with messages a person can act on.

The schema (workflow/schemas/config.schema.yaml) checks shapes and types, but its messages are
raw ("'1e-4' is not of type 'number'", a regex for a name) and it accepts NaN and infinity as
numbers. `precheck` runs first, at DAG-build time, and reports every such mistake by its key:
non-finite numbers anywhere; text where the schema wants a number (PyYAML reads `1e-4`, without
a dot, as text); concept and experiment names that are not path-safe, in words, with a
suggestion; then every other schema violation by its key, with what to write instead (unknown
keys with "did you mean"). Cheap to import: yaml, jsonschema and the standard library only.
"""

from __future__ import annotations

import difflib
import math
import re
from pathlib import Path

from dcobench.data.names import name_problem
from dcobench.spec.schema import config_schema
from dcobench.yamlio import YamlFileError, load_yaml


class PrecheckError(ValueError):
    """Mistakes found in the raw config; the message lists each with its key."""


def _resolve(node: dict, root: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node:
        section, name = node["$ref"].split("/")[-2:]
        node = root[section][name]
    return node if isinstance(node, dict) else {}


def _branches(node: dict, root: dict) -> list[dict]:
    """The alternatives a value may match at `node` (oneOf / anyOf flattened, $ref resolved)."""
    node = _resolve(node, root)
    subs = node.get("oneOf") or node.get("anyOf")
    return [b for s in subs for b in _branches(s, root)] if subs else [node]


def _types(branches: list[dict]) -> set[str]:
    out: set[str] = set()
    for b in branches:
        t = b.get("type")
        out |= {t} if isinstance(t, str) else set(t or [])
        if "enum" in b:
            out |= {type(v).__name__ for v in b["enum"]}
    return out


def _child(branches: list[dict], key: str | None, root: dict) -> list[dict]:
    """Schema alternatives for a mapping value (key) or a list item (key None)."""
    out = []
    for b in branches:
        if key is None:
            sub = b.get("items")
        else:
            sub = (b.get("properties") or {}).get(key)
            if sub is None and isinstance(b.get("additionalProperties"), dict):
                sub = b["additionalProperties"]
        if isinstance(sub, dict):
            out += _branches(sub, root)
    return out


def _walk(value, branches: list[dict], root: dict, path: str, errors: list[str]) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        errors.append(f"{path}: {value} is not a finite number; set a real value")
    elif isinstance(value, str) and {"number", "integer"} & _types(branches) \
            and not {"string", "str"} & _types(branches):
        try:
            number = float(value)
        except ValueError:
            return
        hint = ""
        if "e" in value.lower() and "." not in value:
            mantissa, _, exponent = value.lower().partition("e")
            hint = f" (YAML reads {value} as text; write {mantissa}.0e{exponent})"
        kind = "a finite number" if not math.isfinite(number) else "a number"
        errors.append(f"{path}: {value!r} is text, but {kind} belongs here"
                      f"{hint or '; write it without quotes'}")
    elif isinstance(value, dict):
        for key, sub in value.items():
            _walk(sub, _child(branches, str(key), root), root, f"{path}.{key}" if path else str(key),
                  errors)
    elif isinstance(value, list):
        items = _child(branches, None, root)
        for i, sub in enumerate(value):
            _walk(sub, items, root, f"{path}[{i}]", errors)


def _names(config: dict, errors: list[str]) -> None:
    experiment = config.get("experiment")
    if isinstance(experiment, str) and (problem := name_problem(experiment)):
        errors.append(f"experiment: the {problem}")
    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    for kind in ("subjects", "styles"):
        for entry in data.get(kind) or []:
            if not isinstance(entry, str):
                continue
            for part in entry.split("/"):
                if problem := name_problem(part):
                    errors.append(f"data.{kind}: {entry!r}: the {problem}")
                    break


def _dotted(parts) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _fix(err) -> str:
    """What to write instead, for one jsonschema error."""
    v, schema, value = err.validator, err.schema, err.instance
    if v == "additionalProperties" and isinstance(value, dict):
        known = sorted(schema.get("properties") or {})
        parts = []
        for extra in sorted(set(value) - set(known)):
            close = difflib.get_close_matches(str(extra), known, n=1, cutoff=0.6)
            parts.append(f"unknown key {extra!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        return (f"{'; '.join(parts)}; remove it or fix the spelling (known keys: "
                f"{', '.join(known)})")
    if v == "required":
        return f"{err.message}; add it (config.yaml shows every key with a comment)"
    if v == "type":
        want = err.validator_value if isinstance(err.validator_value, str) else \
            " or ".join(err.validator_value)
        return f"{value!r} is not of type {want}; write a {want}"
    if v == "enum":
        return f"{value!r} is not allowed; use one of: {', '.join(map(str, err.validator_value))}"
    if v in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        op = {"minimum": "≥", "exclusiveMinimum": ">", "maximum": "≤", "exclusiveMaximum": "<"}[v]
        return f"{value!r} is out of range; use a value {op} {err.validator_value}"
    if v == "multipleOf" and isinstance(value, (int, float)):
        m = err.validator_value
        return f"{value!r} is not a multiple of {m}; use one (e.g. {max(m, round(value / m) * m)})"
    if v in ("minLength", "minItems"):
        return f"{value!r} is empty; write a value"
    if v == "uniqueItems":
        return f"{value!r} lists an entry twice; list each once"
    if v == "pattern" and schema.get("description"):
        return f"{value!r} is not {schema['description']}"
    if v in ("oneOf", "anyOf"):
        return f"{value!r} has none of the allowed forms; see this key's comment in config.yaml"
    return f"{err.message}; see this key's comment in config.yaml"


def _deepest(errors):
    """Each error; for a value matching none of a oneOf's forms, the errors inside the forms it
    got furthest into when they lie below it (a variant's `beta: -1`, not "none of the forms")."""
    for err in errors:
        inner = list(err.context or []) if err.validator in ("oneOf", "anyOf") else []
        depth = max((len(e.absolute_path) for e in inner), default=0)
        if depth > len(err.absolute_path):
            yield from _deepest(e for e in inner if len(e.absolute_path) == depth)
        else:
            yield err


def _schema_errors(config: dict, schema: dict, reported: list[str], errors: list[str]) -> None:
    from jsonschema import Draft202012Validator

    for err in sorted(_deepest(Draft202012Validator(schema).iter_errors(config)),
                      key=lambda e: [str(p) for p in e.absolute_path]):
        key = _dotted(err.absolute_path) or "(top level)"
        if any(key == r or key.startswith((f"{r}.", f"{r}[")) for r in reported):
            continue  # already said in words
        errors.append(f"{key}: {_fix(err)}")


def check_yaml_file(path: str | Path) -> None:
    """Refuse a config file that is not UTF-8 text (e.g. saved as Latin-1) or gives a key twice
    (e.g. two `seed:` lines), naming the file, the line and the fix, before Snakemake's own loader
    fails with a traceback or silently keeps the last key. A missing file is left to whoever
    reads it."""
    if not Path(path).is_file():
        return
    try:
        load_yaml(path)
    except YamlFileError as e:
        raise PrecheckError(str(e)) from e


def _key_parts(key: str) -> list:
    return [int(p[1:-1]) if p.startswith("[") else p for p in re.findall(r"\[\d+\]|[^.\[\]]+", key)]


def _set_in(key: str, docs: list[tuple[str, object]]) -> str | None:
    """The last of the config files (path, parsed yaml) that sets dotted `key` (a later file's
    value replaces an earlier one's), or None."""
    for path, doc in reversed(docs):
        node = doc
        for part in _key_parts(key):
            if isinstance(node, dict) and part in node or \
                    isinstance(node, list) and isinstance(part, int) and part < len(node):
                node = node[part]
            else:
                break
        else:
            return path
    return None


def _name_files(errors: list[str], files) -> list[str]:
    """Each error's key followed by the config file that sets it: "train.beta (in config/x.yaml): ..."."""
    docs = []
    for path in dict.fromkeys(map(str, files)):
        try:
            docs.append((path, load_yaml(path)))
        except (OSError, YamlFileError):
            continue
    out = []
    for error in errors:
        key, sep, rest = error.partition(": ")
        where = _set_in(key, docs) if sep else None
        out.append(f"{key} (in {where}): {rest}" if where else error)
    return out


def precheck(config: dict, schema_path: str | Path, files=()) -> None:
    """Raise PrecheckError listing every non-finite number, number written as text and unsafe
    name in `config` (the dict Snakemake loaded), by key, with the file of `files` (the config
    files in the order Snakemake read them) that sets it."""
    schema = config_schema(schema_path)  # the file + every option's spec (dcobench.spec.schema)
    errors: list[str] = []
    _walk(config, _branches(schema, schema), schema, "", errors)
    _names(config, errors)
    reported = [e.split(":", 1)[0] for e in errors]
    _schema_errors(config, schema, reported, errors)
    if errors:
        raise PrecheckError("invalid config:\n  - " + "\n  - ".join(_name_files(errors, files)))

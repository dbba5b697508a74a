"""The one strict YAML reader of every YAML file dcobench reads: config files (config.yaml and
every ``--configfile``, re-read at workflow start), concept.yaml, SLURM profiles, sweep files.

PyYAML silently keeps the last of two equal keys (``seed: 1`` then ``seed: 2``) and a file saved
in Latin-1 ends in a ``UnicodeDecodeError`` traceback; here both are refused with a message that
names the file, the line and the fix. Cheap to import: yaml and the standard library only.
"""

from __future__ import annotations

from pathlib import Path

import yaml

MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlFileError(ValueError):
    """A YAML file that cannot be read as it is; the message names the file, the line and the fix."""


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping that gives one key twice; `key`, `first` and `second` (1-based lines) say where."""

    def __init__(self, key, first: int, second: int, mark):
        super().__init__(None, None, f"key {key!r} appears twice", mark)
        self.key, self.first, self.second = key, first, second


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last). A key
    that overrides one merged in with `<<: *anchor` is not a duplicate (slurm/config.yaml)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise DuplicateKeyError(key, seen[key], line, key_node.start_mark)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def read_utf8(path: str | Path) -> str:
    """The text of `path`; a file that is not UTF-8 (e.g. an accented letter saved as Latin-1)
    raises YamlFileError naming the file, the line and the byte."""
    path = Path(path)
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise YamlFileError(
            f"{path}: not UTF-8 text (byte 0x{data[e.start]:02x} on line {line}, e.g. an accented "
            "letter saved as Latin-1); save it as UTF-8 (in most editors: Save with Encoding → "
            "UTF-8; or `iconv -f latin1 -t utf-8`)") from e


def parse_yaml(text: str, name: str | Path):
    """`text` parsed strictly (see `StrictLoader`); errors name `name` and the line."""
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - StrictLoader is a SafeLoader
    except DuplicateKeyError as e:
        raise YamlFileError(
            f"{name}, line {e.second}: key {e.key!r} appears twice (lines {e.first} and "
            f"{e.second}); YAML would silently keep the last one, so keep one") from e
    except yaml.YAMLError as e:
        raise YamlFileError(f"{name}: not valid YAML ({e}); fix the syntax") from e


def load_yaml(path: str | Path):
    """The YAML file at `path`, read as UTF-8 and parsed strictly (duplicate keys refused)."""
    return parse_yaml(read_utf8(path), path)

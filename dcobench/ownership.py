"""Which config files own a results folder, so an overlay never overwrites another run's results.

The first real run of an experiment writes results/<experiment>/configfiles.json (the config
files it was started with, in order). A later run, dry runs included, with another list of
config files under the same `experiment` is refused before any job starts: an overlay that adds
your own concepts to the demo would otherwise retrain, rescore and re-render the demo's results
in place. `--config key=value` overrides are not config files and do not count. No torch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

RECORD = "configfiles.json"


class OwnershipError(ValueError):
    """The results folder belongs to a run with other config files."""


def normalized(configfiles: list[str]) -> list[str]:
    """Config file paths relative to the working directory where possible, without repeats."""
    out: list[str] = []
    for path in configfiles:
        rel = os.path.relpath(os.path.abspath(path))
        name = rel if not rel.startswith("..") else os.path.abspath(path)
        if name not in out:
            out.append(name)
    return out


def check_owner(results: Path, configfiles: list[str]) -> None:
    """Raise OwnershipError if `results` was made by other config files than `configfiles`."""
    record = Path(results) / RECORD
    if not record.is_file():
        return
    try:
        owner = json.loads(record.read_text(encoding="utf-8"))["configfiles"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise OwnershipError(f"{record}: unreadable ({exc}); delete it to let this run take the "
                             "folder over") from exc
    mine = normalized(configfiles)
    if owner == mine:
        return
    experiment = Path(results).name
    added = [f for f in mine if f not in owner]
    raise OwnershipError(
        f"{results} holds the results of `--configfile {' '.join(owner)}`; this run uses "
        f"`{' '.join(mine)}` but keeps experiment: {experiment}, so it would overwrite them. "
        f"Set `experiment: <a new name>` in {added[-1] if added else 'your config'} (results go to "
        f"results/<name>/), or, to take this folder over on purpose, delete {record}")


def claim(results: Path, configfiles: list[str]) -> None:
    """Record `configfiles` as the owner of `results` (first real run only)."""
    record = Path(results) / RECORD
    if record.exists():
        return
    record.parent.mkdir(parents=True, exist_ok=True)
    tmp = record.with_suffix(".tmp")
    tmp.write_text(json.dumps({"configfiles": normalized(configfiles)}, indent=1) + "\n",
                   encoding="utf-8")
    os.replace(tmp, record)

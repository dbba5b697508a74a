"""Materialise a source concept: its concept.yaml plus the listed images, linked or downloaded.

A concept in the repository may hold only ``concept.yaml`` with a ``source:`` (dataset, path,
files). ``data.sources`` in the config maps each dataset name to a local directory (CI, a shared
copy) and/or a download URL (the public dataset repository). ``fetch_concept`` writes a normal
concept folder (images + concept.yaml); concept.yaml is written last, so its presence marks the
folder complete, and every image is decoded before it is written.
"""

from __future__ import annotations

import os
import re
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from dcobench.data.concept import CONCEPT_FILE, ConceptError, load_concept, validate_concept

TIMEOUT_S = 60


def resolve_source(dataset: str, sources: dict, where: str) -> tuple[Path | None, str | None]:
    """(local dir if it exists, url) for `dataset`; raises ConceptError if neither is usable."""
    if dataset not in sources:
        raise ConceptError(
            f"{where}: source dataset {dataset!r} is not in data.sources of the config "
            f"(known: {', '.join(sorted(sources)) or 'none'}); add "
            f"data.sources.{dataset}: {{local: <dir>, url: <base url>}}"
        )
    spec = sources[dataset] or {}
    local = spec.get("local")
    local_dir = Path(os.path.expandvars(local)).expanduser() if local else None
    if local_dir is not None and not local_dir.is_dir():
        local_dir = None
    url = spec.get("url")
    if local_dir is None and not url:
        unset = f" ({local_unset} is not set)" if (local_unset := _unset_variable(local)) else ""
        raise ConceptError(
            f"{where}: dataset {dataset!r} has no usable source: local directory {local!r}{unset} "
            "does not exist and no url is set in data.sources; download the dataset (see "
            "data/README.md) and point data.sources or DCOBENCH_DATA_MIRROR at it"
        )
    return local_dir, url


def _unset_variable(path: str | None) -> str | None:
    """The first environment variable in `path` that is not set (e.g. DCOBENCH_DATA_MIRROR)."""
    if not path:
        return None
    names = re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", path)
    return next((n for n in names if n not in os.environ), None)


def _link(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(src.resolve(), tmp)
    os.replace(tmp, dst)


def _download(url: str, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.tmp")
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp, open(tmp, "wb") as f:
            shutil.copyfileobj(resp, f)
    except (urllib.error.URLError, OSError) as exc:
        tmp.unlink(missing_ok=True)
        raise ConceptError(f"{url}: download failed ({exc}); check the url in data.sources") from exc
    os.replace(tmp, dst)


def fetch_concept(concept_dir: Path, out_dir: Path, sources: dict) -> Path:
    """Link (local source) or download (url source) the images of a source concept into
    `out_dir`, decode each one, then write concept.yaml. Returns `out_dir`."""
    concept_dir, out_dir = Path(concept_dir), Path(out_dir)
    concept = load_concept(concept_dir)
    yml = concept_dir / CONCEPT_FILE
    if concept.source is None:
        raise ConceptError(f"{yml}: has no 'source:'; its images are in the folder already")
    if out_dir.name != concept.name:
        raise ConceptError(f"{out_dir}: the fetched folder must be named {concept.name!r}")
    src = concept.source
    local, url = resolve_source(src["dataset"], sources, str(yml))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / CONCEPT_FILE).unlink(missing_ok=True)  # incomplete until written again
    for name in src["files"]:
        dst = out_dir / name
        if local is not None:
            path = local / src["path"] / name
            if not path.is_file():
                raise ConceptError(f"{yml}: source image {path} does not exist "
                                   f"(dataset {src['dataset']!r}, local {local})")
            _link(path, dst)
        else:
            _download("/".join(p.strip("/") for p in (url, src["path"], name) if p), dst)
    staged = out_dir / f".{CONCEPT_FILE}.tmp"
    shutil.copyfile(yml, staged)
    os.replace(staged, out_dir / CONCEPT_FILE)
    try:
        validate_concept(out_dir)  # decodes every image
    except ConceptError:
        (out_dir / CONCEPT_FILE).unlink(missing_ok=True)
        raise
    return out_dir

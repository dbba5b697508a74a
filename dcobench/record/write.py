"""`record write`: a committed, small copy of what a finished run found.

A record folder (experiments/<name>/record/) holds::

    manifest.json       commit, config hash + files, environment, wall time per rule, claims pointer
    claims.md           the claims table, readable (when the run tested claims)
    tables/*.csv        results/<exp>/tables/*.csv: summary, paired, per_concept, claims, ...
    images/<exp>/*.png  the report's sample grids (figures/<exp>/grid_*.png), downscaled
    config/*            the config files the run used
    bench/*.json        results/bench/*.json when present (timing rows of paper vs ours)

Its layout is a results folder's (tables/), so the report rebuilds from it (record/report.py).
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from PIL import Image

from dcobench.errors import UserError

from .limits import IMAGE_BYTES, MAX_BYTES, MIN_SIDE
from .manifest import config_hash, environment, git_state, rule_times, run_provenance

CLAIM_COLUMNS = ["claim", "test", "effect", "ci_low", "ci_high", "bound", "verdict",
                 "claim_verdict"]


class RecordError(UserError):
    """A record that cannot be written (too large, no tables) or read."""


def _configs(results: Path, configs: list[Path] | None) -> list[Path]:
    """The config files: as given, else those results/<exp>/configfiles.json names. Its
    relative names are the run's working directory's, the folder that holds results/<exp>
    (not the writer's: a record of another checkout's run reads that checkout's config)."""
    if configs:
        files = [Path(c) for c in configs]
    else:
        named = results / "configfiles.json"
        if not named.exists():
            raise RecordError(f"{named} not found: pass the run's config files with --config")
        workdir = results.resolve().parents[1]
        files = [workdir / c for c in json.loads(named.read_text(encoding="utf-8"))["configfiles"]]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise RecordError(f"config file(s) not found: {', '.join(missing)}")
    return files


def _grid_png(src: Path, side: int) -> bytes:
    """The grid scaled so its long side is at most `side` px, 128 colours, as PNG bytes."""
    with Image.open(src) as img:
        img = img.convert("RGB")
        img.thumbnail((side, side), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        img.quantize(colors=128).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def reduced_grids(figures: Path, budget: int = IMAGE_BYTES, side: int = 1024) -> dict[str, bytes]:
    """figures/<exp>/grid_*.png -> "<exp>/<name>.png": PNG bytes, all together within `budget`
    bytes (the long side halves until they fit; at MIN_SIDE px the grids are left out)."""
    sources = sorted(Path(figures).glob("*/grid_*.png"))
    while sources and side >= MIN_SIDE:
        out = {f"{p.parent.name}/{p.name}": _grid_png(p, side) for p in sources}
        if sum(map(len, out.values())) <= budget:
            return out
        side //= 2
    return {}


def claims_markdown(claims: pd.DataFrame) -> str:
    """The claims table as markdown: one row per test, effect with its 95% CI and verdicts."""
    cols = [c for c in CLAIM_COLUMNS if c in claims.columns]
    shown = claims[cols].copy()
    for c in ("effect", "ci_low", "ci_high", "bound"):
        if c in shown:
            shown[c] = shown[c].map(lambda v: "" if pd.isna(v) else f"{v:+.4f}")
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join("" if pd.isna(v) else str(v) for v in row) + " |"
              for row in shown.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _claims_pointer(claims: Path) -> dict | None:
    """The claims file and the commit that registered it, from the claims table."""
    if not claims.exists():
        return None
    table = pd.read_csv(claims, dtype=str, keep_default_na=False)
    first = table.iloc[0] if len(table) else {}
    return {"file": first.get("claims_file") or None, "registered": first.get("registered") or None,
            "tests": len(table)}


def record_size(folder: Path) -> int:
    """Bytes of every file under `folder`."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def check_size(folder: Path, limit: int = MAX_BYTES) -> int:
    """The record's size; RecordError naming its largest files when over `limit`."""
    size = record_size(folder)
    if size > limit:
        files = sorted((p for p in folder.rglob("*") if p.is_file()), key=lambda p: -p.stat().st_size)
        top = ", ".join(f"{p.relative_to(folder)} ({p.stat().st_size:,} B)" for p in files[:5])
        raise RecordError(f"record of {size:,} bytes is over the {limit:,}-byte limit; largest: "
                          f"{top}. Records are committed: keep tables aggregated and grids small.")
    return size


def _fill(tmp: Path, results: Path, configs: list[Path], image_budget: int) -> dict:
    """Copy tables, grids, configs and bench files into `tmp`; the manifest's content lists."""
    tables = sorted((results / "tables").glob("*.csv"))
    if not any(t.name == "summary.csv" for t in tables):
        raise RecordError(f"{results / 'tables' / 'summary.csv'} not found: is the run finished?")
    (tmp / "tables").mkdir(parents=True)
    for t in tables:
        shutil.copy2(t, tmp / "tables" / t.name)
    if (results / "tables" / "claims.csv").exists():
        claims = pd.read_csv(results / "tables" / "claims.csv")
        (tmp / "claims.md").write_text(claims_markdown(claims), encoding="utf-8")
    grids = reduced_grids(results / "figures", image_budget)
    for rel, data in grids.items():
        (tmp / "images" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp / "images" / rel).write_bytes(data)
    (tmp / "config").mkdir()
    names = []
    for i, c in enumerate(configs):
        name = c.name if c.name not in names else f"{i}_{c.name}"
        shutil.copy2(c, tmp / "config" / name)
        names.append(name)
    bench = sorted((results.parent / "bench").glob("*.json"))
    for b in bench:
        (tmp / "bench").mkdir(exist_ok=True)
        shutil.copy2(b, tmp / "bench" / b.name)
    return {"tables": [t.name for t in tables], "grids": sorted(grids),
            "config_files": [{"path": str(c), "copy": f"config/{n}"}
                             for c, n in zip(configs, names, strict=True)],
            "bench": [b.name for b in bench]}


def _run_git(run: dict) -> dict:
    """The record's "git": the commit most of the run's jobs ran on ("commit"), every commit
    with its job count ("run_commits"), and the checkout that wrote the record ("writer").
    A run with no job manifests falls back to the writer's commit."""
    writer = git_state()
    commits = run["commits"]
    return {"commit": commits[0]["commit"] if commits else writer["commit"],
            "run_commits": commits, "writer": writer}


def write_record(results: Path, out: Path, configs: list[Path] | None = None,
                 limit: int = MAX_BYTES, image_budget: int = IMAGE_BYTES) -> Path:
    """Write the record of the finished run `results` (results/<exp>) to `out`, replacing any
    record there; nothing is written when it would exceed `limit` bytes (RecordError)."""
    results, out = Path(results), Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "manifest.json").exists():
        raise RecordError(f"{out} exists and is not a record (no manifest.json): give the record's "
                          "own folder, e.g. experiments/<name>/record")
    files = _configs(results, configs)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}-") as scratch:
        tmp = Path(scratch) / "record"
        contents = _fill(tmp, results, files, image_budget)
        run = run_provenance(results)
        manifest = {
            "record_version": 1, "experiment": results.name,
            "written": datetime.now(UTC).isoformat(timespec="seconds"),
            "git": _run_git(run), "config_hash": config_hash(files),
            "claims": _claims_pointer(results / "tables" / "claims.csv"),
            "environment": environment(), "run_environments": run["environments"],
            "rule_times": rule_times(results / "benchmarks"), **contents}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        check_size(tmp, limit)
        if out.exists():
            shutil.rmtree(out)
        shutil.move(str(tmp), out)
    return out


def read_manifest(record: Path) -> dict:
    """A record's manifest.json; RecordError when `record` is not a record folder."""
    path = Path(record) / "manifest.json"
    if not path.exists():
        raise RecordError(f"{record} is not a record (no manifest.json); write one with "
                          "`python -m dcobench record write`")
    return json.loads(path.read_text(encoding="utf-8"))

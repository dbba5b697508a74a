"""`python -m dcobench score`: one long table (row per image and metric) per sample folder.

Columns: exp, group, concept, variant, guide, guidance, w_rg, w_text, file, prompt_index, seed, prompt_set,
metric, value. All tables of a job are computed first and then moved into --out-dir together
(with manifest.json), so a failed job leaves no csv that looks complete.

--members scores several models of one concept in one process (config score.group_size:
concept): a JSON list of {"samples": [DIR, ...], "out": DIR, "meta": {...}}, each written as its
own job writes --out-dir (tables + manifest, its own forward calls); the embedders are loaded
once and --metrics / --models / --subject / --style apply to all.
"""

from __future__ import annotations

import json
from pathlib import Path

from dcobench.cli import parse_members
from dcobench.errors import UserError

GUIDE_COLUMNS = ["guide", "guidance", "w_rg", "w_text"]  # index.csv's, copied as they are
COLUMNS = ["exp", "group", "concept", "variant", *GUIDE_COLUMNS, "file", "prompt_index", "seed",
           "prompt_set", "metric", "value"]
INDEX_NEEDS = ("file", "prompt_index", "seed", "scoring_prompt", *GUIDE_COLUMNS)


def add_arguments(parser) -> None:
    parser.add_argument("--samples", nargs="+", help="guide folders with index.csv")
    parser.add_argument("--out-dir", help="writes <guide>.csv per sample folder")
    parser.add_argument("--members", metavar="JSON",
                        help="grouped: a JSON list of {samples, out, meta}, one load of the embedders")
    parser.add_argument("--done", metavar="FILE",
                        help="with --members: a JSON record written once every member is written")
    parser.add_argument("--metrics", required=True, help="comma-separated scorer names")
    parser.add_argument("--models", default="{}", metavar="JSON",
                        help='embedder specs, e.g. {"dino": "tiny-dinov2", "siglip": ..., "clip": ...}')
    parser.add_argument("--subject", help="subject concept folder (references for dino / clip_i)")
    parser.add_argument("--style", help="style concept folder (references for siglip_image)")
    parser.add_argument("--meta", default="{}", metavar="JSON",
                        help="columns copied into every row: exp, group, concept, variant")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--cache-dir", help="persistent embedding cache (default: none)")


def read_index(folder: Path):
    """index.csv of a finished sample folder; errors name the folder and what is missing."""
    import pandas as pd

    from dcobench.io import verify_file

    path = folder / "index.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: {folder} is not a finished sample folder "
                                "(rerun its sampling job)")
    verify_file(path)  # refuses an index.csv changed or truncated after it was written
    index = pd.read_csv(path, keep_default_na=False)
    lacking = [c for c in INDEX_NEEDS if c not in index.columns]
    if lacking:
        raise UserError(f"{path} lacks columns: {', '.join(lacking)}")
    if index.empty:
        raise UserError(f"{path} lists no images")
    absent = [f for f in index["file"] if not (folder / f).is_file()]
    if absent:
        shown = ", ".join(absent[:5]) + (" ..." if len(absent) > 5 else "")
        raise FileNotFoundError(f"{folder}: index.csv lists {len(absent)} missing image(s): {shown}")
    if "prompt_set" not in index.columns:
        index["prompt_set"] = "all"  # folders sampled before prompt sets existed
    return index


def score_folder(folder: Path, metrics: list[str], embedders: dict, subject_refs, style_refs,
                 meta: dict):
    """The long table of one sample folder: one row per (image, metric)."""
    import pandas as pd

    from dcobench.score.scorers import SCORERS, score_images

    index = read_index(folder)
    files = [folder / f for f in index["file"]]
    frames = []
    for name in metrics:
        values = score_images(name, embedders[SCORERS[name].model], files,
                              list(index["scoring_prompt"]), subject_refs, style_refs)
        frame = index[["file", "prompt_index", "seed", "prompt_set", *GUIDE_COLUMNS]].copy()
        frame["metric"], frame["value"] = name, values.numpy()
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    for key in ("exp", "group", "concept", "variant"):
        table[key] = meta.get(key, "")
    return table[COLUMNS]


def members_of(args) -> list[tuple[list[Path], Path, dict]]:
    """(sample folders, out dir, meta) per member: --members, else the one of --samples /
    --out-dir / --meta."""
    if not args.members:
        if not (args.samples and args.out_dir):
            raise UserError("score needs --samples and --out-dir (or --members)")
        return [([Path(s) for s in args.samples], Path(args.out_dir), json.loads(args.meta))]
    if args.samples or args.out_dir or args.meta != "{}":
        raise UserError("--members sets each member's samples, out and meta; drop --samples / "
                        "--out-dir / --meta")
    out = []
    for i, m in enumerate(parse_members(args.members, {"samples", "out"}, {"meta"})):
        if not m["samples"]:
            raise UserError(f"--members[{i}] has no samples folders")
        out.append(([Path(s) for s in m["samples"]], Path(m["out"]), m.get("meta") or {}))
    return out


def run(args) -> None:
    from dcobench.data.concept import load_concept
    from dcobench.io import device, write_text_atomic
    from dcobench.score.embedders import Embedder
    from dcobench.score.scorers import SCORERS

    metrics = [m for m in args.metrics.split(",") if m]
    scorers = {m: SCORERS[m] for m in metrics}  # unknown names fail here, with suggestions
    specs = json.loads(args.models)
    needed = list(dict.fromkeys(s.model for s in scorers.values()))
    missing = [k for k in needed if k not in specs]
    if missing:
        raise UserError(f"--models lacks an embedder spec for: {', '.join(missing)}")
    members = members_of(args)
    for folders, _, _ in members:
        for folder in folders:
            read_index(folder)  # fail before loading any model
    subject_refs = load_concept(args.subject).images if args.subject else []
    style_refs = load_concept(args.style).images if args.style else []
    cache = Path(args.cache_dir) if args.cache_dir else None
    embedders = {k: Embedder(k, specs[k], device(), args.batch_size, cache) for k in needed}
    for folders, out_dir, meta in members:
        write_member(folders, out_dir, meta, metrics, specs, embedders, subject_refs, style_refs)
    if args.done:
        outs = [str(out) for _, out, _ in members]
        write_text_atomic(Path(args.done), json.dumps({"scores": outs}, indent=1) + "\n")


def write_member(folders: list[Path], out_dir: Path, meta: dict, metrics: list[str], specs: dict,
                 embedders: dict, subject_refs, style_refs) -> None:
    """One model's tables and manifest in `out_dir`, as its own score job writes them; the
    manifest's forward_calls are the calls made for this model (embedders may be shared)."""
    from dcobench.io import staging_dir, write_manifest

    before = {k: e.forward_calls for k, e in embedders.items()}
    tables = {f: score_folder(f, metrics, embedders, subject_refs, style_refs, meta)
              for f in folders}
    with staging_dir(out_dir) as stage:
        for folder, table in tables.items():
            table.to_csv(stage / f"{folder.name}.csv", index=False)
        write_manifest(stage, "score", {"metrics": metrics, "models": specs, **meta},
                       samples=[str(s) for s in folders],
                       model_ids={k: e.model_id for k, e in embedders.items()},
                       forward_calls={k: e.forward_calls - before[k]
                                      for k, e in embedders.items()})

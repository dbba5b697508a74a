"""`python -m dcobench score`: one long table (row per image and metric) per sample folder.

Columns: exp, group, concept, variant, guide, guidance, w_rg, w_text, file, prompt_index, seed, prompt_set,
metric, value. All tables of a job are computed first and then moved into --out-dir together
(with manifest.json), so a failed job leaves no csv that looks complete.
"""

from __future__ import annotations

import json
from pathlib import Path

from dcobench.errors import UserError

GUIDE_COLUMNS = ["guide", "guidance", "w_rg", "w_text"]  # index.csv's, copied as they are
COLUMNS = ["exp", "group", "concept", "variant", *GUIDE_COLUMNS, "file", "prompt_index", "seed",
           "prompt_set", "metric", "value"]
INDEX_NEEDS = ("file", "prompt_index", "seed", "scoring_prompt", *GUIDE_COLUMNS)


def add_arguments(parser) -> None:
    parser.add_argument("--samples", nargs="+", required=True, help="guide folders with index.csv")
    parser.add_argument("--out-dir", required=True, help="writes <guide>.csv per sample folder")
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


def run(args) -> None:
    from dcobench.data.concept import load_concept
    from dcobench.io import device, staging_dir, write_manifest
    from dcobench.score.embedders import Embedder
    from dcobench.score.scorers import SCORERS

    metrics = [m for m in args.metrics.split(",") if m]
    scorers = {m: SCORERS[m] for m in metrics}  # unknown names fail here, with suggestions
    specs, meta = json.loads(args.models), json.loads(args.meta)
    needed = list(dict.fromkeys(s.model for s in scorers.values()))
    missing = [k for k in needed if k not in specs]
    if missing:
        raise UserError(f"--models lacks an embedder spec for: {', '.join(missing)}")
    folders = [Path(s) for s in args.samples]
    for folder in folders:
        read_index(folder)  # fail before loading any model
    subject_refs = load_concept(args.subject).images if args.subject else []
    style_refs = load_concept(args.style).images if args.style else []
    cache = Path(args.cache_dir) if args.cache_dir else None
    embedders = {k: Embedder(k, specs[k], device(), args.batch_size, cache) for k in needed}
    tables = {f: score_folder(f, metrics, embedders, subject_refs, style_refs, meta)
              for f in folders}
    out_dir = Path(args.out_dir)
    with staging_dir(out_dir) as stage:
        for folder, table in tables.items():
            table.to_csv(stage / f"{folder.name}.csv", index=False)
        write_manifest(stage, "score", {"metrics": metrics, "models": specs, **meta},
                       samples=[str(s) for s in args.samples],
                       model_ids={k: e.model_id for k, e in embedders.items()},
                       forward_calls={k: e.forward_calls for k, e in embedders.items()})

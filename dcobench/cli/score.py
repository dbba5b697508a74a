"""`python -m dcobench score`: one long table (row per image and metric) per sample folder."""

from __future__ import annotations

import json
from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("--samples", nargs="+", required=True, help="guide folders with index.csv")
    parser.add_argument("--out-dir", required=True, help="writes <guide>.csv per sample folder")
    parser.add_argument("--metrics", required=True, help="comma-separated scorer names")
    parser.add_argument("--models", default="{}", metavar="JSON",
                        help='embedder specs, e.g. {"dino": "tiny-dinov2", "siglip": ..., "clip": ...}')
    parser.add_argument("--subject", help="subject concept folder (references for dino / clip_i)")
    parser.add_argument("--style", help="style concept folder (references for siglip_image)")
    parser.add_argument("--meta", default="{}", metavar="JSON",
                        help="columns copied into every row: exp, group, concept, method")
    parser.add_argument("--batch-size", type=int, default=16)


def run(args) -> None:
    import pandas as pd

    from dcobench.data.concept import load_concept
    from dcobench.io import device, write_manifest, write_text_atomic
    from dcobench.scoring import SCORERS, Embedder, score_images

    metrics = [m for m in args.metrics.split(",") if m]
    scorers = {m: SCORERS[m] for m in metrics}  # unknown names fail here, with suggestions
    specs, meta = json.loads(args.models), json.loads(args.meta)
    missing = sorted({s.model for s in scorers.values()} - set(specs))
    if missing:
        raise ValueError(f"--models lacks an embedder spec for: {', '.join(missing)}")
    subject_refs = load_concept(args.subject).images if args.subject else []
    style_refs = load_concept(args.style).images if args.style else []
    embedders: dict[str, Embedder] = {}
    out_dir = Path(args.out_dir)
    for folder in map(Path, args.samples):
        index = pd.read_csv(folder / "index.csv")
        files = [folder / f for f in index["file"]]
        frames = []
        for name, scorer in scorers.items():
            if scorer.model not in embedders:
                embedders[scorer.model] = Embedder(scorer.model, specs[scorer.model], device(),
                                                   args.batch_size)
            values = score_images(name, embedders[scorer.model], files,
                                  list(index["scoring_prompt"]), subject_refs, style_refs)
            frame = index[["file", "prompt_index", "seed", "guide", "omega"]].copy()
            frame["metric"], frame["value"] = name, values.numpy()
            frames.append(frame)
        table = pd.concat(frames, ignore_index=True)
        for key in ("exp", "group", "concept", "method"):
            table.insert(0, key, meta.get(key, ""))
        table = table[["exp", "group", "concept", "method", "guide", "omega", "file",
                       "prompt_index", "seed", "metric", "value"]]
        write_text_atomic(out_dir / f"{folder.name}.csv", table.to_csv(index=False))
    write_manifest(out_dir, "score", {"metrics": metrics, "models": specs, **meta},
                   samples=[str(s) for s in args.samples])

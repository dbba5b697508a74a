"""`python -m dcobench analyze noise-distance`: ‖ε_θ − ε_φ‖² per timestep (Fig 8c)."""

from __future__ import annotations

import json
from pathlib import Path

from dcobench.cli import add_options_argument, build_options


def add_arguments(parser) -> None:
    parser.add_argument("analysis", choices=["noise-distance"], help="which analysis")
    parser.add_argument("--run", nargs="+", required=True, metavar="CONCEPT_DIR:METHOD:MODEL_DIR",
                        help="one entry per trained model")
    parser.add_argument("--out", required=True, help="output csv")
    parser.add_argument("--base-model", default="tiny-sdxl")
    add_options_argument(parser)


def run(args) -> None:
    import pandas as pd
    import torch

    from dcobench.analysis import NoiseDistanceOptions, noise_distance
    from dcobench.grid import SampleOptions, load_model
    from dcobench.io import write_manifest, write_text_atomic

    opts = build_options(NoiseDistanceOptions, args.options)
    rows = []
    for entry in args.run:
        concept_dir, method, model_dir = entry.split(":", 2)
        torch.manual_seed(0)
        pipe = load_model(SampleOptions(out_dir=Path("."), model_dir=Path(model_dir),
                                        subject_dir=Path(concept_dir), base_model=args.base_model,
                                        guides=("cfg",)))
        pipe.set_adapters(["theta"])
        for row in noise_distance(pipe, Path(concept_dir), opts):
            rows.append({"concept": Path(concept_dir).name, "method": method, **row})
    out = Path(args.out)
    write_text_atomic(out, pd.DataFrame(rows).to_csv(index=False))
    write_manifest(out.parent, "analyze", json.loads(args.options), runs=args.run)

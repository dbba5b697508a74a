"""`python -m dcobench prepare demo|validate`: concept folders and model presets, checked early."""

from __future__ import annotations

import json
from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("action", choices=["demo", "validate"],
                        help="demo: draw the procedural demo concepts; validate: check concept "
                        "folders (every image opens as RGB, captions match) and build presets")
    parser.add_argument("--root", help="demo: folder to draw the concepts into")
    parser.add_argument("--names", default="", help="demo: comma-separated demo concept names")
    parser.add_argument("--concepts", nargs="*", default=[], help="validate: concept folders")
    parser.add_argument("--models", default="{}", metavar="JSON",
                        help='validate: model specs to resolve, e.g. {"base": "tiny-sdxl"}')
    parser.add_argument("--out", help="validate: summary json (written only if all is valid)")


def run(args) -> None:
    from dcobench.data.concept import ConceptError, validate_concept
    from dcobench.io import write_manifest, write_text_atomic

    if args.action == "demo":
        from dcobench.data.demo import write_demo_concepts

        if not args.root:
            raise ValueError("prepare demo needs --root")
        names = [n for n in args.names.split(",") if n] or None
        for path in write_demo_concepts(Path(args.root), names):
            print(f"wrote {path}")
        return
    concepts, errors = {}, []
    for folder in args.concepts:
        try:
            c = validate_concept(folder)
        except ConceptError as exc:
            errors.append(str(exc))
            continue
        concepts[c.name] = {"kind": c.kind, "class": c.class_noun, "token": c.token,
                            "images": len(c.images), "path": str(folder)}
    if errors:
        raise ValueError("invalid concept data:\n  - " + "\n  - ".join(errors))
    from dcobench.models import resolve_model

    models = {key: resolve_model(spec) for key, spec in json.loads(args.models).items()}
    summary = {"concepts": concepts, "models": models}
    if args.out:
        write_text_atomic(Path(args.out), json.dumps(summary, indent=2) + "\n")
        write_manifest(Path(args.out).parent, "prepare", {"models": json.loads(args.models)})
    print(json.dumps(summary, indent=2))

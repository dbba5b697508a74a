"""`python -m dcobench new-concept FOLDER --class cat`: write a concept.yaml for a folder of photos.

Every image in FOLDER gets a compact caption with the concept's token ("a photo of a <my_cat>
cat") that already validates, so the folder trains as it is; replace each with a comprehensive
caption (background, pose, lighting, style: paper §4.3) before a real run. Then add the folder
to a config for photos (config/my_concepts.yaml; README, "Your own subjects and styles").
"""

from __future__ import annotations

from pathlib import Path

import yaml

from dcobench.data.concept import CONCEPT_FILE, IMAGE_EXTS, load_concept
from dcobench.data.names import name_problem
from dcobench.errors import UserError

HEADER = """\
# {name}: written by `python -m dcobench new-concept`. Replace each caption by a comprehensive one
# that keeps the token {token} where the class noun stands and describes what else is in the image
# (background, pose, lighting, other objects), e.g. "a photo of a {token} {noun} lying on a green
# sofa by a window". Comprehensive captions beat compact ones (paper §4.3, Fig 8a).
"""


def add_arguments(parser) -> None:
    parser.add_argument("folder", type=Path, help="folder holding the concept's images")
    parser.add_argument("--class", dest="class_noun", required=True,
                        help="class noun (a subject: 'cat'; a style: the style words, e.g. "
                             "'watercolor painting')")
    parser.add_argument("--kind", choices=["subject", "style"], default="subject",
                        help="subject (default) or style")
    parser.add_argument("--live", action="store_true",
                        help="a live subject (pets, people): the live-subject prompt lists")
    parser.add_argument("--force", action="store_true", help="overwrite an existing concept.yaml")


def draft(name: str, kind: str, class_noun: str, live: bool, images: list[str]) -> str:
    """concept.yaml text: the header comment, the keys, one caption per image."""
    token = f"<{name}>"
    if kind == "subject":
        caption = f"a photo of a {token} {class_noun}"
    else:  # styles learn no token (paper §5.2): the token stands for the style words
        caption = f"a picture in {token} style"
    body = {"kind": kind, "class": class_noun, "live": live, "token": token,
            "captions": {image: caption for image in images}}
    return (HEADER.format(name=name, token=token, noun=class_noun)
            + yaml.safe_dump(body, sort_keys=False, allow_unicode=True))


def run(args) -> None:
    folder: Path = args.folder
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder; put the concept's images in one")
    if problem := name_problem(folder.name):
        raise UserError(f"{folder}: the {problem}")
    target = folder / CONCEPT_FILE
    if target.exists() and not args.force:
        raise UserError(f"{target} exists; edit it, or pass --force to write a new draft")
    images = sorted(p.name for p in folder.iterdir()
                    if p.is_file() and p.suffix.lower() in IMAGE_EXTS and not p.name.startswith("."))
    if not images:
        raise UserError(f"{folder}: no images ({'/'.join(IMAGE_EXTS)}); add the photos first")
    target.write_text(draft(folder.name, args.kind, args.class_noun, args.live, images),
                      encoding="utf-8")
    concept = load_concept(folder)  # what the workflow will check at -n
    entry = _entry(folder)
    print(f"wrote {target}: {len(images)} images, token {concept.token}\n"
          f"next: write a comprehensive caption per image, then list {entry!r} under "
          f"data.{args.kind}s in config/my_concepts.yaml (a path under data.root, which is "
          "'data' in config/paper.yaml and config/smoke-real.yaml)")


def _entry(folder: Path) -> str:
    """The folder as a data.subjects / data.styles entry: its path under the data/ root."""
    parts = folder.resolve().parts
    if "data" in parts:
        return "/".join(parts[len(parts) - 1 - parts[::-1].index("data") + 1:])
    return folder.name
